"""Placement "all" (issue 26): the inpainter's host CNN as sigma-delta layers, converted, explained and simulated."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from neurodeploy.errors import UserError
from neurodeploy.inpainter.conversion import convert
from neurodeploy.inpainter.data import random_mask
from neurodeploy.inpainter.model import HybridInpainter, ModelConfig
from neurodeploy.inpainter.sd_placement import (
    DEFAULT_DELTA_THRESHOLD,
    FIRST_WEIGHT_EXP,
    SigmaDeltaTally,
    plan_layers,
    reshaped,
    run_sigma_delta,
    sigma_delta_block,
)
from neurodeploy.inpainter.simulator import SimulationInput, Simulator
from tests.conftest import TINY, run_cli

SHIPPED = Path(__file__).resolve().parents[1] / "examples" / "models" / "scnn_inpaint.pt"


@pytest.fixture(scope="module")
def all_on_chip(tmp_path_factory: pytest.TempPathFactory):
    return convert(SHIPPED, tmp_path_factory.mktemp("all") / "bundle", chip="all")


def small_photo(seed: int = 0, side: int = 96) -> SimulationInput:
    import skimage.data

    image = np.ascontiguousarray(skimage.data.astronaut()[120:120 + side, 160:160 + side])
    return SimulationInput("astronaut crop", image, random_mask(np.random.default_rng(seed), side, side))


def test_the_default_placement_keeps_the_cnn_on_the_host_and_all_moves_every_conv_the_chip_runs(all_on_chip) -> None:
    config = all_on_chip.manifest["model_config"]
    default = plan_layers(ModelConfig.from_dict(config))
    assert [p.place for p in default if p.name.startswith("cnn")] == ["host"] * 5
    every = {p.name: p for p in plan_layers(ModelConfig.from_dict(config), "all")}
    assert [every[f"cnn{k}"].place for k in range(1, 6)] == ["chip"] * 5
    assert every["cnn5"].runs_as == "linear sigma readout" and every["residual"].place == "host"
    assert "weight exponent 6" in every["cnn1"].reason and every["cnn2"].reason == "stock netx"

    # the manifest: no host conv left, the file marked as one stock netx cannot load, the first layer's 1/T
    segments = all_on_chip.manifest["segments"]
    assert [s["place"] for s in segments] == ["chip", "chip", "host"]
    assert not any(n.startswith("cnn") or n == "host_cnn" for n in segments[2]["nodes"])
    sd = all_on_chip.sigma_delta_segment
    assert sd["stock_netx"] is False and [layer["stock_netx"] for layer in sd["layers"]] == \
        [False, True, False, False, False]
    layers = all_on_chip.sigma_delta_layers
    assert layers[0].weight_exp == FIRST_WEIGHT_EXP and layers[0].input_step == 1 / all_on_chip.timesteps
    assert sd["delta_threshold"] == DEFAULT_DELTA_THRESHOLD and layers[-1].activation == "none"


def test_the_shipped_model_on_the_chip_keeps_35_db_and_lava_torch_and_reference_agree(all_on_chip) -> None:
    item = small_photo()
    results = {}
    for backend in ("reference", "torch", "lava"):
        with Simulator(all_on_chip, backend) as sim:
            results[backend] = sim.run(item)
    ref = results["reference"]
    assert ref.fidelity["psnr_vs_float"] >= 35
    for backend in ("torch", "lava"):
        assert np.array_equal(results[backend].output, ref.output)
        assert results[backend].fidelity["sigma_delta"] == ref.fidelity["sigma_delta"]
    scores = ref.fidelity["sigma_delta"]
    assert [s["name"] for s in scores] == [f"cnn{k}" for k in range(1, 6)]
    assert all(0 < s["fraction_sent"] < 1 and s["relative_activation_error"] < 0.15 for s in scores)


def test_lava_equals_the_reference_bit_for_bit_on_the_bundles_layers(all_on_chip) -> None:
    # the bundle's own five layers on a 24 x 24 block of LIF-like spikes, every layer's payloads of every step
    layers = reshaped(all_on_chip.sigma_delta_layers, (24, 24))
    spikes = (np.random.default_rng(4).random((all_on_chip.timesteps, 32, 24, 24)) < 0.2).astype(np.int64)
    reference = run_sigma_delta(layers, spikes, "reference")
    for backend in ("torch", "lava"):
        for k, (a, b) in enumerate(zip(reference, run_sigma_delta(layers, spikes, backend), strict=True)):
            assert np.array_equal(a, b), f"{backend}: layer cnn{k + 1} differs"
    assert all(np.count_nonzero(out) for out in reference)


def test_a_sigmoid_readout_stays_on_the_host_and_still_runs(tmp_path: Path) -> None:
    config = dataclasses.replace(TINY, final_activation="sigmoid")
    torch.manual_seed(0)
    bundle = convert(HybridInpainter(config).eval(), tmp_path / "b", tile=24, chip="all")
    plan = {p.name: p for p in plan_layers(config, "all")}
    assert plan["cnn5"].place == "host" and "sigmoid" in plan["cnn5"].reason
    assert len(bundle.sigma_delta_layers) == 4 and "host_cnn" in bundle.manifest["segments"][2]["nodes"]
    with Simulator(bundle, "reference") as sim:
        result = sim.run(small_photo(1, 32))
    assert result.fidelity["psnr_vs_float"] >= 25 and len(result.fidelity["sigma_delta"]) == 4


def test_the_cli_explains_and_refuses_in_one_line(tmp_path: Path) -> None:
    shown = run_cli("convert", str(SHIPPED), "--plan", "--chip", "all")
    assert shown.returncode == 0 and "linear sigma" in shown.stdout and "nothing written" in shown.stdout
    bad = run_cli("convert", str(SHIPPED), "--chip", "everything", "-o", str(tmp_path / "x"))
    assert bad.returncode == 2 and "--chip all" in bad.stderr and not (tmp_path / "x").exists()
    with pytest.raises(UserError, match="delta threshold"):
        convert(SHIPPED, tmp_path / "y", chip="all", delta_threshold=-1.0)


def test_blocks_with_their_halo_count_what_the_whole_image_does(all_on_chip) -> None:
    # two 32-row blocks of a 64 x 32 spike image, each read with the CNN's halo (20 px): their owned rows
    # give the whole image's messages, input events and synaptic operations, step by step
    layers, halo = all_on_chip.sigma_delta_layers, 20
    spikes = (np.random.default_rng(6).random((all_on_chip.timesteps, 32, 64, 32)) < 0.2).astype(np.int64)
    whole = [SigmaDeltaTally(f"cnn{k + 1}") for k in range(len(layers))]
    whole_out = sigma_delta_block(layers, spikes, "torch", whole)
    tiled = [SigmaDeltaTally(f"cnn{k + 1}") for k in range(len(layers))]
    for top in (0, 32):
        start, stop = max(0, top - halo), min(64, top + 32 + halo)
        window = spikes[..., start:stop, :]
        pad = (-window.shape[-2]) % 4
        out = sigma_delta_block(layers, np.pad(window, ((0, 0), (0, 0), (0, pad), (0, 0))), "torch", tiled,
                                owned=(slice(top - start, top - start + 32), slice(0, 32)))
        assert torch.equal(out[..., top - start:top - start + 32, :], whole_out[..., top:top + 32, :])
    for a, b in zip(whole, tiled, strict=True):
        assert np.array_equal(a.messages, b.messages) and np.array_equal(a.synops, b.synops)
        assert np.array_equal(a.input_events, b.input_events) and a.neurons == b.neurons
        assert a.synops.sum() > 0


def test_the_demo_shows_the_three_placements_side_by_side(tmp_path: Path) -> None:
    from neurodeploy.inpainter.demo import run_demo

    summary = run_demo(tmp_path / "demo", size=64, backend="reference", chip="all")
    lines = "\n".join(summary.lines())
    assert "all on the GPU (twin)" in lines and "hybrid (LIF on chip)" in lines and "all on the chip" in lines
    on_chip = summary.all_on_chip
    assert on_chip is not None and 0 < on_chip["energy_loihi2"] < summary.energy_loihi2
    assert on_chip["psnr_vs_float"] >= 35 and (tmp_path / "demo" / "all-on-chip.png").is_file()
    assert "all on the chip" not in "\n".join(run_demo(tmp_path / "plain", size=64, backend="reference").lines())
