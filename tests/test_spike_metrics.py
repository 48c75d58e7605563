"""The spike scores, worked by hand: they must fail a wrong spike train that cell agreement passes."""

from __future__ import annotations

import numpy as np
import pytest

from neurodeploy.spike_metrics import SpikeTally, output_scores, spike_scores


def test_every_spike_wrong_scores_zero_where_cell_agreement_reads_high() -> None:
    reference = np.zeros((1, 100, 10), np.uint8)
    reference[0, 0::25, 0] = 1  # 4 spikes at steps 0, 25, 50, 75
    deployed = np.zeros_like(reference)
    deployed[0, 5::12, 0] = 1  # 8 spikes, none within one step of a reference spike
    s = spike_scores(deployed, reference)
    assert s["cell_agreement_vs_float"] == pytest.approx(1 - 12 / 1000)
    assert s["spike_f1"] == 0.0 and s["spike_precision"] == 0.0 and s["spike_recall"] == 0.0
    assert s["spike_f1_pm1"] == 0.0
    assert s["count_error"] == pytest.approx(4 / 4)  # |8 - 4| over the mean reference count 4 (one neuron busy)


def test_scores_worked_by_hand() -> None:
    r = np.array([[[1], [0], [1], [0]]])  # (N=1, T=4, 1 neuron): spikes at 0 and 2
    d = np.array([[[1], [1], [0], [0]]])  # spikes at 0 and 1: one exact match, both within ±1
    s = spike_scores(d, r)
    assert (s["spike_precision"], s["spike_recall"], s["spike_f1"]) == (0.5, 0.5, 0.5)
    assert s["spike_f1_pm1"] == 1.0
    assert s["count_error"] == 0.0
    assert s["rate_correlation"] is None  # one count on each side: no variance


def test_silence_is_undefined_not_perfect() -> None:
    silent = np.zeros((2, 5, 3), np.uint8)
    s = spike_scores(silent, silent)
    assert s["spike_f1"] is None and s["spike_precision"] is None and s["count_error"] is None
    assert s["cell_agreement_vs_float"] == 1.0
    busy = np.ones_like(silent)
    assert spike_scores(silent, busy)["spike_f1"] == 0.0


def test_a_tally_of_chunks_equals_the_whole() -> None:
    rng = np.random.default_rng(0)
    d, r = (rng.random((6, 8, 4, 5)) < 0.2), (rng.random((6, 8, 4, 5)) < 0.2)
    whole = spike_scores(d, r)
    parts = SpikeTally().add(d[:2], r[:2]).merge(SpikeTally().add(d[2:], r[2:]))
    assert parts.scores() == pytest.approx(whole)


def test_output_agreement_leaves_out_tied_references() -> None:
    deployed = np.array([[[1, 2, 0]], [[3, 3, 0]], [[0, 0, 5]]])
    reference = np.array([[[0, 2, 1]], [[1, 1, 0]], [[4, 0, 1]]])
    s = output_scores(deployed, reference)
    assert s["output_ties"] == 1 and s["output_samples"] == 3
    assert s["output_agreement_vs_float"] == 0.5  # sample 0 agrees, sample 2 does not, sample 1 is tied
