"""The Lava runtime's lifecycle: the run configuration of a backend, start, receive, and a stop that always ends.

:func:`select_run_config` picks Lava's RunConfig for ``lava`` (CPU simulation)
or ``loihi2`` (Intel's lava-loihi); :func:`start_runtime` starts a compiled
network with Ctrl-C held off and its forked processes watched by the reaper
(:mod:`neurodeploy.runtime.lava.reaper`); :func:`receive` reads a sink's next
message, turning a dead actor into :class:`LavaProcessError`; :func:`shut_down`
stops the runtime (Lava's STOP handshake, or a forced stop that frees its shared
memory). :class:`~neurodeploy.runtime.lava.segment_run.LavaSegment` uses these
for a chip segment; nothing here knows of images or tiles.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from neurodeploy.errors import UserError
from neurodeploy.runtime.backends import BACKENDS, LAVA_BACKENDS, LavaModels
from neurodeploy.runtime.lava import compat as _lava_compat
from neurodeploy.runtime.lava import reaper as _reaper


def loihi_available() -> bool:
    """Whether Intel's Loihi 2 backend (lava-loihi) is installed."""
    _lava_compat.import_lava()
    from lava.utils import loihi

    return bool(loihi.is_installed())


def select_run_config(backend: str, models: LavaModels = "neurodeploy",
                      loihi_installed: bool | None = None) -> Any:
    """The Lava RunConfig for a backend; ``loihi2`` without lava-loihi is a UserError."""
    if backend not in LAVA_BACKENDS:
        raise UserError(f"backend {backend!r} does not run in Lava", f"pass one of {', '.join(BACKENDS)}")
    # lazy: the processes import Lava, whose start-up costs seconds; only a Lava backend pays it
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
            actor.kill()  # SIGKILL: they ignore SIGTERM (neurodeploy.runtime.lava.reaper); their memory is freed below
    for actor in infrastructure.actors:
        multiprocessing.Process.join(actor, 5)  # SystemProcess.join takes no timeout
    infrastructure._smm.shutdown()
    with contextlib.suppress(Exception):
        runtime._watchdog_manager.stop()
    runtime._is_running = False
    runtime._is_started = False
