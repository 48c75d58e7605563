r"""How far a deployed spike train is from a reference one: scores that a wrong spike train cannot pass.

Both trains are 0/1 arrays of the same shape with a time axis; a *cell* is one
(sample, step, neuron), a *neuron's count* its spikes summed over the steps of
one sample. With ``d`` the deployed spikes and ``r`` the reference's (the
float graph, or the library's own forward)::

    spike_precision = |d ∧ r| / |d|            (of the deployed spikes, how many the reference has)
    spike_recall    = |d ∧ r| / |r|            (of the reference's spikes, how many were deployed)
    spike_f1        = 2·|d ∧ r| / (|d| + |r|)
    spike_f1_pm1    = the same with a spike matched by one at the same neuron within ±1 step:
                      precision_pm1 = |d ∧ dilate(r)| / |d|,  recall_pm1 = |r ∧ dilate(d)| / |r|,
                      f1_pm1 = their harmonic mean (not a one-to-one matching: a tolerance)
    rate_correlation = Pearson's r between the per-(sample, neuron) counts of d and of r
    count_error     = mean |count_d - count_r| / mean count_r
    cell_agreement  = the fraction of cells where d = r

``cell_agreement`` is kept for continuity and never used as a headline: when
spikes are rare it is near 1 for any train (a layer firing in 1 % of its cells
scores 98 % against a train whose every spike is wrong). A score whose
denominator is zero (no spikes on a side, counts that do not vary) is ``None``:
undefined, never silently perfect. :class:`SpikeTally` adds up the counts
behind every score chunk by chunk (tiles, batches), so memory is bounded by
the chunk; the scores are exact for the whole, not averages of chunks.

At the output of a classifier, :func:`output_scores` compares the argmax over
classes of the output summed over time, over the samples whose reference
argmax is unique (``output_ties`` says how many were left out: a tie has no
answer to agree with).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np


def _ratio(numerator: float, denominator: float) -> float | None:
    return float(numerator / denominator) if denominator else None


def _dilate_time(spikes: np.ndarray, axis: int) -> np.ndarray:
    """Where a spike is at t-1, t or t+1 (same neuron), along ``axis``."""
    out = spikes.copy()
    n = spikes.shape[axis]
    if n > 1:
        later = [slice(None)] * spikes.ndim
        earlier = [slice(None)] * spikes.ndim
        later[axis], earlier[axis] = slice(1, None), slice(None, n - 1)
        out[tuple(later)] |= spikes[tuple(earlier)]
        out[tuple(earlier)] |= spikes[tuple(later)]
    return out


@dataclass
class SpikeTally:
    """The counts behind the spike scores (module docstring), summed over every :meth:`add`."""

    cells: int = 0
    equal_cells: int = 0
    deployed: int = 0
    reference: int = 0
    matched: int = 0
    deployed_matched_pm1: int = 0
    reference_matched_pm1: int = 0
    counts: int = 0  # (sample, neuron) pairs
    sum_d: float = 0.0
    sum_r: float = 0.0
    sum_dd: float = 0.0
    sum_rr: float = 0.0
    sum_dr: float = 0.0
    count_difference: int = 0  # Σ |count_d - count_r|

    def add(self, deployed: np.ndarray, reference: np.ndarray, time_axis: int = 1) -> SpikeTally:
        """Add one chunk: two 0/1 arrays of one shape whose axis ``time_axis`` is time (every step of it)."""
        d, r = np.asarray(deployed) != 0, np.asarray(reference) != 0
        if d.shape != r.shape:
            raise ValueError(f"deployed spikes {d.shape} and reference spikes {r.shape} differ in shape")
        deployed_spikes, reference_spikes = int(np.count_nonzero(d)), int(np.count_nonzero(r))
        matched = int(np.count_nonzero(d & r))
        self.cells += d.size
        self.equal_cells += d.size - (deployed_spikes + reference_spikes - 2 * matched)  # cells minus |d xor r|
        self.deployed += deployed_spikes
        self.reference += reference_spikes
        self.matched += matched
        self.deployed_matched_pm1 += int(np.count_nonzero(d & _dilate_time(r, time_axis)))
        self.reference_matched_pm1 += int(np.count_nonzero(r & _dilate_time(d, time_axis)))
        # counts summed in bytes while they fit (an eighth of an int64 sum's memory traffic)
        count_type = np.uint8 if d.shape[time_axis] < 256 else np.int64
        cd = d.view(np.uint8).sum(axis=time_axis, dtype=count_type).ravel().astype(np.float64)
        cr = r.view(np.uint8).sum(axis=time_axis, dtype=count_type).ravel().astype(np.float64)
        self.counts += cd.size
        self.sum_d += float(cd.sum())
        self.sum_r += float(cr.sum())
        self.sum_dd += float(cd @ cd)
        self.sum_rr += float(cr @ cr)
        self.sum_dr += float(cd @ cr)
        self.count_difference += int(np.abs(cd - cr).sum())
        return self

    def merge(self, other: SpikeTally) -> SpikeTally:
        """Add another tally's counts to this one (tiles of one image, images of one run)."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self

    def scores(self) -> dict[str, Any]:
        """The scores of the module docstring, plus the spike totals they come from."""
        precision_pm1 = _ratio(self.deployed_matched_pm1, self.deployed)
        recall_pm1 = _ratio(self.reference_matched_pm1, self.reference)
        if precision_pm1 is None or recall_pm1 is None:
            f1_pm1 = 0.0 if self.deployed + self.reference else None
        else:
            f1_pm1 = _ratio(2 * precision_pm1 * recall_pm1, precision_pm1 + recall_pm1) or 0.0
        n = self.counts
        var_d = n * self.sum_dd - self.sum_d ** 2
        var_r = n * self.sum_rr - self.sum_r ** 2
        correlation = (None if var_d <= 0 or var_r <= 0
                       else float((n * self.sum_dr - self.sum_d * self.sum_r) / np.sqrt(var_d * var_r)))
        return {
            "spike_precision": _ratio(self.matched, self.deployed),
            "spike_recall": _ratio(self.matched, self.reference),
            "spike_f1": _ratio(2 * self.matched, self.deployed + self.reference),
            "spike_f1_pm1": f1_pm1,
            "rate_correlation": correlation,
            "count_error": _ratio(self.count_difference, self.sum_r),
            "cell_agreement_vs_float": _ratio(self.equal_cells, self.cells),
            "spikes_deployed": self.deployed,
            "spikes_reference": self.reference,
            "spikes_matched": self.matched,
        }


def firing_warnings(name: str, spikes: int, cells: int) -> list[str]:
    """A chip layer whose deployed spikes say nothing: it never fires, or it fires in every cell."""
    if spikes == 0:
        return [f"chip layer {name} never fires on this input: its spikes carry no information"]
    if spikes == cells:
        return [f"chip layer {name} fires on every step: its spikes carry no information"]
    return []


def pooled_scores(scores: list[dict[str, Any]]) -> dict[str, Any]:
    """Precision, recall and F1 of several runs' :meth:`SpikeTally.scores` together (images of one profile):
    from their summed spike counts, as one tally of every run would give, not a mean of ratios."""
    deployed = sum(int(s["spikes_deployed"]) for s in scores)
    reference = sum(int(s["spikes_reference"]) for s in scores)
    matched = sum(int(s["spikes_matched"]) for s in scores)
    return {"spike_precision": _ratio(matched, deployed), "spike_recall": _ratio(matched, reference),
            "spike_f1": _ratio(2 * matched, deployed + reference), "spikes_deployed": deployed,
            "spikes_reference": reference, "spikes_matched": matched}


def spike_scores(deployed: np.ndarray, reference: np.ndarray, time_axis: int = 1) -> dict[str, Any]:
    """The scores of one pair of spike trains (module docstring)."""
    return SpikeTally().add(deployed, reference, time_axis).scores()


def output_scores(deployed: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    """Argmax agreement of outputs (N, T, *classes) summed over time, over samples with a unique reference argmax.

    ``output_agreement_vs_float`` is None when every sample is tied.
    """
    d = np.asarray(deployed, np.float64).sum(axis=1).reshape(len(deployed), -1)
    r = np.asarray(reference, np.float64).sum(axis=1).reshape(len(reference), -1)
    if d.shape != r.shape:
        raise ValueError(f"deployed outputs {d.shape} and reference outputs {r.shape} differ in shape")
    unique = np.count_nonzero(r == r.max(axis=1, keepdims=True), axis=1) == 1
    agree = d.argmax(axis=1) == r.argmax(axis=1)
    return {"output_agreement_vs_float": _ratio(int(np.count_nonzero(agree & unique)), int(unique.sum())),
            "output_ties": int(np.count_nonzero(~unique)), "output_samples": len(d)}
