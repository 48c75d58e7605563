"""Exact event counts of one inference: spikes, synaptic operations, MACs, bridge traffic.

Pure functions of the spiking stage's input events and output spikes (both
(T, C, H, W), as the spike bridge moves them) and of the network's geometry.
Every count is a sum over pixels, so an :class:`EventTally` adds them up tile
by tile as ``simulate`` streams an image, and the totals equal those of the
whole image (:func:`count_inference` is the one-tile case).

* Synaptic operations: every input event times the synapses it reaches. A
  conv with a k x k kernel, stride 1 and 'same' padding p connects the input
  pixel (y, x) to the outputs within p rows and p columns of it that lie in
  the image, in each of the C_out channels::

      reach(y, x) = C_out · ry(y) · rx(x),   ry(y) = min(y + p, H - 1) - max(y - p, 0) + 1
      synops      = Σ_t Σ_{c,y,x} [event(t, c, y, x) ≠ 0] · reach(y, x)

  A graded event (an 8-bit payload) is one operation; ``synop_payload_bits``
  adds up the payload bits those operations carry.
* Neuron updates: neurons x time steps (every neuron updates every step).
* Host MACs: each conv or transposed conv of the host CNN computed densely.
* Bridge traffic, host <-> chip per inference: input events in, output
  spikes out; bits per step are the cheaper of address-event packets
  (``ceil(log2 N)`` address bits + payload bits per event) and a dense
  bitmap (N x payload bits; 1 bit per neuron for binary spikes).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class LayerCounts:
    """Counts for the spiking layer over one inference."""

    name: str
    timesteps: int
    neurons: int
    input_events: int
    input_events_per_step: list[int]
    payload_bits: int
    synops: int
    synops_per_step: list[int]
    synop_payload_bits: int
    spikes: int
    spikes_per_step: list[int]
    spikes_per_channel: list[int]
    neuron_updates: int
    firing_rate: float
    firing_rate_per_channel: list[float]
    sparsity: float  # fraction of (t, c, y, x) without a spike

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class InferenceCounts:
    """Everything the energy model needs about one inference."""

    layers: list[LayerCounts]
    host_macs: int
    dense_snn_macs: int  # the spiking layer run as an ordinary conv, once
    bridge_events: dict[str, int]
    bridge_bits: dict[str, int]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def total_bridge_bits(self) -> int:
        return int(sum(self.bridge_bits.values()))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InferenceCounts:
        """Rebuild from :meth:`as_dict` output (e.g. counts averaged over images)."""
        return cls(layers=[LayerCounts(**layer) for layer in data["layers"]], host_macs=data["host_macs"],
                   dense_snn_macs=data["dense_snn_macs"], bridge_events=data["bridge_events"],
                   bridge_bits=data["bridge_bits_by_direction"])

    def as_dict(self) -> dict[str, Any]:
        return {
            "layers": [layer.as_dict() for layer in self.layers],
            "host_macs": self.host_macs,
            "dense_snn_macs": self.dense_snn_macs,
            "bridge_events": self.bridge_events,
            "bridge_bits": self.total_bridge_bits,
            "bridge_bits_by_direction": self.bridge_bits,
            **self.extra,
        }


def reach(n: int, kernel: int) -> np.ndarray:
    """(n,) int64: along an axis of n pixels, how many output positions each input pixel reaches."""
    p = kernel // 2
    idx = np.arange(n)
    return (np.minimum(idx + p, n - 1) - np.maximum(idx - p, 0) + 1).astype(np.int64)


def synaptic_ops(events: np.ndarray, c_out: int, kernel: int, origin: tuple[int, int] = (0, 0),
                 image_size: tuple[int, int] | None = None) -> np.ndarray:
    """Synaptic operations per time step for input events (T, C_in, h, w) into a 'same' conv.

    The events are those of the window at ``origin`` (top, left) of an image of
    ``image_size`` (H, W); by default the window is the whole image.
    """
    active = (np.asarray(events) != 0).sum(axis=1, dtype=np.int64)  # (T, h, w): events per pixel
    (top, left), (h, w) = origin, active.shape[1:]
    height, width = image_size or (h, w)
    rows, cols = reach(height, kernel)[top:top + h], reach(width, kernel)[left:left + w]
    return (active * np.outer(rows, cols)).sum(axis=(1, 2)) * c_out


@dataclass
class EventTally:
    """The sums :func:`layer_counts` needs about one inference, added up window by window."""

    height: int
    width: int
    input_channels: int
    kernel: int
    input_events_per_step: np.ndarray  # (T,) int64
    synops_per_step: np.ndarray  # (T,) int64
    spikes_per_step: np.ndarray  # (T,) int64
    spikes_per_channel: np.ndarray  # (C_out,) int64

    @classmethod
    def empty(cls, timesteps: int, c_in: int, c_out: int, height: int, width: int, kernel: int) -> EventTally:
        zeros = np.zeros(timesteps, dtype=np.int64)
        return cls(height, width, c_in, kernel, zeros, zeros.copy(), zeros.copy(), np.zeros(c_out, dtype=np.int64))

    @classmethod
    def of(cls, events: np.ndarray, spikes: np.ndarray, kernel: int) -> EventTally:
        """The tally of a whole image's events and spikes (T, C, H, W)."""
        t, c_in, h, w = np.shape(events)
        tally = cls.empty(t, c_in, np.shape(spikes)[1], h, w, kernel)
        tally.add(events, spikes)
        return tally

    def add(self, events: np.ndarray, spikes: np.ndarray, origin: tuple[int, int] = (0, 0)) -> None:
        """Count one window at ``origin`` of the image: its input events (T, C_in, h, w) and output spikes."""
        fired = np.asarray(spikes) != 0
        self.input_events_per_step += (np.asarray(events) != 0).sum(axis=(1, 2, 3), dtype=np.int64)
        self.synops_per_step += synaptic_ops(events, fired.shape[1], self.kernel, origin, (self.height, self.width))
        self.spikes_per_step += fired.sum(axis=(1, 2, 3), dtype=np.int64)
        self.spikes_per_channel += fired.sum(axis=(0, 2, 3), dtype=np.int64)

    @property
    def spikes(self) -> int:
        return int(self.spikes_per_step.sum())


def address_event_bits(events_per_step: np.ndarray, neurons: int, payload_bits: int) -> int:
    """Bits to move the events: per step the cheaper of address-event packets and a bitmap."""
    address = max(1, math.ceil(math.log2(max(neurons, 2))))
    per_event = address + payload_bits
    bitmap = neurons * max(payload_bits, 1)
    return int(np.minimum(events_per_step.astype(np.int64) * per_event, bitmap).sum())


def layer_counts(name: str, tally: EventTally, payload_bits: int) -> LayerCounts:
    """Counts of one conv + LIF layer from the tally of its input events and output spikes."""
    t, c_out = len(tally.spikes_per_step), len(tally.spikes_per_channel)
    h, w = tally.height, tally.width
    neurons = c_out * h * w
    synops = tally.synops_per_step
    total_spikes = tally.spikes
    rate = total_spikes / (neurons * t) if neurons and t else 0.0
    return LayerCounts(
        name=name, timesteps=t, neurons=neurons,
        input_events=int(tally.input_events_per_step.sum()),
        input_events_per_step=[int(v) for v in tally.input_events_per_step],
        payload_bits=payload_bits,
        synops=int(synops.sum()), synops_per_step=[int(v) for v in synops],
        synop_payload_bits=int(synops.sum()) * payload_bits,
        spikes=total_spikes, spikes_per_step=[int(v) for v in tally.spikes_per_step],
        spikes_per_channel=[int(v) for v in tally.spikes_per_channel],
        neuron_updates=neurons * t, firing_rate=rate,
        firing_rate_per_channel=[float(v) / (h * w * t) for v in tally.spikes_per_channel],
        sparsity=1.0 - rate,
    )


def host_macs(conv_shapes: list[dict[str, Any]], height: int, width: int) -> int:
    """Dense multiply-accumulates of the host CNN on an H x W image (see model.host_conv_shapes)."""
    total = 0
    for layer in conv_shapes:
        scale = layer["output_scale"]
        outputs = layer["out_channels"] * round(height * scale) * round(width * scale)
        total += outputs * layer["in_channels"] * layer["taps"]
    return int(total)


def count_inference(events: np.ndarray, spikes: np.ndarray, kernel: int, payload_bits: int,
                    conv_shapes: list[dict[str, Any]], name: str = "snn.conv") -> InferenceCounts:
    """All counts of one inference from its whole input events and output spikes (T, C, H, W)."""
    return count_tally(EventTally.of(events, spikes, kernel), payload_bits, conv_shapes, name)


def count_tally(tally: EventTally, payload_bits: int, conv_shapes: list[dict[str, Any]],
                name: str = "snn.conv") -> InferenceCounts:
    """All counts of one inference: the spiking layer, the host CNN and the bridge between them."""
    layer = layer_counts(name, tally, payload_bits)
    c_in, h, w = tally.input_channels, tally.height, tally.width
    c_out = len(tally.spikes_per_channel)
    in_bits = address_event_bits(np.asarray(layer.input_events_per_step), c_in * h * w, payload_bits)
    out_bits = address_event_bits(np.asarray(layer.spikes_per_step), layer.neurons, 0)
    return InferenceCounts(
        layers=[layer],
        host_macs=host_macs(conv_shapes, h, w),
        dense_snn_macs=c_out * c_in * tally.kernel * tally.kernel * h * w,
        bridge_events={"host_to_chip": layer.input_events, "chip_to_host": layer.spikes},
        bridge_bits={"host_to_chip": in_bits, "chip_to_host": out_bits},
    )
