"""``neurodeploy profile NET.net``: a Lava-DL netx network's counts, energy and deployment, frame by frame.

Each frame runs ``steps`` Lava steps from zero state (:func:`neurodeploy.runtime.netx_run.run_netx`) and
every layer is counted exactly by :mod:`neurodeploy.cost.counting`'s rules on what it read in Lava's steps
(the previous layer's spikes one step later). The bias-driven input layer
(:class:`neurodeploy.converters.netx_in.BiasInput`) counts its neurons' updates and spikes, no synaptic
operation (it has no synapses; the frame is in its biases, written once, so no bridge traffic either).
Counts are averaged over the frames, priced on the profiles, and the chip layers
(:func:`netx_chip_layers`) go through the same deployment view as a graph bundle's
(:func:`neurodeploy.cost.profile.add_deployment`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from neurodeploy.converters.netx_in import NetxNetwork
from neurodeploy.cost.counting import (
    InferenceCounts,
    LayerCounts,
    chip_layer_counts,
    chip_layer_dense_macs,
    events_per_step,
)
from neurodeploy.cost.mapping import ChipLayerInfo
from neurodeploy.cost.neurobench_metrics import layer_operations, metrics
from neurodeploy.cost.profile import add_deployment, summarize_graph
from neurodeploy.runtime.netx_run import FRAMES_PER_BATCH, delayed, run_netx


def input_counts(name: str, spikes: np.ndarray) -> LayerCounts:
    """The bias-driven input layer over one frame: ``spikes`` (T, *shape); no input events, no synapses."""
    spikes = np.asarray(spikes) != 0
    t, neurons = spikes.shape[0], math.prod(spikes.shape[1:])
    fired = events_per_step(spikes)
    channels = spikes.shape[1] if spikes.ndim > 2 else 1
    per_channel = spikes.reshape(t, channels, -1).sum(axis=(0, 2), dtype=np.int64)
    rate = int(fired.sum()) / (neurons * t) if neurons and t else 0.0
    return LayerCounts(name=name, kind="input", timesteps=t, neurons=neurons, input_events=0,
                       input_events_per_step=[0] * t, payload_bits=0, synops=0, synops_per_step=[0] * t,
                       synop_payload_bits=0, spikes=int(fired.sum()), spikes_per_step=[int(v) for v in fired],
                       spikes_per_channel=[int(v) for v in per_channel], neuron_updates=neurons * t,
                       firing_rate=rate,
                       firing_rate_per_channel=[float(v) / (neurons // channels * t) for v in per_channel],
                       sparsity=1.0 - rate)


def count_frame(network: NetxNetwork, spikes: Sequence[np.ndarray]) -> InferenceCounts:
    """One frame's exact counts from every layer's spikes (T, *shape), the input layer first."""
    layers = [input_counts(network.input_name, spikes[0])]
    operations, dense = [], 0
    steps = spikes[0].shape[0]
    for name, layer, read, fired in zip(network.names, network.layers, spikes[:-1], spikes[1:], strict=True):
        events = delayed(np.asarray(read)[None])[0].reshape(steps, *layer.input_shape)
        layers.append(chip_layer_counts(name, layer.kind, events, fired, tuple(layer.weight.shape), 0,
                                        layer.stride, layer.padding))
        operations.append(layer_operations(layer.kind, events, layer.weight, layer.stride, layer.padding,
                                           layer.weight_rec, fired))
        dense += chip_layer_dense_macs(layer.kind, tuple(layer.weight.shape), layer.output_shape) * steps
    zero = {"host_to_chip": 0, "chip_to_host": 0}
    return InferenceCounts(layers=layers, host_macs=0, dense_snn_macs=dense, bridge_events=dict(zero),
                           bridge_bits=dict(zero), extra={"neurobench_operations": operations})


def netx_chip_layers(network: NetxNetwork, layers: list[dict[str, Any]]) -> list[ChipLayerInfo]:
    """The network's chip layers (conv, dense, dense_rec) as the cost model's records, with their averaged
    counts (``layers``: the summary's, the input layer first, which has no FixedPointLayer and is left out)."""
    return [ChipLayerInfo.of(name, layer, counts)
            for name, layer, counts in zip(network.names, network.layers, layers[1:], strict=True)]


def profile_netx(network: NetxNetwork, bias_mant: np.ndarray, steps: int, backend: str = "torch",
                 hw: Iterable[str] | None = None, host: str = "gpu", device: str = "cpu",
                 path: str | None = None) -> tuple[dict[str, Any], np.ndarray]:
    """Profile frames' bias mantissas (N, *input shape); returns (summary JSON, the first chip layer's spikes
    of the last frame (T, *shape), for the raster)."""
    hw = None if hw is None else list(hw)
    per_frame, exact = [], True
    for start in range(0, len(bias_mant), FRAMES_PER_BATCH):  # memory: one batch of frames' spikes at a time
        batch = bias_mant[start:start + FRAMES_PER_BATCH]
        spikes = run_netx(network, batch, steps, backend, device, path)
        if backend != "reference":
            exact &= all(np.array_equal(a, b) for a, b in zip(spikes, run_netx(network, batch, steps, "reference"),
                                                                strict=True))
        per_frame += [count_frame(network, [s[n] for s in spikes]).as_dict() for n in range(len(batch))]
    summary = summarize_graph(per_frame, backend, hw, host, steps, exact)
    infos = netx_chip_layers(network, summary["layers"])
    total_spikes = sum(layer["spikes"] for layer in summary["layers"])
    outputs = sum(layer["neuron_updates"] for layer in summary["layers"])
    weights = [w for layer in network.layers for w in layer.weights]
    nb = metrics(summary.pop("neurobench_operations"), total_spikes, outputs, weights,
                 [layer.bias for layer in network.layers])
    add_deployment(summary, infos, nb, hw, host)
    summary["source"] = "netx"
    return summary, spikes[1][-1]
