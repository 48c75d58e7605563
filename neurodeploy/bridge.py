"""``SpikeBridge``: the one place where tensors cross between the host and Lava.

Host -> Lava: integer input frames (T, C, H, W) (8-bit graded payloads for
``constant`` encoding, binary spikes for ``poisson``) go in one frame per
time step through a :class:`~neurodeploy.lava_processes.io.FrameSource` (uint8 host
pipe) into the netx Network loaded from the bundle's ``snn.net``.

Lava -> host: the Network's output spikes come back one frame per time step
through a :class:`~neurodeploy.lava_processes.io.SpikeSink` (bit-packed host pipe) and
are stacked into a torch tensor (T, C, H, W) of uint8. Nothing is read back
with ``Var.get()``, which costs about 39 us per element; Lava's own
Injector/Extractor would move 8-byte floats per neuron.

Timing (see :mod:`neurodeploy.lif_mapping`): each image runs T + 1 Lava steps,
T input frames and one zero frame, and the first output frame is dropped (the
conv synapse delays by one step). ``LIFReset`` zeroes u and v when an image's
first input reaches the neurons, so one compiled network serves any number of
images and tiles in turn.

Images of any size run as tiles of the bundle's tile size, each read with a
halo of the kernel radius (zeros beyond the image edge, as the untiled
convolution pads), so the tiled result equals the untiled one and memory is
bounded by the tile.

Backends: ``lava`` (CPU simulation; neurodeploy's faster bit-exact
ProcessModels unless ``models="stock"``), ``loihi2`` (``Loihi2HwCfg``, needs
Intel's lava-loihi), ``reference`` (no Lava: :mod:`neurodeploy.reference`).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from neurodeploy import _lava_compat, _reaper
from neurodeploy.bundle import SNN_FILE, Bundle
from neurodeploy.errors import UserError
from neurodeploy.lif_mapping import lava_steps, netx_reset

Backend = Literal["lava", "reference", "loihi2"]
LavaModels = Literal["neurodeploy", "stock"]
BACKENDS: tuple[str, ...] = ("lava", "reference", "loihi2")


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
    from neurodeploy.lava_processes.io import IO_MODELS

    io_models = dict(IO_MODELS)
    if backend == "loihi2":
        installed = loihi_available() if loihi_installed is None else loihi_installed
        if not installed:
            raise UserError("`backend=loihi2` needs lava-loihi, Intel's Loihi 2 backend, which is not "
                            "installed", "install lava-loihi (Intel INRC members) or use `backend=lava`")
        from lava.magma.core.run_configs import Loihi2HwCfg

        return Loihi2HwCfg(exception_proc_model_map=io_models)
    from lava.magma.core.run_configs import Loihi2SimCfg

    if models == "neurodeploy":
        from neurodeploy.lava_processes.models import FAST_MODELS

        io_models = {**io_models, **FAST_MODELS}
    elif models != "stock":
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
        out[..., rows.start - (y - h):rows.stop - (y - h), cols.start - (x - h):cols.stop - (x - h)] = part
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
    """Streams frames into the bundle's Lava network and spikes back, tile by tile.

    Use as a context manager; the network is compiled once, on entry, and
    stopped on exit (its forked Lava processes end with it)::

        with SpikeBridge.of(bundle) as bridge:
            spikes = bridge.run(frames)      # (T, C, H, W) in -> torch (T, C_out, H, W)
    """

    def __init__(self, netx_path: str | Path, timesteps: int, input_message_bits: int, halo: int,
                 backend: Backend = "lava", models: LavaModels = "neurodeploy") -> None:
        from neurodeploy.converters.netx_io import read_netx

        self.netx_path = Path(netx_path)
        self.layer = read_netx(self.netx_path)
        self.timesteps = timesteps
        self.input_message_bits = input_message_bits
        self.halo = halo
        self.backend = backend
        self.models = models
        self.compile_seconds = 0.0
        self.lava_steps = 0
        self._net: Any = None
        self._source: Any = None
        self._sink: Any = None
        self._failed = False
        self._reaper: _reaper.Reaper | None = None

    @classmethod
    def of(cls, bundle: Bundle, backend: Backend = "lava", models: LavaModels = "neurodeploy") -> SpikeBridge:
        """The bridge for a bundle's spiking stage."""
        return cls(bundle.file(SNN_FILE), bundle.timesteps, bundle.manifest["lava"]["input_message_bits"],
                   bundle.manifest["tile"]["halo"], backend, models)

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> SpikeBridge:
        if self.backend != "reference":
            self._start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        run_cfg = select_run_config(self.backend, self.models)
        from lava.lib.dl.netx.hdf5 import Network

        from neurodeploy.lava_processes.io import FrameSource, SpikeSink

        started = time.perf_counter()
        reset_interval, reset_offset = netx_reset(self.timesteps)
        net = Network(str(self.netx_path), input_message_bits=self.input_message_bits,
                      reset_interval=reset_interval, reset_offset=reset_offset)
        steps = lava_steps(self.timesteps)
        source = FrameSource(shape=net.inp.shape, buffer_size=steps + 1)
        sink = SpikeSink(shape=net.out.shape, buffer_size=steps + 1)
        source.s_out.connect(net.inp)
        net.out.connect(sink.s_in)
        self._source, self._sink = source, sink
        self._reaper = start_runtime(net, run_cfg)
        self._net = net
        self.compile_seconds = time.perf_counter() - started

    def close(self) -> None:
        """Stop the Lava runtime; idempotent, and safe after an error or an interrupt.

        A clean stop is Lava's STOP handshake; when that cannot complete (a
        Lava process failed, or the run was interrupted mid-step) the
        processes are terminated and the shared memory released directly, so
        no child process or /dev/shm segment outlives the bridge. Then the
        reaper, there for a SIGKILL, is told to exit.
        """
        net, self._net = self._net, None
        reaper, self._reaper = self._reaper, None
        shut_down(net, self._failed, reaper)

    # -- running -------------------------------------------------------------------------------
    def grid(self, height: int, width: int) -> TileGrid:
        """The tiles an H x W image runs as: the bundle's tile size, halo = the kernel radius."""
        _, tile_h_halo, tile_w_halo = self.layer.input_shape
        return TileGrid(height, width, tile_h_halo - 2 * self.halo, tile_w_halo - 2 * self.halo, self.halo)

    def run(self, frames: np.ndarray) -> torch.Tensor:
        """Input frames (T, C, H, W) of any H, W -> output spikes, torch uint8 (T, C_out, H, W)."""
        frames = np.asarray(frames)
        c_in = self.layer.input_shape[0]
        if frames.ndim != 4 or frames.shape[0] != self.timesteps or frames.shape[1] != c_in:
            raise UserError(f"input frames have shape {frames.shape}, expected (T={self.timesteps}, "
                            f"C={c_in}, H, W)", "encode the image with the bundle's encoding")
        grid = self.grid(frames.shape[2], frames.shape[3])
        out = np.zeros((self.timesteps, self.layer.output_shape[0], *frames.shape[2:]), dtype=np.uint8)
        for y, x in grid.corners():
            grid.place(out, self.run_tile(grid.window(frames, y, x)), y, x)
        return torch.from_numpy(out)

    def run_tile(self, window: np.ndarray) -> np.ndarray:
        """One tile-sized window (T, C, H, W) -> its output spikes (T, C_out, H, W), uint8."""
        if self.backend == "reference":
            from neurodeploy.reference import run_layer

            return run_layer(self.layer, window)
        if self._net is None:
            raise RuntimeError("SpikeBridge.run needs the bridge to be entered (use `with`)")
        from lava.magma.core.run_conditions import RunSteps

        steps = lava_steps(self.timesteps)
        zero = np.zeros(self._source.frame_shape, dtype=np.uint8)
        out = np.empty((self.timesteps, *self.layer.output_shape), dtype=np.uint8)
        self._net.run(condition=RunSteps(num_steps=steps, blocking=False))
        for t in range(steps):
            # host (C, H, W) -> Lava (W, H, C) and back: netx orders shapes x, y, channel.
            self._source.send(window[t].transpose(2, 1, 0) if t < self.timesteps else zero)
            spikes = self._receive()
            if t > 0:  # the first step's output precedes any input: the conv delay
                out[t - 1] = spikes.transpose(2, 1, 0)
        self._net.wait()
        self.lava_steps += steps
        return out

    def _receive(self) -> np.ndarray:
        """The next output frame (:func:`receive`); a failure marks the runtime for the forced stop."""
        try:
            return receive(self._sink, self._net)
        except LavaProcessError:
            self._failed = True
            raise


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
    SIGKILLed, which no ``close()`` sees (:mod:`neurodeploy._reaper`). If the
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
