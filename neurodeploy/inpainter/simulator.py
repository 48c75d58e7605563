"""The simulator behind ``neurodeploy simulate``: the hybrid pipeline with the spiking stage on a backend.

For each image: encode the masked image on the host (:mod:`neurodeploy.chip.encoding`),
run the spiking stage for T steps through the :class:`~neurodeploy.inpainter.tiling.SpikeBridge`
(Lava, Loihi 2, the NumPy reference, or the batched torch backend, which runs a
row of tiles as one batch), reduce the spikes to rates and run
the host CNN (PyTorch), and composite its prediction into the hole.

Fidelity is measured against the trained float model rebuilt from the bundle
(``graph.nir``'s float weights + ``host.pt``) on the same input (the same Poisson
draws for ``poisson`` encoding): PSNR between the two output images, the
spike scores of :mod:`neurodeploy.spike_metrics` per chip layer, and whether the
backend's spikes equal the reference backend's bit for bit on the tile at the
image's centre (:meth:`Simulator._check_exact` says why one tile).

Memory is bounded by the tile, not by the image: the image streams through
the spiking stage tile by tile (the bundle's tiles, :meth:`SpikeBridge.grid`),
and only the spike counts of the tile rows that the host CNN still needs are
kept, a band a few tiles high. The host CNN, and the float model of the
fidelity check, run on blocks of their own (:meth:`Simulator.host_grid`)
read with a halo of their receptive field, so every result equals the
whole-image computation's; the event counts of ``profile`` are summed on the
way (:class:`~neurodeploy.cost.counting.EventTally`). Whole-image arrays left: the
uint8 image, mask and output, and, for the ``mean`` and ``smooth`` hole fills,
which look at the whole image, the spiking stage's 8-bit input (C, H, W).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from neurodeploy.bundle.format import Bundle
from neurodeploy.bundle.manifest import GRAPH_FILE
from neurodeploy.chip.encoding import count_rate, encode_window, input_frames
from neurodeploy.chip.reference import run_segment
from neurodeploy.cost.counting import EventTally
from neurodeploy.errors import UserError
from neurodeploy.inpainter.checkpoint import bundle_config, bundle_host_cnn
from neurodeploy.inpainter.data import to_tensors
from neurodeploy.inpainter.evaluate import psnr_from_mse, to_uint8
from neurodeploy.inpainter.float_spikes import stack_spikes
from neurodeploy.inpainter.holes import composite
from neurodeploy.inpainter.model import HybridInpainter, host_halo
from neurodeploy.inpainter.nir_stack import stack_weights
from neurodeploy.inpainter.sd_placement import SigmaDeltaTally, sigma_delta_host
from neurodeploy.inpainter.snn_input import SnnInput
from neurodeploy.inpainter.tiling import SpikeBridge, TileGrid
from neurodeploy.runtime.backends import REFERENCE, Backend, LavaModels
from neurodeploy.runtime.backends import backend as backend_spec
from neurodeploy.spike_metrics import SpikeTally, firing_warnings

TILE_BATCH = 8  # spiking tiles per batch on the torch backend (its memory: B·T·neurons float64 synaptic inputs)
# The host CNN's block side: at least this many pixels (and at least a spiking tile). Its halo of the
# receptive field is recomputed around every block, 1.72x the work at 128 px blocks and a 20 px halo,
# 1.34x at 256; memory grows with the block's square, not with the image.
HOST_BLOCK = 256
ProgressHook = Callable[[int, int], None]  # (tiles done, tiles in the image), after every spiking tile


@dataclass(frozen=True)
class SimulationInput:
    """One image to inpaint: uint8 (H, W, 3), bool mask (H, W) with True = missing."""

    name: str
    image: np.ndarray
    mask: np.ndarray


@dataclass
class ImageResult:
    """What simulating one image produced and measured."""

    name: str
    output: np.ndarray  # uint8 (H, W, 3), the inpainted image
    tallies: list[EventTally]  # per chip layer: its input events and output spikes, summed over the tiles
    raster: np.ndarray  # uint8 (T, C, h, w): the last layer's spikes of the tile at the image's centre
    seconds: dict[str, float]
    fidelity: dict[str, Any] = field(default_factory=dict)
    spikes: torch.Tensor | None = None  # uint8 (T, C, H, W), the last layer's, whole image: only with keep_spikes
    frames: np.ndarray | None = None  # the spiking stage's input (T, C, H, W): only with keep_spikes
    sigma_delta: list[Any] = field(default_factory=list)  # per sigma-delta layer: SigmaDeltaTally (placement all)

    @property
    def total_spikes(self) -> int:
        """Spikes of every chip layer."""
        return sum(tally.spikes for tally in self.tallies)

    def summary(self, backend: str) -> dict[str, Any]:
        per_step = sum(tally.spikes_per_step for tally in self.tallies)
        return {
            "name": self.name,
            "backend": backend,
            "timesteps": len(per_step),
            "seconds": self.seconds,
            "spikes": {"total": int(per_step.sum()), "per_timestep": [int(v) for v in per_step],
                       "per_layer": [tally.spikes for tally in self.tallies]},
            "fidelity": self.fidelity,
        }


def float_model(bundle: Bundle) -> HybridInpainter:
    """The trained float model, rebuilt from the bundle: graph.nir's float weights and host.pt's CNN."""

    config = bundle_config(bundle)
    model = HybridInpainter(config)
    weights = stack_weights(bundle.file(GRAPH_FILE))
    assert model.snn is not None
    if len(weights) != len(model.snn.layers):
        raise UserError(f"bundle {bundle.path}: {GRAPH_FILE} holds {len(weights)} spiking layers, its model config "
                        f"{len(model.snn.layers)}", "re-create the bundle with neurodeploy convert")
    with torch.no_grad():
        for layer, weight in zip(model.snn.layers, weights, strict=True):
            layer.conv.weight.copy_(torch.from_numpy(weight))
    model.cnn = bundle_host_cnn(bundle)
    return model.eval()


def _without_grad(work: Callable[..., Any], *args: Any) -> Any:
    """``work(*args)`` with autograd off (torch's grad mode is per thread: the check's thread needs its own)."""
    with torch.no_grad():
        return work(*args)


@dataclass(frozen=True)
class _WhenAsked:
    """Work for the check, done when :meth:`result` is called (a Simulator without a check thread)."""

    work: Callable[..., Any]
    args: tuple[Any, ...]

    def result(self) -> Any:
        return _without_grad(self.work, *self.args)


def _tally(tallies: list[SpikeTally], deployed: list[np.ndarray], floats: list[np.ndarray]) -> None:
    """Add one tile's spikes, per chip layer (T, C, h, w), to the layers' tallies against the float model."""
    for tally, chip_spikes, float_spikes in zip(tallies, deployed, floats, strict=True):
        tally.add(chip_spikes, float_spikes, time_axis=0)


def _settle(pending: list[Any]) -> None:
    """Wait for (or do) the work of ``pending`` (:meth:`Simulator._later`), in order; empty it."""
    for work in pending:
        work.result()
    pending.clear()


def _at_centre(tiles: TileGrid, y: int, x: int) -> bool:
    """Whether the tile at (y, x) owns the image's centre pixel."""
    rows, cols = tiles.tile(y, x)
    return rows.start <= tiles.height // 2 < rows.stop and cols.start <= tiles.width // 2 < cols.stop


def squared_error(a: np.ndarray, b: np.ndarray) -> int:
    """The sum of (a - b)^2 over two uint8 images, exact: a sum over blocks is the whole image's."""
    return int(((a.astype(np.int64) - b.astype(np.int64)) ** 2).sum())


def psnr_of_squared_error(total: int, values: int) -> float:
    """PSNR in dB of ``values`` uint8 values whose squared differences sum to ``total``."""
    return psnr_from_mse(total / values / 255.0**2)


class _Band:
    """Rows of an image's per-pixel spike counts (K, C, rows, W), kept as the tile rows the spiking
    stage appends below, and dropped above once no host block reads them: a few tile rows.

    The counts are the spiking stage's output, the image downsampled by ``stride``; rows and
    columns are given in image pixels (multiples of the stride where a block starts)."""

    def __init__(self, stride: int = 1) -> None:
        self.stride = stride
        self.rows: list[tuple[int, np.ndarray]] = []  # (first row of counts, counts)

    @property
    def bottom(self) -> int:
        """The image row below the last counts appended."""
        return (self.rows[-1][0] + self.rows[-1][1].shape[-2]) * self.stride if self.rows else 0

    def append(self, top: int, counts: np.ndarray) -> None:
        """Counts of the tile row whose first image row is ``top`` (a multiple of the stride)."""
        self.rows.append((top // self.stride, counts))

    def drop_above(self, y: int) -> None:
        """Forget the tile rows that end above image row y."""
        self.rows = [(top, counts) for top, counts in self.rows if (top + counts.shape[-2]) * self.stride > y]

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        """The counts of image rows and columns ``rows``, ``cols``: counts[..., start // stride :
        ceil(stop / stride)] on both axes."""
        s = self.stride
        rows = slice(rows.start // s, -(-rows.stop // s))
        cols = slice(cols.start // s, -(-cols.stop // s))
        parts = [counts[..., max(rows.start - top, 0):rows.stop - top, cols]
                 for top, counts in self.rows if top < rows.stop and rows.start < top + counts.shape[-2]]
        assert sum(p.shape[-2] for p in parts) == rows.stop - rows.start, "band does not hold those rows"
        return np.concatenate(parts, axis=-2)


@dataclass
class _Run:
    """One image on its way through a Simulator: its source, what is known so far, and its sums."""

    item: SimulationInput
    input: SnnInput
    output: np.ndarray
    tallies: list[EventTally]
    check: bool = True  # run the fidelity check on this image
    raster: np.ndarray | None = None
    spikes: np.ndarray | None = None
    frames: np.ndarray | None = None
    tiles_done: int = 0
    spike_tallies: list[SpikeTally] = field(default_factory=list)  # per chip layer, against the float model
    tallying: list[Any] = field(default_factory=list)  # tiles' spike tallies not yet settled (Simulator._later)
    sd_tallies: list[SigmaDeltaTally] = field(default_factory=list)  # per sigma-delta layer (placement "all")
    squared_error: int = 0  # sum over pixels and colours of (output - float output)^2
    exact: bool = True
    exact_tiles: int = 0  # tiles compared with the reference backend
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(("encode", "snn", "host",
                                                                             "fidelity"), 0.0))

    def clock(self, phase: str, since: float) -> float:
        now = time.perf_counter()
        self.seconds[phase] += now - since
        return now


class Simulator:
    """Runs images through one bundle on one backend, compiling the Lava network once.

    ``keep_spikes``: also hand back each image's whole input frames and output
    spikes (T, C, H, W) (memory grows with the image). ``progress``: called
    with (tiles done, tiles) after every spiking tile. ``host_block``: the host
    CNN's least block side in pixels (:data:`HOST_BLOCK`). ``check_thread``:
    run the fidelity check's float model in a thread of its own, beside the
    deployed pipeline of the same tiles and blocks (for a core the pipeline
    leaves free: :mod:`neurodeploy.runtime.run_options`); the results are the same.
    """

    def __init__(self, bundle: Bundle, backend: Backend = "lava", models: LavaModels = "neurodeploy",
                 seed: int = 0, fidelity: bool = True, keep_spikes: bool = False,
                 progress: ProgressHook | None = None, device: str = "cpu", host_block: int = HOST_BLOCK,
                 check_thread: bool = False) -> None:
        self.bundle = bundle.require("inpainter")
        self.host_block = host_block
        self.backend = backend
        self.seed = seed
        self.fidelity = fidelity
        self.keep_spikes = keep_spikes
        self.progress = progress
        self.host = bundle_host_cnn(bundle)
        self.config = bundle_config(bundle)
        self.reference_model = float_model(bundle) if fidelity else None
        self.check_pool = ThreadPoolExecutor(1, "fidelity-check") if fidelity and check_thread else None
        self.bridge = SpikeBridge.of(bundle, backend, models, device)
        # placement "all": the CNN's sigma-delta layers, run on host blocks of the segment's own size
        self.sd_layers, self.device = bundle.sigma_delta_layers, device
        if self.sd_layers:
            self.host_block = int(bundle.sigma_delta_segment["block"])  # type: ignore[index]
            if backend not in ("reference", "torch", "lava"):
                raise UserError(f"the sigma-delta layers do not run on backend {backend!r}",
                                "pass --backend reference, torch or lava")

    def __enter__(self) -> Simulator:
        self.bridge.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bridge.close()
        if self.check_pool is not None:
            self.check_pool.shutdown()

    def _later(self, work: Callable[..., Any], *args: Any) -> Future[Any] | _WhenAsked:
        """``work(*args)`` without autograd: started now in the check's thread if it has one, else run when
        its result is asked for (so that its time is the check's, not the pipeline stage's around it)."""
        if self.check_pool is not None:
            return self.check_pool.submit(_without_grad, work, *args)
        return _WhenAsked(work, args)

    @property
    def compile_seconds(self) -> float:
        return self.bridge.compile_seconds

    def host_grid(self, height: int, width: int) -> TileGrid:
        """The host CNN's blocks: the larger of the spiking tiles and ``host_block``, rounded up to the CNN's
        size multiple, read with a halo of its receptive field (:func:`~neurodeploy.inpainter.model.host_halo`)."""
        tiles, multiple = self.bridge.grid(height, width), self.config.size_multiple
        return TileGrid(height, width, -(-max(tiles.tile_h, self.host_block) // multiple) * multiple,
                        -(-max(tiles.tile_w, self.host_block) // multiple) * multiple, host_halo(self.config))

    @torch.no_grad()
    def run(self, item: SimulationInput, check: bool | None = None) -> ImageResult:
        """Inpaint one image, streaming it: each row of spiking tiles, then every row of host blocks
        whose halo those rows complete. ``check``: run the fidelity check on this image (default: the
        Simulator's ``fidelity``; True needs a Simulator made with ``fidelity=True``)."""
        check = self.fidelity if check is None else check
        if check and self.reference_model is None:
            raise ValueError("a fidelity check needs a Simulator made with fidelity=True")
        started = time.perf_counter()
        height, width = item.mask.shape
        tiles, blocks = self.bridge.grid(height, width), self.host_grid(height, width)
        grids = [self.bridge.layer_grid(height, width, k) for k in range(len(self.bridge.layers))]
        layers, steps, stride = self.bridge.layers, self.config.timesteps, self.bridge.strides[-1]
        c_in, c_out = layers[0].input_shape[0], layers[-1].output_shape[0]
        run = _Run(item, SnnInput(item.image, item.mask, self.config), np.zeros((height, width, 3), np.uint8),
                   [EventTally.empty(steps, layer.input_shape[0], layer.output_shape[0], source.height,
                                     source.width, layer.weight.shape[-1], layer.stride[0])
                    for layer, source in zip(layers, [tiles, *grids], strict=False)], check=check,
                   sd_tallies=[SigmaDeltaTally(f"cnn{k + 1}") for k in range(len(self.sd_layers))])
        if self.keep_spikes:
            run.spikes = np.zeros((steps, c_out, grids[-1].height, grids[-1].width), np.uint8)
            run.frames = np.zeros((steps, c_in, tiles.height, tiles.width), np.uint8)
        run.seconds["encode"] += time.perf_counter() - started
        band, pending = _Band(stride), list(blocks.row_starts())
        for ty in tiles.row_starts():
            band.append(ty, np.concatenate(self._spiking_row(run, tiles, grids, ty), axis=-1))
            while pending and blocks.reach(pending[0], 0)[0].stop <= band.bottom:
                by = pending.pop(0)
                for bx in blocks.column_starts():
                    self._host_block(run, blocks, band, by, bx)
                if pending:
                    band.drop_above(blocks.reach(pending[0], 0)[0].start)
        settling = time.perf_counter()
        _settle(run.tallying)
        run.clock("fidelity", settling)
        seconds = {**run.seconds, "total": time.perf_counter() - started - run.seconds["fidelity"]}
        if not check:
            del seconds["fidelity"]
        assert run.raster is not None
        result = ImageResult(item.name, run.output, run.tallies, run.raster, seconds,
                             spikes=None if run.spikes is None else torch.from_numpy(run.spikes),
                             frames=None if run.frames is None else run.frames[..., :height, :width],
                             sigma_delta=run.sd_tallies)
        if check:
            overall = SpikeTally()
            for tally in run.spike_tallies:
                overall.merge(tally)
            result.fidelity = {
                "psnr_vs_float": psnr_of_squared_error(run.squared_error, run.output.size),
                **overall.scores(),
                "layers": [{"name": f"lif{k}", **tally.scores()} for k, tally in enumerate(run.spike_tallies)],
                **({"sigma_delta": [tally.scores() for tally in run.sd_tallies]} if run.sd_tallies else {}),
                "exact_vs_reference": run.exact,
                "exact_vs_reference_tiles": run.exact_tiles,  # 0 on the reference backend itself
                "warnings": [note for k, tally in enumerate(run.spike_tallies)
                             for note in firing_warnings(f"lif{k}", tally.deployed, tally.cells)],
            }
        return result

    def _spiking_row(self, run: _Run, tiles: TileGrid, grids: list[TileGrid], y: int) -> list[np.ndarray]:
        """Run the row of spiking tiles at y, in batches of :data:`TILE_BATCH` tiles on the torch backend
        (:meth:`SpikeBridge.run_tiles`), else one by one; per tile, :meth:`_spiking_tile`'s counts, and the
        fidelity check's float spikes (:meth:`_float_tiles`)."""
        batch = TILE_BATCH if backend_spec(self.backend).batched else 1
        columns = list(tiles.column_starts())
        counts = []
        for first in range(0, len(columns), batch):
            started = time.perf_counter()
            inputs, frames = [], []
            for x in columns[first:first + batch]:
                origin = (y - tiles.halo, x - tiles.halo)  # the window's top-left pixel in the image
                snn_input = torch.from_numpy(tiles.pad(run.input.window(*tiles.reach(y, x)).numpy(), y, x))
                inputs.append(snn_input)
                frames.append(np.ascontiguousarray(input_frames(snn_input, self.config.encoding,
                                                                self.config.timesteps, self.seed, origin)))
            started = run.clock("encode", started)
            batch_columns = columns[first:first + batch]
            later = self._later(self._float_tiles, tiles, y, batch_columns, inputs) if run.check else None
            every = self.bridge.run_tiles(np.stack(frames))
            started = run.clock("snn", started)
            floats = None
            if later is not None:
                self._check_exact(run, tiles, y, batch_columns, frames, every)
                floats = later.result()
                _settle(run.tallying)  # the tallies of the batch before: done by now in the check's thread
            run.clock("fidelity", started)
            for i, x in enumerate(batch_columns):
                counts.append(self._spiking_tile(run, tiles, grids, y, x, frames[i], [layer[i] for layer in every],
                                                 None if floats is None else floats[i]))
        return counts

    def _check_exact(self, run: _Run, tiles: TileGrid, y: int, columns: list[int], frames: list[np.ndarray],
                     every: list[np.ndarray]) -> None:
        """``exact_vs_reference``: the reference backend's re-run of the tile at the image's centre, if it is in
        this batch (not on the reference backend itself).

        One tile, not all: the backends compute the same integer arithmetic on every tile, so one tile
        per image shows a backend that does not (a broken install, a wrong model choice), while a re-run
        of every tile cost more than the whole deployed pipeline (the reference's float64 state:
        0.30 s for the 16 tiles of a 512x512 photo, against 0.22 s for the pipeline; docs/BENCHMARKS.md,
        section 16). The tests hold every backend to the reference on whole images."""
        for i, x in enumerate(columns):
            if self.backend != REFERENCE and _at_centre(tiles, y, x):
                run.exact_tiles += 1
                run.exact &= all(np.array_equal(a, b[i]) for a, b in
                                 zip(run_segment(self.bridge.layers, frames[i]), every, strict=True))

    def _float_tiles(self, tiles: TileGrid, y: int, columns: list[int],
                     inputs: list[torch.Tensor]) -> list[tuple[list[np.ndarray], np.ndarray]]:
        """The float model's spiking stage (float32, as trained; Norse's step in place,
        :func:`~neurodeploy.inpainter.float_spikes.stack_spikes`) on the windows of a batch of tiles of one
        row: per tile, its spikes per layer, (T, C_k, H_k, W_k) uint8 (nothing stacked: stacking the batch's
        float spikes cost more than the float model), and the last layer's counts over the window. A function
        of its inputs alone, so that it can run in the check's thread.

        Tile by tile, not as one batch: on a CPU it runs memory bound, and a batch of 8 tiles took 121 ms
        against 59 ms one by one (docs/BENCHMARKS.md, section 16)."""
        config, model = self.config, self.reference_model
        assert model is not None and model.snn is not None
        floats: list[tuple[list[np.ndarray], np.ndarray]] = []
        count_type = np.min_scalar_type(config.timesteps)
        for snn_input, x in zip(inputs, columns, strict=True):
            window = encode_window(snn_input, config.encoding, config.timesteps, self.seed,
                                   (y - tiles.halo, x - tiles.halo))
            spikes = [s[:, 0].numpy().view(np.uint8) for s in stack_spikes(model.snn, window)]
            # the last layer's counts over the whole window (a sum over a cropped view is 20x slower)
            floats.append((spikes, spikes[-1].sum(axis=0, dtype=count_type)))
        return floats

    def _spiking_tile(self, run: _Run, tiles: TileGrid, grids: list[TileGrid], y: int, x: int, frames: np.ndarray,
                      every: list[np.ndarray], floats: tuple[list[np.ndarray], np.ndarray] | None) -> np.ndarray:
        """One spiking tile's results: its pixels' last-layer spike counts (K, C, h, w), the backend's, then (with
        ``floats``, the float model's spikes of the tile per layer and its last layer's counts) the float
        model's; every chip layer's events and spikes tallied, and compared with the float model's (in the
        check's thread if it has one: :meth:`_later`, settled a batch later)."""
        started = time.perf_counter()
        # layer k's outputs of this tile lie at (y, x) / its stride on its own grid
        corners = [(y // (tiles.height // g.height), x // (tiles.width // g.width)) for g in grids]
        owned = [g.crop(layer_spikes, *corner) for g, layer_spikes, corner in zip(grids, every, corners, strict=True)]
        for tally, events, fired, corner in zip(run.tallies, [tiles.crop(frames, y, x), *owned], owned,
                                                [(y, x), *corners], strict=False):
            tally.add(events, fired, corner)
        own = owned[-1]
        count_type = np.min_scalar_type(self.config.timesteps)  # uint8 up to T = 255
        # summed over the whole window, then cropped: a sum over a cropped (strided) view is 20x slower
        counts = [grids[-1].crop(every[-1].sum(axis=0, dtype=count_type), *corners[-1])]
        if run.spikes is not None and run.frames is not None:
            grids[-1].place(run.spikes, every[-1], *corners[-1])
            tiles.place(run.frames, frames, y, x)
        if _at_centre(tiles, y, x):
            run.raster = own.copy()
        started = run.clock("encode", started)
        if floats is not None:
            float_spikes, float_counts = floats
            cropped = [g.crop(s, *corner) for g, s, corner in zip(grids, float_spikes, corners, strict=True)]
            if not run.spike_tallies:
                run.spike_tallies = [SpikeTally() for _ in cropped]
            run.tallying.append(self._later(_tally, run.spike_tallies, owned, cropped))
            counts.append(grids[-1].crop(float_counts, *corners[-1]))
            run.clock("fidelity", started)
        run.tiles_done += 1
        if self.progress is not None:
            self.progress(run.tiles_done, len(tiles))
        # placement "all": the last layer's spikes of every step too, for the sigma-delta layers
        return np.concatenate([np.stack(counts), own.astype(count_type)]) if self.sd_layers else np.stack(counts)

    def _host_block(self, run: _Run, blocks: TileGrid, band: _Band, y: int, x: int) -> None:
        """The host CNN on one block read with its halo; composite its pixels into the output."""
        started = time.perf_counter()
        rows, cols = blocks.reach(y, x)
        own_rows, own_cols = blocks.tile(y, x)
        snn_input = run.input.window(rows, cols)[None]
        counts = torch.from_numpy(band.read(rows, cols))
        image, mask = to_tensors(run.item.image[own_rows, own_cols], run.item.mask[own_rows, own_cols])

        def inpaint(cnn: Callable[..., torch.Tensor], counts: torch.Tensor) -> np.ndarray:
            prediction = cnn(count_rate(counts, self.config.timesteps)[None], snn_input)[0]
            return to_uint8(composite(image, blocks.crop(prediction, y, x, rows.start, cols.start), mask))

        float_output = None
        if run.check:  # the float model's block, beside the deployed one when the check has its thread
            assert self.reference_model is not None
            float_output = self._later(inpaint, self.reference_model.cnn, counts[1])
        if self.sd_layers:  # the sigma-delta layers read the spikes of every step; the float model the counts
            spikes, counts = counts[-self.config.timesteps:].numpy(), counts[:-self.config.timesteps]
            st = self.config.spiking_stride  # the owned pixels on the spike grid: counted once over the blocks
            owned = (slice((own_rows.start - rows.start) // st, -(-(own_rows.stop - rows.start) // st)),
                     slice((own_cols.start - cols.start) // st, -(-(own_cols.stop - cols.start) // st)))
            output = inpaint(lambda _, x: sigma_delta_host(self.sd_layers, self.host, spikes, x, self.backend,
                                                           run.sd_tallies, run.check, self.device, owned), counts[0])
        else:
            output = inpaint(self.host, counts[0])
        run.output[own_rows, own_cols] = output
        started = run.clock("host", started)
        if float_output is not None:
            run.squared_error += squared_error(output, float_output.result())
            run.clock("fidelity", started)
