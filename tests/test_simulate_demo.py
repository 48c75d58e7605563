"""neurodeploy simulate (bad input, JSON) and neurodeploy demo end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .conftest import run_cli

# the top-level keys of every simulate JSON document (neurodeploy.inpainter.simulation.SimulationReport.to_dict)
SIMULATE_JSON_SCHEMA = ("backend", "timesteps", "images", "covers", "skipped", "seconds", "images_per_second",
                        "fidelity_check", "threads", "results")


def _image(path: Path, mode: str = "RGB", size: tuple[int, int] = (40, 30)) -> Path:
    channels = {"RGB": 3, "RGBA": 4}.get(mode)
    shape = (size[1], size[0], channels) if channels else (size[1], size[0])
    array = np.random.default_rng(0).integers(0, 255, size=shape, dtype=np.uint8)
    Image.fromarray(array, mode).save(path)
    return path


def _mask(path: Path, size: tuple[int, int] = (40, 30)) -> Path:
    mask = np.zeros((size[1], size[0]), np.uint8)
    mask[5:15, 10:25] = 255
    Image.fromarray(mask).save(path)
    return path


def test_simulate_writes_the_image_and_the_json(tmp_path: Path, tiny_bundle: Path) -> None:
    out, doc = tmp_path / "out.png", tmp_path / "sim.json"
    result = run_cli("simulate", str(tiny_bundle), "--image", str(_image(tmp_path / "a.png")),
                     "--mask", str(_mask(tmp_path / "m.png")), "-o", str(out), "--json", str(doc),
                     "--spikes", str(tmp_path / "spikes.npz"))
    assert result.returncode == 0, result.stderr
    report = json.loads(doc.read_text())
    assert report["backend"] == "lava" and report["timesteps"] == 4 and report["images"] == 1
    assert set(report["seconds"]) == {"compile", "run", "total"}
    (one,) = report["results"]
    assert set(one["seconds"]) >= {"encode", "snn", "host", "total"}
    assert one["spikes"]["total"] == sum(one["spikes"]["per_timestep"])
    assert one["fidelity"]["exact_vs_reference"] is True
    assert {"psnr_vs_float", "spike_f1", "spike_precision", "spike_recall", "layers"} <= set(one["fidelity"])
    assert np.asarray(Image.open(out)).shape == (30, 40, 3)
    saved = np.load(tmp_path / "spikes.npz")
    assert saved["a/spikes"].shape == (4, 6, 30, 40) and int(saved["a/spikes"].sum()) == one["spikes"]["total"]
    assert set(report) == set(SIMULATE_JSON_SCHEMA)


def test_grayscale_and_rgba_images_are_converted(tmp_path: Path, tiny_bundle: Path) -> None:
    for mode in ("L", "RGBA"):
        out = tmp_path / f"{mode}.png"
        result = run_cli("simulate", str(tiny_bundle), "--image", str(_image(tmp_path / f"in{mode}.png", mode)),
                         "--mask", str(_mask(tmp_path / "m.png")), "-o", str(out), "--backend", "reference")
        assert result.returncode == 0, result.stderr
        assert np.asarray(Image.open(out)).shape == (30, 40, 3)


def _one_line_error(result, *words: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr


def test_simulate_bad_input_is_one_line_and_writes_nothing(tmp_path: Path, tiny_bundle: Path) -> None:
    image, mask, out = _image(tmp_path / "a.png"), _mask(tmp_path / "m.png"), tmp_path / "out.png"
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    _one_line_error(run_cli("simulate", str(tiny_bundle), "--image", str(broken), "--mask", str(mask),
                            "-o", str(out)), "broken.png", "not a readable image")
    _one_line_error(run_cli("simulate", str(tiny_bundle), "--image", str(image),
                            "--mask", str(_mask(tmp_path / "m2.png", (41, 30))), "-o", str(out)), "mask")
    _one_line_error(run_cli("simulate", str(tiny_bundle), "--image", str(image), "-o", str(out)), "--mask")
    _one_line_error(run_cli("simulate", str(tiny_bundle), "--image", str(image), "--mask", str(mask),
                            "--backend", "loihi2", "-o", str(out)), "lava-loihi")
    missing = tmp_path / "missing.bundle"
    shutil.copytree(tiny_bundle, missing)
    (missing / "host.pt").unlink()
    _one_line_error(run_cli("simulate", str(missing), "--image", str(image), "--mask", str(mask), "-o", str(out)),
                    "missing host.pt")
    tampered = tmp_path / "tampered.bundle"
    shutil.copytree(tiny_bundle, tampered)
    with open(tampered / "host.pt", "ab") as handle:
        handle.write(b"\0")
    _one_line_error(run_cli("simulate", str(tampered), "--image", str(image), "--mask", str(mask), "-o", str(out)),
                    "host.pt does not match the sha256")
    assert not out.exists() and not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_demo_writes_every_output(tmp_path: Path, tiny_checkpoint: Path) -> None:
    out = tmp_path / "demo"
    result = run_cli("demo", "-o", str(out), "--model", str(tiny_checkpoint), "--size", "48")
    assert result.returncode == 0, result.stderr
    assert "hole PSNR" in result.stdout and "Loihi 2" in result.stdout and "report" in result.stdout
    comparison = np.asarray(Image.open(out / "comparison.png"))
    assert comparison.shape[0] > 48 and comparison.shape[1] >= 4 * 48
    for name in ("simulate.json", "profile.json"):
        json.loads((out / name).read_text())
    # one schema: the demo's simulate.json is what `simulate --json` writes
    demo_json = json.loads((out / "simulate.json").read_text())
    assert set(demo_json) == set(SIMULATE_JSON_SCHEMA) and set(demo_json["seconds"]) == {"compile", "run", "total"}
    assert "compile_s" not in json.dumps(demo_json)
    html = (out / "report" / "report.html").read_text()
    from neurodeploy.inpainter.demo import SHIPPED_SWEEP

    # raster, counts, energy, ratios; the layers mapped to cores (issue 16); the sweep when shipped (issue 14);
    # the masked input, the output and the photo, hole PSNR and the fidelity (issue 33)
    assert html.count("data:image/png;base64,") == 8 + SHIPPED_SWEEP.is_file()
    profiled = json.loads((out / "profile.json").read_text())
    assert f"of the deployed output: {profiled['psnr_hole']['mean']:.2f} dB" in html
    assert profiled["fidelity"]["spike_f1"] == pytest.approx(demo_json["results"][0]["fidelity"]["spike_f1"])
    assert "bit-exact with the reference backend: yes" in html
    assert "against its all-CNN twin" in result.stdout
    for plot in ("spikes_per_step", "firing_rate_per_channel", "raster", "energy"):
        assert Image.open(out / "report" / f"{plot}.png").size[0] > 100
    assert (out / "bundle" / "manifest.json").is_file()
