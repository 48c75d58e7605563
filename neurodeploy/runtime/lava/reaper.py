"""Stop a SpikeBridge's Lava processes and free their shared memory when its process is SIGKILLed.

Why: Lava (lava-nc 0.10) forks its actor processes and a shared-memory server,
and channels them through segments in /dev/shm. ``SpikeBridge.close()`` stops
them on every exit it sees: success, an exception, SIGINT, SIGTERM. A SIGKILL
(the kernel's OOM killer, ``kill -9``, a scheduler's hard limit) is not seen:
the process just ends, and on Linux its children do not end with it. They are
re-parented to init and keep running, holding their shared memory, for good.
So the cleanup has to come from outside the killed process; two things do it:

1. The reaper: this module run as its own small process (``python -m
   neurodeploy.runtime.lava.reaper PARENT``, stdlib only), started before Lava forks and in
   a session of its own (a signal to the parent's process group does not reach
   it). It reads lines from a pipe whose write end only the parent holds:
   ``pid N`` (a process to kill), ``shm NAME`` (a segment to unlink) and
   ``done`` (a clean close: exit, doing nothing). End of file without ``done``,
   or a new parent process id, means the parent died: the reaper SIGKILLs the
   processes, unlinks the segments and exits.
2. Every process forked while Lava starts (:func:`forks_watched`) sends its own
   pid to the reaper, and asks the kernel to SIGKILL it when its parent dies
   (``prctl(PR_SET_PDEATHSIG)``), so it also dies if the reaper could not run.
   A shared-memory server killed that way unlinks nothing; the reaper does.
   It also ignores SIGTERM, as it ignores SIGINT: a scheduler, systemd or a
   container stop sends SIGTERM to the whole process group, and Lava's
   processes killed by it under the parent leave its stop handshake waiting
   forever and their segments held; the parent alone handles it and stops them
   in order.

Any forked child closes its copy of the pipe at once, or the end of file would
wait for the last Lava process. Segments created before the parent told the
reaper about them are unlinked by Python's resource tracker once every process
that used them has died. Linux only (``prctl``, ``/proc``): elsewhere
:func:`start` returns None and nothing changes.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

PR_SET_PDEATHSIG = 1
SHM = Path("/dev/shm")


class Reaper:
    """The parent's handle on a running reaper process."""

    def __init__(self, process: subprocess.Popen[bytes], pipe: int) -> None:
        self.process = process
        self.pipe = pipe  # write end; -1 once closed
        self.owner = os.getpid()

    def send(self, *lines: str) -> None:
        """Tell the reaper lines; best effort: a reaper that failed must not stop the run."""
        for line in lines:
            with contextlib.suppress(OSError):
                os.write(self.pipe, f"{line}\n".encode())  # under PIPE_BUF: never interleaved

    def free_on_death(self, segments: Iterable[str]) -> None:
        """The /dev/shm segments the reaper unlinks if this process dies."""
        self.send(*(f"shm {name.lstrip('/')}" for name in segments))

    def dismiss(self) -> None:
        """A clean close: the reaper exits without touching anything."""
        if os.getpid() != self.owner or self.pipe < 0:
            return
        self.send("done")
        _open.discard(self)
        os.close(self.pipe)
        self.pipe = -1
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


_open: set[Reaper] = set()  # reapers whose pipe this process holds
_watched: tuple[Reaper, int, bool] | None = None  # (reaper, parent pid, set PDEATHSIG) while Lava forks
_hooked = False


def start() -> Reaper | None:
    """Start a reaper for this process, or None where it cannot work (not Linux)."""
    global _hooked
    if not sys.platform.startswith("linux"):
        return None
    if not _hooked:
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _hooked = True
    read_end, write_end = os.pipe()  # both close-on-exec; Popen dups the read end onto stdin
    try:
        process = subprocess.Popen([sys.executable, "-m", "neurodeploy.runtime.lava.reaper", str(os.getpid())],
                                   stdin=read_end, stdout=subprocess.DEVNULL, start_new_session=True)
    except OSError:
        os.close(write_end)
        return None
    finally:
        os.close(read_end)
    reaper = Reaper(process, write_end)
    _open.add(reaper)
    return reaper


@contextlib.contextmanager
def forks_watched(reaper: Reaper | None) -> Iterator[None]:
    """Processes forked inside report to ``reaper`` and die with this process (Lava's create_runtime)."""
    global _watched
    if reaper is None:
        yield
        return
    # PDEATHSIG fires when the forking *thread* ends: only the main thread lives as long as the process.
    _watched = (reaper, os.getpid(), threading.current_thread() is threading.main_thread())
    try:
        yield
    finally:
        _watched = None


def _after_fork_in_child() -> None:
    global _watched
    if _watched is not None:
        reaper, parent, die_with_parent = _watched
        reaper.send(f"pid {os.getpid()}")
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the parent stops it (the docstring's 2.)
        if die_with_parent:
            _set_parent_death_signal(signal.SIGKILL)
            if os.getppid() != parent:  # the parent died before prctl took effect
                os.kill(os.getpid(), signal.SIGKILL)
        _watched = None
    for reaper in _open:
        with contextlib.suppress(OSError):
            os.close(reaper.pipe)
        reaper.pipe = -1
    _open.clear()


def _set_parent_death_signal(signum: int) -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)


# -- the reaper process ------------------------------------------------------------------------

def _start_time(pid: int) -> str | None:
    """The process's start time (field 22 of /proc/PID/stat), to tell it from a later one with its pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def watch(parent: int, pipe: int = 0) -> tuple[dict[int, str | None], set[str]] | None:
    """Read the parent's lines until it closes cleanly (None) or dies (what to reap)."""
    pids: dict[int, str | None] = {}
    segments: set[str] = set()
    pending = b""
    while True:
        if not select.select([pipe], [], [], 1.0)[0]:
            if os.getppid() != parent:  # re-parented: the parent died, yet someone holds the pipe
                return pids, segments
            continue
        chunk = os.read(pipe, 4096)
        if not chunk:
            return pids, segments
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            kind, _, value = line.decode(errors="replace").partition(" ")
            if kind == "done":
                return None
            if kind == "pid" and value.isdigit():
                pids[int(value)] = _start_time(int(value))
            elif kind == "shm" and value and "/" not in value:
                segments.add(value)


def reap(pids: dict[int, str | None], segments: set[str]) -> None:
    """SIGKILL the processes (those still the same) and unlink the shared-memory segments."""
    for pid, started in pids.items():
        if started is not None and _start_time(pid) == started:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    for name in segments:
        with contextlib.suppress(OSError):
            (SHM / name).unlink()


def main(argv: list[str]) -> None:
    parent = int(argv[1])
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    found = watch(parent)
    if found is not None:
        reap(*found)


if __name__ == "__main__":
    main(sys.argv)
