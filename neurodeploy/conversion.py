"""``neurodeploy convert``: a trained inpainter (bundle format 3) or a NIR graph (format 2) to a deployment bundle.

A NIR graph (:func:`convert_graph`) is partitioned (:mod:`neurodeploy.partition`);
each chip segment is quantized (:func:`neurodeploy.quantize.quantize_segment`)
and written as one netx file, the host segments' parameters go to ``host.pt``
(:mod:`neurodeploy.host_graph`). The inpainter takes the same path: its
spiking stack, written as a NIR graph on one tile's window
(:func:`neurodeploy.converters.nir_io.stack_graph`), is partitioned into one
chip segment, quantized and written the same way (``segment_0.net``), and its
CNN is the host segment (``host.pt``). Everything is written into a temporary directory that is
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
from neurodeploy.encoding import PAYLOAD_BITS, PAYLOAD_MAX
from neurodeploy.errors import UserError
from neurodeploy.graph import TauConvention
from neurodeploy.io import atomic_directory, save_torch, sha256_file
from neurodeploy.lif_mapping import NETX_RESET_OFFSET
from neurodeploy.model import HybridInpainter, ModelConfig, conv_specs, spiking_halo
from neurodeploy.text import plural

DEFAULT_TILE = 128


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
            host: Sequence[str] = (), payload: str = "spikes", tau_convention: TauConvention = "auto",
            calibrate: str | os.PathLike[str] | None = None, rounding: str | None = None) -> Bundle:
    """Convert a HybridInpainter or a checkpoint (format 3), or a NIR graph (format 2), into a bundle.

    ``tile`` applies to the inpainter; ``dt``, ``host``, ``payload`` and
    ``tau_convention`` to a NIR graph (a ``.nir`` path or a ``nir.NIRGraph``):
    see :func:`convert_graph` and :func:`neurodeploy.graph.read_graph`.
    ``calibrate``: for a NIR graph, samples of its input (:func:`convert_graph`);
    for the inpainter, a folder of photos or one photo, from which at most
    :data:`CALIBRATION_TILES` seeded windows of :data:`CALIBRATION_TILE` pixels are cut
    (:func:`calibration_frames`). ``rounding``: a NIR graph's, with ``calibrate`` (:func:`convert_graph`).
    """
    import nir

    if isinstance(model_or_path, nir.NIRGraph) or (not isinstance(model_or_path, HybridInpainter)
                                                    and Path(model_or_path).suffix == ".nir"):
        return convert_graph(model_or_path, out_dir, host=host, dt=dt, payload=payload, force=force,
                             tau_convention=tau_convention, calibrate=calibrate, rounding=rounding)
    if rounding is not None:  # the inpainter's calibration chooses scales only
        raise UserError("`rounding` applies to a NIR graph's calibration", "leave it out for a checkpoint")
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
    photos = None if calibrate is None else calibration_photos(calibrate)
    return _convert_inpainter(model, out_dir, source, tile, force, photos)


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """Sign the manifest with its own digest (:func:`neurodeploy.bundle.manifest_digest`) and write it."""
    manifest[bundle_format.DIGEST_FIELD] = bundle_format.manifest_digest(manifest)
    (folder / bundle_format.MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))


def inpainter_partition(model: HybridInpainter, tile: int) -> tuple[Any, Any, int]:
    """The inpainter's spiking stack as a graph on a tile's window, and its partition: (graph, chip segment, halo).

    The window is the tile plus a halo of the stack's receptive-field radius
    (:func:`neurodeploy.model.spiking_halo`) on every side. The partitioner must place
    the whole stack on the chip as one segment; a layer it would keep on the
    host is a UserError naming the reason.
    """
    nir_graph, _, chip, halo = _stack_partition(model, tile)
    return nir_graph, chip, halo


def _stack_partition(model: HybridInpainter, tile: int) -> tuple[Any, Any, Any, int]:
    """:func:`inpainter_partition` with the whole partition too: (graph, partition, chip segment, halo)."""
    from neurodeploy.converters.nir_io import stack_graph
    from neurodeploy.graph import read_graph
    from neurodeploy.partition import CHIP, ChipSegment, partition

    config = model.config
    if model.snn is None:
        raise UserError("the model is the all-CNN twin (`spiking_layers=0`): it has no spiking layer to deploy",
                        "convert a model with spiking layers")
    specs = conv_specs(config)[:config.spiking_layers]
    if tile % config.spiking_stride:
        raise UserError(f"tile size {tile} is not a multiple of the spiking stage's stride {config.spiking_stride}",
                        f"pass a multiple of {config.spiking_stride}, e.g. `tile=128`")
    halo = spiking_halo(config)
    window = (config.snn_in_channels, tile + 2 * halo, tile + 2 * halo)
    weights = [layer.conv.weight.detach().double().numpy() for layer in model.snn.layers]
    nir_graph = stack_graph(weights, [s.stride for s in specs], config.lif, window)
    graph = read_graph(nir_graph, dt=config.lif.dt, tau_convention="seconds")
    result = partition(graph)
    chips = [s for s in result.segments if isinstance(s, ChipSegment)]
    if len(chips) != 1 or len(chips[0].layers) != len(specs):
        why = "; ".join(f"{p.node}: {p.reason}" for p in result.placement
                        if p.place != CHIP and p.kind not in ("Input", "Output"))
        raise UserError(f"the spiking stack does not map onto the chip as one segment ({why})",
                        "see neurodeploy.lif_mapping for what the chip's neuron computes")
    return nir_graph, result, chips[0], halo


CALIBRATION_TILES = 64  # at most this many calibration windows: bounds the time and memory of --calibrate
CALIBRATION_TILE = 32  # their tile size in pixels (less where the bundle's tile is smaller), halo added
CALIBRATION_SEED = 0


def calibration_photos(path: str | os.PathLike[str]) -> list[tuple[Path, Any]]:
    """``--calibrate``'s photos: (path, uint8 (H, W, 3)) of one image or of every image below a folder.
    A missing path, a folder without images or an unreadable image is a UserError."""
    from neurodeploy.io import list_images, read_image

    root = Path(path)
    if not root.exists():
        raise UserError(f"calibration photos {root} do not exist", "pass a folder of images or one image")
    paths = list_images(root) if root.is_dir() else [root]
    if not paths:
        raise UserError(f"the folder {root} holds no images",
                        "pass a folder with PNG or JPEG files (searched recursively) to `calibrate`")
    return [(p, read_image(p)) for p in paths]


def calibration_frames(photos: Sequence[tuple[Path, Any]], config: ModelConfig, window: int,
                       tiles: int = CALIBRATION_TILES, seed: int = CALIBRATION_SEED) -> Any:
    """The spiking stack's input frames (N, T, C, window, window), uint8 payloads, of N = ``tiles``
    windows cut from ``photos``, as the deployed pipeline makes them.

    Window i comes from photo i mod len(photos) (upscaled to at least ``window`` on its short side,
    as the evaluation crops are), with ``rng = default_rng([seed, i])`` choosing its place and its
    hole (:func:`neurodeploy.data.random_mask`, the evaluation's 5-25 %); then
    :class:`neurodeploy.simulation.SnnInput` (masking, fill, mask channel) and
    :func:`neurodeploy.encoding.input_frames` (payloads ``round(255·x)``, or the seeded Poisson
    spikes), as for a tile of the window's size inside a larger image. The hole fill sees the
    window only, not the whole photo.
    """
    import numpy as np

    from neurodeploy.data import _fit_to_crop, random_mask
    from neurodeploy.encoding import input_frames
    from neurodeploy.simulation import SnnInput

    frames = []
    for i in range(tiles):
        image = _fit_to_crop(photos[i % len(photos)][1], window)
        rng = np.random.default_rng([seed, i])
        top = int(rng.integers(0, image.shape[0] - window + 1))
        left = int(rng.integers(0, image.shape[1] - window + 1))
        crop = np.ascontiguousarray(image[top:top + window, left:left + window])
        mask = random_mask(rng, window, window)
        x = SnnInput(crop, mask, config).window(slice(0, window), slice(0, window))
        frames.append(input_frames(x, config.encoding, config.timesteps, seed, (top, left)))
    return np.stack(frames)


def _convert_inpainter(model: HybridInpainter, out_dir: str | os.PathLike[str], source: dict[str, Any],
                       tile: int, force: bool, photos: Sequence[tuple[Path, Any]] | None = None) -> Bundle:
    """The inpainter as one chip segment (its spiking stack) and one host segment (its CNN), format 3.

    ``photos`` (:func:`calibration_photos`): calibrate the stack's scales on
    :func:`calibration_frames` of them (:func:`neurodeploy.calibration.calibrate`, the chip segment
    fed the frames / P), windows of a tile of at most :data:`CALIBRATION_TILE` pixels plus the halo;
    the chosen scales then quantize the bundle's stack. The manifest's ``calibration`` records it.
    Without photos the scales are static.
    """
    import nir

    from neurodeploy.calibration import calibrate as calibrate_on
    from neurodeploy.converters.netx_io import write_segment
    from neurodeploy.quantize import quantize_segment

    config: ModelConfig = model.config
    nir_graph, _, chip, halo = _stack_partition(model, tile)
    encoding, timesteps = config.encoding, config.timesteps
    entry = _payload_entry(encoding == "poisson", "input")
    calibrated, frames = None, None
    if photos is None:
        quantized = quantize_segment(chip.layers, entry["payload_max"])
    else:
        # calibrated on the stack built for a small tile: a layer's fixed point depends on its weights and
        # neuron only, and windows of the bundle's tile (128 px) took 5 GB for the shipped model
        stride = config.spiking_stride
        small = min(tile, max(stride, CALIBRATION_TILE // stride * stride))
        _, small_result, small_chip, _ = _stack_partition(model, small)
        frames = calibration_frames(photos, config, small + 2 * halo)
        k = small_result.segments.index(small_chip)
        calibrated = calibrate_on(small_result, frames / entry["payload_max"], {k: entry["payload_max"]})
        quantized = quantize_segment(chip.layers, entry["payload_max"], [r.scale for r in calibrated.layers])
    depth = len(quantized)
    host_state = {k: v.detach().cpu() for k, v in model.cnn.state_dict().items()}
    last = chip.layers[-1]
    segments = [
        {"place": "chip", "file": bundle_format.segment_file(0), "nodes": list(chip.nodes), "input": entry,
         "lava": {"input_message_bits": entry["input_message_bits"], "depth": depth,
                  "reset_interval": timesteps + depth, "reset_offset": NETX_RESET_OFFSET,
                  "steps_per_tile": timesteps + depth, "output_delay_steps": 0},
         "layers": [_layer_entry(layer, q) for layer, q in zip(chip.layers, quantized, strict=True)]},
        {"place": "host", "nodes": ["host_cnn"], "file": bundle_format.HOST_FILE},
    ]
    cuts = [
        {"src": "input", "dst": chip.layers[0].name, "direction": "host->chip", "payload": entry["payload"],
         "shape": [config.snn_in_channels, "H", "W"], "src_segment": None, "dst_segment": 0},
        {"src": last.name, "dst": "host_cnn", "direction": "chip->host", "payload": "spikes",
         "shape": [last.output_shape[0], f"H / {config.spiking_stride}", f"W / {config.spiking_stride}"]
         if config.spiking_stride > 1 else [last.output_shape[0], "H", "W"], "src_segment": 0, "dst_segment": 1},
    ]
    with atomic_directory(out_dir, force=force) as tmp:
        write_segment(tmp / bundle_format.segment_file(0), quantized)
        nir.write(tmp / bundle_format.GRAPH_FILE, nir_graph)
        save_torch({"format": bundle_format.HOST_FORMAT, "version": 1,
                    "model_config": config.to_dict(), "state_dict": host_state}, tmp / bundle_format.HOST_FILE)
        files = {name: sha256_file(tmp / name) for name in sorted(os.listdir(tmp))}
        manifest = {
            "format": bundle_format.FORMAT,
            "format_version": bundle_format.FORMAT_VERSION,
            "source": source,
            "files": files,
            "timesteps": timesteps,
            "dt": config.lif.dt,
            "tau_convention": "seconds",
            "input": {
                "channels": config.snn_in_channels,
                "encoding": encoding,
                "payload": entry["payload"],
                "payload_bits": PAYLOAD_BITS if encoding == "constant" else 0,
                "layout": "(C, H, W); channels = masked RGB in [0, 1] then the mask (1 = missing)"
                          if config.mask_input else "(C, H, W)",
                "shape_rule": "any H x W: the image is cut into tiles of tile.height x tile.width, "
                              "each read with a halo of tile.halo pixels (zeros beyond the image)",
            },
            "tile": {"height": int(tile), "width": int(tile), "halo": int(halo)},
            "segments": segments,
            "cuts": cuts,
            "summary": f"{plural(depth, 'chip layer')} in 1 chip segment, "
                       f"{plural(len(model.cnn.layers), 'conv layer')} on the host",
            "model_config": config.to_dict(),
            "equations": {"neurons": "neurodeploy.lif_mapping.CubaMapping", "float": "neurodeploy.model.SpikingStack",
                          "timing": "neurodeploy.reference.run_segment_batch"},
            "versions": _versions(),
        }
        if calibrated is not None:
            assert photos is not None and frames is not None
            manifest["calibration"] = _photo_calibration_entry(photos, frames, calibrated)
        _write_manifest(tmp, manifest)
    return Bundle.load(out_dir)


def _photo_calibration_entry(photos: Sequence[tuple[Path, Any]], frames: Any, calibrated: Any) -> dict[str, Any]:
    """The manifest's record of an inpainter's calibration: the photos and the windows cut from them, then as a
    graph bundle's (:func:`_calibration_record`)."""
    folders = {p.parent for p, _ in photos}
    return _calibration_record({
        "file": folders.pop().name if len(folders) == 1 else "photos", "shape": list(frames.shape),
        "images": [{"file": p.name, "sha256": sha256_file(p)} for p, _ in photos],
        "tiles": int(frames.shape[0]), "seed": CALIBRATION_SEED,
        "rule": "window i: photo i mod len(images), place and hole (data.random_mask, 5-25 %) from "
                "default_rng([seed, i]); frames by simulation.SnnInput and encoding.input_frames"}, calibrated)


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


def _input_entry(graph: Any, segment: Any, payload: str) -> dict[str, Any]:
    """The manifest's ``input`` of a chip segment: the node it reads and the payload that carries it."""
    source_node = graph.inputs(segment.layers[0].nodes[0])[0]
    return _payload_entry(_binary(graph, source_node, payload), source_node)


def _layer_entry(layer: Any, quantized: Any) -> dict[str, Any]:
    from neurodeploy.lif_mapping import map_neuron

    return {
        "name": layer.name, "kind": quantized.kind, "nodes": list(layer.nodes),
        "input_shape": list(layer.input_shape), "output_shape": list(layer.output_shape),
        "quantization": {"weight_scale": quantized.weight_scale, "payload_max": quantized.payload_max,
                         "weight_error": quantized.weight_error, "threshold_error": quantized.threshold_error,
                         "bias_error": quantized.bias_error, "saturated_weights": quantized.saturated_weights,
                         "max_input": quantized.max_input, "i_decay": quantized.i_decay,
                         "v_decay": quantized.v_decay, "vth_mant": quantized.vth_mant,
                         "bias": quantized.bias is not None, "bias_site": quantized.bias_site,
                         "warnings": list(quantized.warnings)},
        "neuron": asdict(layer.neuron),
        "mapping": asdict(map_neuron(layer.neuron)),
    }


def _rewrite(graph_or_path: Any, path: Path, graph: Any) -> None:
    """The source graph, re-written by ``nir.write`` (types inferred where the exporter left them out;
    where nir cannot infer them, the shapes ``graph``, the read :class:`~neurodeploy.graph.Graph`, gives)."""
    import contextlib
    import copy

    import nir

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
    import nir
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
                  tau_convention: TauConvention = "auto", calibrate: str | os.PathLike[str] | None = None,
                  rounding: str | None = None) -> Bundle:
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
    layer's spikes (:mod:`neurodeploy.calibration`), and the manifest's
    ``calibration`` records the samples' sha256 and shape and per layer the
    chosen scale and the spike F1 before (static) and after. Without it the
    scales are the static ones. ``rounding`` (with ``calibrate``): how the
    mantissas are rounded after the scale, one of
    :data:`neurodeploy.calibration.ROUNDINGS` (default ``DEFAULT_ROUNDING``).
    """
    import nir

    from neurodeploy.calibration import DEFAULT_ROUNDING, ROUNDINGS
    from neurodeploy.calibration import calibrate as calibrate_on
    from neurodeploy.converters.netx_io import runs_in_stock_netx, write_segment
    from neurodeploy.graph_run import read_samples
    from neurodeploy.host_graph import host_params
    from neurodeploy.partition import CHIP, ChipSegment, HostSegment, plan
    from neurodeploy.quantize import quantize_segment

    if payload not in PAYLOADS:
        raise UserError(f"unknown payload {payload!r}", "pass `payload=spikes` or graded")
    rounding = DEFAULT_ROUNDING if rounding is None else rounding
    if rounding not in ROUNDINGS:
        raise UserError(f"unknown rounding {rounding!r}", f"pass `rounding=` one of {', '.join(ROUNDINGS)}")
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
    (input_name,), (output_name,) = ends["Input"], ends["Output"]
    samples = None if calibrate is None else read_samples(
        calibrate, graph.nodes[input_name].output_shape, payload, option="`calibrate`")
    entries = {k: _input_entry(graph, segment, payload) for k, segment in enumerate(result.segments)
               if isinstance(segment, ChipSegment)}
    calibrated = None if samples is None else calibrate_on(
        result, samples, {k: entry["payload_max"] for k, entry in entries.items()}, rounding)
    segments: list[dict[str, Any]] = []
    files: dict[int, tuple[Any, ...]] = {}
    payload_of: dict[int, str] = {}
    for k, segment in enumerate(result.segments):
        if isinstance(segment, HostSegment):
            segments.append({"place": "host", "nodes": list(segment.nodes)})
            continue
        assert isinstance(segment, ChipSegment)
        entry = entries[k]
        payload_of[k] = entry["payload"]
        quantized = (quantize_segment(segment.layers, entry["payload_max"]) if calibrated is None
                     else calibrated.segments[k])
        files[k] = quantized
        depth = len(segment.layers)
        segments.append({
            "place": "chip", "file": bundle_format.segment_file(k), "nodes": list(segment.nodes), "input": entry,
            "lava": {"input_message_bits": entry["input_message_bits"], "depth": depth,
                     "reset_interval": f"T + {depth}", "reset_offset": 1, "steps_per_sample": f"T + {depth}",
                     "output_delay_steps": 0, "stock_netx": runs_in_stock_netx(quantized)},
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
    with atomic_directory(out_dir, force=force) as tmp:
        _rewrite(graph_or_path, tmp / bundle_format.GRAPH_FILE, graph)
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
        if calibrated is not None:
            assert samples is not None and calibrate is not None
            manifest["calibration"] = {**_calibration_entry(calibrate, samples, calibrated), "rounding": rounding}
        _write_manifest(tmp, manifest)
    return Bundle.load(out_dir)


def _calibration_entry(path: str | os.PathLike[str], samples: Any, calibrated: Any) -> dict[str, Any]:
    """The manifest's record of a calibration on a samples file (:func:`_calibration_record`)."""
    return _calibration_record({"file": Path(path).name, "sha256": sha256_file(path), "shape": list(samples.shape)},
                               calibrated)


def _calibration_record(samples: dict[str, Any], calibrated: Any) -> dict[str, Any]:
    """The manifest's record of a calibration: the samples, the method, per chip layer the scale and F1."""
    from neurodeploy.calibration import COARSE_OCTAVES, COARSE_STEPS_PER_OCTAVE, SIGNIFICANCE_Z

    return {
        "samples": samples,
        "method": "neurodeploy.calibration",
        "objective": "per chip layer, spike_f1 vs the float layer, both fed the chip's upstream spikes; a scale "
                     f"replaces the static one only with a per-sample paired gain of z >= {SIGNIFICANCE_Z:g}",
        "candidates": f"the static scale s0; s0·2^(j/{COARSE_STEPS_PER_OCTAVE}) within {COARSE_OCTAVES} octaves; "
                      "then quantize.candidate_scales within one coarse step of the best",
        "layers": [asdict(record) for record in calibrated.layers],
    }
