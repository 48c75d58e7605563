"""Issue 33, items 2 and 6: a --results log resumes only the records of the same run, the counts say what this run
did, and a drawn mask depends on the image's name, not on its place in a folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from neurodeploy.io import read_image, write_png

from .conftest import run_cli


def _photos(folder: Path, n: int) -> Path:
    folder.mkdir()
    for i in range(n):
        write_png(folder / f"p{i}.png", np.random.default_rng(i).integers(0, 256, (40, 36, 3), dtype=np.uint8))
    return folder


def _simulate(bundle: Path, image: Path, out: Path, *more: str) -> object:
    return run_cli("simulate", str(bundle), "--image", str(image), "--backend", "torch", "-o", str(out), *more)


def test_a_results_log_of_another_run_is_refused_and_counts_are_this_runs(tiny_bundle: Path, tmp_path: Path) -> None:
    folder = _photos(tmp_path / "photos", 3)
    log = tmp_path / "items.jsonl"
    first = _simulate(tiny_bundle, folder, tmp_path / "a", "--random-mask", "1", "--results", str(log))
    assert first.returncode == 0, first.stderr[-2000:]  # type: ignore[attr-defined]
    lines = log.read_text().splitlines()
    assert len(lines) == 3
    for other in (["--random-mask", "2", "-o", str(tmp_path / "a")],  # another mask
                  ["--random-mask", "1", "-o", str(tmp_path / "b")],  # another output folder
                  ["--random-mask", "1", "--seed", "5", "-o", str(tmp_path / "a")]):  # another Poisson seed
        refused = run_cli("simulate", str(tiny_bundle), "--image", str(folder), "--backend", "torch",
                          "--results", str(log), *other)
        assert refused.returncode == 2, refused.stderr[-2000:]
        assert "another run" in refused.stderr and "--results" in refused.stderr
        assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "b").exists() and log.read_text().splitlines() == lines  # nothing written
    # the same run again, one output deleted: that one is simulated again, two resumed, the counts say so
    (tmp_path / "a" / "p1.png").unlink()
    again = _simulate(tiny_bundle, folder, tmp_path / "a", "--random-mask", "1", "--results", str(log),
                      "--json", str(tmp_path / "r.json"))
    assert again.returncode == 0, again.stderr[-2000:]  # type: ignore[attr-defined]
    out = again.stdout  # type: ignore[attr-defined]
    assert "1 image simulated in this run, 2 resumed from --results" in out, out
    assert "compiled once in 0.00 s" not in out and "p1:" in out and "p0:" not in out
    assert (tmp_path / "a" / "p1.png").exists()
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["resumed"] == ["p0", "p2"] and report["images"] == 3
    run = next(r["seconds"]["total"] for r in report["results"] if r["name"] == "p1")
    assert abs(report["images_per_second"] - 1 / run) < 1e-6 * (1 / run)


def test_a_drawn_mask_depends_on_the_photos_name_not_on_its_folder(tiny_bundle: Path, tmp_path: Path) -> None:
    folder = _photos(tmp_path / "photos", 3)
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "p2.png").write_bytes((folder / "p2.png").read_bytes())
    for image, out in ((folder, tmp_path / "among"), (alone / "p2.png", tmp_path / "alone.png")):
        run = _simulate(tiny_bundle, image, out, "--random-mask", "4")
        assert run.returncode == 0, run.stderr[-2000:]  # type: ignore[attr-defined]
    among, single = read_image(tmp_path / "among" / "p2.png"), read_image(tmp_path / "alone.png")
    original = read_image(folder / "p2.png")
    assert np.array_equal(among, single)  # the same hole, hence the same fill
    assert not np.array_equal(single, original)  # a hole was drawn and filled
