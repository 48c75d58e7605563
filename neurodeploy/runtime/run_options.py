"""The two options every run of ``simulate`` and ``profile`` takes, in one place: how many threads the host's
numeric libraries use, and which items the fidelity check runs on.

Threads. A run does its host work (input frames, the
host CNN, the float reference, the NumPy reference backend) in torch's
intra-op pool and in NumPy's BLAS pool, both of which start one thread per
core. On a machine whose cores something else also uses, every parallel
torch op waits at its barrier for a thread the scheduler has parked, and
each stage runs several times slower than on one thread (docs/BENCHMARKS.md,
section 16: on 2 cores shared with other jobs, ``simulate --backend torch``
on a folder of photos 0.53 images/s with 2 threads against 3.30 with 1). Lava
runs the chip segment in processes of its own, which want a core while they step.

The default therefore leaves cores free instead of filling them::

    threads = max(1, cores - 1 - lava)
    check_thread = cores - threads - lava >= 1

``cores`` is the number of CPUs this process may run on, ``lava`` is 1 when
the backend runs in Lava (``lava``, ``loihi2``: its segment process), else
0. One core is left for everything else (the operating system, another job);
on 2 cores that is one thread whatever the backend. Where that core is
there (``check_thread``), the fidelity check's float model runs in a thread
of its own beside the pipeline, as one torch thread: on 2 cores for the
reference and torch backends, not beside Lava's process. ``threads`` (the
``--threads`` option) overrides the count. The count applies to torch's intra-op
pool and to the BLAS pools of this process; Lava's processes are forked from
it and inherit the BLAS limit. torch's inter-op pool is left as it is: the
pipeline runs no inter-op parallel work (no ``torch.jit.fork``).

Fidelity (``--fidelity``): ``all`` checks every image or sample against the
float model and the reference backend (the default), ``first`` only the
first one (the others' ``fidelity`` is empty), ``none`` none. The check never
changes what the run outputs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from threadpoolctl import threadpool_limits

from neurodeploy.errors import UserError
from neurodeploy.runtime.backends import LAVA_BACKENDS

# The fidelity check: on every image or sample, on the first one only, or on none.
FIDELITY_MODES = ("all", "first", "none")


def available_cores() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity mask
        return os.cpu_count() or 1


@dataclass(frozen=True)
class ThreadPlan:
    """The thread count a run uses and why: ``chosen_by`` is ``"--threads"`` or ``"default"``."""

    threads: int
    cores: int
    chosen_by: str
    check_thread: bool = False  # the fidelity check's float model in a thread of its own (module docstring)

    def as_dict(self) -> dict[str, Any]:
        """The JSON record: threads, cores, how the count was chosen, and whether the check has its thread."""
        return {"threads": self.threads, "cores": self.cores, "chosen_by": self.chosen_by,
                "check_thread": self.check_thread}


def plan_threads(backend: str, threads: int | None = None, cores: int | None = None) -> ThreadPlan:
    """The thread count for ``backend`` (module docstring); ``threads`` overrides the default rule.

    A count below 1 is a :class:`UserError`.
    """
    cores = available_cores() if cores is None else cores
    lava = int(backend in LAVA_BACKENDS)
    if threads is not None and threads < 1:
        raise UserError(f"--threads {threads}: a run needs at least one thread",
                        "pass --threads 1 or more, or leave it out for the default")
    count = max(1, cores - 1 - lava) if threads is None else threads
    return ThreadPlan(count, cores, "default" if threads is None else "--threads", cores - count - lava >= 1)


@contextlib.contextmanager
def sized_threads(plan: ThreadPlan) -> Iterator[ThreadPlan]:
    """torch's intra-op pool and the BLAS pools at ``plan.threads`` inside the block; restored after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(plan.threads)
    try:
        with threadpool_limits(limits=plan.threads, user_api="blas"):
            yield plan
    finally:
        torch.set_num_threads(before)


def fidelity_mode(value: str | bool) -> str:
    """``--fidelity`` checked: one of :data:`FIDELITY_MODES` (True is ``all``, False ``none``), else a UserError."""
    if value is True or value is False:
        return "all" if value else "none"
    if value not in FIDELITY_MODES:
        raise UserError(f"--fidelity {value}: not a fidelity check", f"pass one of {', '.join(FIDELITY_MODES)}")
    return value


def checked(mode: str, index: int) -> bool:
    """Whether the fidelity check runs on the item at ``index`` (0 = the first) under ``mode``."""
    return mode == "all" or (mode == "first" and index == 0)
