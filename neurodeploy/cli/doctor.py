"""``neurodeploy doctor``: what is installed, and does Lava really run here.

The smoke test is a single fixed-point Lava LIF neuron driven by its bias for
10 steps. With ``du = 4095`` (current decays fully), ``dv = 0`` (no leak),
``bias = 3 << 6`` and threshold ``10 << 6`` the voltage grows by 192 a step:
192, 384, 576, 768 > 640 -> spike and reset, so it spikes every 4th step and
10 steps give exactly 2 spikes. :func:`expected_smoke_spikes` computes the same
count by hand-written integer arithmetic; the run passes when they agree.
"""

from __future__ import annotations

import importlib.metadata
import platform
import time
from dataclasses import dataclass

import numpy as np
import typer
from rich.table import Table

from neurodeploy.cli.app import app, console
from neurodeploy.runtime.lava import compat as _lava_compat

SMOKE_BIAS_MANT = 3
SMOKE_BIAS_EXP = 6
SMOKE_VTH = 10


@dataclass(frozen=True)
class SmokeResult:
    """Outcome of the Lava smoke simulation."""

    steps: int
    spikes: int
    expected: int
    seconds: float
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and self.spikes == self.expected


def expected_smoke_spikes(steps: int) -> int:
    """Spike count of the smoke neuron, by hand: v += bias each step, spike when v > vth."""
    bias = SMOKE_BIAS_MANT << SMOKE_BIAS_EXP
    vth = SMOKE_VTH << 6
    v, spikes = 0, 0
    for _ in range(steps):
        v += bias
        if v > vth:
            spikes += 1
            v = 0
    return spikes


def lava_smoke(steps: int = 10) -> SmokeResult:
    """Run one fixed-point Lava LIF neuron for ``steps`` steps and count its spikes."""
    start = time.perf_counter()
    try:
        _lava_compat.import_lava()
        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2SimCfg
        from lava.proc.io.sink import RingBuffer
        from lava.proc.lif.process import LIF

        lif = LIF(shape=(1,), du=4095, dv=0, vth=SMOKE_VTH,
                  bias_mant=SMOKE_BIAS_MANT, bias_exp=SMOKE_BIAS_EXP)
        sink = RingBuffer(shape=(1,), buffer=steps)
        lif.s_out.connect(sink.a_in)
        try:
            lif.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
            spikes = int(np.count_nonzero(sink.data.get()))
        finally:
            lif.stop()
        return SmokeResult(steps, spikes, expected_smoke_spikes(steps), time.perf_counter() - start)
    except Exception as exc:
        return SmokeResult(steps, -1, expected_smoke_spikes(steps), time.perf_counter() - start,
                           f"{type(exc).__name__}: {exc}")


def versions() -> dict[str, str]:
    """Versions of Python and the packages neurodeploy is built on ('missing' if absent)."""
    found = {"python": platform.python_version()}
    for dist in ("torch", "norse", "lava-nc", "lava-dl", "numpy", "nir"):
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            found[dist] = "missing"
    return found


def loihi_installed() -> bool:
    """Whether lava-loihi (Intel's Loihi 2 hardware backend) is importable."""
    try:
        _lava_compat.import_lava()
        from lava.utils import loihi

        return bool(loihi.is_installed())
    except Exception:
        return False


@app.command()
def doctor() -> None:
    """Report versions, the Lava compatibility layer, Loihi 2 support, and run a Lava smoke test."""

    found = versions()
    smoke = lava_smoke(steps=10)
    table = Table(title="neurodeploy doctor", show_header=False)
    for name, version in found.items():
        table.add_row(name, version)
    applied = [_lava_compat.DESCRIPTIONS[k] for k, v in _lava_compat.APPLIED.items() if v]
    table.add_row("Lava fixes applied at import", "; ".join(applied) if applied else "none needed")
    table.add_row("Loihi 2 hardware (lava-loihi)", "installed" if loihi_installed() else "not installed")
    verdict = "[green]pass[/green]" if smoke.passed else "[red]FAIL[/red]"
    detail = f"{smoke.spikes} spikes (expected {smoke.expected}) in {smoke.seconds:.2f} s"
    if smoke.error:
        detail = smoke.error
    table.add_row(f"Lava LIF smoke run ({smoke.steps} steps)", f"{verdict} {detail}")
    console.print(table)
    required_missing = [k for k in ("torch", "norse", "lava-nc", "lava-dl", "numpy") if found[k] == "missing"]
    if required_missing or not smoke.passed:
        raise typer.Exit(1)
