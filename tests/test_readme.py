"""Every Python block of README.md runs as written, so the README cannot rot."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.DOTALL)


def test_the_readme_has_python_blocks() -> None:
    assert BLOCKS


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs(tmp_path: Path, index: int) -> None:
    # the files the README names: the shipped model, a photo and its hole
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    rgb = np.random.default_rng(0).integers(0, 256, (96, 80, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "photo.png")
    hole = np.zeros((96, 80), np.uint8)
    hole[30:50, 20:60] = 255
    Image.fromarray(hole).save(tmp_path / "hole.png")
    run = subprocess.run([sys.executable, "-c", BLOCKS[index]], cwd=tmp_path, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr
    if "photo-inpainted.png" in BLOCKS[index]:
        out = np.asarray(Image.open(tmp_path / "photo-inpainted.png"))
        assert out.shape == (96, 80, 3)
        assert np.array_equal(out[hole == 0], rgb[hole == 0])  # known pixels kept, the hole filled
