"""``SpikeBridge``: the one place where tensors cross between the host and Lava.

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

import contextlib
import itertools
import multiprocessing
import operator
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from neurodeploy.bundle.format import Bundle
from neurodeploy.errors import UserError
from neurodeploy.runtime.lava import compat as _lava_compat
from neurodeploy.runtime.lava import reaper as _reaper

Backend = Literal["lava", "reference", "loihi2", "torch"]
LavaModels = Literal["neurodeploy", "stock"]
BACKENDS: tuple[str, ...] = ("lava", "reference", "loihi2", "torch")
SIMULATED: tuple[str, ...] = ("reference", "torch")  # the backends that run without Lava


def loihi_available() -> bool:
    """Whether Intel's Loihi 2 backend (lava-loihi) is installed."""
    _lava_compat.import_lava()
    from lava.utils import loihi

    return bool(loihi.is_installed())


def select_run_config(backend: str, models: LavaModels = "neurodeploy",
                      loihi_installed: bool | None = None) -> Any:
    """The Lava RunConfig for a backend; ``loihi2`` without lava-loihi is a UserError."""
    if backend not in ("lava", "loihi2"):
        raise UserError(f"backend {backend!r} does not run in Lava", f"pass one of {', '.join(BACKENDS)}")
    from neurodeploy.runtime.lava.processes.io import IO_MODELS

    io_models = dict(IO_MODELS)
    if backend == "loihi2":
        installed = loihi_available() if loihi_installed is None else loihi_installed
        if not installed:
            raise UserError("`backend=loihi2` needs lava-loihi, Intel's Loihi 2 backend, which is not "
                            "installed", "install lava-loihi (Intel INRC members) or use `backend=lava`")
        from lava.magma.core.run_configs import Loihi2HwCfg

        return Loihi2HwCfg(exception_proc_model_map=io_models)
    from lava.magma.core.run_configs import Loihi2SimCfg

    # "neurodeploy" runs a chip segment as one ChipSegment process (neurodeploy.runtime.lava.processes.segment),
    # whose model the fixed_pt tag selects; "stock" runs the netx graph on Lava's own models
    if models not in ("neurodeploy", "stock"):
        raise UserError(f"unknown Lava models {models!r}", "pass neurodeploy or stock")
    return Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=io_models)


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
        from neurodeploy.converters.netx_io import read_segment

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
        if backend not in BACKENDS:
            raise UserError(f"unknown backend {backend!r}", f"pass one of {', '.join(BACKENDS)}")

    @classmethod
    def of(cls, bundle: Bundle, backend: Backend = "lava", models: LavaModels = "neurodeploy",
           device: str = "cpu") -> SpikeBridge:
        """The bridge for an inpainter bundle's chip segment."""
        segment = bundle.chip_segment
        return cls(bundle.file(segment["file"]), bundle.timesteps, segment["lava"]["input_message_bits"],
                   bundle.manifest["tile"]["halo"], backend, models, device)

    @property
    def strides(self) -> list[int]:
        """Per layer, how much its output is downsampled from the image (the product of the strides so far)."""
        return list(itertools.accumulate((layer.stride[0] for layer in self.layers), operator.mul))


    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> SpikeBridge:
        if self.backend == "torch":
            from neurodeploy.runtime.torch_backend import check_device

            check_device(self.device)
        if self.backend not in SIMULATED:
            from neurodeploy.runtime.lava.segment_run import LavaSegment

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
        if self.backend == "torch":
            from neurodeploy.runtime.torch_backend import run_segment_batch

            return list(run_segment_batch(self.layers, windows, self.device))
        per_tile = [self.run_tile(window) for window in windows]
        return [np.stack(layer) for layer in zip(*per_tile, strict=True)]

    def run_tile(self, window: np.ndarray) -> list[np.ndarray]:
        """One tile-sized window (T, C, H, W) -> every layer's spikes (T, C_k, H, W), uint8, aligned with the input."""
        if self.backend == "torch":
            return [layer[0] for layer in self.run_tiles(window[None])]
        if self.backend == "reference":
            from neurodeploy.chip.reference import run_segment

            return run_segment(self.layers, window)
        if self._segment is None:
            raise RuntimeError("SpikeBridge.run needs the bridge to be entered (use `with`)")
        return list(self._segment.run(window))


def receive(sink: Any, net: Any) -> np.ndarray:
    """A SpikeSink's next frame, or the error of a Lava process of ``net`` that failed meanwhile.

    Waits on the sink's pipe (woken by the channel's observer, so no added
    latency) and every 50 ms checks that Lava's processes are alive: when a
    process model raises, its process ends and nothing else would wake us.
    """
    port = sink.host_out.external_pipe_csp_recv_port
    actors = net.runtime._messaging_infrastructure.actors
    ready = threading.Condition()

    def notify() -> None:
        with ready:
            ready.notify_all()

    port.observer = notify
    try:
        with ready:
            while not port.probe():
                if not ready.wait(timeout=0.05) and not all(actor.is_alive() for actor in actors):
                    raise LavaProcessError("a Lava process failed during the simulation ("
                                           + _failures(actors) + ")")
    finally:
        port.observer = None
    return sink.receive()


def start_runtime(net: Any, run_cfg: Any) -> _reaper.Reaper | None:
    """Compile ``net`` and start its Lava runtime; returns the reaper watching it (None off Linux).

    Lava forks its processes here. They ignore Ctrl-C, so that only this
    process handles it and stops them in order (:func:`shut_down`); and they
    die with this process, their shared memory freed, even when it is
    SIGKILLed, which no ``close()`` sees (:mod:`neurodeploy.runtime.lava.reaper`). If the
    start fails, whatever it started is stopped and the first error raised.
    """
    reaper = _reaper.start()
    try:
        with _sigint_ignored(), _reaper.forks_watched(reaper):
            net.create_runtime(run_cfg=run_cfg)
    except BaseException:
        with contextlib.suppress(Exception):  # a half-built runtime: keep the first error
            shut_down(net, False, reaper)
        raise
    if reaper is not None:
        reaper.free_on_death(handle.name for handle in _shared_memory(net.runtime))
    return reaper


def shut_down(net: Any, failed: bool, reaper: Any) -> None:
    """Stop a Lava network's runtime (:func:`_stop`), then dismiss the reaper watching it; either may be None."""
    try:
        if net is not None and net.runtime is not None:
            _stop(net, failed)
    finally:
        if reaper is not None:
            reaper.dismiss()


def _failures(actors: list[Any], settle_seconds: float = 2.0) -> str:
    """The exceptions Lava's failed processes reported (lava-nc 0.10's SystemProcess pipe).

    A failing model tells the runtime service first and sends its exception
    as it ends, so the service may be gone before the model's report is: wait
    (at most ``settle_seconds``; the service stops every model) for them to end.
    """
    deadline = time.monotonic() + settle_seconds
    while any(actor.is_alive() for actor in actors) and time.monotonic() < deadline:
        time.sleep(0.01)
    messages = []
    for actor in actors:
        failure = actor.exception if not actor.is_alive() else None
        if failure:
            messages.append(f"{type(failure[0]).__name__}: {failure[0]}")
    return "; ".join(messages) or "no message"


class LavaProcessError(RuntimeError):
    """A Lava process model raised while the bridge was running it."""


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT while Lava forks its processes (they inherit it); main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _stop(net: Any, failed: bool) -> None:
    """Lava's STOP handshake where it can complete, else :func:`_force_stop`."""
    runtime = net.runtime
    try:
        # Lava's stop() handshakes with a runtime that has run; one that never ran (the first
        # input failed) would wait forever for its idle processes to end on their own.
        if not failed and runtime._is_started and not runtime._is_running:
            net.stop()
            return
    except BaseException:  # fall through to the forced stop
        pass
    _force_stop(runtime)


def _shared_memory(runtime: Any) -> list[Any]:
    """The runtime's /dev/shm segments (lava-nc 0.10: its SharedMemoryManager's handles)."""
    smm = getattr(runtime._messaging_infrastructure, "smm", None)
    return list(getattr(smm, "_shared_memory_handles", []))


def _force_stop(runtime: Any) -> None:
    """Terminate a Lava runtime's processes and free its shared memory, without the handshake.

    Lava has no public call for this; it reaches into the runtime's messaging
    infrastructure (lava-nc 0.10), which owns the forked actors and the
    SharedMemoryManager behind every channel.
    """
    infrastructure = runtime._messaging_infrastructure
    for actor in infrastructure.actors:
        if actor.is_alive():
            actor.terminate()
    for actor in infrastructure.actors:
        multiprocessing.Process.join(actor, 5)  # SystemProcess.join takes no timeout
        if actor.is_alive():
            actor.kill()
            multiprocessing.Process.join(actor, 5)
    infrastructure._smm.shutdown()
    with contextlib.suppress(Exception):
        runtime._watchdog_manager.stop()
    runtime._is_running = False
    runtime._is_started = False
