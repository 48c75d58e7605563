"""What a new user hits first: the Python API, output paths, overwrites, skips, manifest edits, output to read.

Each test here failed before the fix it checks (issue 15).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from neurodeploy.bundle.format import Bundle
from neurodeploy.errors import UserError
from neurodeploy.inpainter.checkpoint import save_checkpoint

from .conftest import run_cli, tiny_model

ROOT = Path(__file__).resolve().parents[1]


def _photo(path: Path, size: tuple[int, int] = (40, 32)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.random.default_rng(len(str(path))).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    return path


def _mask(path: Path, size: tuple[int, int] = (40, 32)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    mask = np.zeros((size[1], size[0]), np.uint8)
    mask[8:20, 10:30] = 255
    Image.fromarray(mask).save(path)
    return path


def _refused(result: subprocess.CompletedProcess[str], *words: str) -> None:
    """Exit 2, one line on stderr naming the problem, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def _cli(*args: str, columns: int = 200) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": str(columns), "TERM": "dumb"}
    return subprocess.run([sys.executable, "-m", "neurodeploy", *args], capture_output=True, text=True,
                          timeout=600, env=env)


# -- 1. the Python API -----------------------------------------------------------------------------

def test_public_names_are_the_functions_even_after_their_modules_are_imported() -> None:
    code = """
import types
import neurodeploy.bundle.format, neurodeploy.inpainter.conversion, neurodeploy.inpainter.simulation
import neurodeploy.cost.profile
import neurodeploy.inpainter.checkpoint, neurodeploy.io
import neurodeploy
from neurodeploy import convert, simulate, profile, load_model, read_image, read_mask, write_png
for f in (convert, simulate, profile, load_model, read_image, read_mask, write_png):
    assert isinstance(f, types.FunctionType), f
assert set(neurodeploy.__all__) <= set(dir(neurodeploy))
print("ok")
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr


def test_simulate_hands_back_the_inpainted_images(tiny_bundle: Path) -> None:
    from neurodeploy import SimulationInput, simulate

    rgb = np.random.default_rng(1).integers(0, 256, (30, 28, 3), dtype=np.uint8)
    hole = np.zeros((30, 28), bool)
    hole[5:15, 5:20] = True
    report = simulate(Bundle.load(tiny_bundle), [SimulationInput("x", rgb, hole)], backend="reference")
    out = report.outputs["x"]
    assert out.dtype == np.uint8 and out.shape == (30, 28, 3)
    assert np.array_equal(out[~hole], rgb[~hole])
    assert report.to_dict()["images"] == 1
    kept_none = simulate(Bundle.load(tiny_bundle), [SimulationInput("x", rgb, hole)], backend="reference",
                         keep_outputs=False)
    assert kept_none.outputs == {} and kept_none.images == 1


def test_api_errors_speak_python_and_the_cli_speaks_options(tmp_path: Path) -> None:
    from neurodeploy.inpainter.train import TrainConfig

    with pytest.raises(UserError) as caught:
        TrainConfig(lr=-1.0)
    assert str(caught.value) == "lr must be positive; pass e.g. lr=2e-3"
    assert caught.value.cli_message == "--lr must be positive; pass e.g. --lr 2e-3"
    _refused(run_cli("train", "--lr", "-1", "--out", str(tmp_path / "m.pt")), "--lr must be positive")


# -- 4. output paths and arguments are checked before any work --------------------------------------

def test_output_paths_are_checked_before_any_work(tmp_path: Path, tiny_bundle: Path) -> None:
    photos = tmp_path / "photos"
    for name in ("a", "b"):
        _photo(photos / f"{name}.png")
    one = _photo(tmp_path / "one.png")
    a_file = tmp_path / "a_file.png"
    a_file.write_bytes(b"\x89PNG\r\n\x1a\n")
    a_dir = tmp_path / "a_dir"
    a_dir.mkdir()
    # a folder of images into an existing file
    _refused(_cli("simulate", str(tiny_bundle), "--image", str(photos), "--random-mask", "1", "-o", str(a_file)),
             "is a file")
    # one image into an existing directory
    _refused(_cli("simulate", str(tiny_bundle), "--image", str(one), "--random-mask", "1", "-o", str(a_dir)),
             "is a directory")
    # the report folder is a file
    _refused(_cli("profile", str(tiny_bundle), "--image", str(one), "--random-mask", "1", "--report", str(a_file)),
             "is a file")
    # train --out is a directory: refused before the first epoch
    _refused(_cli("train", "--out", str(a_dir), "--epochs", "1"), "is a directory")
    assert sorted(p.name for p in a_dir.iterdir()) == []


def test_mask_arguments_are_checked_before_any_work(tmp_path: Path, tiny_bundle: Path) -> None:
    one = _photo(tmp_path / "one.png")
    mask = _mask(tmp_path / "mask.png")
    out = tmp_path / "out.png"
    _refused(_cli("simulate", str(tiny_bundle), "--image", str(one), "--random-mask", "-1", "-o", str(out)),
             "seed", "--random-mask")
    _refused(_cli("simulate", str(tiny_bundle), "--image", str(one), "--mask", str(mask), "--random-mask", "2",
                  "-o", str(out)), "--mask", "--random-mask")
    # a folder whose second image has no mask: refused before the first image is simulated
    photos, masks = tmp_path / "photos", tmp_path / "masks"
    for name in ("a", "b", "c"):
        _photo(photos / f"{name}.png")
    _mask(masks / "a.png")
    _mask(masks / "c.png")
    outs = tmp_path / "outs"
    _refused(_cli("simulate", str(tiny_bundle), "--image", str(photos), "--mask", str(masks), "-o", str(outs)),
             "1 of 3 images", "(b)")
    assert not out.exists() and not outs.exists()


# -- 5. no silent overwrites ------------------------------------------------------------------------

def test_train_never_replaces_a_trained_model_without_force(tmp_path: Path) -> None:
    model = tmp_path / "model.pt"
    save_checkpoint(model, tiny_model(), epoch=3, train_losses=[], val_losses=[])
    before = model.read_bytes()
    _refused(_cli("train", "--out", str(model), "--epochs", "1"), "--resume", "--force")
    assert model.read_bytes() == before
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    _refused(_cli("train", "--out", str(notes), "--epochs", "1", "--force"), "not a torch checkpoint")
    assert notes.read_text() == "my notes"


def test_simulate_never_writes_over_a_file_of_another_kind(tmp_path: Path, tiny_bundle: Path) -> None:
    one = _photo(tmp_path / "one.png")
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    _refused(_cli("simulate", str(tiny_bundle), "--image", str(one), "--random-mask", "1", "-o", str(notes)),
             ".png")
    assert notes.read_text() == "my notes"
    text_png = tmp_path / "text.png"
    text_png.write_text("not a picture")
    _refused(_cli("simulate", str(tiny_bundle), "--image", str(one), "--random-mask", "1", "-o", str(text_png)),
             "not a PNG image")
    assert text_png.read_text() == "not a picture"
    _refused(_cli("simulate", str(tiny_bundle), "--image", str(one), "--random-mask", "1", "-o",
                  str(tmp_path / "o.png"), "--json", str(notes)), "not a JSON")
    assert notes.read_text() == "my notes" and not (tmp_path / "o.png").exists()


# -- 6. no silent skips -----------------------------------------------------------------------------

def test_skip_existing_says_what_it_skipped_and_what_the_json_covers(tmp_path: Path, tiny_bundle: Path) -> None:
    photos, out, doc = tmp_path / "photos", tmp_path / "out", tmp_path / "run.json"
    for name in ("a", "b", "c"):
        _photo(photos / f"{name}.png")
    first = _cli("simulate", str(tiny_bundle), "--image", str(photos), "--random-mask", "1", "-o", str(out),
                 "--backend", "reference")
    assert first.returncode == 0, first.stderr
    (out / "b.png").unlink()
    second = _cli("simulate", str(tiny_bundle), "--image", str(photos), "--random-mask", "1", "-o", str(out),
                  "--backend", "reference", "--skip-existing", "--json", str(doc))
    assert second.returncode == 0, second.stderr
    assert "2 images skipped" in second.stdout and "1 to simulate" in second.stdout
    report = json.loads(doc.read_text())
    assert report["images"] == 1 and [r["name"] for r in report["results"]] == ["b"]
    assert report["skipped"] == ["a", "c"] and "2 images skipped" in report["covers"]
    third = _cli("simulate", str(tiny_bundle), "--image", str(photos), "--random-mask", "1", "-o", str(out),
                 "--backend", "reference", "--skip-existing")
    assert third.returncode == 0 and "3 images skipped" in third.stdout and "nothing to simulate" in third.stdout


# -- 7. manifest edits ------------------------------------------------------------------------------

@pytest.mark.parametrize("edit", ["timesteps", "vThMant", "tile.height"])
def test_any_manifest_edit_is_refused_as_modified_after_convert(tiny_bundle: Path, edit: str) -> None:
    path = tiny_bundle / "manifest.json"
    manifest = json.loads(path.read_text())
    if edit == "timesteps":
        manifest["timesteps"] = 6
    elif edit == "vThMant":
        manifest["segments"][0]["layers"][0]["quantization"]["vth_mant"] += 1
    else:
        manifest["tile"]["height"] = 16
    path.write_text(json.dumps(manifest, indent=2))
    with pytest.raises(UserError, match="modified after convert"):
        Bundle.load(tiny_bundle)
    _refused(_cli("simulate", str(tiny_bundle), "--image", str(_photo(tiny_bundle.parent / "p.png")),
                  "--random-mask", "1"), "modified after convert", "neurodeploy convert")


# -- 8. output a person reads -----------------------------------------------------------------------

def test_help_texts_keep_their_words() -> None:
    demo = _cli("demo", "--help").stdout
    assert "examples/models/scnn_inpaint.pt" in demo
    profile = _cli("profile", "--help").stdout
    assert "(default: all)" in profile and "Seed of a random mask" in profile
    convert = _cli("convert", "--help").stdout
    assert "(default: MODEL with .bundle)" in convert


def test_profile_fits_80_columns_and_counts_in_words(tmp_path: Path, tiny_bundle: Path) -> None:
    one = _photo(tmp_path / "one.png")
    run = _cli("profile", str(tiny_bundle), "--image", str(one), "--random-mask", "1", "--backend", "reference",
               columns=80)
    assert run.returncode == 0, run.stderr
    assert "…" not in run.stdout and "..." not in run.stdout
    assert all(len(line) <= 80 for line in run.stdout.splitlines()), run.stdout
    for name in ("loihi", "loihi2", "spinnaker2", "cmos45nm_snn"):
        assert f" {name} " in run.stdout
    assert "1 image," in run.stdout and "T = 4 steps" in run.stdout and "T=4.0" not in run.stdout


def test_evaluate_counts_in_words(tmp_path: Path, tiny_checkpoint: Path) -> None:
    run = _cli("evaluate", str(tiny_checkpoint), "--image", str(_photo(tmp_path / "p.png")),
               "--mask", str(_mask(tmp_path / "m.png")))
    assert run.returncode == 0, run.stderr
    assert "on 1 image " in run.stdout and "1 images" not in run.stdout


def test_doctor_says_what_the_lava_fixes_are_in_words() -> None:
    run = _cli("doctor")
    assert "var_model_default_factory" not in run.stdout and "object_detection_placeholder" not in run.stdout
    assert "Python 3.11" in run.stdout or "none needed" in run.stdout


def test_every_energy_bar_can_be_seen_and_other_hosts_are_labelled() -> None:
    from neurodeploy.cost.report import energy_figure

    energy = {name: {"snn": 2e-6, "host": 3e-3, "bridge": 4e-9, "total": 3.002e-3} for name in ("loihi", "loihi2")}
    fig = energy_figure(energy, {"gpu": 3.1e-3, "cmos45nm": 1e-4}, host="gpu")
    ax = fig.axes[0]
    low, high = (np.log10(v) for v in ax.get_ylim())
    bars = [p for p in ax.patches if p.get_height() > 0]
    assert len(bars) == 8
    for bar in bars:  # each bar spans at least a tenth of the log axis
        top, bottom = bar.get_y() + bar.get_height(), max(bar.get_y(), 10**low)
        assert (np.log10(top) - np.log10(bottom)) / (high - low) > 0.1
    labels = ax.get_legend_handles_labels()[1]
    assert "all-CNN on cmos45nm (bars use gpu)" in labels and "all-CNN on gpu" in labels


def test_make_demo_says_where_the_command_is() -> None:
    run = subprocess.run(["make", "-n", "demo"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert ".venv/bin/neurodeploy" in run.stdout and "activate" in run.stdout


# -- 9. the project stands alone --------------------------------------------------------------------

def test_no_file_points_outside_the_project() -> None:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    offenders = [f for f in files if (ROOT / f).is_file() and f != "tests/test_new_user.py"
                 and "../shared" in (ROOT / f).read_text(errors="ignore")]
    assert offenders == []


def test_summaries_fit_80_columns() -> None:
    from neurodeploy.inpainter.demo import DemoSummary

    summary = DemoSummary(17.97, 18.85, {"psnr_vs_float": 100.0, "spike_f1": 0.999876, "spike_precision": 0.999,
                                         "spike_recall": 0.998, "exact_vs_reference": True}, 12_345_678, 3.859e-3,
                          4.012e-3, Path("demo-out/report/report.html"))
    lines = summary.lines()
    assert all(len(f"  {line}") <= 80 for line in lines), lines
    assert any("0.9999" in line for line in lines) and any("bit-exact" in line for line in lines)
