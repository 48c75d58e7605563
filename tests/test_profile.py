"""neurodeploy profile: exact counts, the energy model, hardware profiles, the report."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neurodeploy.cost.counting import (
    EventTally,
    InferenceCounts,
    LayerCounts,
    count_tallies,
    host_macs,
    synaptic_ops,
)
from neurodeploy.cost.energy import estimate
from neurodeploy.cost.hw import list_profiles, load_profile
from neurodeploy.errors import UserError
from neurodeploy.inpainter.data import builtin_paths
from neurodeploy.inpainter.model import ModelConfig, host_conv_shapes
from neurodeploy.io import read_image

from .conftest import run_cli


def ones_kernel_synops(events: np.ndarray, c_out: int, kernel: int) -> np.ndarray:
    """Independent count: convolve each step's event map with a ones kernel of the layer's shape."""
    active = torch.from_numpy((events != 0).astype(np.float64))
    ones = torch.ones(c_out, events.shape[1], kernel, kernel, dtype=torch.float64)
    return F.conv2d(active, ones, padding=kernel // 2).sum(dim=(1, 2, 3)).numpy()


@pytest.mark.parametrize("kernel", [1, 3, 5])
def test_synops_equal_a_ones_kernel_convolution_on_random_input(kernel: int) -> None:
    events = (np.random.default_rng(kernel).random((5, 3, 11, 14)) < 0.3).astype(np.uint8)
    assert np.array_equal(synaptic_ops(events, 7, kernel), ones_kernel_synops(events, 7, kernel))


def test_synops_equal_a_ones_kernel_convolution_on_an_image_with_graded_events() -> None:
    rgb = read_image(builtin_paths("val")[0])[:64, :80]
    payload = np.transpose(rgb, (2, 0, 1))[None].repeat(4, axis=0)  # graded: every nonzero pixel is an event
    payload[:, :, 20:30, 10:40] = 0  # a hole: no events there
    assert np.array_equal(synaptic_ops(payload, 32, 3), ones_kernel_synops(payload, 32, 3))
    tally = EventTally.of(payload, np.zeros((4, 32, 64, 80), np.uint8), 3)
    counts = count_tallies([tally], ["lif0"], 8, host_conv_shapes(ModelConfig()))
    layer = counts.layers[0]
    assert layer.synop_payload_bits == layer.synops * 8
    assert layer.neuron_updates == 32 * 64 * 80 * 4 and layer.spikes == 0 and layer.sparsity == 1.0


def test_host_macs_count_every_conv_and_transposed_conv() -> None:
    config = ModelConfig(snn_channels=4, cnn_channels=(5, 6, 7, 8))
    macs = host_macs(host_conv_shapes(config), 16, 24)
    by_hand = (5 * 8 * 12 * 4 * 9) + (6 * 4 * 6 * 5 * 9) + (7 * 4 * 6 * 6 * 9) + (8 * 8 * 12 * 7 * 4) \
        + (3 * 16 * 24 * 8 * 4)
    assert macs == by_hand
    # the same count from the model itself: hooks on every conv layer
    from neurodeploy.inpainter.model import HostCNN

    cnn, seen = HostCNN(config), []

    def hook(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        if isinstance(module, torch.nn.ConvTranspose2d):
            seen.append(inputs[0].numel() * module.out_channels * 16)  # 4x4 taps per input pixel
        else:
            seen.append(output.numel() * module.in_channels * module.kernel_size[0] * module.kernel_size[1])

    for m in cnn.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            m.register_forward_hook(hook)
    cnn(torch.zeros(1, 4, 16, 24), torch.zeros(1, config.snn_in_channels, 16, 24))
    assert sum(seen) == macs


def hand_built_counts() -> InferenceCounts:
    layer = LayerCounts(name="l", timesteps=4, neurons=100, input_events=50, input_events_per_step=[10, 20, 10, 10],
                        payload_bits=8, synops=1000, synops_per_step=[250] * 4, synop_payload_bits=8000, spikes=30,
                        spikes_per_step=[5, 10, 10, 5], spikes_per_channel=[30], neuron_updates=400,
                        firing_rate=0.075, firing_rate_per_channel=[0.075], sparsity=0.925)
    return InferenceCounts(layers=[layer], host_macs=2_000_000, dense_snn_macs=36_000,
                           bridge_events={"host_to_chip": 50, "chip_to_host": 30},
                           bridge_bits={"host_to_chip": 700, "chip_to_host": 300})


@pytest.mark.parametrize("profile", [p.name for p in list_profiles() if p.kind == "neuromorphic"])
def test_energy_of_a_hand_built_case_equals_the_hand_computed_value(profile: str) -> None:
    snn, gpu = load_profile(profile), load_profile("gpu")
    e = estimate(hand_built_counts(), snn, gpu)
    synop = snn.energy["synop_j"].value + snn.energy["spike_route_j"].value
    expected_snn = 1000 * synop + 400 * snn.energy["neuron_update_j"].value  # static power x unknown time = 0
    assert e.snn == pytest.approx(expected_snn, rel=1e-12)
    assert e.host_j == pytest.approx(2_000_000 * 0.3e-9, rel=1e-12)
    assert e.bridge == pytest.approx(1000 * snn.energy["io_bit_j"].value, rel=1e-12)
    assert e.total == pytest.approx(e.snn + e.host_j + e.bridge, rel=1e-12)
    assert e.all_cnn_baseline == pytest.approx((36_000 + 2_000_000) * 0.3e-9, rel=1e-12)


@pytest.mark.parametrize("host", [p.name for p in list_profiles() if p.kind == "host"])
def test_every_host_profile_prices_macs_by_hand(host: str) -> None:
    profile = load_profile(host)
    e = estimate(hand_built_counts(), load_profile("loihi"), profile)
    assert e.host_j == pytest.approx(2_000_000 * profile.energy["mac_j"].value, rel=1e-12)
    assert e.all_cnn_baseline == pytest.approx(2_036_000 * profile.energy["mac_j"].value, rel=1e-12)


def test_loihi_profile_reproduces_kerasspiking_device_table() -> None:
    # KerasSpiking ModelEnergy, device "loihi": energy_per_synop=(23.6 + 3.5)e-12, energy_per_neuron=81e-12
    counts = hand_built_counts()
    e = estimate(counts, load_profile("loihi"), load_profile("gpu"))
    assert e.snn == pytest.approx(1000 * (23.6 + 3.5) * 1e-12 + 400 * 81e-12, rel=1e-12)
    spinnaker2 = estimate(counts, load_profile("spinnaker2"), load_profile("gpu"))
    assert spinnaker2.snn == pytest.approx(1000 * 450e-12 + 400 * 2.19e-9, rel=1e-12)


def test_every_shipped_figure_has_a_source_and_derived_ones_say_how() -> None:
    for profile in list_profiles():
        for figure in [*profile.energy.values(), *profile.latency.values()]:
            assert figure.source and figure.value >= 0
            assert figure.kind == "measured" or figure.derivation


def test_bad_profiles_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="known profiles: arm, cmos45nm"):
        load_profile("loihi3")
    text = (Path(__file__).parents[1] / "hw_profiles" / "loihi.toml").read_text()
    missing = tmp_path / "missing.toml"
    missing.write_text(text.replace("[energy.neuron_update_j]", "[energy.unused_table]"))
    with pytest.raises(UserError, match=r"unknown field energy\.unused_table|missing the field energy\.neuron"):
        load_profile(missing)
    negative = tmp_path / "negative.toml"
    negative.write_text(text.replace("value = 81e-12", "value = -81e-12"))
    with pytest.raises(UserError, match="negative"):
        load_profile(negative)
    not_toml = tmp_path / "profile.toml"
    not_toml.write_text("name = [unclosed\n")
    with pytest.raises(UserError, match="not valid TOML"):
        load_profile(not_toml)
    result = run_cli("hw", "show", str(negative))
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0 and "negative" in result.stderr


def test_hw_list_and_show() -> None:
    listed = run_cli("hw", "list")
    assert listed.returncode == 0 and "loihi2" in listed.stdout and "spinnaker2" in listed.stdout
    shown = run_cli("hw", "show", "loihi")
    assert shown.returncode == 0 and "Davies" in shown.stdout


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_profile_writes_json_and_a_report_that_shows_every_plot(tmp_path: Path, tiny_bundle: Path) -> None:
    from PIL import Image

    image = tmp_path / "img.png"
    Image.fromarray(read_image(builtin_paths("val")[1])[:48, :48]).save(image)
    report, out = tmp_path / "report", tmp_path / "profile.json"
    result = run_cli("profile", str(tiny_bundle), "--image", str(image), "--random-mask", "3",
                     "--backend", "reference", "--json", str(out), "--report", str(report))
    assert result.returncode == 0, result.stderr
    summary = json.loads(out.read_text())
    layer = summary["layers"][0]
    assert {"name", "spikes", "synops", "neuron_updates", "firing_rate"} <= set(layer)
    assert summary["host_macs"] > 0 and summary["bridge_bits"] > 0
    for name in ("loihi", "loihi2", "spinnaker2"):
        assert {"snn", "host", "bridge", "total", "all_cnn_baseline"} <= set(summary["energy_j"][name])
    html = (report / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 8  # the four plots, the core mapping and 3 pictures
    assert summary["mapping"]["loihi2"]["fits"] is True and summary["latency_s"]["loihi2"]["per_step"] > 0
    assert summary["neurobench"]["synaptic_operations"]["Effective_MACs"] > 0  # the graded input: MACs
    # self-contained: nothing fetched from elsewhere (the base64 data itself may spell anything)
    markup = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", html).lower()
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:|//)|url\(|@import", markup)
    chromium = _chromium()
    if chromium is None:
        if os.environ.get("NEURODEPLOY_REQUIRE_CHROMIUM"):
            pytest.fail("chromium is required here (NEURODEPLOY_REQUIRE_CHROMIUM is set) but not installed")
        pytest.skip("Debian's chromium is not installed; .ci/run installs it")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'chrome'}", "--virtual-time-budget=5000", "--window-size=1400,2400"]
    url = (report / "report.html").as_uri()
    dom = subprocess.run([chromium, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert "<title>plots loaded: 8/8</title>" in dom.stdout
    shot = tmp_path / "shot.png"
    subprocess.run([chromium, *flags, f"--screenshot={shot}", url], capture_output=True, timeout=120)
    pixels = np.asarray(Image.open(shot).convert("L"))
    assert pixels.shape[0] > 1000 and pixels.std() > 10  # a rendered page with plots, not a blank one
