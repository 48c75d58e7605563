"""A NIR graph to a deployment bundle of format 2 (:func:`convert_graph`), and the manifest entries both kinds share.

The graph is partitioned (:mod:`neurodeploy.chip.partition`); each chip segment
is quantized, each layer's weight width chosen on a probe (:mod:`neurodeploy.chip.precision`; with
samples its scale by :mod:`neurodeploy.chip.calibration`) and written as one netx file,
the host segments' parameters go to ``host.pt`` (:mod:`neurodeploy.ir.host_ops`).
Everything is written into a temporary directory renamed into place at the end,
so a failed or interrupted conversion leaves no bundle behind. The inpainter's
conversion (:mod:`neurodeploy.inpainter.conversion`) writes its format 3 with
the same entries (:func:`layer_entry`, :func:`payload_entry`); both build the typed
:class:`~neurodeploy.bundle.manifest.Manifest`, which :func:`~neurodeploy.bundle.manifest.write_manifest` writes.
See :mod:`neurodeploy.bundle.format` for the layout.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import nir

from neurodeploy.bundle import manifest as bundle_format
from neurodeploy.bundle.format import Bundle, check_target
from neurodeploy.bundle.manifest import Cut, Endpoint, Manifest, Segment, SegmentInput, write_manifest
from neurodeploy.chip.calibration import (
    COARSE_OCTAVES,
    COARSE_STEPS_PER_OCTAVE,
    DEFAULT_ROUNDING,
    ROUNDINGS,
    SIGNIFICANCE_Z,
)
from neurodeploy.chip.encoding import PAYLOAD_BITS, PAYLOAD_MAX
from neurodeploy.chip.neuron_mapping import map_neuron
from neurodeploy.chip.partition import CHIP, ChipSegment, HostSegment, plan
from neurodeploy.chip.precision import (
    DEFAULT_FIDELITY_TARGET,
    PROBE_LEVELS,
    PROBE_SEED,
    WEIGHT_MODES,
    Precision,
    choose_precision,
    probe_inputs,
)
from neurodeploy.chip.quantize import QuantizedChipLayer, fixed_point
from neurodeploy.converters.netx_io import runs_in_stock_netx, write_segment
from neurodeploy.errors import UserError
from neurodeploy.io import atomic_directory, read_samples, save_torch, sha256_file
from neurodeploy.ir.graph import Neuron, TauConvention
from neurodeploy.ir.host_ops import host_params
from neurodeploy.ir.norse_reader import norse_graph


def versions() -> dict[str, str]:
    out = {}
    for dist in ("neurodeploy", "torch", "norse", "lava-nc", "lava-dl", "numpy", "nir"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "missing"
    return out


PAYLOADS = ("spikes", "graded")


def _binary(graph: Any, name: str, payload: str) -> bool:
    """Whether node ``name``'s output is 0/1 spikes (so a chip segment reading it takes spike payloads)."""

    node = graph.nodes[name]
    if node.kind == "Input":
        return payload == "spikes"
    if isinstance(node.op, Neuron):
        return node.op.spiking
    if node.kind == "Threshold":
        return True
    if node.kind in ("Flatten", "Output"):
        return all(_binary(graph, a, payload) for a in graph.inputs(name))
    return False


def payload_entry(spikes: bool, source: str) -> SegmentInput:
    """What a chip segment reading node ``source`` takes: 0/1 spikes, or 8-bit graded payloads."""
    if spikes:
        return SegmentInput(source, "spikes", 1, 0, "p = x (x must be 0 or 1)")
    return SegmentInput(source, "graded", PAYLOAD_MAX, PAYLOAD_BITS,
                        f"p = clip(round({PAYLOAD_MAX}·x), 0, {PAYLOAD_MAX}) (x in [0, 1]; beyond is clipped)")


def _input_entry(graph: Any, segment: Any, payload: str) -> SegmentInput:
    """The manifest's ``input`` of a chip segment: the node it reads and the payload that carries it."""
    source_node = graph.inputs(segment.layers[0].nodes[0])[0]
    return payload_entry(_binary(graph, source_node, payload), source_node)


def layer_entry(layer: Any, quantized: QuantizedChipLayer, fidelity: Any = None) -> dict[str, Any]:
    """The manifest's record of one chip layer: its nodes and shapes, the quantizer's report, its neuron, and
    (a graph's) its width's fidelity on the probe (:class:`~neurodeploy.chip.precision.LayerFidelity`)."""
    fixed = quantized.layer
    extra = {} if fidelity is None else {"fidelity": fidelity.to_json()}
    return {**extra,
        "name": layer.name, "kind": fixed.kind, "nodes": list(layer.nodes),
        "input_shape": list(layer.input_shape), "output_shape": list(layer.output_shape),
        "quantization": {"weight_scale": quantized.weight_scale, "payload_max": quantized.payload_max,
                         "weight_error": quantized.weight_error, "threshold_error": quantized.threshold_error,
                         "bias_error": quantized.bias_error, "saturated_weights": quantized.saturated_weights,
                         "max_input": quantized.max_input, "i_decay": fixed.i_decay,
                         "v_decay": fixed.v_decay, "vth_mant": fixed.vth_mant,
                         "bias": fixed.bias is not None, "bias_site": fixed.bias_site,
                         "weight_max": quantized.weight_max,
                         "synapses_per_connection": fixed.synapses_per_connection,
                         "warnings": list(quantized.warnings)},
        "neuron": asdict(layer.neuron),
        "mapping": asdict(map_neuron(layer.neuron)),
    }


def _rewrite(graph_or_path: Any, path: Path, graph: Any) -> None:
    """The source graph, re-written by ``nir.write`` (types inferred where the exporter left them out;
    where nir cannot infer them, the shapes ``graph``, the read :class:`~neurodeploy.ir.graph.Graph`, gives)."""
    import contextlib
    import copy

    raw = copy.deepcopy(graph_or_path) if isinstance(graph_or_path, nir.NIRGraph) \
        else nir.read(graph_or_path, type_check=False)
    _storable(raw)
    with contextlib.suppress(Exception):  # types nir cannot infer stay as the exporter gave them
        raw.infer_types()
    _typed(raw, graph)
    try:
        nir.write(path, raw)
    except Exception as exc:
        raise UserError(f"the graph cannot be written back by nir.write ({type(exc).__name__}: {exc})",
                        "export it with a NIR version that nir.write reads back") from None


def _typed(raw: Any, graph: Any) -> None:
    """In place: a Conv2d's spatial ``input_shape`` and the types an exporter left as None, from the read
    graph's per-sample shapes. Norse 1.1 writes a Conv2d with ``input_shape`` and its types None, which
    ``nir.write`` cannot store, and with a batch axis on the Input ``infer_types`` stops part way, leaving
    the first conv an ``input_shape`` with the channel axis, which ``nir.read`` cannot read back."""
    import numpy as np

    for name, node in raw.nodes.items():
        known = graph.nodes.get(name)
        if known is None:
            continue
        for key, shape in (("input_type", known.input_shape), ("output_type", known.output_shape)):
            types = getattr(node, key, None)
            if isinstance(types, dict) and any(v is None for v in types.values()):
                setattr(node, key, {k: np.array(shape) if v is None else v for k, v in types.items()})
        if isinstance(node, nir.Conv2d) and len(known.input_shape) == 3:  # (C, H, W): the conv's (H, W)
            node.input_shape = np.array(known.input_shape[1:])


def _storable(graph: Any) -> None:
    """In place: torch tensors to numpy, 0-d arrays to one element (Norse 1.1's scalars): ``nir.write``
    stores neither, and a one-element parameter reads back as the same layer-wide value."""
    import numpy as np

    for node in graph.nodes.values():
        if isinstance(node, nir.NIRGraph):
            _storable(node)
            continue
        for key, value in list(vars(node).items()):
            if hasattr(value, "detach"):
                value = value.detach().cpu().numpy()
            if isinstance(value, np.ndarray) and value.ndim == 0:
                value = value.reshape(1)
            setattr(node, key, value)


def convert_graph(graph_or_path: Any, out_dir: str | os.PathLike[str], *, host: Sequence[str] = (),
                  dt: float | None = None, payload: str = "spikes", force: bool = False,
                  tau_convention: TauConvention = "auto", calibrate: str | os.PathLike[str] | None = None,
                  rounding: str | None = None, wide_weights: bool = False, weights: str = "auto",
                  fidelity_target: float = DEFAULT_FIDELITY_TARGET, stock_netx: bool = False,
                  source: dict[str, Any] | None = None) -> Bundle:
    """Convert a NIR graph (a ``.nir`` path or a ``nir.NIRGraph``) into a format-2 bundle at ``out_dir``.

    ``host`` keeps nodes on the host, ``dt`` is the time step in seconds
    (default: the graph's metadata), ``payload`` says what the graph's input
    is: ``"spikes"`` (0/1 events, sent to the chip as spikes) or ``"graded"``
    (values in [0, 1], sent as 8-bit payloads ``round(255·x)``). A chip
    segment fed by the host takes spikes where the value it reads is 0/1 by
    construction (a spiking neuron, a Threshold, a spike Input, through
    Flatten), otherwise 8-bit graded payloads; chip -> host carries the
    spikes of every time step. T is not fixed: it is the input's.

    ``calibrate``: samples X (N, T, *input) of the graph's input, a ``.npy``
    (or ``.npz`` with key ``input``) in the format ``simulate --input`` reads;
    each chip layer's weight scale is then chosen on X to reproduce the float
    layer's spikes (:mod:`neurodeploy.chip.calibration`), and the manifest's
    ``calibration`` records the samples' sha256 and shape and per layer the
    chosen scale and the spike F1 before (static) and after. Without it the
    scales are the static ones. ``rounding`` (with ``calibrate``): how the
    mantissas are rounded after the scale, one of
    :data:`neurodeploy.chip.calibration.ROUNDINGS` (default ``DEFAULT_ROUNDING``).

    ``weights``: each chip layer's weight width (:mod:`neurodeploy.chip.precision`):
    ``"auto"`` (default) the cheapest of 8 bits and wide weights (about 15
    bits, each connection two synapses: spike times closer to the float
    graph's at twice the synaptic operations; neurodeploy's backends run them,
    stock netx does not) whose local spike F1 on a probe reaches
    ``fidelity_target``; ``"8"`` or ``"wide"`` everywhere. The probe is the
    ``calibrate`` samples when given, else seeded inputs of the graph's input
    type (:func:`neurodeploy.chip.precision.probe_inputs`). Every chip layer's
    local and end-to-end spike F1 on it go to the manifest (each layer's
    ``fidelity``, and ``fidelity`` with the probe, target and warnings); a
    layer below the target with the best width allowed gets a warning.
    ``wide_weights=True`` is ``weights="wide"``. ``stock_netx``: files stock
    ``lava.lib.dl.netx`` loads (8-bit weights everywhere, biases at the voltage).

    ``source``: the manifest's record of what was converted, where a front end made the graph
    (:func:`convert_module`); default the NIR file or graph.
    """
    weights = "wide" if wide_weights else weights
    rounding = _check_options(payload, weights, fidelity_target, stock_netx, rounding)
    check_target(out_dir, force)
    if source is None and isinstance(graph_or_path, nir.NIRGraph):
        source = {"kind": "nir", "path": None, "sha256": None}
    elif source is None:
        path = Path(graph_or_path)
        if not path.is_file():
            raise UserError(f"{path} does not exist", "pass a NIR graph (.nir)")
        source = {"kind": "nir", "path": str(path), "sha256": sha256_file(path)}
    result = plan(graph_or_path, host=list(host), dt=dt, tau_convention=tau_convention)
    graph = result.graph
    if not result.layers:
        why = "; ".join(f"{p.node} ({p.kind}): {p.reason}" for p in result.placement
                        if p.kind not in ("Input", "Output"))[:300]
        raise UserError(f"{source['path'] or 'the graph'}: no node can run on the chip ({why})",
                        "see where each node runs and why with `plan=True`")
    ends = {kind: [n for n, node in graph.nodes.items() if node.kind == kind] for kind in ("Input", "Output")}
    for kind, names in ends.items():
        if len(names) != 1:
            raise UserError(f"the graph has {len(names)} {kind} nodes; neurodeploy deploys graphs with one",
                            f"give the graph one {kind}")
    (input_name,), (output_name,) = ends["Input"], ends["Output"]
    samples = None if calibrate is None else read_samples(
        calibrate, graph.nodes[input_name].output_shape, payload, option="`calibrate`")
    entries = {k: _input_entry(graph, segment, payload) for k, segment in enumerate(result.segments)
               if isinstance(segment, ChipSegment)}
    probe, chosen = estimate(result, payload, samples, weights, fidelity_target, stock_netx, rounding)
    segments: list[Segment] = []
    files: dict[int, tuple[Any, ...]] = {}
    payload_of: dict[int, str] = {}
    for k, segment in enumerate(result.segments):
        if isinstance(segment, HostSegment):
            segments.append(Segment(k, "host", tuple(segment.nodes), None, None, None, ()))
            continue
        assert isinstance(segment, ChipSegment)
        entry = entries[k]
        payload_of[k] = entry.payload
        quantized = chosen.segments[k]
        files[k] = quantized
        segments.append(_chip_segment_entry(k, segment, entry, quantized, chosen))
    cuts = _cut_entries(result, segments, payload_of)
    host_nodes = [p.node for p in result.placement if p.place != CHIP]
    with atomic_directory(out_dir, force=force) as tmp:
        _rewrite(graph_or_path, tmp / bundle_format.GRAPH_FILE, graph)
        for k, quantized in files.items():
            write_segment(tmp / bundle_format.segment_file(k), fixed_point(quantized))
        save_torch(host_params(graph, host_nodes), tmp / bundle_format.HOST_FILE)
        calibration = None
        if chosen.calibration is not None:
            assert samples is not None and calibrate is not None
            calibration = {**_calibration_entry(calibrate, samples, chosen.calibration), "rounding": rounding}
        write_manifest(tmp, Manifest(
            format_version=bundle_format.GRAPH_FORMAT_VERSION,
            files={name: sha256_file(tmp / name) for name in sorted(os.listdir(tmp))},
            segments=tuple(segments),
            cuts=cuts,
            input=Endpoint(input_name, tuple(graph.nodes[input_name].output_shape), payload,
                           layout="(N, T, *shape): N samples of T time steps; T is the input's"),
            output=Endpoint(output_name, tuple(graph.nodes[output_name].output_shape), None,
                            layout="(N, T, *shape), aligned to the input's time steps"),
            summary=result.summary(),
            dt=graph.dt,
            tau_convention=graph.tau_convention, tau_convention_reason=graph.tau_convention_reason,
            host_requested=tuple(sorted(host)),
            timesteps=None, tile=None, model_config=None,
            calibration=calibration,
            source=source,
            equations={"neurons": "neurodeploy.chip.neuron_mapping.CubaMapping", "float": "neurodeploy.ir.float_run",
                       "timing": "neurodeploy.chip.reference.run_segment_batch"},
            versions=versions(),
            host_nodes=tuple(host_nodes),
            placement=None,
            fidelity=_fidelity_entry(chosen, probe, calibrate, stock_netx),
        ))
    return Bundle.load(out_dir)


def _check_options(payload: str, weights: str, fidelity_target: float, stock_netx: bool, rounding: str | None
                   ) -> str:
    """The options of a graph's conversion checked, each in one line; returns the rounding (its default filled)."""
    if payload not in PAYLOADS:
        raise UserError(f"unknown payload {payload!r}", "pass `payload=spikes` or graded")
    if weights not in WEIGHT_MODES:
        raise UserError(f"unknown weights {weights!r}", f"pass `weights=` one of {', '.join(WEIGHT_MODES)}")
    if stock_netx and weights == "wide":
        raise UserError("stock netx reads one synapse per connection, not wide weights",
                        "leave out wide weights, or stock_netx to run on neurodeploy's backends")
    if not 0 < fidelity_target <= 1:
        raise UserError(f"fidelity target {fidelity_target:g} is not a spike F1 in (0, 1]",
                        "pass a target such as 0.95")
    rounding = DEFAULT_ROUNDING if rounding is None else rounding
    if rounding not in ROUNDINGS:
        raise UserError(f"unknown rounding {rounding!r}", f"pass `rounding=` one of {', '.join(ROUNDINGS)}")
    return rounding


def plan_precision(graph_or_path: Any, *, host: Sequence[str] = (), dt: float | None = None,
                   payload: str = "spikes", tau_convention: TauConvention = "auto",
                   calibrate: str | os.PathLike[str] | None = None, rounding: str | None = None,
                   weights: str = "auto", fidelity_target: float = DEFAULT_FIDELITY_TARGET,
                   stock_netx: bool = False) -> tuple[Any, Any, Precision]:
    """What :func:`convert_graph` would choose, writing nothing: (the partition, the probe, each chip layer's
    width and fidelity on it). ``convert --plan`` prints it."""
    rounding = _check_options(payload, weights, fidelity_target, stock_netx, rounding)
    result = plan(graph_or_path, host=list(host), dt=dt, tau_convention=tau_convention)
    if not result.layers:
        return result, None, Precision({}, (), None, weights, fidelity_target, ())
    (input_name,) = [n for n, node in result.graph.nodes.items() if node.kind == "Input"]
    samples = None if calibrate is None else read_samples(
        calibrate, result.graph.nodes[input_name].output_shape, payload, option="`calibrate`")
    probe, chosen = estimate(result, payload, samples, weights, fidelity_target, stock_netx, rounding)
    return result, probe, chosen


def estimate(result: Any, payload: str, samples: Any, weights: str, fidelity_target: float, stock_netx: bool,
             rounding: str) -> tuple[Any, Precision]:
    """(the probe, each chip layer's width chosen on it, :mod:`neurodeploy.chip.precision`): the probe is
    ``samples`` when given (and then calibrates each layer with ``rounding``), else seeded inputs of the
    graph's input ``payload``. With ``stock_netx`` 8 bits everywhere, refused in one line when a layer
    cannot run in stock netx."""
    graph = result.graph
    (input_name,) = [n for n, node in graph.nodes.items() if node.kind == "Input"]
    payload_max = {k: _input_entry(graph, segment, payload).payload_max for k, segment in enumerate(result.segments)
                   if isinstance(segment, ChipSegment)}
    if stock_netx:
        _check_stock_netx(result)
    probe = samples if samples is not None else probe_inputs(graph.nodes[input_name].output_shape, payload)
    chosen = choose_precision(result, probe, payload_max, "8" if stock_netx else weights, fidelity_target,
                              rounding if samples is not None else None, stock_netx)
    return probe, chosen


def _check_stock_netx(result: Any) -> None:
    """With ``stock_netx``: refused in one line, before the work starts, when a chip layer's bias enters the
    synaptic current (a bias into a filtered current, e.g. a CubaLIF's: stock netx adds biases to the voltage)."""
    for layer in result.layers:
        if layer.bias is not None and layer.neuron.filters_current:
            raise UserError(f"chip layer {layer.name}'s bias enters the synaptic current, which stock netx "
                            "does not model (it adds biases to the voltage)",
                            "leave out --stock-netx (neurodeploy's backends run it), or keep "
                            f"{','.join(layer.nodes)} on the host with --host")


def _fidelity_entry(chosen: Precision, probe: Any, calibrate: Any, stock_netx: bool) -> dict[str, Any]:
    """The manifest's ``fidelity``: what was measured on (the probe), the mode and target, the warnings;
    each layer's own figures are in its entry (:func:`layer_entry`)."""
    where = (f"the calibration samples {Path(calibrate).name}" if calibrate is not None else
             f"seeded inputs (neurodeploy.chip.precision.probe_inputs, seed {PROBE_SEED}, levels "
             f"{', '.join(f'{v:g}' for v in PROBE_LEVELS)})")
    return {"probe": {"source": where, "shape": list(probe.shape)}, "weights": chosen.mode,
            "target_local_spike_f1": chosen.target, "stock_netx": stock_netx,
            "method": "neurodeploy.chip.precision: per chip layer the cheapest width whose local spike F1 (fed the "
                      "deployed upstream) reaches the target; end-to-end: against the float graph",
            "warnings": list(chosen.warnings)}


def convert_module(module: Any, out_dir: str | os.PathLike[str], *, dt: float | None = None,
                   input_shape: Sequence[int] | None = None, source: dict[str, Any] | None = None,
                   **options: Any) -> Bundle:
    """Convert a Norse module (:mod:`neurodeploy.ir.norse_reader`) into a format-2 bundle, as its graph.

    ``dt`` (seconds; default the cells') and ``input_shape`` (one sample's, where the first module does
    not say it) go to the front end; ``options`` are :func:`convert_graph`'s. The bundle's ``graph.nir``
    is the graph the front end wrote (``nir.read`` reads it back, ``metadata["dt"]`` its time step).
    """
    graph = norse_graph(module, dt, None if input_shape is None else tuple(input_shape))
    return convert_graph(graph, out_dir, dt=float(graph.metadata["dt"]), tau_convention="seconds",
                         source=source or {"kind": "norse", "path": None, "sha256": None,
                                           "module": type(module).__name__}, **options)


def _chip_segment_entry(k: int, segment: ChipSegment, entry: SegmentInput,
                        quantized: Sequence[QuantizedChipLayer], chosen: Precision) -> Segment:
    """The manifest's record of chip segment ``k``: its file, nodes, input, Lava timing and layers."""
    depth = len(segment.layers)
    fidelity = {record.name: record for record in chosen.layers}
    return Segment(
        index=k, place="chip", nodes=tuple(segment.nodes), file=bundle_format.segment_file(k), neurons="cuba",
        input=entry,
        layers=tuple(layer_entry(layer, q, fidelity[layer.name])
                     for layer, q in zip(segment.layers, quantized, strict=True)),
        lava={"input_message_bits": entry.input_message_bits, "depth": depth,
              "reset_interval": f"T + {depth}", "reset_offset": 1, "steps_per_sample": f"T + {depth}",
              "output_delay_steps": 0, "stock_netx": runs_in_stock_netx(fixed_point(quantized))},
    )


def _cut_entries(result: Any, segments: list[Segment], payload_of: dict[int, str]) -> tuple[Cut, ...]:
    """The manifest's record of every cut: its ends, shape, direction and what crosses it."""
    cuts = []
    for cut in result.cuts:
        places = (segments[cut.src_segment].place, segments[cut.dst_segment].place)
        carried = (f"{payload_of[cut.dst_segment]}" if places[1] == CHIP and places[0] != CHIP
                   else "spikes" if places[0] == CHIP else "values")
        cuts.append(Cut(src=cut.src, dst=cut.dst, shape=tuple(cut.shape), src_segment=cut.src_segment,
                        dst_segment=cut.dst_segment, direction=f"{places[0]}->{places[1]}", payload=carried))
    return tuple(cuts)


def _calibration_entry(path: str | os.PathLike[str], samples: Any, calibrated: Sequence[Any]) -> dict[str, Any]:
    """The manifest's record of a calibration on a samples file (:func:`calibration_record`)."""
    return calibration_record({"file": Path(path).name, "sha256": sha256_file(path), "shape": list(samples.shape)},
                              calibrated)


def calibration_record(samples: dict[str, Any], calibrated: Sequence[Any]) -> dict[str, Any]:
    """The manifest's record of a calibration: the samples, the method, per chip layer (``calibrated``: its
    :class:`~neurodeploy.chip.calibration.LayerCalibration`) the scale and F1."""

    return {
        "samples": samples,
        "method": "neurodeploy.chip.calibration",
        "objective": "per chip layer, spike_f1 vs the float layer, both fed the chip's upstream spikes; a scale "
                     f"replaces the static one only with a per-sample paired gain of z >= {SIGNIFICANCE_Z:g}",
        "candidates": f"the static scale s0; s0·2^(j/{COARSE_STEPS_PER_OCTAVE}) within {COARSE_OCTAVES} octaves; "
                      "then quantize.candidate_scales within one coarse step of the best",
        "layers": [asdict(record) for record in calibrated],
    }
