"""``scripts/wallpapers.sh``: the photographs of Debian's wallpaper packages as a folder ``train --data`` reads."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from neurodeploy.inpainter.data import BUILTIN_VAL, ImageFolder, resolve_paths
from neurodeploy.io import read_image

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "wallpapers.sh"


def test_a_bad_size_is_one_line_exit_2_and_writes_nothing(tmp_path: Path) -> None:
    run = subprocess.run(["sh", str(SCRIPT), str(tmp_path / "out"), "big"], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "MAX_SIDE" in run.stderr, run.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("apt-get") is None, reason="needs apt-get and a Debian package mirror")
def test_the_script_unpacks_eleven_photographs_that_train_reads(tmp_path: Path) -> None:
    out = tmp_path / "wallpapers"
    run = subprocess.run(["sh", str(SCRIPT), str(out), "640"], capture_output=True, text=True, cwd=ROOT,
                         timeout=600)
    assert run.returncode == 0, run.stderr
    photos = sorted(out.glob("plasma-*.jpg"))
    assert len(photos) == 11
    assert all(max(read_image(p).shape[:2]) == 640 for p in photos)
    licences = {p.name for p in (out / "LICENSES").iterdir()}
    assert {"plasma-workspace-wallpapers.copyright", "ukui-wallpapers.copyright", "SOURCES.txt"} <= licences
    assert not any(name.split(".")[0] in p.name for p in photos for name in BUILTIN_VAL)
    data = ImageFolder(resolve_paths(str(out), "train"), crop=64, seed=0, samples_per_epoch=2)
    assert len(data.paths) == 10 and data[0][0].shape == (3, 64, 64)
