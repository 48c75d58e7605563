"""``neurodeploy convert``: a trained inpainter (bundle format 3) or a NIR graph (format 2) to a deployment bundle.

A NIR graph goes to :func:`neurodeploy.bundle.convert.convert_graph`, which
partitions it, quantizes each chip segment and writes it as one netx file, the
host segments' parameters in ``host.pt``. The inpainter takes the same path: its
spiking stack, written as a NIR graph on one tile's window
(:func:`neurodeploy.inpainter.nir_stack.stack_graph`), is partitioned into one
chip segment, quantized and written the same way (``segment_0.net``), and its
CNN is the host segment (``host.pt``). Everything is written into a temporary directory that is
renamed into place at the end, so a failed or interrupted conversion leaves
no bundle behind. See :mod:`neurodeploy.bundle.format` for the layout.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurodeploy.bundle import manifest as bundle_format
from neurodeploy.bundle.convert import (
    calibration_record,
    convert_graph,
    convert_module,
    layer_entry,
    payload_entry,
    versions,
)
from neurodeploy.bundle.format import Bundle, check_target
from neurodeploy.bundle.manifest import Cut, Endpoint, Manifest, Segment, Tile, write_manifest
from neurodeploy.chip.calibration import calibrate as calibrate_on
from neurodeploy.chip.encoding import PAYLOAD_BITS, input_frames
from neurodeploy.chip.neuron_mapping import NETX_RESET_OFFSET
from neurodeploy.chip.partition import CHIP, ChipSegment, partition
from neurodeploy.chip.precision import DEFAULT_FIDELITY_TARGET
from neurodeploy.chip.quantize import fixed_point, quantize_segment
from neurodeploy.converters.netx_io import write_segment
from neurodeploy.converters.netx_sdnn import write_sdnn_segment
from neurodeploy.errors import UserError
from neurodeploy.inpainter import sd_placement as sd
from neurodeploy.inpainter.checkpoint import load_model
from neurodeploy.inpainter.data import _fit_to_crop, builtin_paths, random_mask
from neurodeploy.inpainter.model import HybridInpainter, ModelConfig, conv_specs, host_halo, spiking_halo
from neurodeploy.inpainter.nir_stack import stack_graph
from neurodeploy.inpainter.snn_input import SnnInput
from neurodeploy.io import atomic_directory, list_images, read_image, save_torch, sha256_file
from neurodeploy.ir.graph import TauConvention
from neurodeploy.ir.nir_reader import read_graph
from neurodeploy.ir.norse_reader import load_built
from neurodeploy.text import plural

DEFAULT_TILE = 128


# The options that apply to some kinds of input only (the others take every kind or are checked below).
OPTION_INPUTS: dict[str, tuple[str, ...]] = {
    "tile": ("checkpoint",), "delta_threshold": ("checkpoint",), "tau_convention": ("nir",),
    "input_shape": ("norse",), "dt": ("nir", "norse"), "host": ("nir", "norse"), "payload": ("nir", "norse"),
}
INPUT_NAMES = {"checkpoint": "a checkpoint", "nir": "a NIR graph", "norse": "a Norse model"}


def input_kind(model_or_path: Any) -> str:
    """checkpoint (or a HybridInpainter), nir (a .nir path or a NIRGraph) or norse (FILE.py:FUNCTION or a module)."""
    import nir

    if isinstance(model_or_path, HybridInpainter):
        return "checkpoint"
    if isinstance(model_or_path, nir.NIRGraph):
        return "nir"
    if isinstance(model_or_path, torch.nn.Module) or ".py:" in str(model_or_path):
        return "norse"
    return "nir" if Path(model_or_path).suffix == ".nir" else "checkpoint"


def refuse_options_for_other_inputs(model_or_path: Any, *, tile: int = DEFAULT_TILE,
                                    delta_threshold: float = sd.DEFAULT_DELTA_THRESHOLD, tau_convention: str = "auto",
                                    input_shape: Sequence[int] | None = None, dt: float | None = None,
                                    host: Sequence[str] = (), payload: str = "spikes") -> None:
    """A UserError for an option of :data:`OPTION_INPUTS` given (not its default) with an input it does not apply
    to: it would be ignored, and the user would believe it used."""
    kind = input_kind(model_or_path)
    given = {"tile": tile != DEFAULT_TILE, "delta_threshold": delta_threshold != sd.DEFAULT_DELTA_THRESHOLD,
             "tau_convention": tau_convention != "auto", "input_shape": input_shape is not None,
             "dt": dt is not None, "host": bool(host), "payload": payload != "spikes"}
    for name, kinds in OPTION_INPUTS.items():
        if given[name] and kind not in kinds:
            raise UserError(f"`{name}` applies to {' and '.join(INPUT_NAMES[k] for k in kinds)}, not to "
                            f"{INPUT_NAMES[kind]}", f"leave `{name}` out")


def convert(model_or_path: HybridInpainter | str | os.PathLike[str] | Any, out_dir: str | os.PathLike[str],
            *, force: bool = False, tile: int = DEFAULT_TILE, dt: float | None = None,
            host: Sequence[str] = (), payload: str = "spikes", tau_convention: TauConvention = "auto",
            calibrate: str | os.PathLike[str] | None = None, chip: sd.Placement = "spiking",
            delta_threshold: float = sd.DEFAULT_DELTA_THRESHOLD, rounding: str | None = None,
            wide_weights: bool = False, state: str | os.PathLike[str] | None = None,
            input_shape: Sequence[int] | None = None, example_input: Any = None, weights: str | None = None,
            fidelity_target: float | None = None, stock_netx: bool = False) -> Bundle:
    """Convert a HybridInpainter or a checkpoint (format 3), or a NIR graph or a Norse module (format 2), into a
    bundle.

    A Norse module (a ``SequentialState`` or ``nn.Sequential`` of Norse cells and torch layers), or
    ``"model.py:build"`` (a Python file and its function that builds one; ``state``: a state dict to load
    into it, read with ``weights_only=True``), is read by the Norse front end
    (:mod:`neurodeploy.ir.norse_reader`) and converted as its graph; ``dt`` defaults to its cells',
    ``input_shape`` is one sample's (``example_input``, one step's batch (B, *shape), gives it too), needed
    where the first module does not say it (a Conv2d does not).

    ``tile`` applies to the inpainter; ``dt``, ``host``, ``payload`` and
    ``tau_convention`` to a NIR graph (a ``.nir`` path or a ``nir.NIRGraph``):
    see :func:`convert_graph` and :func:`neurodeploy.ir.nir_reader.read_graph`.
    ``calibrate``: for a NIR graph, samples of its input (:func:`convert_graph`);
    for the inpainter, a folder of photos or one photo, from which at most
    :data:`CALIBRATION_TILES` seeded windows of :data:`CALIBRATION_TILE` pixels are cut
    (:func:`calibration_frames`), every chip layer's scale searched on them. Without it the inpainter's
    windows come from the builtin training photos and are a probe: a layer keeps its static scale where
    that reaches spike F1 ``fidelity_target`` (default 0.95) on them, and is searched where it does not
    (``fidelity_target=0``: static scales, measured; with ``calibrate``, every layer is searched unless
    ``fidelity_target`` is given). ``rounding``: a NIR graph's, with ``calibrate``;
    ``weights`` (default ``"auto"``; ``wide_weights`` is ``"wide"``) and ``stock_netx``: a NIR graph's, and
    ``fidelity_target`` its widths' target (:func:`convert_graph`).
    ``chip`` (inpainter): ``"spiking"`` (default) keeps the CNN on the host,
    ``"all"`` puts every host layer the chip runs on it as sigma-delta layers (:mod:`.sd_placement`),
    calibrated on the builtin training photos, with ``delta_threshold`` a fraction of each layer's
    activation scale.
    """
    import nir

    refuse_options_for_other_inputs(model_or_path, tile=tile, delta_threshold=delta_threshold,
                                    tau_convention=tau_convention, input_shape=input_shape, dt=dt, host=host,
                                    payload=payload)
    if isinstance(model_or_path, (str, os.PathLike)) and ".py:" in str(model_or_path):
        model_or_path = load_built(str(model_or_path), state)
    elif state is not None:
        raise UserError("`state` is the state dict of a model built by FILE.py:FUNCTION",
                        "pass the model as model.py:build, or leave `state` out")
    widths = {"weights": "wide" if wide_weights else weights or "auto", "stock_netx": stock_netx,
              "fidelity_target": DEFAULT_FIDELITY_TARGET if fidelity_target is None else fidelity_target}
    if example_input is not None and input_shape is None:
        input_shape = tuple(np.shape(example_input)[1:])
    if isinstance(model_or_path, torch.nn.Module) and not isinstance(model_or_path, HybridInpainter):
        return convert_module(model_or_path, out_dir, dt=dt, input_shape=input_shape, host=host, payload=payload,
                              force=force, calibrate=calibrate, rounding=rounding, **widths)
    if isinstance(model_or_path, nir.NIRGraph) or (not isinstance(model_or_path, HybridInpainter)
                                                    and Path(model_or_path).suffix == ".nir"):
        if chip != "spiking":  # a graph's placement is node by node: every node the chip runs goes on it
            raise UserError(f"`chip={chip}` places a checkpoint's CNN layers; a NIR graph puts every node the chip "
                            "runs on the chip already", "leave `chip` out for a NIR graph (`host` keeps nodes "
                            "on the host)")
        return convert_graph(model_or_path, out_dir, host=host, dt=dt, payload=payload, force=force,
                             tau_convention=tau_convention, calibrate=calibrate, rounding=rounding, **widths)
    if rounding is not None:  # the inpainter's calibration chooses scales only
        raise UserError("`rounding` applies to a NIR graph's calibration", "leave it out for a checkpoint")
    if wide_weights or weights == "wide":  # the inpainter's layer is fitted to its 8-bit mantissas (BENCHMARKS 3)
        raise UserError("wide weights apply to a NIR graph", "leave `wide_weights` out for a checkpoint")
    if weights is not None or stock_netx:
        raise UserError("`weights` and `stock_netx` apply to a NIR graph",
                        "leave them out for a checkpoint (its 8-bit layer is fitted to the chip)")
    if not 0 <= widths["fidelity_target"] <= 1:
        raise UserError(f"fidelity target {widths['fidelity_target']} is not a spike F1",
                        "pass a value from 0 to 1, e.g. 0.95 (0: keep the static scales)")
    if tile < 1:
        raise UserError(f"tile size {tile} must be at least 1", "pass e.g. `tile=128`")
    if chip not in sd.PLACEMENTS:
        raise UserError(f"unknown placement `chip={chip!r}`", "pass `chip='spiking'` (default) or `chip='all'`")
    if not delta_threshold >= 0:
        raise UserError(f"delta threshold {delta_threshold} is below 0",
                        "pass a fraction of the activation scale, 0 or more (0 sends every change)")
    check_target(out_dir, force)
    source: dict[str, Any]
    if isinstance(model_or_path, HybridInpainter):
        model = model_or_path
        source = {"kind": "model", "path": None, "sha256": None}
    else:
        path = Path(model_or_path)
        if not path.is_file():
            raise UserError(f"{path} does not exist", "pass a checkpoint (.pt) or a NIR graph (.nir)")
        source = {"kind": "checkpoint", "path": str(path), "sha256": sha256_file(path)}
        model, _ = load_model(path)
    photos = builtin_photos() if calibrate is None else calibration_photos(calibrate)
    keep_static_from = widths["fidelity_target"] if calibrate is None or fidelity_target is not None else None
    return _convert_inpainter(model, out_dir, source, tile, force, photos, chip, delta_threshold, keep_static_from)


def inpainter_partition(model: HybridInpainter, tile: int) -> tuple[Any, Any, int]:
    """The inpainter's spiking stack as a graph on a tile's window, and its partition: (graph, chip segment, halo).

    The window is the tile plus a halo of the stack's receptive-field radius
    (:func:`neurodeploy.inpainter.model.spiking_halo`) on every side. The partitioner must place
    the whole stack on the chip as one segment; a layer it would keep on the
    host is a UserError naming the reason.
    """
    nir_graph, _, chip, halo = _stack_partition(model, tile)
    return nir_graph, chip, halo


def _stack_partition(model: HybridInpainter, tile: int) -> tuple[Any, Any, Any, int]:
    """:func:`inpainter_partition` with the whole partition too: (graph, partition, chip segment, halo)."""

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
    nir_graph = stack_graph(model.snn.layers, config.lif.dt, window)
    graph = read_graph(nir_graph, dt=config.lif.dt, tau_convention="seconds")
    result = partition(graph)
    chips = [s for s in result.segments if isinstance(s, ChipSegment)]
    if len(chips) != 1 or len(chips[0].layers) != len(specs):
        why = "; ".join(f"{p.node}: {p.reason}" for p in result.placement
                        if p.place != CHIP and p.kind not in ("Input", "Output"))
        raise UserError(f"the spiking stack does not map onto the chip as one segment ({why})",
                        "see neurodeploy.chip.neuron_mapping for what the chip's neuron computes")
    return nir_graph, result, chips[0], halo


CALIBRATION_TILES = 64  # at most this many calibration windows: bounds the time and memory of --calibrate
CALIBRATION_TILE = 32  # their tile size in pixels (less where the bundle's tile is smaller), halo added
CALIBRATION_SEED = 0


def calibration_photos(path: str | os.PathLike[str]) -> list[tuple[Path, Any]]:
    """``--calibrate``'s photos: (path, uint8 (H, W, 3)) of one image or of every image below a folder.
    A missing path, a folder without images or an unreadable image is a UserError."""

    root = Path(path)
    if not root.exists():
        raise UserError(f"calibration photos {root} do not exist", "pass a folder of images or one image")
    paths = list_images(root) if root.is_dir() else [root]
    if not paths:
        raise UserError(f"the folder {root} holds no images",
                        "pass a folder with PNG or JPEG files (searched recursively) to `calibrate`")
    return [(p, read_image(p)) for p in paths]


@functools.lru_cache(maxsize=1)
def builtin_photos() -> tuple[tuple[Path, Any], ...]:
    """The builtin training photos as :func:`calibration_photos` gives a folder's, read-only; read once per
    process, since every checkpoint's conversion probes its layers on them."""
    photos = tuple((p, read_image(p)) for p in builtin_paths("train"))
    for _, image in photos:
        image.setflags(write=False)
    return photos


def calibration_frames(photos: Sequence[tuple[Path, Any]], config: ModelConfig, window: int,
                       tiles: int = CALIBRATION_TILES, seed: int = CALIBRATION_SEED) -> Any:
    """The spiking stack's input frames (N, T, C, window, window), uint8 payloads, of N = ``tiles``
    windows cut from ``photos``, as the deployed pipeline makes them.

    Window i comes from photo i mod len(photos) (upscaled to at least ``window`` on its short side,
    as the evaluation crops are), with ``rng = default_rng([seed, i])`` choosing its place and its
    hole (:func:`neurodeploy.inpainter.data.random_mask`, the evaluation's 5-25 %); then
    :class:`neurodeploy.inpainter.snn_input.SnnInput` (masking, fill, mask channel) and
    :func:`neurodeploy.chip.encoding.input_frames` (payloads ``round(255·x)``, or the seeded Poisson
    spikes), as for a tile of the window's size inside a larger image. The hole fill sees the
    window only, not the whole photo.
    """
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
                       tile: int, force: bool, photos: Sequence[tuple[Path, Any]],
                       placement: sd.Placement = "spiking", delta_threshold: float = sd.DEFAULT_DELTA_THRESHOLD,
                       keep_static_from: float | None = None) -> Bundle:
    """The inpainter as one chip segment (its spiking stack) and one host segment (its CNN), format 3.

    ``photos`` (:func:`calibration_photos`): calibrate the stack's scales on
    :func:`calibration_frames` of them (:func:`neurodeploy.chip.calibration.calibrate`, the chip segment
    fed the frames / P), windows of a tile of at most :data:`CALIBRATION_TILE` pixels plus the halo;
    the chosen scales then quantize the bundle's stack. ``keep_static_from``: a layer whose static
    scale reaches this spike F1 on them keeps it (the probe of the default conversion). The manifest's
    ``calibration`` records it.
    """
    import nir


    config: ModelConfig = model.config
    nir_graph, _, chip, halo = _stack_partition(model, tile)
    encoding, timesteps = config.encoding, config.timesteps
    entry = payload_entry(encoding == "poisson", "input")
    # calibrated on the stack built for a small tile: a layer's fixed point depends on its weights and
    # neuron only, and windows of the bundle's tile (128 px) took 5 GB for the shipped model
    stride = config.spiking_stride
    small = min(tile, max(stride, CALIBRATION_TILE // stride * stride))
    _, small_result, small_chip, _ = _stack_partition(model, small)
    frames = calibration_frames(photos, config, small + 2 * halo)
    k = small_result.segments.index(small_chip)
    calibrated = calibrate_on(small_result, frames / entry.payload_max, {k: entry.payload_max},
                              keep_static_from=keep_static_from)
    quantized = quantize_segment(chip.layers, entry.payload_max, [r.scale for r in calibrated.layers])
    depth = len(quantized)
    host_state = {k: v.detach().cpu() for k, v in model.cnn.state_dict().items()}
    last = chip.layers[-1]
    sd_entry, sd_layers = _sigma_delta_part(model, chip, placement, tile, delta_threshold)
    stack = Segment(
        index=0, place="chip", nodes=tuple(chip.nodes), file=bundle_format.segment_file(0), neurons="cuba",
        input=entry, layers=tuple(layer_entry(layer, q) for layer, q in zip(chip.layers, quantized, strict=True)),
        lava={"input_message_bits": entry.input_message_bits, "depth": depth,
              "reset_interval": timesteps + depth, "reset_offset": NETX_RESET_OFFSET,
              "steps_per_tile": timesteps + depth, "output_delay_steps": 0})
    # with the CNN's sigma-delta segment, the host keeps what the chip does not run, then the composite
    host_nodes = ("host_cnn",) if sd_entry is None else tuple(
        n for n in ("host_cnn", "residual", "composite") if n != "host_cnn" or len(sd_layers) < len(model.cnn.layers))
    host = Segment(index=1 if sd_entry is None else 2, place="host", nodes=host_nodes, file=bundle_format.HOST_FILE,
                   neurons=None, input=None, layers=())
    segments = (stack, host) if sd_entry is None else (stack, sd_entry, host)
    stack_out = ([last.output_shape[0], f"H / {config.spiking_stride}", f"W / {config.spiking_stride}"]
                 if config.spiking_stride > 1 else [last.output_shape[0], "H", "W"])
    cuts = [
        Cut(src="input", dst=chip.layers[0].name, shape=(config.snn_in_channels, "H", "W"), src_segment=None,
            dst_segment=0, direction="host->chip", payload=entry.payload),
        Cut(src=last.name, dst="host_cnn" if sd_entry is None else sd_entry.nodes[0], shape=tuple(stack_out),
            src_segment=0, dst_segment=1, direction="chip->host" if sd_entry is None else "chip->chip",
            payload="spikes"),
    ]
    if sd_entry is not None:
        cuts.append(Cut(src=sd_entry.nodes[-1], dst=host.nodes[0], shape=(sd_layers[-1].output_shape[0], "H", "W"),
                        src_segment=1, dst_segment=2, direction="chip->host", payload="graded"))
    with atomic_directory(out_dir, force=force) as tmp:
        write_segment(tmp / bundle_format.segment_file(0), fixed_point(quantized))
        if sd_entry is not None:
            assert sd_entry.file is not None
            write_sdnn_segment(tmp / sd_entry.file, sd_layers, stock_netx=sd_entry.details["stock_netx"])
        nir.write(tmp / bundle_format.GRAPH_FILE, nir_graph)
        save_torch({"format": bundle_format.HOST_FORMAT, "version": 1,
                    "model_config": config.to_dict(), "state_dict": host_state}, tmp / bundle_format.HOST_FILE)
        files = {name: sha256_file(tmp / name) for name in sorted(os.listdir(tmp))}
        calibration = _photo_calibration_entry(photos, frames, calibrated, keep_static_from)
        write_manifest(tmp, Manifest(
            format_version=bundle_format.FORMAT_VERSION,
            files=files,
            segments=segments,
            cuts=tuple(cuts),
            input=Endpoint(
                node=None, shape=None, payload=entry.payload, encoding=encoding,
                payload_bits=PAYLOAD_BITS if encoding == "constant" else 0,
                channels=config.snn_in_channels,
                layout="(C, H, W); channels = masked RGB in [0, 1] then the mask (1 = missing)"
                       if config.mask_input else "(C, H, W)",
                shape_rule="any H x W: the image is cut into tiles of tile.height x tile.width, "
                           "each read with a halo of tile.halo pixels (zeros beyond the image)"),
            output=None,
            summary=f"{plural(depth, 'chip layer')} in 1 chip segment, "
                    f"{plural(len(model.cnn.layers), 'conv layer')} on the host" if sd_entry is None else
                    f"{plural(depth, 'LIF layer')} and {plural(len(sd_layers), 'sigma-delta layer')} on the chip, "
                    f"{plural(len(model.cnn.layers) - len(sd_layers), 'conv layer')} on the host",
            dt=config.lif.dt,
            tau_convention="seconds",
            host_requested=(),
            timesteps=timesteps,
            tile=Tile(int(tile), int(tile), int(halo)),
            model_config=config.to_dict(),
            calibration=calibration,
            source=source,
            equations={"neurons": "neurodeploy.chip.neuron_mapping.CubaMapping",
                       "float": "neurodeploy.inpainter.model.SpikingStack",
                       "timing": "neurodeploy.chip.reference.run_segment_batch",
                       **({"sigma_delta": "neurodeploy.chip.sigma_delta",
                           "placement": "neurodeploy.inpainter.sd_placement"} if sd_entry else {})},
            versions=versions(),
            host_nodes=None,
            placement=placement,
        ))
    return Bundle.load(out_dir)


def _sigma_delta_part(model: HybridInpainter, chip: Any, placement: sd.Placement, tile: int,
                      delta_threshold: float) -> tuple[Segment | None, list[Any]]:
    """The sigma-delta segment of ``chip="all"`` (None and no layers for the default placement): its
    manifest entry and layers, built for one host block's window, calibrated on seeded windows of the
    builtin training photos (the calibration's rule: :func:`calibration_frames`)."""
    config = model.config
    count = sd.chip_host_layers(config, placement)
    if not count:
        return None, []
    frames = calibration_frames(builtin_photos(), config, sd.SD_CALIBRATION_WINDOW, sd.SD_CALIBRATION_TILES)
    acts, sums = sd.calibrate_host_layers(model, sd.calibration_rates(model, frames), count)
    multiple = config.size_multiple
    block = -(-max(tile, sd.SD_HOST_BLOCK) // multiple) * multiple
    side = (block + 2 * host_halo(config)) // config.spiking_stride
    layers = sd.quantize_host_layers(model, acts, sums, delta_threshold, (side, side))
    places = [p for p in sd.plan_layers(config, "all") if p.place == "chip" and p.name.startswith("cnn")]
    entry = sd.segment_entry(layers, places, acts, sums, delta_threshold, block, config.timesteps, 1,
                             chip.layers[-1].name)
    return entry, layers


def _photo_calibration_entry(photos: Sequence[tuple[Path, Any]], frames: Any, calibrated: Any,
                             keep_static_from: float | None) -> dict[str, Any]:
    """The manifest's record of an inpainter's calibration: the photos and the windows cut from them, which
    layers were searched, then as a graph bundle's (:func:`calibration_record`)."""
    folders = {p.parent for p, _ in photos}
    probe = photos is builtin_photos()
    return calibration_record({
        "file": "builtin training photos" if probe else folders.pop().name if len(folders) == 1 else "photos",
        "shape": list(frames.shape),
        "searched": "every layer" if keep_static_from is None else
                    f"the layers whose static scale is below spike F1 {keep_static_from:g} on these windows",
        "images": [{"file": p.name, "sha256": sha256_file(p)} for p, _ in photos],
        "tiles": int(frames.shape[0]), "seed": CALIBRATION_SEED,
        "rule": "window i: photo i mod len(images), place and hole (data.random_mask, 5-25 %) from "
                "default_rng([seed, i]); frames by simulation.SnnInput and encoding.input_frames"}, calibrated.layers)


# -- a NIR graph: bundle format 2 ----------------------------------------------------------------

