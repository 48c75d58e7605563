"""Bad input files in a folder are refused before the work starts, naming the file (issue 33, item 10)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image


def _photo(path: Path, seed: int, size: tuple[int, int] = (40, 32)) -> Path:
    rgb = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    return path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "TERM": "dumb"}
    return subprocess.run([sys.executable, "-m", "neurodeploy", *args], capture_output=True, text=True,
                          timeout=600, env=env)


def _refused_before_work(result: subprocess.CompletedProcess[str], out: Path, *words: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr
    assert not out.exists() or not list(out.iterdir()), "an image ran before the bad file was found"


def test_a_truncated_image_in_a_folder_is_refused_before_the_first_image_runs(tiny_bundle: Path,
                                                                               tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for k in range(2):
        _photo(folder / f"a{k}.png", k)
    whole = _photo(tmp_path / "z_whole.png", 9).read_bytes()
    (folder / "z_broken.png").write_bytes(whole[: len(whole) // 2])  # sorted last: reached last
    out = tmp_path / "out"
    result = _cli("simulate", str(tiny_bundle), "--image", str(folder), "--random-mask", "1", "-o", str(out),
                  "--backend", "reference")
    _refused_before_work(result, out, "z_broken.png")


def test_a_file_that_is_no_image_and_a_mask_of_another_size_are_refused_up_front(tiny_bundle: Path,
                                                                                   tmp_path: Path) -> None:
    folder, masks = tmp_path / "photos", tmp_path / "masks"
    folder.mkdir()
    masks.mkdir()
    for k in range(2):
        _photo(folder / f"a{k}.png", k)
        Image.fromarray(np.full((32, 40), 255 * (k == 0), np.uint8)).save(masks / f"a{k}.png")
    (folder / "b.jpg").write_text("not a photo")
    Image.fromarray(np.zeros((32, 40), np.uint8)).save(masks / "b.png")
    out = tmp_path / "out"
    result = _cli("simulate", str(tiny_bundle), "--image", str(folder), "--mask", str(masks), "-o", str(out),
                  "--backend", "reference")
    _refused_before_work(result, out, "b.jpg")
    (folder / "b.jpg").unlink()
    Image.fromarray(np.zeros((16, 40), np.uint8)).save(masks / "a1.png")  # the second image's mask, too short
    result = _cli("profile", str(tiny_bundle), "--image", str(folder), "--mask", str(masks), "--backend",
                  "reference", "--report", str(out))
    _refused_before_work(result, out, "a1.png", "40x16", "40x32")


def test_a_truncated_jpeg_is_found_by_the_check_not_only_when_decoded(tmp_path: Path) -> None:
    from neurodeploy.errors import UserError
    from neurodeploy.io import image_size

    rgb = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "whole.jpg")
    data = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    assert image_size(tmp_path / "whole.jpg") == (120, 160)
    try:
        image_size(tmp_path / "cut.jpg")
    except UserError as exc:
        assert "cut.jpg" in str(exc) and "truncated" in str(exc)
    else:
        raise AssertionError("a truncated JPEG passed the check")


def test_a_training_folder_skips_a_truncated_jpeg_up_front_not_mid_epoch(tmp_path: Path) -> None:
    import pytest

    from neurodeploy.inpainter.data import load_readable

    paths = [_photo(tmp_path / f"a{k}.png", k, (64, 48)) for k in range(2)]
    rgb = np.random.default_rng(5).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "whole.jpg")
    data = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        readable, skipped = load_readable([*paths, tmp_path / "cut.jpg", tmp_path / "whole.jpg"])
    assert skipped == 1 and readable == [*paths, tmp_path / "whole.jpg"]
