r"""Each chip layer's weight width chosen on a probe by the spikes it deploys: 8 bits, or wide where needed.

:func:`choose_precision` runs every chip layer, in partition order, in the
chip's arithmetic (:func:`neurodeploy.chip.reference.run_segment_batch`) and in
float (:func:`neurodeploy.ir.float_run.run_chip_layer`, the layer's NIR nodes)
on a probe X (N, T, \*input): the user's calibration samples when given, else
:func:`probe_inputs`. Per layer it measures

* the **local spike F1**: the deployed layer's spikes against the float
  layer's, both fed the same input, the deployed upstream (the chosen previous
  layers' fixed-point spikes, or for a segment's first layer its payloads
  ``p``, which the float layer reads as ``p / P``), so one layer's error is
  not charged to the next (as :mod:`neurodeploy.chip.calibration` scores it);
* the **end-to-end spike F1**: the deployed layer's spikes against the float
  graph's own spikes of that layer (:func:`neurodeploy.ir.float_run.run_float`
  on X): what the deployment as a whole keeps.

The width (``mode``, one of :data:`WEIGHT_MODES`): ``"8"`` 8-bit mantissas
everywhere (what stock netx loads), ``"wide"`` wide weights everywhere (two
synapses per connection, about 15 bits, :mod:`neurodeploy.chip.quantize`),
``"auto"`` per layer the cheapest width whose local F1 reaches ``target``
with a margin (:func:`lower_bound`: less ``MARGIN_SE`` jackknife standard
errors over the probe's samples; on a snnTorch recurrent layer a probe F1 of 0.955 at 8 bits
measured 0.943 on other inputs, tests/test_precision.py):
8 bits first, wide weights only where 8 bits miss it, so one segment can mix
both (the netx file, the backends and the cost model read the width per
layer). A layer that misses the target with the best width it may have keeps
the width with the higher F1 (8 bits on a tie) and gets one warning naming
the layer, its estimate and the option that would help (:func:`warning`).
Both silent counts as F1 1 (the trains are equal). With ``rounding`` (a
calibration, :data:`neurodeploy.chip.calibration.ROUNDINGS`) each width's
layer is calibrated on X (:func:`neurodeploy.chip.calibration.calibrate_layer`)
before it is scored.

The probe without samples (:func:`probe_inputs`, seeded): spike inputs are
Bernoulli events, ``PROBE_SAMPLES_PER_LEVEL`` samples at each rate of
``PROBE_LEVELS`` (a few rates, so that a layer is seen both lightly and
heavily driven); graded inputs are frames of uniform values in [0, 2·level]
(mean ``level``), clipped to [0, 1], drawn afresh each step. ``PROBE_STEPS``
steps. The probe only estimates: a user's data can drive a layer otherwise,
which is why ``--calibrate`` samples, when given, are the probe.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import torch

from neurodeploy.chip.calibration import LayerCalibration, calibrate_layer, deploy_layerwise, float_layer
from neurodeploy.chip.layers import ChipLayer
from neurodeploy.chip.partition import Partition
from neurodeploy.chip.quantize import QuantizedChipLayer, quantize_chip_layer
from neurodeploy.chip.reference import run_segment_batch
from neurodeploy.ir.float_run import run_float
from neurodeploy.ir.graph import Graph
from neurodeploy.spike_metrics import spike_scores

WEIGHT_MODES = ("auto", "8", "wide")
WIDTHS = {"auto": (False, True), "8": (False,), "wide": (True,)}  # the widths tried, cheapest first (wide=...)
DEFAULT_FIDELITY_TARGET = 0.95  # local spike F1 a layer's width must reach (issue 35)
PROBE_LEVELS = (0.05, 0.1, 0.2, 0.4)  # event rates per step (spikes) or mean values (graded)
PROBE_SAMPLES_PER_LEVEL = 6
PROBE_STEPS = 32
PROBE_SEED = 0
MARGIN_SE = 2.0  # a width reaches the target when its F1 less this many standard errors does (lower_bound)


def width_name(wide: bool) -> str:
    return "wide" if wide else "8"


def probe_inputs(input_shape: tuple[int, ...], payload: str, seed: int = PROBE_SEED,
                 steps: int = PROBE_STEPS, per_level: int = PROBE_SAMPLES_PER_LEVEL) -> np.ndarray:
    """The seeded probe X (N, T, *input_shape) float64 of a graph whose input is ``payload`` (module docstring)."""
    rng = np.random.default_rng(seed)
    shape = (per_level, steps, *input_shape)
    if payload == "spikes":
        parts = [(rng.random(shape) < level).astype(np.float64) for level in PROBE_LEVELS]
    else:
        parts = [np.clip(rng.random(shape) * 2 * level, 0.0, 1.0) for level in PROBE_LEVELS]
    return np.concatenate(parts)


@dataclass(frozen=True)
class LayerFidelity:
    """One chip layer's width and its spike F1 on the probe (module docstring); None: neither side spiked."""

    name: str
    nodes: tuple[str, ...]
    width: str  # "8" or "wide": the width chosen
    local_f1: float | None  # of the chosen width, fed the deployed upstream
    local_f1_8: float | None  # at 8 bits (None also when not tried)
    local_f1_wide: float | None  # with wide weights (None also when not tried)
    tried: tuple[str, ...]  # the widths measured
    end_to_end_f1: float | None = None  # of the chosen deployment against the float graph
    meets_target: bool = True  # the chosen width's lower_bound reaches the target
    local_f1_bound: float = 1.0  # the chosen width's local F1 less MARGIN_SE standard errors (lower_bound)

    def to_json(self) -> dict[str, object]:
        return {"width": self.width, "local_spike_f1": self.local_f1, "local_spike_f1_8bit": self.local_f1_8,
                "local_spike_f1_wide": self.local_f1_wide, "widths_tried": list(self.tried),
                "end_to_end_spike_f1": self.end_to_end_f1, "meets_target": self.meets_target,
                "local_spike_f1_lower_bound": self.local_f1_bound}


@dataclass(frozen=True)
class Precision:
    """The chosen chip segments (partition segment index -> layers), per layer its fidelity, and, when the
    probe calibrated, per layer (and width chosen) the calibration record."""

    segments: dict[int, tuple[QuantizedChipLayer, ...]]
    layers: tuple[LayerFidelity, ...]
    calibration: tuple[LayerCalibration, ...] | None
    mode: str
    target: float
    warnings: tuple[str, ...]


def _rank(f1: float | None) -> float:
    return 1.0 if f1 is None else f1  # both silent: the trains are equal


def warning(record: LayerFidelity, target: float, calibrated: bool, stock_netx: bool) -> str:
    """The one line a layer that misses ``target`` gets: the layer, its estimate, what would help."""
    best = "8-bit weights" if record.width == "8" else "wide weights"
    remedies = []
    if record.width == "8" and record.local_f1_wide is not None and _rank(record.local_f1_wide) > _rank(
            record.local_f1):
        how = "without --stock-netx" if stock_netx else "with --weights auto (or wide)"
        remedies.append(f"wide weights ({how}) measure {_f1(record.local_f1_wide)}")
    elif len(record.tried) == 2:  # both widths miss it: say what the other one measured
        other = record.local_f1_wide if record.width == "8" else record.local_f1_8
        best += f" (the other width: {_f1(other)})"
    if not calibrated:
        remedies.append("--calibrate with samples of your data may choose a better scale")
    remedies.append(f"--host {','.join(record.nodes)} keeps it in float on the host")
    return (f"chip layer {record.name}: local spike F1 {_f1(record.local_f1)} with {best} on the probe "
            f"({record.local_f1_bound:.3f} less {MARGIN_SE:g} standard errors), below the target {target:g}; "
            + "; ".join(remedies))


def lower_bound(deployed: np.ndarray, reference: np.ndarray) -> float:
    """The pooled spike F1 ``2·Σtp / (Σd + Σr)`` less ``MARGIN_SE`` jackknife standard errors over the probe's
    samples (leave one sample out; a sample with few spikes moves the pooled F1 little), so that a width
    reaches the target with a margin for the inputs the probe did not draw; both silent: 1."""
    n = len(deployed)
    d = np.asarray(deployed, bool).reshape(n, -1)
    r = np.asarray(reference, bool).reshape(n, -1)
    tp, total = (d & r).sum(1).astype(np.float64), (d.sum(1) + r.sum(1)).astype(np.float64)
    if total.sum() == 0:
        return 1.0
    pooled = 2 * tp.sum() / total.sum()
    if n < 2:
        return float(pooled)
    rest = total.sum() - total
    leave_one_out = np.where(rest > 0, 2 * (tp.sum() - tp) / np.where(rest > 0, rest, 1), 1.0)
    se = np.sqrt((n - 1) / n * np.sum((leave_one_out - leave_one_out.mean()) ** 2))
    return float(pooled - MARGIN_SE * se)


def _f1(value: float | None) -> str:
    return "- (silent)" if value is None else f"{value:.3f}"


def _choose_layer(graph: Graph, layer: ChipLayer, source: str, frames: np.ndarray, p: int,
                  widths: tuple[bool, ...], target: float, rounding: str | None,
                  trajectory: tuple[np.ndarray, np.ndarray] | None, measure_wide: bool
                  ) -> tuple[QuantizedChipLayer, np.ndarray, LayerFidelity, LayerCalibration | None]:
    """(chosen layer, its spikes, LayerFidelity without end-to-end F1, calibration record or None)."""
    n, steps = frames.shape[:2]
    upstream = (frames / p).reshape(n, steps, *graph.nodes[source].output_shape)
    reference = float_layer(graph, layer, source, upstream)
    results: dict[bool, tuple[QuantizedChipLayer, np.ndarray, float | None, LayerCalibration | None]] = {}

    def measure(wide: bool) -> None:
        if rounding is None:
            q = quantize_chip_layer(layer, p, wide=wide)
            spikes = run_segment_batch([q.layer], frames)[0]
            results[wide] = (q, spikes, spike_scores(spikes, reference)["spike_f1"], None)
        else:
            q, record, spikes = calibrate_layer(graph, layer, source, frames, p, rounding, trajectory, wide)
            results[wide] = (q, spikes, record.spike_f1, record)

    bounds: dict[bool, float] = {}
    for wide in widths:
        measure(wide)
        bounds[wide] = lower_bound(results[wide][1], reference)
        if bounds[wide] >= target:
            break
    met = [w for w in widths if w in bounds and bounds[w] >= target]
    chosen = met[0] if met else max(results, key=lambda w: (_rank(results[w][2]), not w))
    if not met and measure_wide and True not in results:  # the remedy's estimate
        measure(True)
        bounds[True] = lower_bound(results[True][1], reference)
    q, spikes, f1, record = results[chosen]
    fidelity = LayerFidelity(
        layer.name, tuple(layer.nodes), width_name(chosen), f1,
        results[False][2] if False in results else None, results[True][2] if True in results else None,
        tuple(width_name(w) for w in (False, True) if w in results), meets_target=bool(met),
        local_f1_bound=bounds[chosen])
    return q, spikes, fidelity, record


def choose_precision(partition: Partition, x: np.ndarray, payload_max: Mapping[int, int], mode: str = "auto",
                     target: float = DEFAULT_FIDELITY_TARGET, rounding: str | None = None,
                     stock_netx: bool = False) -> Precision:
    """Every chip segment of ``partition`` quantized with each layer's width chosen on ``x`` (N, T, *input)
    (module docstring). ``payload_max``: per chip segment index the P of its input payloads; ``rounding``:
    calibrate each layer on ``x`` with this rounding (None: the static scales); ``stock_netx``: only for the
    warnings' remedies (the width is ``mode``'s)."""
    if mode not in WIDTHS:
        raise ValueError(f"mode must be one of {WEIGHT_MODES}, not {mode!r}")
    flt = {k: v.numpy() for k, v in run_float(partition.graph, torch.from_numpy(np.asarray(x, np.float64))).items()}
    records: list[LayerFidelity] = []
    calibration: list[LayerCalibration] = []

    def deploy_layer(layer: ChipLayer, source: str, frames: np.ndarray, p: int
                     ) -> tuple[QuantizedChipLayer, np.ndarray]:
        own = (flt[source].reshape(frames.shape) * p, flt[layer.name]) if rounding == "end_to_end" else None
        q, spikes, record, cal = _choose_layer(partition.graph, layer, source, frames, p, WIDTHS[mode], target,
                                               rounding, own, measure_wide=mode == "8")
        records.append(replace(record, end_to_end_f1=spike_scores(spikes, flt[layer.name])["spike_f1"]))
        if cal is not None:
            calibration.append(cal)
        return q, spikes

    segments = deploy_layerwise(partition, x, payload_max, deploy_layer)
    notes = tuple(warning(r, target, rounding is not None, stock_netx) for r in records if not r.meets_target)
    return Precision(segments, tuple(records), tuple(calibration) if rounding is not None else None, mode, target,
                     notes)
