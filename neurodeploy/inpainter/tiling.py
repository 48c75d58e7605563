"""The inpainter's tiling: :class:`TileGrid` and :class:`SpikeBridge`, which streams an image's tiles through the chip.

Host -> Lava: integer input frames (T, C, H, W) (8-bit graded payloads for
``constant`` encoding, binary spikes for ``poisson``) go in one frame per
time step through a :class:`~neurodeploy.runtime.lava.processes.io.FrameSource` (uint8 host
pipe) into the bundle's chip segment (:class:`~neurodeploy.runtime.lava.segment_run.LavaSegment`,
the netx network of the inpainter's spiking stack).

Lava -> host: every layer's spikes come back one frame per time step
through a :class:`~neurodeploy.runtime.lava.processes.io.SpikeSink` (bit-packed host pipe).
Nothing is read back with ``Var.get()``, which costs about 39 us per element;
Lava's own Injector/Extractor would move 8-byte floats per neuron.

Timing (see :func:`neurodeploy.chip.reference.run_segment_batch`): each tile runs
T + K Lava steps for a stack of K layers, and the per-layer synaptic delays
are removed, so output t belongs to input frame t. The neurons are reset when
a tile's first input reaches them, so one compiled network serves any number
of images and tiles in turn.

Images of any size run as tiles of the bundle's tile size, each read with a
halo of the stack's receptive-field radius (zeros beyond the image edge, as
a 'same' convolution pads), and memory is bounded by the tile. For one
spiking layer the tiled result equals the untiled one; for K > 1 a tile's
first layers also respond, near the image edge, to the zeros beyond it
(where the untiled stack pads each layer's output), so pixels within
(K - 1) kernel radii of the edge follow the stack run on the image extended
by zeros. The float reference of the fidelity check runs on the same
windows, so the comparison is like for like.

Backends: ``lava`` (CPU simulation; the segment as one bit-exact Lava
process unless ``models="stock"``), ``loihi2`` (``Loihi2HwCfg``, needs
Intel's lava-loihi), ``reference`` (no Lava: :mod:`neurodeploy.chip.reference`),
``torch`` (no Lava: :mod:`neurodeploy.runtime.torch_backend`, batches of tiles, on
``device`` cpu or cuda).
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurodeploy.bundle.format import Bundle
from neurodeploy.converters.netx_in import read_segment
from neurodeploy.errors import UserError
from neurodeploy.runtime.backends import Backend, LavaModels, check_backend_device
from neurodeploy.runtime.backends import backend as backend_spec
from neurodeploy.runtime.lava.segment_run import LavaSegment


@dataclass(frozen=True)
class TileGrid:
    """Where the tiles of an H x W image lie, and the window each tile is read through.

    Tile (y, x) owns the pixels [y, y + tile_h) x [x, x + tile_w), clipped at the
    image's bottom and right edges; it is computed from those pixels and a
    halo of ``halo`` pixels around them, as wide as the computation's
    receptive field, so each owned pixel comes out as in the untiled image.
    Two ways to read the halo: ``window`` pads it with zeros beyond the
    image (right for one 'same' convolution: its own padding is zeros), and
    ``reach`` clips it to the image (right for a stack of convolutions, each
    padding its own input at the image edge). The spiking stage uses the first
    (tiles of the bundle's tile size), the host CNN the second.
    """

    height: int
    width: int
    tile_h: int
    tile_w: int
    halo: int

    def row_starts(self) -> range:
        return range(0, self.height, self.tile_h)

    def column_starts(self) -> range:
        return range(0, self.width, self.tile_w)

    def corners(self) -> Iterator[tuple[int, int]]:
        """Top-left corners of the tiles, row by row."""
        for y in self.row_starts():
            for x in self.column_starts():
                yield y, x

    def __len__(self) -> int:
        return -(-self.height // self.tile_h) * -(-self.width // self.tile_w)

    def tile(self, y: int, x: int) -> tuple[slice, slice]:
        """The pixels the tile at (y, x) owns (rows, columns)."""
        return slice(y, min(y + self.tile_h, self.height)), slice(x, min(x + self.tile_w, self.width))

    def reach(self, y: int, x: int) -> tuple[slice, slice]:
        """The tile at (y, x) with its halo, clipped to the image (rows, columns)."""
        h = self.halo
        return (slice(max(0, y - h), min(self.height, y + self.tile_h + h)),
                slice(max(0, x - h), min(self.width, x + self.tile_w + h)))

    def pad(self, part: np.ndarray, y: int, x: int) -> np.ndarray:
        """The window (..., th+2h, tw+2h) of the tile at (y, x): ``part`` (its ``reach``), zeros beyond the image."""
        h = self.halo
        rows, cols = self.reach(y, x)
        out = np.zeros((*part.shape[:-2], self.tile_h + 2 * h, self.tile_w + 2 * h), dtype=part.dtype)
        # ``part`` may stop short of the reach where the grid covers a padded image: zeros there too
        top, left = rows.start - (y - h), cols.start - (x - h)
        out[..., top:top + part.shape[-2], left:left + part.shape[-1]] = part
        return out

    def window(self, frames: np.ndarray, y: int, x: int) -> np.ndarray:
        """The tile at (y, x) with its halo, zero beyond the image: (T, C, th+2h, tw+2h)."""
        rows, cols = self.reach(y, x)
        return self.pad(frames[..., rows, cols], y, x)

    def crop(self, out: np.ndarray, y: int, x: int, top: int | None = None, left: int | None = None) -> np.ndarray:
        """The pixels the tile at (y, x) owns, cut from ``out`` (..., H', W'), whose first pixel is the
        image's (top, left): by default the window's corner (y - halo, x - halo)."""
        rows, cols = self.tile(y, x)
        top = y - self.halo if top is None else top
        left = x - self.halo if left is None else left
        return out[..., rows.start - top:rows.stop - top, cols.start - left:cols.stop - left]

    def place(self, target: np.ndarray, tile_out: np.ndarray, y: int, x: int) -> None:
        """Copy a tile's output (..., th+2h, tw+2h) without its halo into ``target`` at (y, x)."""
        rows, cols = self.tile(y, x)
        target[..., rows, cols] = self.crop(tile_out, y, x)


class SpikeBridge:
    """Streams an image's tiles through the bundle's chip segment (its spiking stack), and spikes back.

    Use as a context manager; the segment is compiled once, on entry
    (:class:`~neurodeploy.runtime.lava.segment_run.LavaSegment`), and stopped on exit
    (its forked Lava processes end with it)::

        with SpikeBridge.of(bundle) as bridge:
            spikes = bridge.run(frames)      # (T, C, H, W) in -> torch (T, C_out, H, W)
    """

    def __init__(self, netx_path: str | Path, timesteps: int, input_message_bits: int, halo: int,
                 backend: Backend = "lava", models: LavaModels = "neurodeploy", device: str = "cpu") -> None:
        self.netx_path = Path(netx_path)
        self.layers = read_segment(self.netx_path)
        self.timesteps = timesteps
        self.input_message_bits = input_message_bits
        self.halo = halo
        self.backend = backend
        self.models = models
        self.device = device
        self.compile_seconds = 0.0  # of the Lava segment, kept after close
        self._segment: Any = None
        self.spec = backend_spec(backend)  # an unknown name is a UserError

    @classmethod
    def of(cls, bundle: Bundle, backend: Backend = "lava", models: LavaModels = "neurodeploy",
           device: str = "cpu") -> SpikeBridge:
        """The bridge for an inpainter bundle's chip segment."""
        segment, tile = bundle.chip_segment, bundle.typed_manifest.tile
        assert segment.input is not None and tile is not None  # validated: an inpainter's chip segment and tile
        return cls(bundle.file(str(segment.file)), bundle.timesteps, segment.input.input_message_bits,
                   tile.halo, backend, models, device)

    @property
    def strides(self) -> list[int]:
        """Per layer, how much its output is downsampled from the image (the product of the strides so far)."""
        return list(itertools.accumulate((layer.stride[0] for layer in self.layers), operator.mul))


    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> SpikeBridge:
        check_backend_device(self.backend, self.device)
        if self.spec.lava:
            segment = LavaSegment(self.netx_path, self.timesteps, self.input_message_bits, self.models,
                                  backend=self.backend)
            self._segment = segment.__enter__()
            self.compile_seconds = float(segment.compile_seconds)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the Lava runtime; idempotent, and safe after an error or an interrupt (:func:`shut_down`)."""
        segment, self._segment = self._segment, None
        if segment is not None:
            segment.close()

    # -- running -------------------------------------------------------------------------------
    def grid(self, height: int, width: int) -> TileGrid:
        """The tiles an H x W image runs as: the bundle's tile size, halo = the stack's receptive radius,
        over the image padded with zeros to a multiple of the stack's stride (the model pads it so too)."""
        _, tile_h_halo, tile_w_halo = self.layers[0].input_shape
        stride = self.strides[-1]
        return TileGrid(-(-height // stride) * stride, -(-width // stride) * stride, tile_h_halo - 2 * self.halo,
                        tile_w_halo - 2 * self.halo, self.halo)

    def layer_grid(self, height: int, width: int, k: int) -> TileGrid:
        """Where layer k's outputs of the tiles of an H x W image lie: :meth:`grid` downsampled by its stride."""
        grid, stride = self.grid(height, width), self.strides[k]
        return TileGrid(grid.height // stride, grid.width // stride, grid.tile_h // stride, grid.tile_w // stride,
                        grid.halo // stride)

    def run(self, frames: np.ndarray) -> torch.Tensor:
        """Input frames (T, C, H, W) of any H, W -> the last layer's spikes, torch uint8 (T, C_out, H', W'),
        H' = ceil(H / stride)."""
        frames = np.asarray(frames)
        c_in = self.layers[0].input_shape[0]
        if frames.ndim != 4 or frames.shape[0] != self.timesteps or frames.shape[1] != c_in:
            raise UserError(f"input frames have shape {frames.shape}, expected (T={self.timesteps}, "
                            f"C={c_in}, H, W)", "encode the image with the bundle's encoding")
        grid = self.grid(frames.shape[2], frames.shape[3])
        last = self.layer_grid(frames.shape[2], frames.shape[3], len(self.layers) - 1)
        out = np.zeros((self.timesteps, self.layers[-1].output_shape[0], last.height, last.width), dtype=np.uint8)
        stride = self.strides[-1]
        for y, x in grid.corners():
            last.place(out, self.run_tile(grid.window(frames, y, x))[-1], y // stride, x // stride)
        return torch.from_numpy(out)

    def run_tiles(self, windows: np.ndarray) -> list[np.ndarray]:
        """A batch of tile-sized windows (B, T, C, H, W) -> every layer's spikes (B, T, C_k, H_k, W_k), uint8.

        The torch backend runs them as one batch; the others one after another.
        """
        if self.spec.batched:
            assert self.spec.run_batch is not None
            return list(self.spec.run_batch(self.layers, windows, self.device))
        per_tile = [self.run_tile(window) for window in windows]
        return [np.stack(layer) for layer in zip(*per_tile, strict=True)]

    def run_tile(self, window: np.ndarray) -> list[np.ndarray]:
        """One tile-sized window (T, C, H, W) -> every layer's spikes (T, C_k, H, W), uint8, aligned with the input."""
        if self.spec.batched:
            return [layer[0] for layer in self.run_tiles(window[None])]
        if self.spec.run_batch is not None:
            return [layer[0] for layer in self.spec.run_batch(self.layers, window[None], self.device)]
        if self._segment is None:
            raise RuntimeError("SpikeBridge.run needs the bridge to be entered (use `with`)")
        return list(self._segment.run(window))
