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

Host segments between chip segments run in float (:func:`neurodeploy.ir.host_ops.run_host_segment`),
as in the deployed runtime, reading the calibrated chip segments' spikes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from neurodeploy.chip.cuba import DECAY_UNITY, STATE_SHIFT
from neurodeploy.chip.encoding import to_payload
from neurodeploy.chip.layers import ChipLayer, RecurrentDenseLayer
from neurodeploy.chip.partition import ChipSegment, Partition
from neurodeploy.chip.quantize import (
    BIAS_MANT_MAX,
    STATE_LIMIT,
    VTH_MAX,
    QuantizedChipLayer,
    candidate_scales,
    quantize_chip_layer,
)
from neurodeploy.chip.reference import run_segment_batch
from neurodeploy.ir.float_run import run_chip_layer
from neurodeploy.ir.graph import Graph
from neurodeploy.ir.host_ops import run_host_segment
from neurodeploy.spike_metrics import spike_scores

COARSE_OCTAVES = 3  # the coarse search spans s0/8 .. 8·s0
COARSE_STEPS_PER_OCTAVE = 4
SIGNIFICANCE_Z = 3.0  # paired z-score a candidate's F1 gain over the static scale needs (module docstring)


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


def fine_scales(center: float, weights: np.ndarray) -> list[float]:
    """The static search's scales for ``weights`` within one coarse step of ``center`` (itself left out),
    nearest first."""
    every = candidate_scales(weights)
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
    if not 1 <= q.vth_mant < VTH_MAX:
        broken.add("threshold")
    if q.bias is not None and np.abs(q.bias).max(initial=0) >= BIAS_MANT_MAX:
        broken.add("bias")
    if (q.max_input << STATE_SHIFT) * DECAY_UNITY / q.i_decay >= STATE_LIMIT:
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


def float_layer(graph: Graph, layer: ChipLayer, source: str, upstream: np.ndarray) -> np.ndarray:
    """The float layer's spikes (N, T, *out) on ``upstream`` (N, T, *source shape), the value of node ``source``."""
    return run_chip_layer(graph, layer.name, layer.nodes, source, upstream)


def calibrate_layer(graph: Graph, layer: ChipLayer, source: str, frames: np.ndarray, payload_max: int
                    ) -> tuple[QuantizedChipLayer, LayerCalibration, np.ndarray]:
    """One layer on its integer input ``frames`` (N, T, *input_shape): (chosen, record, its spikes)."""
    n, steps = frames.shape[:2]
    upstream = (frames / payload_max).reshape(n, steps, *graph.nodes[source].output_shape)
    target = float_layer(graph, layer, source, upstream)
    static = quantize_chip_layer(layer, payload_max)
    static_spikes = run_segment_batch([static], frames)[0]
    static_f1 = spike_scores(static_spikes, target)["spike_f1"]
    static_per_sample = _per_sample_f1(static_spikes, target)
    allowed = broken_constraints(static)
    best = (_rank(static_f1), static, static_spikes, static_f1, 0.0)  # the choice: significant gains only
    center = (_rank(static_f1), static.weight_scale)  # where the fine search looks: the highest F1
    tried = {static.weight_scale}

    def consider(s: float) -> None:
        nonlocal best, center
        q = quantize_chip_layer(layer, payload_max, scale=s)
        tried.add(s)
        if not broken_constraints(q) <= allowed:
            return
        spikes = run_segment_batch([q], frames)[0]
        f1 = spike_scores(spikes, target)["spike_f1"]
        center = max(center, (_rank(f1), s), key=lambda c: c[0])  # ties keep the earlier, nearer one
        if _rank(f1) > best[0]:  # ties keep the earlier: the static scale, then the nearest
            z = gain_z(_per_sample_f1(spikes, target), static_per_sample)
            if z >= SIGNIFICANCE_Z:
                best = (_rank(f1), q, spikes, f1, z)

    for s in coarse_scales(static.weight_scale):
        consider(s)
    for s in fine_scales(center[1], _weights(layer)):
        if s not in tried:
            consider(s)
    _, chosen, spikes, f1, z = best
    record = LayerCalibration(layer.name, static.weight_scale, chosen.weight_scale, static_f1, f1, len(tried), z)
    return chosen, record, spikes


def calibrate(partition: Partition, x: np.ndarray, payload_max: Mapping[int, int]) -> Calibration:
    """Calibrate every chip segment of ``partition`` on samples ``x`` (N, T, *input) (module docstring).

    ``payload_max``: per chip segment (its index in ``partition.segments``)
    the P of its input payloads (1 for spikes, 255 for 8-bit graded values).
    """
    graph = partition.graph
    (input_name,) = [n for n, node in graph.nodes.items() if node.kind == "Input"]
    values: dict[str, torch.Tensor] = {input_name: torch.from_numpy(np.asarray(x, np.float64))}
    segments: dict[int, tuple[QuantizedChipLayer, ...]] = {}
    records: list[LayerCalibration] = []
    for k, segment in enumerate(partition.segments):
        if not isinstance(segment, ChipSegment):
            values.update(run_host_segment(graph, segment.nodes, values))
            continue
        source = graph.inputs(segment.layers[0].nodes[0])[0]
        p = payload_max[k]
        upstream = values[source].numpy()
        frames = to_payload(upstream, p).reshape(*upstream.shape[:2], *segment.layers[0].input_shape)
        chosen: list[QuantizedChipLayer] = []
        for i, layer in enumerate(segment.layers):
            q, record, spikes = calibrate_layer(graph, layer, source, frames, p if i == 0 else 1)
            chosen.append(q)
            records.append(record)
            values[layer.name] = torch.from_numpy(spikes.astype(np.float64))
            source, frames = layer.name, spikes
        segments[k] = tuple(chosen)
    return Calibration(segments, tuple(records))
