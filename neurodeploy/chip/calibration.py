r"""Calibration: each chip layer's weight scale chosen on user samples to reproduce the float layer's spikes.

:func:`neurodeploy.chip.quantize.quantize_chip_layer` chooses a layer's scale ``s``
statically, from the parameters alone. Given samples X (N, T, \*input) of the
graph's input, :func:`calibrate` chooses instead, for each chip layer in
partition order, the scale whose fixed-point layer best reproduces the float
layer's spikes on X:

* candidates, coarse to fine: ``s`` sets the rounding of the weights, the
  threshold and the bias together. Over octaves F1 changes smoothly (more
  saturated weights one way, fewer mantissa bits the other); from one grid
  step to the next it jumps (another rounding of the threshold against the
  weights). So (1) the static scale ``s0`` and the coarse scales
  ``s0·2^(j/COARSE_STEPS_PER_OCTAVE)`` within ``COARSE_OCTAVES`` of it find
  the regime (a static objective that over-weights the threshold can sit
  octaves away from the scale the spikes want), then (2) every scale the
  static search considers (:func:`neurodeploy.chip.quantize.candidate_scales` of
  the layer's weights: 32 per octave, and ``k / max|W|``) within one coarse
  step of the best so far picks the rounding. Saturated weights and
  rounding errors are allowed (the spikes judge them), but a candidate may not break a
  fixed-point constraint that the static scale keeps (:func:`broken_constraints`:
  the threshold mantissa in 1..VTH_MAX, the bias unclipped in 13 bits, a
  current that cannot wrap for any input), whatever it scores on X;
* score: the layer's ``spike_f1`` (:func:`neurodeploy.spike_metrics.spike_scores`)
  of the candidate's spikes against the float layer's. Both read the same
  input: the chip's own upstream, i.e. the already calibrated previous
  layers' fixed-point spikes, or for a segment's first layer its input
  payloads ``p`` (the float layer reads ``p / P``, the value the payload
  carries), so one layer's error does not compound into the next one's score.
  The float layer is the NIR nodes of that chip layer (its folded pools and
  Flatten, synapse, recurrence and neuron) run by
  :func:`neurodeploy.ir.float_run.run_nodes`; the fixed-point side is the
  reference backend (:func:`neurodeploy.chip.reference.run_segment_batch`) on the
  layer alone. The reference returns spikes aligned to the input's steps
  (Loihi's one-step delay per layer removed, as the runtime does), and a
  layer run alone on the previous layer's spikes gives exactly what it gives
  inside its segment, so the calibrated segment reproduces these spikes;
* choice: the highest F1 among the static scale and the candidates whose
  gain over it is more than chance on X: per sample i, the gain
  ``g_i = F1_i(candidate) - F1_i(static)``; the candidate qualifies when
  ``mean(g) >= SIGNIFICANCE_Z · std(g) / sqrt(N)`` (paired, over the N
  samples; with N = 1 none does). Why: a layer's F1 over scales is jagged,
  and on a few dozen samples its noise (±2 % on the snnTorch recurrent
  layer, 32 samples of 12 steps) exceeds the real differences, so the plain
  maximum picked a scale that lost 3 % of F1 on held-out samples (tests/test_calibration.py).
  Ties keep the static scale, then the scale nearest to it. Both sides
  silent (F1 undefined) counts as a perfect match. The static scale is
  always a candidate, so on X calibration never makes a layer's F1 worse
  than the static one under the same upstream.

Rounding chosen for the layer's outputs (``rounding="local"`` or
``"end_to_end"``; ``"nearest"`` skips it), after the scale, for conv and
dense layers (a recurrent layer keeps nearest rounding: its recurrent input
is its own output, which this least-squares target does not model). The
scale fixes which integers are near; each weight mantissa (and bias
mantissa) then goes to the floor or the ceiling of its target, and the
threshold mantissa to the floor or the ceiling of ``θ·s·P``, so that the
layer's synaptic input over the calibration samples matches the float one,
in units of the threshold (the spike condition compares the two)::

    E(W_q, b_q, vth) = Σ_o Σ_{n,t,position} ((W_q[o]·x_d + b_q[o]) / vth - (W[o]·x_f + P·B[o]) / (θ·P))²

``x_d`` the layer's input as deployed (payloads, or the calibrated previous
layer's spikes), ``x_f`` the target's: the same ``x_d`` (``local``: the
float layer fed the deployed upstream) or the float graph's own input to the
layer, times P (``end_to_end``: the rounding may compensate upstream drift).
For a fixed ``vth`` this is ``|X_d q - X_f t|²`` per output neuron with
``t = (vth/(θP))·(W[o], P·B[o])``, a quadratic in the integers ``q``;
:func:`choose_rounding` minimises it by coordinate descent from the nearest
rounding (one mantissa moved by ±1 at a time within ``[min(⌊t⌋, q0),
max(⌈t⌉, q0)]``, a move kept only when it lowers E; sweeps in a fixed order
until none does), for each of the two threshold roundings, and keeps the
lower E. Starting from the nearest rounding and moving only downhill, E never
ends above nearest rounding's. Deterministic: no random choice.

The rounding is fitted on the first half of the calibration samples and kept
only if, on the second half, its per-sample spike F1 gains over the nearest
rounding at the same scale by the paired rule above (z >= ``SIGNIFICANCE_Z``);
the F1 is against the same target (``local``: the float layer on the
deployed upstream; ``end_to_end``: the float graph's spikes of that layer).

Host segments between chip segments run in float (:func:`neurodeploy.ir.host_ops.run_host_segment`),
as in the deployed runtime, reading the calibrated chip segments' spikes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import numpy as np
import torch

from neurodeploy.chip.cuba import DECAY_UNITY, STATE_SHIFT
from neurodeploy.chip.encoding import to_payload
from neurodeploy.chip.layers import ChipLayer, RecurrentDenseLayer
from neurodeploy.chip.neuron_mapping import map_neuron
from neurodeploy.chip.partition import ChipSegment, Partition
from neurodeploy.chip.quantize import (
    BIAS_MANT_MAX,
    CHIP_WEIGHT_MAX,
    STATE_LIMIT,
    VTH_MAX,
    QuantizedChipLayer,
    candidate_scales,
    quantize_chip_layer,
    with_mantissas,
)
from neurodeploy.chip.reference import run_segment_batch
from neurodeploy.converters.netx_io import FixedPointLayer
from neurodeploy.ir.float_run import run_chip_layer, run_float
from neurodeploy.ir.graph import Graph
from neurodeploy.ir.host_ops import run_host_segment
from neurodeploy.spike_metrics import spike_scores

COARSE_OCTAVES = 3  # the coarse search spans s0/8 .. 8·s0
COARSE_STEPS_PER_OCTAVE = 4
SIGNIFICANCE_Z = 3.0  # paired z-score a candidate's F1 gain over the static scale needs (module docstring)
ROUNDINGS = ("nearest", "local", "end_to_end")  # the rounding modes (module docstring)
DEFAULT_ROUNDING = "local"  # what `convert --calibrate` uses (BENCHMARKS 15 measures the modes)
ROUNDING_SWEEPS = 100  # coordinate descent stops earlier when a sweep moves nothing


@dataclass(frozen=True)
class LayerCalibration:
    """One chip layer's calibrated scale, and its spike F1 against the float layer before and after."""

    name: str
    static_scale: float
    scale: float
    spike_f1_static: float | None  # None: neither side spiked
    spike_f1: float | None
    candidates: int  # scales tried (those breaking a constraint the static scale keeps included)
    gain_z: float  # the chosen scale's paired z-score of its per-sample F1 gain over the static (0: static)
    spike_f1_scale: float | None = None  # after the scale, before the rounding (spike_f1: after both)
    rounding: str = "nearest"  # the mantissas' rounding kept: "nearest", or the mode tried when it won
    rounding_tried: str = "nearest"  # the mode tried ("nearest": none; ROUNDINGS)
    rounding_objective_nearest: float | None = None  # E on the fitting half at nearest rounding (None: not tried)
    rounding_objective: float | None = None  # E of the chosen rounding on the fitting half
    rounding_f1_held_out: tuple[float, float] | None = None  # held-out half: F1 nearest, F1 chosen rounding
    rounding_gain_z: float = 0.0  # paired z of the held-out per-sample F1 gain (kept only if >= SIGNIFICANCE_Z)


@dataclass(frozen=True)
class Calibration:
    """The calibrated chip segments (partition segment index -> layers) and the per-layer record."""

    segments: dict[int, tuple[QuantizedChipLayer, ...]]
    layers: tuple[LayerCalibration, ...]


def _weights(layer: ChipLayer) -> np.ndarray:
    """All of a layer's weights (input and recurrent), flattened: what its scale rounds."""
    if isinstance(layer, RecurrentDenseLayer):
        return np.concatenate([np.ravel(layer.weight_in), np.ravel(layer.weight_rec)])
    return np.ravel(layer.weight)


def coarse_scales(static: float) -> list[float]:
    """``static·2^(j/COARSE_STEPS_PER_OCTAVE)`` for 0 < |j| <= COARSE_OCTAVES·COARSE_STEPS_PER_OCTAVE, nearest
    first (of equal distance the smaller)."""
    reach = COARSE_OCTAVES * COARSE_STEPS_PER_OCTAVE
    steps = sorted((j for j in range(-reach, reach + 1) if j), key=lambda j: (abs(j), j))
    return [static * 2.0 ** (j / COARSE_STEPS_PER_OCTAVE) for j in steps]


def fine_scales(center: float, weights: np.ndarray, weight_max: int = CHIP_WEIGHT_MAX) -> list[float]:
    """The static search's scales for ``weights`` (mantissas up to ``weight_max``) within one coarse step of
    ``center`` (itself left out), nearest first."""
    every = candidate_scales(weights, weight_max)
    near = np.abs(np.log2(every / center)) <= 1 / COARSE_STEPS_PER_OCTAVE + 1e-12
    return sorted((float(s) for s in every[near] if not math.isclose(s, center, rel_tol=1e-12)),
                  key=lambda s: abs(math.log2(s / center)))


def broken_constraints(q: QuantizedChipLayer) -> set[str]:
    """The fixed-point constraints a quantized layer breaks (its stored threshold and bias are clipped, so a
    mantissa at the limit counts as broken)::

        threshold: not 1 <= vth_mant < VTH_MAX
        bias:      max|bias_mant| >= BIAS_MANT_MAX
        wrap:      64·max_input·4096 / iDecay >= 2^23   (the current's steady state for the largest input)
    """
    broken = set()
    if not 1 <= q.layer.vth_mant < VTH_MAX:
        broken.add("threshold")
    if q.layer.bias is not None and np.abs(q.layer.bias).max(initial=0) >= BIAS_MANT_MAX:
        broken.add("bias")
    if (q.max_input << STATE_SHIFT) * DECAY_UNITY / q.layer.i_decay >= STATE_LIMIT:
        broken.add("wrap")
    return broken


def _rank(f1: float | None) -> float:
    return 1.0 if f1 is None else f1  # both silent: the trains are equal


def _per_sample_f1(deployed: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Each sample's spike F1 (N,), both silent counting as 1."""
    return np.array([_rank(spike_scores(deployed[i:i + 1], target[i:i + 1])["spike_f1"])
                     for i in range(len(deployed))])


def gain_z(candidate: np.ndarray, static: np.ndarray) -> float:
    """Paired z-score of per-sample F1 gains ``candidate - static`` (N,); 0 for N < 2 or no gain."""
    gains = candidate - static
    if len(gains) < 2 or gains.mean() <= 0:
        return 0.0
    spread = gains.std(ddof=1)
    return math.inf if spread == 0 else float(gains.mean() / (spread / math.sqrt(len(gains))))


@dataclass(frozen=True)
class Rounding:
    """A layer's mantissas chosen for its outputs (:func:`choose_rounding`) and the objective E before/after."""

    weight: np.ndarray  # int64, the quantized layer's weight shape
    bias: np.ndarray | None  # int64 (O,)
    vth_mant: int
    objective_nearest: float  # E at the nearest rounding (the static quantizer's mantissas)
    objective: float  # E at these mantissas: never above objective_nearest


def layer_inputs(fixed: FixedPointLayer, frames: np.ndarray) -> np.ndarray:
    """What each output neuron's weights read, one row per (sample, step, output position): (M, K).

    A dense layer's input flattened (K = its fan-in); a conv layer's patches
    (K = C·kh·kw, in the weight's order), zero padded, at its stride; a
    column of ones appended for a layer with a bias (the bias as an input).
    """
    n, steps = frames.shape[:2]
    x = torch.from_numpy(np.ascontiguousarray(frames, np.float64).reshape(n * steps, *fixed.input_shape))
    if fixed.kind == "conv":
        _, _, kh, kw = fixed.weight.shape
        rows = torch.nn.functional.unfold(x, (kh, kw), padding=fixed.padding, stride=fixed.stride)  # (NT, K, L)
        rows = rows.transpose(1, 2).reshape(-1, rows.shape[1])
    else:
        rows = x.reshape(n * steps, -1)
    rows = rows.numpy()
    return rows if fixed.bias is None else np.hstack([rows, np.ones((len(rows), 1))])


def _objective(q: np.ndarray, target: np.ndarray, x_deployed: np.ndarray, x_target: np.ndarray) -> float:
    """|X_d qᵀ - X_t tᵀ|² summed over output neurons (rows of q and t)."""
    return float(np.sum((x_deployed @ q.T - x_target @ target.T) ** 2))


def _descend(q: np.ndarray, lo: np.ndarray, hi: np.ndarray, gram: np.ndarray, linear: np.ndarray) -> np.ndarray:
    """Coordinate descent on ``qᵀGq - 2qᵀb`` per row (b = ``linear``'s row), q integer within [lo, hi], by
    moves of ±1 kept only when they lower it; all rows at once, columns in order, until a sweep moves none."""
    q = q.copy()
    slope = q @ gram - linear  # half the gradient, per row
    diag = np.diag(gram)
    for _ in range(ROUNDING_SWEEPS):
        moved = False
        for k in range(q.shape[1]):
            tolerance = 1e-9 * (diag[k] + 1.0)  # a float-noise gain is no gain: no endless swaps
            up = np.where(q[:, k] < hi[:, k], diag[k] + 2 * slope[:, k], np.inf)
            down = np.where(q[:, k] > lo[:, k], diag[k] - 2 * slope[:, k], np.inf)
            step = np.where(np.minimum(up, down) < -tolerance, np.where(up <= down, 1, -1), 0)
            if step.any():
                moved = True
                q[:, k] += step
                slope += step[:, None] * gram[k][None, :]
        if not moved:
            break
    return q


def choose_rounding(layer: ChipLayer, q: QuantizedChipLayer, frames: np.ndarray,
                    target_frames: np.ndarray) -> Rounding:
    """The mantissas of ``q``'s layer (conv or dense) rounded for its outputs (module docstring): ``frames``
    (N, T, *input) the layer's deployed input, ``target_frames`` the target's input in the same units."""
    mapping = map_neuron(layer.neuron)
    p, fixed = q.payload_max, q.layer
    out = fixed.weight.shape[0]
    exact = np.asarray(layer.weight, np.float64).reshape(out, -1)
    nearest = fixed.weight.astype(np.int64).reshape(out, -1)
    limit = np.full(exact.shape[1], q.weight_max)
    if fixed.bias is not None:
        exact = np.hstack([exact, p * mapping.bias_per_unit * np.asarray(layer.bias, np.float64).reshape(out, 1)])
        nearest = np.hstack([nearest, fixed.bias.astype(np.int64).reshape(out, 1)])
        limit = np.append(limit, BIAS_MANT_MAX)
    x_d, x_t = layer_inputs(fixed, frames), layer_inputs(fixed, target_frames)
    gram, cross = x_d.T @ x_d, x_d.T @ x_t
    per_unit = mapping.threshold_per_unit * p  # vth = per_unit · s
    scaled = per_unit * q.weight_scale
    thresholds = [fixed.vth_mant] + [v for v in (math.floor(scaled), math.ceil(scaled))
                                     if v != fixed.vth_mant and 1 <= v <= VTH_MAX]
    best: tuple[float, np.ndarray, int] | None = None
    objective_nearest = 0.0
    for vth in thresholds:  # the nearest first: of equal E it stays
        target = exact * (vth / per_unit)
        lo = np.clip(np.minimum(np.floor(target), nearest), -limit, limit).astype(np.int64)
        hi = np.clip(np.maximum(np.ceil(target), nearest), -limit, limit).astype(np.int64)
        chosen = _descend(nearest, lo, hi, gram, target @ cross.T)
        e = _objective(chosen, target, x_d, x_t) / vth ** 2
        if vth == fixed.vth_mant:
            objective_nearest = _objective(nearest, target, x_d, x_t) / vth ** 2
            e = min(e, objective_nearest)  # coordinate descent only moves downhill; exact sums can tie
            chosen = chosen if e < objective_nearest else nearest
        if best is None or e < best[0]:
            best = (e, chosen, vth)
    assert best is not None
    e, chosen, vth = best
    bias = None if fixed.bias is None else chosen[:, -1]
    weight = (chosen if fixed.bias is None else chosen[:, :-1]).reshape(fixed.weight.shape)
    return Rounding(weight, bias, vth, objective_nearest, e)


def float_layer(graph: Graph, layer: ChipLayer, source: str, upstream: np.ndarray) -> np.ndarray:
    """The float layer's spikes (N, T, *out) on ``upstream`` (N, T, *source shape), the value of node ``source``."""
    return run_chip_layer(graph, layer.name, layer.nodes, source, upstream)


def calibrate_layer(graph: Graph, layer: ChipLayer, source: str, frames: np.ndarray, payload_max: int,
                    rounding: str = "nearest", trajectory: tuple[np.ndarray, np.ndarray] | None = None,
                    wide: bool = False, keep_static_from: float | None = None
                    ) -> tuple[QuantizedChipLayer, LayerCalibration, np.ndarray]:
    """One layer on its integer input ``frames`` (N, T, *input_shape): (chosen, record, its spikes).

    ``rounding``: one of ROUNDINGS; ``end_to_end`` needs ``trajectory``, the
    float graph's own (input in payload units, spikes) of this layer; ``wide``: wide weights;
    ``keep_static_from``: a static scale whose F1 reaches it is kept without a search (the samples are a
    probe that measures the layer, and searches only where it falls short).
    """
    n, steps = frames.shape[:2]
    upstream = (frames / payload_max).reshape(n, steps, *graph.nodes[source].output_shape)
    target = float_layer(graph, layer, source, upstream)
    static = quantize_chip_layer(layer, payload_max, wide=wide)
    static_spikes = run_segment_batch([static.layer], frames)[0]
    static_f1 = spike_scores(static_spikes, target)["spike_f1"]
    if keep_static_from is not None and _rank(static_f1) >= keep_static_from:
        return static, LayerCalibration(layer.name, static.weight_scale, static.weight_scale, static_f1, static_f1,
                                        1, 0.0, spike_f1_scale=static_f1), static_spikes
    static_per_sample = _per_sample_f1(static_spikes, target)
    allowed = broken_constraints(static)
    best = (_rank(static_f1), static, static_spikes, static_f1, 0.0)  # the choice: significant gains only
    center = (_rank(static_f1), static.weight_scale)  # where the fine search looks: the highest F1
    tried = {static.weight_scale}

    def consider(s: float) -> None:
        nonlocal best, center
        q = quantize_chip_layer(layer, payload_max, scale=s, wide=wide)
        tried.add(s)
        if not broken_constraints(q) <= allowed:
            return
        spikes = run_segment_batch([q.layer], frames)[0]
        f1 = spike_scores(spikes, target)["spike_f1"]
        center = max(center, (_rank(f1), s), key=lambda c: c[0])  # ties keep the earlier, nearer one
        if _rank(f1) > best[0]:  # ties keep the earlier: the static scale, then the nearest
            z = gain_z(_per_sample_f1(spikes, target), static_per_sample)
            if z >= SIGNIFICANCE_Z:
                best = (_rank(f1), q, spikes, f1, z)

    for s in coarse_scales(static.weight_scale):
        consider(s)
    for s in fine_scales(center[1], _weights(layer), static.weight_max):
        if s not in tried:
            consider(s)
    _, chosen, spikes, f1, z = best
    record = LayerCalibration(layer.name, static.weight_scale, chosen.weight_scale, static_f1, f1, len(tried), z,
                              spike_f1_scale=f1)
    if rounding == "nearest" or isinstance(layer, RecurrentDenseLayer) or n < 4:  # n < 4: halves of 1 sample
        return chosen, record, spikes                                              # cannot show a paired gain
    fit, held = slice(0, n // 2), slice(n // 2, n)
    target_frames, target_spikes = (frames, target) if rounding == "local" else trajectory
    chosen_rounding = choose_rounding(layer, chosen, frames[fit], target_frames[fit])
    rounded = with_mantissas(chosen, layer, chosen_rounding.weight, chosen_rounding.bias, chosen_rounding.vth_mant)
    rounded_spikes = run_segment_batch([rounded.layer], frames)[0]
    before = _per_sample_f1(spikes[held], target_spikes[held])
    after = _per_sample_f1(rounded_spikes[held], target_spikes[held])
    z_rounding = gain_z(after, before)
    keep = z_rounding >= SIGNIFICANCE_Z and not broken_constraints(rounded) - broken_constraints(chosen)
    if keep:
        chosen, spikes = rounded, rounded_spikes
    record = replace(
        record, spike_f1=spike_scores(spikes, target)["spike_f1"], rounding=rounding if keep else "nearest",
        rounding_tried=rounding, rounding_objective_nearest=chosen_rounding.objective_nearest,
        rounding_objective=chosen_rounding.objective,
        rounding_f1_held_out=(float(before.mean()), float(after.mean())), rounding_gain_z=z_rounding)
    return chosen, record, spikes


# deploy_layer(layer, source, frames, p) -> (the layer quantized, its deployed spikes (N, T, *out)): ``frames`` are
# the payloads (N, T, *in) the chip feeds it, ``source`` the graph node they stand for, ``p`` their payload maximum
LayerDeployer = Callable[[ChipLayer, str, np.ndarray, int], tuple[QuantizedChipLayer, np.ndarray]]


def deploy_layerwise(partition: Partition, x: np.ndarray, payload_max: Mapping[int, int],
                     deploy_layer: LayerDeployer) -> dict[int, tuple[QuantizedChipLayer, ...]]:
    """Every chip layer of ``partition`` deployed by ``deploy_layer`` in partition order, each on what the chip
    gives it on samples ``x`` (N, T, *input): the previous layer's deployed spikes, or at a segment's start its
    upstream as payloads (``payload_max``: per chip segment index, P); host segments in float between them.
    Returns the quantized layers per chip segment index."""
    graph = partition.graph
    (input_name,) = [n for n, node in graph.nodes.items() if node.kind == "Input"]
    values: dict[str, torch.Tensor] = {input_name: torch.from_numpy(np.asarray(x, np.float64))}
    segments: dict[int, tuple[QuantizedChipLayer, ...]] = {}
    for k, segment in enumerate(partition.segments):
        if not isinstance(segment, ChipSegment):
            values.update(run_host_segment(graph, segment.nodes, values))
            continue
        source = graph.inputs(segment.layers[0].nodes[0])[0]
        upstream = values[source].numpy()
        frames = to_payload(upstream, payload_max[k]).reshape(*upstream.shape[:2], *segment.layers[0].input_shape)
        chosen: list[QuantizedChipLayer] = []
        for i, layer in enumerate(segment.layers):
            q, spikes = deploy_layer(layer, source, frames, payload_max[k] if i == 0 else 1)
            chosen.append(q)
            values[layer.name] = torch.from_numpy(spikes.astype(np.float64))
            source, frames = layer.name, spikes
        segments[k] = tuple(chosen)
    return segments


def calibrate(partition: Partition, x: np.ndarray, payload_max: Mapping[int, int],
              rounding: str = "nearest", wide: bool = False, keep_static_from: float | None = None) -> Calibration:
    """Calibrate every chip segment of ``partition`` on samples ``x`` (N, T, *input) (module docstring).

    ``payload_max``: per chip segment (its index in ``partition.segments``)
    the P of its input payloads (1 for spikes, 255 for 8-bit graded values).
    ``rounding``: one of ROUNDINGS, how each layer's mantissas are rounded after its scale; ``wide``: wide
    weights (two synapses per connection, :mod:`neurodeploy.chip.quantize`); ``keep_static_from``: a layer
    whose static scale reaches this F1 on ``x`` keeps it unsearched (:func:`calibrate_layer`).
    """
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {ROUNDINGS}, not {rounding!r}")
    trajectory = ({k: v.numpy() for k, v in run_float(partition.graph, torch.from_numpy(np.asarray(x, np.float64))
                                                      ).items()} if rounding == "end_to_end" else {})
    records: list[LayerCalibration] = []

    def deploy_layer(layer: ChipLayer, source: str, frames: np.ndarray, p: int
                     ) -> tuple[QuantizedChipLayer, np.ndarray]:
        own = (trajectory[source].reshape(frames.shape) * p, trajectory[layer.name]) if trajectory else None
        q, record, spikes = calibrate_layer(partition.graph, layer, source, frames, p, rounding, own, wide,
                                            keep_static_from)
        records.append(record)
        return q, spikes

    return Calibration(deploy_layerwise(partition, x, payload_max, deploy_layer), tuple(records))
