"""neurodeploy profile on format-2 (NIR graph) bundles: exact counts per chip layer, host node and cut."""

from __future__ import annotations

import json
from pathlib import Path

import nir
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neurodeploy.bundle.format import Bundle
from neurodeploy.cost.counting import chip_layer_counts, conv_synops
from neurodeploy.cost.profile import profile_graph
from neurodeploy.inpainter.conversion import convert
from neurodeploy.inpainter.profile import profile

from .conftest import run_cli

# x: 4 inputs, T = 4 steps; 1 + 2 + 0 + 4 = 7 input events
X = np.array([[1, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0], [1, 1, 1, 1]], dtype=np.float32)


def _dense_graph() -> nir.NIRGraph:
    """Input(4) -> Linear a (3x4) -> IF -> Linear b (2x3) -> IF -> Linear c (1x2, host) -> Output.

    Weights of 2 into thresholds of 1 with reset to 0: a neuron fires exactly
    at the steps where one of its inputs spikes. a0 reads x0, a1 reads x1, a2
    reads x2 and x3; b0 reads a0, b1 reads a1 and a2.
    """
    wa = np.zeros((3, 4), np.float32)
    wa[0, 0] = wa[1, 1] = wa[2, 2] = wa[2, 3] = 2.0
    wb = np.zeros((2, 3), np.float32)
    wb[0, 0] = wb[1, 1] = wb[1, 2] = 2.0
    ones = np.ones

    nodes = {
        "input": nir.Input(input_type={"input": np.array([4])}),
        "a": nir.Linear(weight=wa), "a_if": nir.IF(r=ones(3, np.float32), v_threshold=ones(3, np.float32)),
        "b": nir.Linear(weight=wb), "b_if": nir.IF(r=ones(2, np.float32), v_threshold=ones(2, np.float32)),
        "c": nir.Linear(weight=np.array([[1.0, -1.0]], np.float32)),
        "output": nir.Output(output_type={"output": np.array([1])}),
    }
    edges = [("input", "a"), ("a", "a_if"), ("a_if", "b"), ("b", "b_if"), ("b_if", "c"), ("c", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


@pytest.fixture(scope="module")
def dense_bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    root = tmp_path_factory.mktemp("graph_profile")
    graph = _dense_graph()
    graph.infer_types()
    nir.write(root / "dense.nir", graph)
    return convert(root / "dense.nir", root / "dense.bundle")


def test_two_layer_dense_graph_counts_equal_the_hand_computed_ones(dense_bundle: Bundle) -> None:
    m = dense_bundle.manifest
    assert [s["place"] for s in m["segments"]] == ["host", "chip", "host"]
    summary, raster = profile_graph(dense_bundle, X[None], backend="reference", hw=["loihi"])
    a, b = summary["layers"]
    assert (a["name"], a["kind"], b["name"], b["kind"]) == ("a_if", "dense", "b_if", "dense")
    # a spikes per step: [1,0,0], [0,1,1], none, [1,1,1]; b: [1,0], [0,1], none, [1,1]
    assert a["spikes_per_step"] == [1, 2, 0, 3] and b["spikes_per_step"] == [1, 1, 0, 2]
    assert raster.shape == (4, 3) and raster.sum() == 6
    assert a["input_events"] == 7 and a["synops"] == 7 * 3 and a["synops_per_step"] == [3, 6, 0, 12]
    assert b["input_events"] == 6 and b["synops"] == 6 * 2
    assert (a["neuron_updates"], b["neuron_updates"]) == (3 * 4, 2 * 4)
    assert a["firing_rate"] == pytest.approx(6 / 12) and b["firing_rate"] == pytest.approx(4 / 8)
    assert summary["host_macs"] == 2 * 1 * 4  # Linear c, 2 -> 1, every step
    assert summary["dense_snn_macs"] == (3 * 4 + 2 * 3) * 4
    cut_in, cut_out = summary["cuts"]
    assert (cut_in["src"], cut_in["dst"], cut_in["direction"], cut_in["payload"]) == \
        ("input", "a", "host->chip", "spikes")
    assert (cut_out["src"], cut_out["dst"], cut_out["direction"]) == ("b_if", "c", "chip->host")
    # 4 neurons: 2 address bits per event, bitmap 4 bits: min(2·[1,2,0,4], 4) = 2 + 4 + 0 + 4
    assert cut_in["bits"] == 10 and cut_in["events"] == 7
    # 2 neurons: 1 address bit per event, bitmap 2 bits: min([1,1,0,2], 2)
    assert cut_out["bits"] == 4 and cut_out["events"] == 4
    assert summary["bridge_bits"] == 14
    assert summary["bridge_bits_by_direction"] == {"host_to_chip": 10, "chip_to_host": 4}
    loihi = summary["energy_j"]["loihi"]
    expected_snn = (21 + 12) * (23.6e-12 + 3.5e-12) + (12 + 8) * 81e-12
    assert loihi["snn_dynamic"] == pytest.approx(expected_snn, rel=1e-9)
    # busiest core per Lava step (a at step t, b one step later): a's 3 neuron updates (25.2 ns) except
    # at t = 3, where a's 12 synops take 42 ns; plus the 465 ns barrier on each of T + depth = 6 steps
    per_inference = 5 * 3 * 8.4e-9 + 12 * 3.5e-9 + 6 * 465e-9
    assert summary["latency_s"]["loihi"]["per_inference"] == pytest.approx(per_inference, rel=1e-9)
    assert summary["latency_s"]["loihi"]["per_step"] == pytest.approx(per_inference / 6, rel=1e-9)
    assert loihi["snn_static"] == pytest.approx(0.1044 * 1 * per_inference, rel=1e-9)
    assert loihi["snn"] == pytest.approx(loihi["snn_dynamic"] + loihi["snn_static"], rel=1e-12)
    mapped = summary["mapping"]["loihi"]
    assert (mapped["cores"], mapped["chips"], mapped["fits"], mapped["limiting"]) == (2, 1, True, None)
    assert [m["neurons_per_core"] for m in mapped["layers"]] == [3, 2]
    nb = summary["neurobench"]
    # every weight of a and b is counted where nonzero: a's input events each reach 1 nonzero weight
    # (x0..x3 -> a0, a1, a2, a2), b's inputs a0, a1, a2 each reach 1; binary inputs: accumulates
    assert nb["synaptic_operations"] == {"Effective_MACs": 0.0, "Effective_ACs": 7.0 + 6.0, "Dense": (12 + 6) * 4.0}
    assert nb["activation_sparsity"] == pytest.approx(1 - (6 + 4) / (12 + 8))
    assert nb["connection_sparsity"] == pytest.approx((8 + 3) / (12 + 6))
    assert summary["samples"] == 1 and summary["timesteps"] == 4


def test_counts_are_averaged_over_samples_and_profile_dispatches_on_the_bundle(dense_bundle: Bundle) -> None:
    x = np.stack([X, np.zeros_like(X)])
    summary, _ = profile(dense_bundle, x, backend="reference", hw=["loihi"])
    assert summary["samples"] == 2
    assert summary["layers"][0]["synops"] == pytest.approx(21 / 2)
    assert summary["layers"][0]["neuron_updates"] == 12  # every neuron updates, spikes or not
    assert summary["bridge_bits"] == pytest.approx(14 / 2)


def test_lava_profile_counts_what_the_reference_counts(dense_bundle: Bundle) -> None:
    """The same graph profiled in Lava: the chip's spikes are bit-exact, so every count is the same."""
    x = np.stack([X, X[::-1]])
    lava, _ = profile(dense_bundle, x, backend="lava", hw=["loihi"])
    reference, _ = profile(dense_bundle, x, backend="reference", hw=["loihi"])
    assert lava["exact_vs_reference"] is True
    assert lava["layers"] == reference["layers"] and lava["cuts"] == reference["cuts"]
    assert lava["energy_j"] == reference["energy_j"] and lava["backend"] == "lava"


def test_recurrent_synops_count_the_previous_steps_own_spikes() -> None:
    events = np.array([[1, 0], [0, 0], [1, 1]])
    spikes = np.array([[1, 1, 0], [0, 1, 0], [0, 0, 0]])
    layer = chip_layer_counts("r", "dense_rec", events, spikes, (3, 2), 0)
    # input: [1, 0, 2] events x 3; recurrence: [0, 2, 1] own spikes of the step before x 3
    assert layer.synops_per_step == [3, 6, 9]


def _ones_kernel_synops(events: np.ndarray, weight_shape: tuple[int, ...], stride: tuple[int, int],
                        padding: tuple[int, int]) -> np.ndarray:
    """Independent count: per output, the events its window sees, summed (a ones-kernel convolution)."""
    active = torch.from_numpy((np.asarray(events) != 0).astype(np.float64))
    ones = torch.ones(*weight_shape, dtype=torch.float64)
    return F.conv2d(active, ones, stride=stride, padding=padding).sum(dim=(1, 2, 3)).numpy()


@pytest.mark.parametrize(("kernel", "stride", "padding"),
                         [((3, 3), (1, 1), (1, 1)), ((3, 3), (2, 2), (1, 1)), ((4, 2), (2, 3), (0, 1)),
                          ((5, 5), (3, 1), (2, 0)), ((2, 2), (2, 2), (0, 0))])
def test_conv_synops_equal_a_ones_kernel_convolution(kernel, stride, padding) -> None:
    rng = np.random.default_rng(sum(kernel) + sum(stride))
    events = (rng.random((4, 3, 11, 13)) < 0.3).astype(np.uint8) * rng.integers(1, 256, (4, 3, 11, 13))
    out_hw = tuple((n + 2 * p - k) // s + 1 for n, k, s, p in zip((11, 13), kernel, stride, padding, strict=True))
    got = conv_synops(events, 5, kernel, stride, padding, out_hw)
    assert np.array_equal(got, _ones_kernel_synops(events, (5, 3, *kernel), stride, padding))


@pytest.fixture(scope="module")
def sinabs_case(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from .test_chip_segments import _sinabs_net

    root = tmp_path_factory.mktemp("graph_profile_sinabs")
    _, graph = _sinabs_net()
    graph.infer_types()
    nir.write(root / "sinabs.nir", graph)
    convert(root / "sinabs.nir", root / "sinabs.bundle", host=("4",))
    x = (np.random.default_rng(0).random((2, 6, 2, 16, 16)) < 0.4).astype(np.float32)
    np.save(root / "x.npy", x)
    return root / "sinabs.bundle", root / "x.npy"


def test_chip_conv_layers_of_a_real_bundle_count_like_a_ones_kernel(sinabs_case) -> None:
    from neurodeploy.bundle.deployment import ChipPart
    from neurodeploy.runtime.graph_run import run_graph

    path, x_path = sinabs_case
    bundle = Bundle.load(path)
    x = np.load(x_path)
    summary, _ = profile_graph(bundle, x, backend="reference", hw=["loihi"])
    run = run_graph(bundle.deployment, x)
    by_name = {layer["name"]: layer for layer in summary["layers"]}
    checked = 0
    for part in bundle.deployment.parts:
        if not isinstance(part, ChipPart):
            continue
        events = run.payloads[part.index]
        for layer, name in zip(part.layers, part.names, strict=True):
            if layer.kind == "conv":
                per_sample = [_ones_kernel_synops(e.reshape(e.shape[0], *layer.input_shape), layer.weight.shape,
                                                  layer.stride, layer.padding).sum() for e in events]
                assert by_name[name]["synops"] == pytest.approx(np.mean(per_sample), rel=0, abs=1e-9)
                checked += 1
            events = run.spikes[name]
    assert checked == 1  # conv 0 -> IF 1; conv 3 stays on the host with IF 4
    assert [c["direction"] for c in summary["cuts"]] == ["host->chip", "chip->host", "host->chip", "chip->host"]
    # host: SumPool 2 (no MACs), Conv2d 3 (4 -> 8 channels, 3x3, output 8x8), IF 4 (no MACs); T = 6
    assert summary["host_macs"] == 8 * 8 * 8 * 4 * 3 * 3 * 6
    assert all(c["bits"] > 0 for c in summary["cuts"])


def test_profile_cli_on_a_graph_bundle(sinabs_case, tmp_path: Path) -> None:
    path, x_path = sinabs_case
    out = tmp_path / "profile.json"
    result = run_cli("profile", str(path), "--input", str(x_path), "--backend", "reference", "--json", str(out),
                     "--report", str(tmp_path / "report"))
    assert result.returncode == 0, result.stderr
    assert max(len(line) for line in result.stdout.splitlines()) <= 80, result.stdout
    assert "cut" in result.stdout and "synaptic ops" in result.stdout
    summary = json.loads(out.read_text())
    assert {"layers", "host_macs", "bridge_bits", "cuts", "energy_j", "baseline_j"} <= set(summary)
    for layer in summary["layers"]:
        assert {"name", "kind", "spikes", "firing_rate", "synops", "neuron_updates", "timesteps",
                "spikes_per_step"} <= set(layer)
    for cut in summary["cuts"]:
        assert {"src", "dst", "direction", "payload", "bits"} <= set(cut)
    assert {"loihi", "loihi2"} <= set(summary["energy_j"]) and summary["baseline_j"]
    assert (tmp_path / "report" / "report.html").is_file()
    wrong = run_cli("profile", str(path), "--image", str(x_path), "--random-mask", "1", "--backend", "reference")
    assert wrong.returncode != 0 and "graph" in wrong.stderr
