"""Long runs, for ``make test-all``: a longer fuzz campaign and a shorter soak."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_long_fuzz_campaign() -> None:
    env = {**os.environ, "NEURODEPLOY_FUZZ_EXAMPLES": "1000"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:warnings", str(ROOT / "tests/test_fuzz.py")]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=3600, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:]


@pytest.mark.slow
def test_soak_memory_stays_flat(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks/soak_simulate.py"), "--images", "200",
                             "--every", "25", "--json", str(out)], capture_output=True, text=True, timeout=3600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(out.read_text())["rss_growth"] < 0.05
