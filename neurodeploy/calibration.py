r"""Calibration: each chip layer's weight scale chosen on user samples to reproduce the float layer's spikes.

:func:`neurodeploy.quantize.quantize_chip_layer` chooses a layer's scale ``s``
statically, from the parameters alone. Given samples X (N, T, \*input) of the
graph's input, :func:`calibrate` chooses instead, for each chip layer in
partition order, the scale whose fixed-point layer best reproduces the float
layer's spikes on X:

* candidates: the static scale ``s0`` and every grid scale
  (:func:`neurodeploy.quantize.candidate_scales`, 32 per octave) in
  ``[s0/2, 2·s0]``. ``s`` sets the weights' rounding and the threshold's
  together; within one octave either way every weight gains or loses at most
  one bit of mantissa, beyond it weights saturate or lose a bit more, which
  the static objective already weighed. A candidate may not add a warning
  the static choice lacks, other than weight saturation (the spikes judge
  that): a threshold that does not fit, a clipped bias or a current that can
  wrap for some input is excluded, whatever it scores on X;
* score: the layer's ``spike_f1`` (:func:`neurodeploy.spike_metrics.spike_scores`)
  of the candidate's spikes against the float layer's. Both read the same
  input: the chip's own upstream, i.e. the already calibrated previous
  layers' fixed-point spikes, or for a segment's first layer its input
  payloads ``p`` (the float layer reads ``p / P``, the value the payload
  carries), so one layer's error does not compound into the next one's score.
  The float layer is the NIR nodes of that chip layer (its folded pools and
  Flatten, synapse, recurrence and neuron) run by
  :func:`neurodeploy.float_graph.run_nodes`; the fixed-point side is the
  reference backend (:func:`neurodeploy.reference.run_segment_batch`) on the
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

Host segments between chip segments run in float (:func:`neurodeploy.host_graph.run_host_segment`),
as in the deployed runtime, reading the calibrated chip segments' spikes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from neurodeploy.chip_layers import ChipLayer
from neurodeploy.encoding import to_payload
from neurodeploy.float_graph import run_nodes, topological_order
from neurodeploy.graph import Graph
from neurodeploy.host_graph import run_host_segment
from neurodeploy.partition import ChipSegment, Partition
from neurodeploy.quantize import QuantizedChipLayer, candidate_scales, quantize_chip_layer
from neurodeploy.reference import run_segment_batch
from neurodeploy.spike_metrics import spike_scores

OCTAVES_AROUND_STATIC = 1.0
SIGNIFICANCE_Z = 3.0  # paired z-score a candidate's F1 gain over the static scale needs (module docstring)


@dataclass(frozen=True)
class LayerCalibration:
    """One chip layer's calibrated scale, and its spike F1 against the float layer before and after."""

    name: str
    static_scale: float
    scale: float
    spike_f1_static: float | None  # None: neither side spiked
    spike_f1: float | None
    candidates: int  # scales tried (the admissible ones)
    gain_z: float  # the chosen scale's paired z-score of its per-sample F1 gain over the static (0: static)


@dataclass(frozen=True)
class Calibration:
    """The calibrated chip segments (partition segment index -> layers) and the per-layer record."""

    segments: dict[int, tuple[QuantizedChipLayer, ...]]
    layers: tuple[LayerCalibration, ...]


def scales_around(static: float) -> list[float]:
    """The static scale, then the grid scales within OCTAVES_AROUND_STATIC of it, nearest first."""
    grid = candidate_scales()
    near = np.abs(np.log2(grid / static)) <= OCTAVES_AROUND_STATIC + 1e-9
    others = sorted((float(s) for s in grid[near] if not math.isclose(s, static, rel_tol=1e-12)),
                    key=lambda s: abs(math.log2(s / static)))
    return [float(static), *others]


def _admissible(candidate: QuantizedChipLayer, static: QuantizedChipLayer) -> bool:
    """No warning the static choice lacks, weight saturation aside (module docstring)."""
    def kept(q: QuantizedChipLayer) -> set[str]:
        return {w for w in q.warnings if "saturate" not in w}

    return kept(candidate) <= kept(static)


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
    names = set(layer.nodes)
    order = [n for n in topological_order(graph) if n in names]
    out = run_nodes(graph, order, {source: torch.from_numpy(np.asarray(upstream, np.float64))})
    return out[layer.name].numpy()


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
    best = (_rank(static_f1), static, static_spikes, static_f1, 0.0)
    tried = 1
    for s in scales_around(static.weight_scale)[1:]:
        q = quantize_chip_layer(layer, payload_max, scale=s)
        if not _admissible(q, static):
            continue
        tried += 1
        spikes = run_segment_batch([q], frames)[0]
        f1 = spike_scores(spikes, target)["spike_f1"]
        if _rank(f1) <= best[0]:  # ties keep the earlier: the static scale, then the nearest
            continue
        z = gain_z(_per_sample_f1(spikes, target), static_per_sample)
        if z >= SIGNIFICANCE_Z:
            best = (_rank(f1), q, spikes, f1, z)
    _, chosen, spikes, f1, z = best
    record = LayerCalibration(layer.name, static.weight_scale, chosen.weight_scale, static_f1, f1, tried, z)
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
