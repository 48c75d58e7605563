r"""``profile`` of placement "all": the sigma-delta layers counted, mapped onto cores, timed and priced.

The counts of one image come from the simulator's
:class:`~neurodeploy.inpainter.sd_placement.SigmaDeltaTally` (per Lava step of
the segment, over the pixels every host block owns). Per sigma-delta layer::

    messages     = graded messages sent (a changed activation sends one, an unchanged one none)
    input_events = messages received (the LIF stage's spikes for the first layer)
    synops       = Σ over input messages of the outputs its weights reach (counted, not estimated)
    neuron_updates = neurons · (T + n)      every sigma-delta neuron updates every step

They join the LIF layers in the profile's ``layers`` (``kind = "sigma_delta"``,
``payload_bits = 24``) and are priced by the same energy model
(:mod:`neurodeploy.cost.energy`: a graded synaptic operation at the profile's
``synop_j``, ASSUMPTION: the profiles give one figure per synaptic operation,
binary or graded). The host's MACs keep only the layers left on the host; the
all-CNN twin's MACs (``dense_snn_macs + host_macs``) stay the same network's.
The bridge then carries the readout's graded messages to the host (24-bit
payloads); the LIF -> sigma-delta cut stays on the chip.

For the core mapping and the latency model
(:mod:`neurodeploy.cost.mapping`, :mod:`neurodeploy.cost.latency`) a sigma-delta
layer is the conv it computes on the image: a dilated kernel counts at its
extent, a transposed conv as the conv of the zero-upsampled input (ASSUMPTION:
its zero rows take cores as real ones would; an upper bound). Its per-step
counts are indexed as the latency model reads them (layer k at depth k
processes step t = τ - k): Lava step s of the segment is t = s - k + 1, the
steps before it (its bias's first messages) folded into t = 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from neurodeploy.chip.sigma_delta import SigmaDeltaLayer, conv_output_shape
from neurodeploy.cost.counting import LayerCounts, address_event_bits, host_macs
from neurodeploy.cost.mapping import ChipLayerInfo
from neurodeploy.inpainter.model import ModelConfig, host_conv_shapes
from neurodeploy.inpainter.sd_placement import SigmaDeltaTally

PAYLOAD_BITS = 24  # a graded message's payload


def add_sigma_delta_counts(counts: dict[str, Any], tallies: Sequence[SigmaDeltaTally], config: ModelConfig,
                           height: int, width: int) -> dict[str, Any]:
    """One image's counts (:func:`neurodeploy.cost.counting.count_tallies`'s, its host MACs already without the
    chip's convs) with the sigma-delta layers added (module docstring); ``height, width`` the image as
    the spiking stage reads it."""
    layers = []
    for tally in tallies:
        steps, sent = len(tally.messages), int(tally.messages.sum())
        layers.append(LayerCounts(
            name=tally.name, timesteps=steps, neurons=tally.neurons, input_events=int(tally.input_events.sum()),
            input_events_per_step=[int(v) for v in tally.input_events], payload_bits=PAYLOAD_BITS,
            synops=int(tally.synops.sum()), synops_per_step=[int(v) for v in tally.synops],
            synop_payload_bits=int(tally.synops.sum()) * PAYLOAD_BITS, spikes=sent,
            spikes_per_step=[int(v) for v in tally.messages], spikes_per_channel=[],
            neuron_updates=tally.neurons * steps, firing_rate=sent / (tally.neurons * steps),
            firing_rate_per_channel=[], sparsity=1.0 - sent / (tally.neurons * steps), kind="sigma_delta").as_dict())
    readout = tallies[-1]
    on_chip = host_conv_shapes(config)[:len(tallies)]
    bridge_events = {**counts["bridge_events"], "chip_to_host": int(readout.messages.sum())}
    bridge_bits = {**counts["bridge_bits_by_direction"],
                   "chip_to_host": address_event_bits(readout.messages, readout.neurons, PAYLOAD_BITS)}
    return {**counts, "layers": [*counts["layers"], *layers],
            "dense_snn_macs": counts["dense_snn_macs"] + host_macs(on_chip, height, width),
            "bridge_events": bridge_events, "bridge_bits_by_direction": bridge_bits,
            "bridge_bits": int(sum(bridge_bits.values()))}


def _latency_steps(values: Sequence[float], depth: int) -> tuple[float, ...]:
    """Segment step s -> the latency model's t = s - depth + 1, earlier steps folded into t = 0."""
    values = list(values)
    if depth <= 1:
        return tuple(values)
    return (float(sum(values[:depth])), *values[depth:])


def sigma_delta_infos(layers: Sequence[SigmaDeltaLayer], counted: Sequence[dict[str, Any]], height: int,
                      width: int) -> list[ChipLayerInfo]:
    """The sigma-delta layers on an input of ``height x width`` (the spike grid) for the mapping and latency
    model, with their averaged per-step counts (``counted``: their entries of the summary's ``layers``)."""
    infos = []
    shape: tuple[int, ...] = (layers[0].input_shape[0], height, width)
    for depth, (layer, counts) in enumerate(zip(layers, counted, strict=True), start=1):
        out = conv_output_shape(shape, layer.weight.shape, layer.stride, layer.padding, layer.dilation,
                                layer.upsample)
        extent = tuple(d * (k - 1) + 1 for d, k in zip(layer.dilation, layer.weight.shape[2:], strict=True))
        seen = (shape[0], *(layer.upsample * (n - 1) + 1 for n in shape[1:]))
        infos.append(ChipLayerInfo(
            counts["name"], "conv", seen, out, (*layer.weight.shape[:2], *extent), layer.stride, layer.padding,
            _latency_steps(counts["synops_per_step"], depth), _latency_steps(counts["spikes_per_step"], depth),
            _latency_steps(counts["input_events_per_step"], depth)))
        shape = out
    return infos


def sigma_delta_operations(layers: Sequence[SigmaDeltaLayer], counted: Sequence[dict[str, Any]], height: int,
                           width: int) -> list[dict[str, Any]]:
    """NeuroBench's operations of the sigma-delta layers: their graded synaptic operations are MACs; the
    dense count is the conv's MACs on the image times the segment's steps."""
    ops, shape = [], (layers[0].input_shape[0], height, width)
    for layer, counts in zip(layers, counted, strict=True):
        out = conv_output_shape(shape, layer.weight.shape, layer.stride, layer.padding, layer.dilation,
                                layer.upsample)
        taps = int(np.prod(layer.weight.shape[1:])) // (4 if layer.upsample > 1 else 1)  # 2x2 of 4x4 land
        nonzero = float(np.count_nonzero(layer.weight)) / layer.weight.size
        ops.append({"effective_macs": counts["synops"] * nonzero, "effective_acs": 0.0,
                    "dense": float(np.prod(out)) * taps * counts["timesteps"], "exact": nonzero == 1.0})
        shape = out
    return ops
