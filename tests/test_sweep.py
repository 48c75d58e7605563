"""``neurodeploy sweep`` on a tiny budget: the JSON's keys and figures, the plot, the refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from neurodeploy.errors import UserError
from neurodeploy.inpainter.sweep import SweepConfig, run_sweep
from neurodeploy.inpainter.sweep_results import read_sweep, twin_quality
from tests.conftest import TINY, run_cli


def tiny_sweep(out: Path, **overrides: object) -> SweepConfig:
    settings: dict[str, object] = dict(out=str(out), variants=(0, 1, 2), seeds=2, epochs=1, samples_per_epoch=4,
                                       batch_size=4, crop=32, eval_crop=32, eval_crops_per_image=1, tile=32,
                                       backend="reference", hw=("loihi2", "loihi"), model=TINY)
    return SweepConfig(**{**settings, **overrides})  # type: ignore[arg-type]


def test_tiny_sweep_writes_the_json_the_plot_and_the_report(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    lines: list[str] = []
    document = run_sweep(tiny_sweep(out), log=lines.append, progress=False)
    written = json.loads((out / "sweep.json").read_text())
    assert json.loads(json.dumps(document)) == written == read_sweep(out / "sweep.json")
    assert document["complete"] and document["protocol"]["seeds"] == [0, 1]
    assert set(document["variants"]) == {"all_cnn", "scnn", "spiking2"}
    assert set(document["classical"]) == {"telea", "ns", "biharmonic", "harmonic"}
    assert "all_spiking" in document["not_variants"]
    for name, v in document["variants"].items():
        assert v["spiking_layers"] == {"all_cnn": 0, "scnn": 1, "spiking2": 2}[name]
        assert [run["seed"] for run in v["per_seed"]] == [0, 1]
        assert 0 < v["psnr_hole"] <= 100 and v["psnr_hole_std"] >= 0 and 0 < v["ssim"] <= 1
        assert "spike_f1" in v["fidelity"]
        assert v["psnr_vs_twin"] == pytest.approx(v["psnr_hole"] - document["variants"]["all_cnn"]["psnr_hole"])
    # a progress line for every variant and seed
    assert sum("train 1 epochs" in line for line in lines) == 6
    twin, scnn = document["variants"]["all_cnn"], document["variants"]["scnn"]
    assert twin["fidelity"]["spike_f1"] is None and twin["spikes"] == 0
    assert 0.9 <= scnn["fidelity"]["spike_f1"] <= 1 and scnn["spikes"] > 0
    for profile in ("loihi2", "loihi"):
        e = scnn["energy_j"][profile]
        assert e["total"] == pytest.approx(e["chip"] + e["host"] + e["bridge"])
        # the twin is the same six convs on the host: the SC-NN's all-CNN baseline, measured apart
        assert twin["energy_j"][profile]["total"] == pytest.approx(scnn["baseline_j"]["gpu"], rel=1e-6)
        assert scnn["energy_vs_twin"][profile] == pytest.approx(e["total"] / twin["energy_j"][profile]["total"])
        # the same models with every conv on the chip (convert --chip all): no host part left
        for variant in (scnn, document["variants"]["spiking2"]):
            on_chip = variant["energy_all_on_chip_j"][profile]["total"]
            assert on_chip > 0 and variant["energy_all_on_chip_vs_twin"][profile] == \
                pytest.approx(on_chip / twin["energy_j"][profile]["total"])
        assert all(run["deployment"]["energy_all_on_chip_j"][profile]["host"] == 0 for run in scnn["per_seed"])
    # two spiking layers, the second of stride 2: deployed through the general partitioner as a graph
    deeper = document["variants"]["spiking2"]
    assert deeper["deployed"] and len(deeper["spikes_per_layer"]) == 2 and min(deeper["spikes_per_layer"]) > 0
    assert 0.9 <= deeper["fidelity"]["spike_f1"] <= 1 and deeper["fidelity"]["exact_vs_reference"]
    e = deeper["energy_j"]["loihi2"]
    assert e["total"] == pytest.approx(e["chip"] + e["host"] + e["bridge"])
    assert e["host"] < scnn["energy_j"]["loihi2"]["host"]  # a conv fewer on the host
    with Image.open(out / "sweep.png") as png:
        png.verify()
    with Image.open(out / "sweep.png") as png:
        assert png.format == "PNG" and png.size[0] > 300 and png.size[1] > 200
    page = (out / "report.html").read_text()
    assert "all-CNN twin" in page and "data:image/png;base64," in page
    # the sweep as a section of a profile's report
    image = out / "crop.png"
    Image.fromarray(np.full((32, 32, 3), 120, np.uint8)).save(image)
    run = run_cli("profile", str(out / "bundles" / "scnn_seed0"), "--image", str(image), "--random-mask", "1",
                  "--backend", "reference", "--report", str(tmp_path / "report"), "--sweep", str(out / "sweep.json"))
    assert run.returncode == 0, run.stderr
    assert "all-CNN twin and deeper spiking variants" in (tmp_path / "report" / "report.html").read_text()
    # a second sweep into the same folder continues the models only when asked
    with pytest.raises(UserError, match="resume=True"):
        run_sweep(tiny_sweep(out), log=lines.append, progress=False)
    with pytest.raises(UserError, match="other settings"):
        run_sweep(tiny_sweep(out, lr=1e-3, resume=True), log=lines.append, progress=False)
    with pytest.raises(UserError, match="other settings"):  # the loss is a training setting like the rate
        run_sweep(tiny_sweep(out, loss="image", resume=True), log=lines.append, progress=False)
    assert document["protocol"]["loss"] == "hole"  # the default, as train's
    assert torch.load(out / "models" / "scnn_seed0.pt", weights_only=True)["train_config"]["loss"] == "hole"


def test_sweep_refuses_bad_settings_before_any_work(tmp_path: Path) -> None:
    for overrides, message in (({"variants": (1, 4)}, "4 spiking layers"), ({"seeds": 0}, "seeds=0"),
                               ({"variants": (1, 1)}, "distinct"), ({"hw": ("gpu",)}, "no neuromorphic"),
                               ({"force": True, "resume": True}, "both")):
        with pytest.raises(UserError, match=message):
            run_sweep(SweepConfig(out=str(tmp_path / "out"), **overrides))  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()
    result = run_cli("sweep", "--out", str(tmp_path / "out"), "--loss", "l1", timeout=120)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "l1" in result.stderr
    result = run_cli("sweep", "--out", str(tmp_path / "out"), "--variants", "0,x", timeout=120)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "--variants" in result.stderr


def test_demo_headline_compares_with_the_twin() -> None:
    from neurodeploy.inpainter.demo import DemoSummary

    sweep = {"protocol": {"epochs": 2, "seeds": [0, 1]},
             "variants": {"all_cnn": {"psnr_hole": 13.0}, "scnn": {"psnr_hole": 12.5}}}
    quality = twin_quality(sweep, 1, "examples/sweep/sweep.json")
    assert quality is not None and quality["psnr_vs_twin"] == pytest.approx(-0.5)
    assert twin_quality(sweep, 2, "x") is None and twin_quality(sweep, 0, "x") is None
    fidelity = {"psnr_vs_float": 48.0, "spike_f1": 0.9967, "spike_precision": 0.99, "spike_recall": 0.99,
                "exact_vs_reference": True}
    lines = DemoSummary(16.13, 17.14, fidelity, 997_889, 2.413e-1, 2.517e-1, Path("r.html"), quality).lines()
    assert all(len(f"  {line}") <= 80 for line in lines), lines
    assert lines[0].startswith("against its all-CNN twin") and "saves 4.1%" in lines[1]
    assert "(2 epochs, 2 seeds)" in lines[2] and "12.50 vs twin 13.00 dB (-0.50 dB)" in lines[3]
    assert lines[4] == "  (sweep: examples/sweep/sweep.json)"
    filled = twin_quality({**sweep, "hole_fill_alone": {"psnr_hole": 19.59}}, 1, "s.json")
    assert "; hole fill alone 19.59 dB" in DemoSummary(16.13, 17.14, fidelity, 1, 1.0, 2.0, Path("r.html"),
                                                       filled).lines()[3]
    costly = DemoSummary(16.13, 17.14, fidelity, 1, 3e-1, 2.5e-1, Path("r.html")).lines()
    assert "costs 20.0% more" in costly[1] and "not measured here" in costly[2]
    converged = {"protocol": {"epochs": "until converged", "seeds": [0, 1]},
                 "variants": {name: {**v, "per_seed": [{"epochs_trained": e, "converged": True} for e in (10, 14)]}
                              for name, v in sweep["variants"].items()}}
    assert twin_quality(converged, 1, "x")["budget"] == "converged in 10-14 epochs"  # type: ignore[index]
