"""The accuracy gap of benchmarks/bench_fidelity.py over several seeded event draws of the test digits.

The further draws must be the same test digits (never trained on) with fresh,
seeded spikes, and the paired gap must be the count of discordant samples.
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import fidelity_nets as nets
from benchmarks.bench_fidelity import paired_gap


def test_a_redraw_is_the_test_digits_with_fresh_seeded_spikes() -> None:
    d = nets.digits_events(train=1000, test=797)
    one, again, two = (nets.redraw_test_events(k, train=1000, test=797) for k in (1, 1, 2))
    assert one.shape == d.x_test.shape and one.dtype == d.x_test.dtype
    assert np.array_equal(one, again)  # seeded
    assert not np.array_equal(one, d.x_test) and not np.array_equal(one, two)  # fresh spikes each draw
    # the same digits in the same order: per-sample spike counts follow the first draw's (Bernoulli noise
    # aside), the neighbouring digit's hardly
    counts = [x.reshape(len(x), -1).sum(1).astype(float) for x in (d.x_test, one, two)]
    assert min(np.corrcoef(counts[0], c)[0, 1] for c in counts[1:]) > 0.7
    assert max(abs(np.corrcoef(counts[0], np.roll(c, 1))[0, 1]) for c in counts[1:]) < 0.2
    with pytest.raises(ValueError):
        nets.redraw_test_events(0)


def test_paired_gap_counts_the_discordant_samples() -> None:
    # 2 draws of 4 digits: deployed right where float wrong once, wrong where float right three times
    flt = np.array([1, 1, 0, 1, 1, 1, 1, 0], bool)
    dep = np.array([1, 0, 1, 1, 0, 1, 0, 0], bool)
    g = paired_gap(dep, flt, digits=4)
    assert (g["deployed_right_float_wrong"], g["deployed_wrong_float_right"]) == (1, 3)
    assert g["draws"] == 2 and g["samples"] == 8
    assert g["gap_points"] == pytest.approx(100 * (1 - 3) / 8)
    assert g["deployed_accuracy"] - g["float_accuracy"] == pytest.approx(g["gap_points"] / 100)
    assert g["mcnemar_p"] == pytest.approx(2 * (1 + 4) / 16)  # P(Bin(4, 1/2) <= 1), two-sided
    assert g["verdict_vs_0_3_points"] == "undecided"  # -25 points, but 8 samples cannot tell


def test_the_verdict_needs_the_error_bar_on_one_side_of_the_bar() -> None:
    same = np.ones(2000, bool)
    assert paired_gap(same, same, digits=1000)["verdict_vs_0_3_points"] == "within"
    worse = same.copy()
    worse[::20] = False  # 100 of 2000 samples lost: -5 points, standard error 0.7
    g = paired_gap(worse, same, digits=1000)
    assert g["gap_points"] == pytest.approx(-5.0) and g["verdict_vs_0_3_points"] == "outside"
    slightly = same.copy()
    slightly[::500] = False  # 4 of 2000: -0.2 points, but its standard error 0.14 reaches past 0.3
    assert paired_gap(slightly, same, digits=1000)["verdict_vs_0_3_points"] == "undecided"
