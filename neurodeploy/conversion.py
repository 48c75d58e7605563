"""``neurodeploy convert``: a trained inpainter (bundle format 1) or a NIR graph (format 2) to a deployment bundle.

A NIR graph (:func:`convert_graph`) is partitioned (:mod:`neurodeploy.partition`);
each chip segment is quantized (:func:`neurodeploy.quantize.quantize_segment`)
and written as one netx file, the host segments' parameters go to ``host.pt``
(:mod:`neurodeploy.host_graph`). For the inpainter, the SNNConv2d stage is
quantized (:mod:`neurodeploy.quantize`) with the LIF mapping of :mod:`neurodeploy.lif_mapping` and written as netx HDF5
(``snn.net``) and NIR (``snn.nir``); the CNN stage is kept for the host
(``host.pt``). Everything is written into a temporary directory that is
renamed into place at the end, so a failed or interrupted conversion leaves
no bundle behind. See :mod:`neurodeploy.bundle` for the layout.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from neurodeploy import bundle as bundle_format
from neurodeploy.bundle import Bundle
from neurodeploy.converters.netx_io import NetxConvLayer, write_netx
from neurodeploy.converters.nir_io import SpikingStage, write_nir
from neurodeploy.encoding import PAYLOAD_BITS, PAYLOAD_MAX
from neurodeploy.errors import UserError
from neurodeploy.graph import TauConvention
from neurodeploy.io import atomic_directory, save_torch, sha256_file
from neurodeploy.lif_mapping import lava_steps, map_lif, netx_reset
from neurodeploy.model import HybridInpainter, ModelConfig
from neurodeploy.quantize import QuantizedCubaLayer, quantize_layer

DEFAULT_TILE = 128


def quantize_stage(stage: SpikingStage, encoding: str) -> QuantizedCubaLayer:
    payload_max = PAYLOAD_MAX if encoding == "constant" else 1
    return quantize_layer("snn.conv", stage.weight, stage.lif, payload_max)


def _versions() -> dict[str, str]:
    out = {}
    for dist in ("neurodeploy", "torch", "norse", "lava-nc", "lava-dl", "numpy", "nir"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "missing"
    return out


def convert(model_or_path: HybridInpainter | str | os.PathLike[str] | Any, out_dir: str | os.PathLike[str],
            *, force: bool = False, tile: int = DEFAULT_TILE, dt: float | None = None,
            host: Sequence[str] = (), payload: str = "spikes", tau_convention: TauConvention = "auto") -> Bundle:
    """Convert a HybridInpainter or a checkpoint (format 1), or a NIR graph (format 2), into a bundle.

    ``tile`` applies to the inpainter; ``dt``, ``host``, ``payload`` and
    ``tau_convention`` to a NIR graph (a ``.nir`` path or a ``nir.NIRGraph``):
    see :func:`convert_graph` and :func:`neurodeploy.graph.read_graph`.
    """
    import nir

    if isinstance(model_or_path, nir.NIRGraph) or (not isinstance(model_or_path, HybridInpainter)
                                                    and Path(model_or_path).suffix == ".nir"):
        return convert_graph(model_or_path, out_dir, host=host, dt=dt, payload=payload, force=force,
                             tau_convention=tau_convention)
    if tile < 1:
        raise UserError(f"tile size {tile} must be at least 1", "pass e.g. `tile=128`")
    bundle_format.check_target(out_dir, force)
    source: dict[str, Any]
    if isinstance(model_or_path, HybridInpainter):
        model = model_or_path
        source = {"kind": "model", "path": None, "sha256": None}
    else:
        from neurodeploy.checkpoint import load_model

        path = Path(model_or_path)
        if not path.is_file():
            raise UserError(f"{path} does not exist", "pass a checkpoint (.pt) or a NIR graph (.nir)")
        source = {"kind": "checkpoint", "path": str(path), "sha256": sha256_file(path)}
        model, _ = load_model(path)
    config: ModelConfig = model.config
    if model.snn is None:
        raise UserError("the model is the all-CNN twin (`spiking_layers=0`): it has no spiking layer to deploy",
                        "convert a model with spiking layers")
    if config.spiking_layers != 1:
        raise UserError(f"the model has {config.spiking_layers} spiking layers; this neurodeploy deploys "
                        "inpainters with one", "export its spiking stage to NIR and convert the graph")
    stage = SpikingStage(weight=model.snn.layers[0].conv.weight.detach().double().numpy(),
                         input_shape=(config.snn_in_channels, tile, tile), lif=config.lif)
    encoding, timesteps = config.encoding, config.timesteps
    host_state = {k: v.detach().cpu() for k, v in model.cnn.state_dict().items()}

    quant = quantize_stage(stage, encoding)
    halo = stage.weight.shape[-1] // 2
    c_in = stage.input_shape[0]
    tile_h, tile_w = tile, tile
    layer = NetxConvLayer(input_shape=(c_in, tile_h + 2 * halo, tile_w + 2 * halo), weight=quant.weight,
                          padding=quant.padding, i_decay=quant.i_decay, v_decay=quant.v_decay,
                          vth_mant=quant.vth_mant)
    reset_interval, reset_offset = netx_reset(timesteps)
    mapping = map_lif(stage.lif)
    with atomic_directory(out_dir, force=force) as tmp:
        write_netx(tmp / bundle_format.SNN_FILE, layer)
        write_nir(tmp / bundle_format.NIR_FILE, stage)
        save_torch({"format": bundle_format.HOST_FORMAT, "version": 1,
                    "model_config": config.to_dict(), "state_dict": host_state}, tmp / bundle_format.HOST_FILE)
        files = {name: sha256_file(tmp / name) for name in sorted(os.listdir(tmp))}
        manifest = {
            "format": bundle_format.FORMAT,
            "format_version": bundle_format.FORMAT_VERSION,
            "source": source,
            "files": files,
            "timesteps": timesteps,
            "input": {
                "channels": c_in,
                "encoding": encoding,
                "payload_bits": PAYLOAD_BITS if encoding == "constant" else 0,
                "layout": "(C, H, W); channels = masked RGB in [0, 1] then the mask (1 = missing)"
                          if config.mask_input else "(C, H, W)",
                "shape_rule": "any H x W: the image is cut into tiles of tile.height x tile.width, "
                              "each read with a halo of tile.halo pixels (zeros beyond the image)",
            },
            "tile": {"height": int(tile_h), "width": int(tile_w), "halo": int(halo)},
            "lava": {"input_message_bits": PAYLOAD_BITS if encoding == "constant" else 0,
                     "reset_interval": reset_interval, "reset_offset": reset_offset,
                     "steps_per_image": lava_steps(timesteps), "output_delay_steps": 1},
            "quantization": quant.summary(),
            "lif_mapping": {
                "norse": asdict(stage.lif),
                "lava": {"iDecay": quant.i_decay, "vDecay": quant.v_decay, "vThMant": quant.vth_mant,
                         "du": quant.i_decay - 1, "dv": quant.v_decay, "bias": 0,
                         "weight_exponent": 0, "weight_scale": quant.weight_scale},
                "exact": {"current_decay": mapping.current_decay, "voltage_decay": mapping.voltage_decay,
                          "threshold": mapping.threshold_per_weight_unit * quant.weight_scale
                          * quant.payload_max},
                "tau_convention": stage.tau_convention,
                "equations": "neurodeploy.lif_mapping (module docstring)",
            },
            "model_config": config.to_dict(),
            "versions": _versions(),
        }
        manifest[bundle_format.DIGEST_FIELD] = bundle_format.manifest_digest(manifest)
        (tmp / bundle_format.MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return Bundle.load(out_dir)


# -- a NIR graph: bundle format 2 ----------------------------------------------------------------

PAYLOADS = ("spikes", "graded")


def _binary(graph: Any, name: str, payload: str) -> bool:
    """Whether node ``name``'s output is 0/1 spikes (so a chip segment reading it takes spike payloads)."""
    from neurodeploy.graph import Neuron

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


def _payload_entry(spikes: bool, source: str) -> dict[str, Any]:
    if spikes:
        return {"node": source, "payload": "spikes", "payload_max": 1, "input_message_bits": 0,
                "rule": "p = x (x must be 0 or 1)"}
    return {"node": source, "payload": "graded", "payload_max": PAYLOAD_MAX, "input_message_bits": PAYLOAD_BITS,
            "rule": f"p = clip(round({PAYLOAD_MAX}·x), 0, {PAYLOAD_MAX}) (x in [0, 1]; beyond is clipped)"}


def _layer_entry(layer: Any, quantized: Any) -> dict[str, Any]:
    from neurodeploy.lif_mapping import map_neuron

    return {
        "name": layer.name, "kind": quantized.kind, "nodes": list(layer.nodes),
        "input_shape": list(layer.input_shape), "output_shape": list(layer.output_shape),
        "quantization": {"weight_scale": quantized.weight_scale, "payload_max": quantized.payload_max,
                         "weight_error": quantized.weight_error, "saturated_weights": quantized.saturated_weights,
                         "max_input": quantized.max_input, "i_decay": quantized.i_decay,
                         "v_decay": quantized.v_decay, "vth_mant": quantized.vth_mant,
                         "bias": quantized.bias is not None, "warnings": list(quantized.warnings)},
        "neuron": asdict(layer.neuron),
        "mapping": asdict(map_neuron(layer.neuron)),
    }


def _rewrite(graph_or_path: Any, path: Path) -> None:
    """The source graph, re-written by ``nir.write`` (types inferred where the exporter left them out)."""
    import contextlib
    import copy

    import nir

    raw = copy.deepcopy(graph_or_path) if isinstance(graph_or_path, nir.NIRGraph) \
        else nir.read(graph_or_path, type_check=False)
    _storable(raw)
    with contextlib.suppress(Exception):  # types nir cannot infer stay as the exporter gave them
        raw.infer_types()
    try:
        nir.write(path, raw)
    except Exception as exc:
        raise UserError(f"the graph cannot be written back by nir.write ({type(exc).__name__}: {exc})",
                        "export it with a NIR version that nir.write reads back") from None


def _storable(graph: Any) -> None:
    """In place: torch tensors to numpy, 0-d arrays to one element (Norse 1.1's scalars): ``nir.write``
    stores neither, and a one-element parameter reads back as the same layer-wide value."""
    import nir
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
                  tau_convention: TauConvention = "auto") -> Bundle:
    """Convert a NIR graph (a ``.nir`` path or a ``nir.NIRGraph``) into a format-2 bundle at ``out_dir``.

    ``host`` keeps nodes on the host, ``dt`` is the time step in seconds
    (default: the graph's metadata), ``payload`` says what the graph's input
    is: ``"spikes"`` (0/1 events, sent to the chip as spikes) or ``"graded"``
    (values in [0, 1], sent as 8-bit payloads ``round(255·x)``). A chip
    segment fed by the host takes spikes where the value it reads is 0/1 by
    construction (a spiking neuron, a Threshold, a spike Input, through
    Flatten), otherwise 8-bit graded payloads; chip -> host carries the
    spikes of every time step. T is not fixed: it is the input's.
    """
    import nir

    from neurodeploy.converters.netx_io import write_segment
    from neurodeploy.host_graph import host_params
    from neurodeploy.partition import CHIP, ChipSegment, HostSegment, plan
    from neurodeploy.quantize import quantize_segment

    if payload not in PAYLOADS:
        raise UserError(f"unknown payload {payload!r}", "pass `payload=spikes` or graded")
    bundle_format.check_target(out_dir, force)
    if isinstance(graph_or_path, nir.NIRGraph):
        source: dict[str, Any] = {"kind": "nir", "path": None, "sha256": None}
    else:
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
    segments: list[dict[str, Any]] = []
    files: dict[int, tuple[Any, ...]] = {}
    payload_of: dict[int, str] = {}
    for k, segment in enumerate(result.segments):
        if isinstance(segment, HostSegment):
            segments.append({"place": "host", "nodes": list(segment.nodes)})
            continue
        assert isinstance(segment, ChipSegment)
        source_node = graph.inputs(segment.layers[0].nodes[0])[0]
        entry = _payload_entry(_binary(graph, source_node, payload), source_node)
        payload_of[k] = entry["payload"]
        quantized = quantize_segment(segment.layers, entry["payload_max"])
        files[k] = quantized
        depth = len(segment.layers)
        segments.append({
            "place": "chip", "file": bundle_format.segment_file(k), "nodes": list(segment.nodes), "input": entry,
            "lava": {"input_message_bits": entry["input_message_bits"], "depth": depth,
                     "reset_interval": f"T + {depth}", "reset_offset": 1, "steps_per_sample": f"T + {depth}",
                     "output_delay_steps": 0},
            "layers": [_layer_entry(layer, q) for layer, q in zip(segment.layers, quantized, strict=True)],
        })
    cuts = []
    for cut in result.cuts:
        places = (segments[cut.src_segment]["place"], segments[cut.dst_segment]["place"])
        carried = (f"{payload_of[cut.dst_segment]}" if places[1] == CHIP and places[0] != CHIP
                   else "spikes" if places[0] == CHIP else "values")
        cuts.append({"src": cut.src, "dst": cut.dst, "shape": list(cut.shape), "src_segment": cut.src_segment,
                     "dst_segment": cut.dst_segment, "direction": f"{places[0]}->{places[1]}", "payload": carried})
    host_nodes = [p.node for p in result.placement if p.place != CHIP]
    (input_name,), (output_name,) = ends["Input"], ends["Output"]
    with atomic_directory(out_dir, force=force) as tmp:
        _rewrite(graph_or_path, tmp / bundle_format.GRAPH_FILE)
        for k, quantized in files.items():
            write_segment(tmp / bundle_format.segment_file(k), quantized)
        save_torch(host_params(graph, host_nodes), tmp / bundle_format.HOST_FILE)
        manifest = {
            "format": bundle_format.FORMAT,
            "format_version": bundle_format.GRAPH_FORMAT_VERSION,
            "source": source,
            "files": {name: sha256_file(tmp / name) for name in sorted(os.listdir(tmp))},
            "dt": graph.dt,
            "tau_convention": graph.tau_convention,
            "host_requested": sorted(host),
            "input": {"node": input_name, "shape": list(graph.nodes[input_name].output_shape), "payload": payload,
                      "layout": "(N, T, *shape): N samples of T time steps; T is the input's"},
            "output": {"node": output_name, "shape": list(graph.nodes[output_name].output_shape),
                       "layout": "(N, T, *shape), aligned to the input's time steps"},
            "segments": segments,
            "cuts": cuts,
            "host_nodes": host_nodes,
            "summary": result.summary(),
            "equations": {"neurons": "neurodeploy.lif_mapping.CubaMapping", "float": "neurodeploy.float_graph",
                          "timing": "neurodeploy.reference.run_segment_batch"},
            "versions": _versions(),
        }
        manifest[bundle_format.DIGEST_FIELD] = bundle_format.manifest_digest(manifest)
        (tmp / bundle_format.MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return Bundle.load(out_dir)
