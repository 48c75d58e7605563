"""A collapsed seed of a sweep is flagged, left out of the means with its reason, and said so in the JSON, the
text table, sweep.png's legend and report.html; figures over fewer seeds say which (issue 33, item 7).

Built from the shipped sweep's records (examples/sweep/sweep.json) with one seed made collapsed as the README's
smoke sweep collapsed one (constant validation MSE, 6.34 dB, a silent chip), and from a real model with a dead
final ReLU: no training here.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from neurodeploy.cost.report import sweep_figure, write_sweep_report
from neurodeploy.inpainter.data import EvalSet, builtin_paths
from neurodeploy.inpainter.evaluate import scnn_inpainter
from neurodeploy.inpainter.sweep_results import aggregate, collapse_of, compare_to_twin, hole_output_std, read_sweep
from tests.conftest import tiny_model

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "examples" / "sweep" / "sweep.json"


def _shipped() -> dict[str, Any]:
    return json.loads(SHIPPED.read_text())


def _collapse(run: dict[str, Any]) -> dict[str, Any]:
    """The record of a seed like the smoke sweep's collapsed one: all zeros in the holes, weights unmoved,
    the chip's last layer silent."""
    run = copy.deepcopy(run)
    flat = run["val_mse_curve"][0]
    run.update(psnr_hole=6.34, ssim=0.61, mse_hole=0.2323, val_mse=flat, hole_output_std=0.0,
               val_mse_curve=[flat] * len(run["val_mse_curve"]))
    run["deployment"]["spikes_per_layer"][-1] = 0.0
    run["deployment"]["fidelity"]["spike_f1"] = None
    return run


def _with_collapsed_seed(document: dict[str, Any], name: str = "spiking2", seed: int = 1) -> dict[str, Any]:
    variant = document["variants"][name]
    runs = [_collapse(r) if r["seed"] == seed else r for r in variant["per_seed"]]
    document["variants"][name] = {**aggregate(runs, variant["spiking_layers"]), "per_seed": runs}
    compare_to_twin(document["variants"])
    return document


def test_the_shipped_runs_are_not_collapsed_and_their_means_are_unchanged() -> None:
    # the shipped networks add nothing measurable to the smooth fill, yet their output follows the image:
    # not collapsed, every seed in the means
    for name, v in _shipped()["variants"].items():
        for run in v["per_seed"]:
            assert collapse_of(run) == [], (name, run["seed"])
        again = aggregate(v["per_seed"], v["spiking_layers"])
        assert again["seeds_in_means"] == [0, 1] and again["collapsed"] == [] and again["means_note"] is None
        assert again["psnr_hole"] == pytest.approx(v["psnr_hole"]) and again["ssim"] == pytest.approx(v["ssim"])
        if v["spiking_layers"]:
            assert again["fidelity"]["spike_f1"] == pytest.approx(v["fidelity"]["spike_f1"])
            assert again["fidelity"]["spike_f1_seeds"] == [0, 1] and "note" not in again["fidelity"]


def test_a_collapsed_seed_is_left_out_of_the_means_with_its_signs() -> None:
    document = _with_collapsed_seed(_shipped())
    v = document["variants"]["spiking2"]
    good = next(r for r in v["per_seed"] if r["seed"] == 0)
    assert v["seeds"] == [0, 1] and v["seeds_in_means"] == [0]
    assert [c["seed"] for c in v["collapsed"]] == [1]
    signs = " | ".join(v["collapsed"][0]["signs"])
    assert "constant output" in signs and "no learning" in signs and "silent chip" in signs
    assert "seed 1" in v["means_note"] and "collapsed" in v["means_note"]
    # the means are seed 0's alone, not dragged down by the 6.34 dB of the collapsed one
    assert v["psnr_hole"] == pytest.approx(good["psnr_hole"]) and v["psnr_hole_std"] == 0.0
    assert v["fidelity"]["spike_f1"] == pytest.approx(good["deployment"]["fidelity"]["spike_f1"])
    assert v["energy_j"]["loihi2"]["total"] == pytest.approx(good["deployment"]["energy_j"]["loihi2"]["total"])
    assert v["energy_seeds"] == [0] and v["fidelity"]["spike_f1_seeds"] == [0]
    twin = document["variants"]["all_cnn"]
    assert v["psnr_vs_twin"] == pytest.approx(good["psnr_hole"] - twin["psnr_hole"])


@pytest.mark.parametrize("sign", ["constant output", "no learning", "silent chip"])
def test_each_sign_alone_flags_a_run(sign: str) -> None:
    run = copy.deepcopy(_shipped()["variants"]["spiking2"]["per_seed"][1])
    run["hole_output_std"] = 14.0  # a real run's spread: tens of levels
    assert collapse_of(run) == []
    if sign == "constant output":
        run["hole_output_std"] = 0.3
    elif sign == "no learning":
        run["val_mse_curve"] = [0.0312] * 2
    else:
        run["deployment"]["spikes_per_layer"] = [1200.0, 0.0]
    assert [s.split(":")[0] for s in collapse_of(run)] == [sign]


def test_every_seed_collapsed_leaves_no_mean_and_the_report_says_so(tmp_path: Path) -> None:
    document = _shipped()
    for seed in (0, 1):
        document = _with_collapsed_seed(document, "spiking3", seed)
    v = document["variants"]["spiking3"]
    assert v["psnr_hole"] is None and v["seeds_in_means"] == [] and v["energy_j"] == {}
    assert v["means_note"].startswith("no means: every seed collapsed")
    assert v["psnr_vs_twin"] is None
    page = write_sweep_report(tmp_path, document).read_text()
    assert "every seed collapsed" in page


def test_the_table_the_plot_and_the_report_flag_the_collapsed_seed(tmp_path: Path) -> None:
    from neurodeploy.cli.app import console
    from neurodeploy.cli.demo import _print_sweep

    document = _with_collapsed_seed(_shipped())
    (tmp_path / "sweep.json").write_text(json.dumps(document))
    read_sweep(tmp_path / "sweep.json")
    with console.capture() as text:
        _print_sweep(document)
    table = text.get()
    row = next(line for line in table.splitlines() if line.strip().startswith("spiking2"))
    assert "1 of 2*" in row, table
    assert "* spiking2: means over seed 0 (1 of 2 seeds) only; left out, collapsed: seed 1 (constant output" in table
    page = write_sweep_report(tmp_path, document).read_text()
    assert '<tr class="collapsed"><td>2 spiking layers' in page and "1 of 2 seeds" in page
    assert "left out, collapsed: seed 1 (constant output" in page
    legend = [t.get_text() for t in sweep_figure(document).axes[0].get_legend().get_texts()]
    assert "2 spiking layers (1 of 2 seeds)" in legend
    assert "2 spiking layers seed 1: COLLAPSED, not in the mean" in legend
    assert "SC-NN (1 spiking) (2 seeds)" in legend
    with Image.open(tmp_path / "sweep.png") as png:
        png.verify()


def test_a_fidelity_over_fewer_seeds_says_which() -> None:
    runs = copy.deepcopy(_shipped()["variants"]["scnn"]["per_seed"])
    runs[1]["deployment"]["fidelity"]["spike_f1"] = None  # no spikes to score on seed 1, yet not collapsed
    v = aggregate(runs, 1)
    assert v["seeds_in_means"] == [0, 1] and v["fidelity"]["spike_f1_seeds"] == [0]
    assert v["fidelity"]["note"] == "spike F1 over seed 0 (1 of 2 seeds): no spikes to score on the others"
    runs[1]["deployment"] = {"measured": False, "reason": "Lava failed"}
    v = aggregate(runs, 1)
    assert v["energy_seeds"] == [0] and "over seed 0 (1 of 2 seeds)" in v["energy_note"]
    assert v["fidelity"]["note"] == "spike F1 over seed 0 (1 of 2 seeds): no deployment of the others"


def test_a_real_network_with_a_dead_final_relu_paints_a_constant() -> None:
    samples = list(EvalSet(builtin_paths("val")[:2], crop=32, crops_per_image=2, seed=0))
    model = tiny_model()
    trained = [scnn_inpainter(model)(s.image, s.mask) for s in samples]
    assert hole_output_std(trained, [s.mask for s in samples]) > 1.0
    with torch.no_grad():
        model.cnn.layers[-1][0].bias.fill_(-100.0)  # the final ReLU's input below zero everywhere: all zeros
    dead = [scnn_inpainter(model)(s.image, s.mask) for s in samples]
    spread = hole_output_std(dead, [s.mask for s in samples])
    assert spread == 0.0 and all(np.all(d[s.mask] == 0) for d, s in zip(dead, samples, strict=True))
    assert collapse_of({"hole_output_std": spread, "val_mse_curve": [0.03, 0.02]})[0].startswith("constant output")


# The collapsed seed of the README's smoke sweep as main a953f4a recorded it (spiking2, seed 1; its other
# seed reached 9.62 dB): the means took it in, spike F1 and energy came from seed 0 alone, unsaid.
SMOKE_COLLAPSED = {
    "seed": 1, "mse": 0.04720260512564528, "mse_hole": 0.27026845264880744, "psnr_hole": 6.339086672802727,
    "ssim": 0.7885672259624901, "val_mse": 0.04486704710870981, "best_val_mse": 0.04486704710870981,
    "train_seconds": 127.106425478, "epochs_trained": 2, "converged": None,
    "train_mse_curve": [0.03898726578336209, 0.03448329423554242],
    "val_mse_curve": [0.04486704710870981, 0.04486704710870981],
    "deployment": {"measured": False, "reason": "input step, input scale and activation scale must be positive; "
                                                "calibrate the layer on data that activates it"}}


def test_the_smoke_sweeps_collapsed_seed_is_flagged_and_out_of_the_means() -> None:
    assert collapse_of(SMOKE_COLLAPSED) == ["no learning: validation MSE 0.04487 at all 2 epochs"]
    good = copy.deepcopy(_shipped()["variants"]["spiking2"]["per_seed"][0])
    v = aggregate([good, SMOKE_COLLAPSED], 2)
    assert v["seeds_in_means"] == [0] and v["psnr_hole"] == pytest.approx(good["psnr_hole"])
    assert v["deployed"] and "did not deploy" not in (v.get("energy_note") or "")
    assert v["means_note"].startswith("means over seed 0 (1 of 2 seeds) only; left out, collapsed: seed 1")
