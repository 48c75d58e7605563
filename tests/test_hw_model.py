"""The Loihi 2 step-time and energy model on small layers, by hand, and the profile figures' kinds and bands."""

from __future__ import annotations

from pathlib import Path

import pytest

from neurodeploy.cost.counting import InferenceCounts, LayerCounts
from neurodeploy.cost.energy import estimate
from neurodeploy.cost.hw import load_profile
from neurodeploy.cost.latency import latency, step_times
from neurodeploy.cost.mapping import ChipLayerInfo, map_network
from neurodeploy.errors import UserError

ROOT = Path(__file__).parents[1]


def _two_layers() -> list[ChipLayerInfo]:
    """A bias-driven input layer of 3 x 4 x 8 feeding a dense 96 -> 10, two steps."""
    return [ChipLayerInfo("in", "input", (3, 4, 8), (3, 4, 8), (), spikes_per_step=(40.0, 20.0)),
            ChipLayerInfo("fc", "dense", (96,), (10,), (10, 96), synops_per_step=(4000.0, 2000.0),
                          spikes_per_step=(3.0, 1.0), input_events_per_step=(40.0, 20.0))]


def test_the_step_is_the_busiest_cores_largest_term_plus_the_barrier() -> None:
    p = load_profile("loihi2")
    t = {k: f.value for k, f in p.latency.items()}
    layers = _two_layers()
    mapping = map_network(layers, p)
    assert [m["cores"] for m in mapping["layers"]] == [1, 1]  # 96 neurons; 96 axons x ceil(10 / 4) = 288 words
    out = latency(layers, mapping, p)
    # one inference at a time: step τ has layer 0 at τ, layer 1 at τ - 1; 2 + 2 steps
    def step(tau: int) -> float:
        terms = [96 * t["neuron_update_s"]]  # the input core updates its 96 neurons every step
        if 0 <= tau < 2:
            terms.append((40.0, 20.0)[tau] * 1 * t["spike_s"])  # its spikes, to the dense layer's one core
        terms.append(10 * t["neuron_update_s"])
        if 0 <= tau - 1 < 2:
            i = tau - 1
            terms += [(4000.0, 2000.0)[i] * t["synop_s"],
                      (40.0, 20.0)[i] * 3 * t["synmem_read_s"],  # every event reads its axon's 3 words
                      (3.0, 1.0)[i] * t["spike_s"]]
        return max(terms) + t["barrier_s"]
    assert out["per_inference"] == pytest.approx(sum(step(tau) for tau in range(4)))
    assert out["per_step"] == pytest.approx(out["per_inference"] / 4)
    # back to back (layer 1 at (τ - 1) mod 2): both steps have both layers busy
    def streaming(tau: int) -> float:
        i = (tau - 1) % 2
        return max(96 * t["neuron_update_s"], (40.0, 20.0)[tau] * t["spike_s"], (4000.0, 2000.0)[i] * t["synop_s"],
                   (40.0, 20.0)[i] * 3 * t["synmem_read_s"]) + t["barrier_s"]
    assert out["streaming_per_step"] == pytest.approx((streaming(0) + streaming(1)) / 2)
    assert out["streaming_throughput_per_s"] == pytest.approx(1 / (2 * out["streaming_per_step"]))
    low, high = out["streaming_per_step_band"]
    assert low < out["streaming_per_step"] < high  # synop_s has a band in the profile


def test_synapse_memory_reads_bind_where_a_core_reads_many_words_for_few_ops(tmp_path: Path) -> None:
    text = (ROOT / "hw_profiles" / "loihi2.toml").read_text()
    slow = tmp_path / "slow_reads.toml"
    slow.write_text(text.replace('[latency.synmem_read_s]\nvalue = 1.0e-9', '[latency.synmem_read_s]\nvalue = 1.0e-6'))
    p = load_profile(slow)
    layers = _two_layers()
    mapping = map_network(layers, p)
    out = latency(layers, mapping, p)
    assert step_times(layers, mapping, p)[1][1:3] == [("fc", "synmem_reads")] * 2  # the steps fc works in
    assert out["max_step"] == pytest.approx(40 * 3 * 1e-6 + p.latency["barrier_s"].value)


def test_dynamic_and_static_energy_with_the_measured_bands() -> None:
    p, host = load_profile("loihi2"), load_profile("cpu")
    layer = LayerCounts("fc", 2, 10, 60, [40, 20], 0, 600, [400, 200], 0, 4, [3, 1], [], 20, 0.2, [], 0.8, "dense")
    counts = InferenceCounts([layer], 0, 0, {}, {})
    e = estimate(counts, p, host, chip_seconds=1e-4, chips=1)
    per_op = {k: p.energy[k] for k in ("synop_j", "spike_route_j", "neuron_update_j")}
    assert e.snn_dynamic == pytest.approx(600 * (per_op["synop_j"].value + per_op["spike_route_j"].value)
                                          + 20 * per_op["neuron_update_j"].value)
    assert e.snn_dynamic_band == pytest.approx(
        tuple(600 * (per_op["synop_j"].band[i] + per_op["spike_route_j"].band[i])
              + 20 * per_op["neuron_update_j"].band[i] for i in (0, 1)))
    assert e.snn_static == pytest.approx(0.232 * 1e-4)
    assert e.snn_static_band == pytest.approx((0.18e-4, 0.31e-4))
    assert load_profile("loihi2_kapoho").energy["static_w"].band == (0.35, 0.36)


def test_every_loihi2_figure_says_measured_fitted_derived_or_assumed_and_bad_ones_are_refused(tmp_path: Path) -> None:
    for name in ("loihi2", "loihi2_kapoho"):
        p = load_profile(name)
        for figure in [*p.energy.values(), *p.latency.values(), *p.resources.values()]:
            assert figure.kind in ("measured", "fitted", "derived", "assumed")
            assert figure.kind == "measured" or figure.derivation
            assert figure.kind != "fitted" or "fitted" in (figure.source + figure.derivation)
    text = (ROOT / "hw_profiles" / "loihi2.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace('kind = "fitted"\nderivation = "the busiest', 'kind = "fitted"\nxderivation = "the'))
    with pytest.raises(UserError, match="is fitted but has no derivation"):
        load_profile(bad)
    bad.write_text(text.replace("band = [0.18, 0.31]", "band = [0.31, 0.18]"))
    with pytest.raises(UserError, match=r"band must be \[low, high\]"):
        load_profile(bad)
