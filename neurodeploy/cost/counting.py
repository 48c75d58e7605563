"""Exact event counts of one inference: spikes, synaptic operations, MACs, bridge traffic.

Pure functions of the spiking stage's input events and output spikes (both
(T, C, H, W), as the spike bridge moves them) and of the network's geometry.
Every count is a sum over pixels, so an :class:`EventTally` adds them up tile
by tile as ``simulate`` streams an image, and the totals equal those of the
whole image (one :meth:`EventTally.of` of the whole image is the one-tile case).

* Synaptic operations: every input event times the synapses it reaches. A
  conv with a k x k kernel, stride 1 and 'same' padding p connects the input
  pixel (y, x) to the outputs within p rows and p columns of it that lie in
  the image, in each of the C_out channels::

      reach(y, x) = C_out · ry(y) · rx(x),   ry(y) = min(y + p, H - 1) - max(y - p, 0) + 1
      synops      = Σ_t Σ_{c,y,x} [event(t, c, y, x) ≠ 0] · reach(y, x)

  (with stride s, ``ry`` counts the output rows o with ``o·s - p <= y <=
  o·s - p + k - 1``: :func:`conv_reach`). In a stack of layers, layer k's
  events are layer k-1's spikes.

  A graded event (an 8-bit payload) is one operation; ``synop_payload_bits``
  adds up the payload bits those operations carry.
* Neuron updates: neurons x time steps (every neuron updates every step).
* Host MACs: each conv or transposed conv of the host CNN computed densely.
* Bridge traffic, host <-> chip per inference: input events in, output
  spikes out; bits per step are the cheaper of address-event packets
  (``ceil(log2 N)`` address bits + payload bits per event) and a dense
  bitmap (N x payload bits; 1 bit per neuron for binary spikes).

A NIR graph (format-2 bundle), per sample, every count over its T steps:

* Chip layers (the netx layers the chip runs, pools already folded in):
  ``events`` are the nonzero values the layer reads each step (the segment's
  integer input payloads for its first layer, a graded payload counting as
  one event; the previous layer's spikes otherwise).

  - dense (O outputs): ``synops_t = events_t · O``;
  - conv (O, C, kh, kw), stride s, padding p, output (O, OH, OW): the input
    row y reaches the output rows o with ``o·s - p <= y <= o·s - p + kh - 1``
    and ``0 <= o < OH`` (columns alike), so
    ``synops_t = O · Σ_{c,y,x} [event_t(c, y, x) ≠ 0] · ry(y) · rx(x)``
    (:func:`conv_reach`; for stride 1 and 'same' padding it is :func:`reach`);
  - recurrent dense: the dense count plus the layer's own spikes of the
    previous step times O (none at the first step);
  - a bias into a filtered current (``bias_site = "current"``, the always-on
    bias axons of :class:`neurodeploy.chip.neuron_mapping.CubaMapping`):
    ``A = ceil(max|bias_mant| / 127)`` axons (:func:`bias_axons`) each
    spike every step and reach every neuron whose bias is nonzero, so per
    step ``A`` more spikes (``bias_axon_spikes``) and ``A · (neurons with a
    nonzero bias)`` more synaptic operations, added to ``synops``
    (``bias_axon_synops``: a conv's bias counts once per output position);
    a layer with wide weights carries its bias on wide axons as its other
    connections: ``A = ceil(max|bias_mant| / 16319)``, two synaptic
    operations each (its bias mantissas are ~2^7 larger at its scale);
  - neuron updates: neurons x T; dense (all-on-host) MACs: the layer's
    weights x T (the recurrence's too).
* Host MACs, from the host segments' actual nodes, every step: Linear /
  Affine ``in x out``; Conv2d ``output elements x (C / groups) x kh x kw``;
  Conv1d ``output elements x (C / groups) x k``; pools, Flatten, neurons,
  Scale, Threshold, Input and Output: 0 (no multiply-accumulate).
* Bridge, per cut between the chip and the host (:func:`cut_bits`): the
  events crossing each step priced by :func:`address_event_bits` over the
  cut's neurons, payload 0 bits for spikes and 8 for graded values. A
  chip -> chip cut stays on the chip: 0 bridge bits.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from neurodeploy.converters.netx_io import WIDE_WEIGHT_MAX
from neurodeploy.ir.host_only import HOST_OPS


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
    kind: str = "conv"  # conv, dense or dense_rec
    bias_axon_spikes: int = 0  # spikes of the always-on bias axons (a current bias), in none of the above
    bias_axon_synops: int = 0  # their synaptic operations, included in synops

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class InferenceCounts:
    """Everything the energy model needs about one inference."""

    layers: list[LayerCounts]
    host_macs: int
    dense_snn_macs: int  # the chip layers run as ordinary convs (or dense layers), once
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
                 image_size: tuple[int, int] | None = None, stride: int = 1) -> np.ndarray:
    """Synaptic operations per time step for input events (T, C_in, h, w) into a conv with 'same'
    padding (k // 2) and ``stride``.

    The events are those of the window at ``origin`` (top, left) of an image of
    ``image_size`` (H, W); by default the window is the whole image.
    """
    active = (np.asarray(events) != 0).sum(axis=1, dtype=np.int64)  # (T, h, w): events per pixel
    (top, left), (h, w) = origin, active.shape[1:]
    height, width = image_size or (h, w)
    pad = kernel // 2
    rows = conv_reach(height, kernel, stride, pad, -(-height // stride))[top:top + h]
    cols = conv_reach(width, kernel, stride, pad, -(-width // stride))[left:left + w]
    return (active * np.outer(rows, cols)).sum(axis=(1, 2)) * c_out


@dataclass
class EventTally:
    """The sums :func:`layer_counts` needs about one inference, added up window by window."""

    height: int  # of the layer's input
    width: int
    input_channels: int
    kernel: int
    input_events_per_step: np.ndarray  # (T,) int64
    synops_per_step: np.ndarray  # (T,) int64
    spikes_per_step: np.ndarray  # (T,) int64
    spikes_per_channel: np.ndarray  # (C_out,) int64
    stride: int = 1  # the output is the input downsampled by this

    @classmethod
    def empty(cls, timesteps: int, c_in: int, c_out: int, height: int, width: int, kernel: int,
              stride: int = 1) -> EventTally:
        zeros = np.zeros(timesteps, dtype=np.int64)
        return cls(height, width, c_in, kernel, zeros, zeros.copy(), zeros.copy(), np.zeros(c_out, dtype=np.int64),
                   stride)

    @property
    def output_size(self) -> tuple[int, int]:
        return -(-self.height // self.stride), -(-self.width // self.stride)

    @classmethod
    def of(cls, events: np.ndarray, spikes: np.ndarray, kernel: int) -> EventTally:
        """The tally of a whole image's events and spikes (T, C, H, W)."""
        t, c_in, h, w = np.shape(events)
        tally = cls.empty(t, c_in, np.shape(spikes)[1], h, w, kernel)
        tally.add(events, spikes)
        return tally

    def add(self, events: np.ndarray, spikes: np.ndarray, origin: tuple[int, int] = (0, 0)) -> None:
        """Count one window at ``origin`` of the layer's input: its input events (T, C_in, h, w) and the
        output spikes of the same pixels (at the input's resolution / stride)."""
        fired = np.asarray(spikes) != 0
        self.input_events_per_step += nonzero_per_plane(events).sum(axis=1)
        self.synops_per_step += synaptic_ops(events, fired.shape[1], self.kernel, origin, (self.height, self.width),
                                             self.stride)
        per_plane = nonzero_per_plane(fired)  # (T, C_out)
        self.spikes_per_step += per_plane.sum(axis=1)
        self.spikes_per_channel += per_plane.sum(axis=0)

    @property
    def spikes(self) -> int:
        return int(self.spikes_per_step.sum())


def nonzero_per_plane(x: np.ndarray) -> np.ndarray:
    """(T, C, h, w) -> (T, C) int64: the nonzero entries of each (t, c) plane.

    Rows are added first as whole vectors into uint16 (at most h <= 65535 ones
    per column, exact), then each plane's columns: about twice as fast as one
    reduction over both axes, which NumPy runs element by element into int64.
    """
    x = np.asarray(x)
    t, c, h, w = x.shape
    if h > np.iinfo(np.uint16).max:
        return (x != 0).sum(axis=(2, 3), dtype=np.int64)
    planes = (x if x.dtype == np.bool_ else x != 0).reshape(t * c, h, w)
    return planes.sum(axis=1, dtype=np.uint16).sum(axis=1, dtype=np.int64).reshape(t, c)


def address_event_bits(events_per_step: np.ndarray, neurons: int, payload_bits: int) -> int:
    """Bits to move the events: per step the cheaper of address-event packets and a bitmap."""
    address = max(1, math.ceil(math.log2(max(neurons, 2))))
    per_event = address + payload_bits
    bitmap = neurons * max(payload_bits, 1)
    return int(np.minimum(events_per_step.astype(np.int64) * per_event, bitmap).sum())


def layer_counts(name: str, tally: EventTally, payload_bits: int) -> LayerCounts:
    """Counts of one conv + LIF layer from the tally of its input events and output spikes."""
    t, c_out = len(tally.spikes_per_step), len(tally.spikes_per_channel)
    h, w = tally.output_size
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


def count_tallies(tallies: list[EventTally], names: list[str], payload_bits: int,
                  conv_shapes: list[dict[str, Any]]) -> InferenceCounts:
    """All counts of one inference: every chip layer of the spiking stack, the host CNN and the bridge.

    Layer 0 reads the host's payloads (``payload_bits`` each), every later
    layer the previous layer's spikes (no payload); the bridge carries layer
    0's input events to the chip and the last layer's spikes back.
    """
    layers = [layer_counts(name, tally, payload_bits if k == 0 else 0)
              for k, (name, tally) in enumerate(zip(names, tallies, strict=True))]
    first, last = tallies[0], layers[-1]
    h, w = first.height, first.width
    in_bits = address_event_bits(np.asarray(layers[0].input_events_per_step), first.input_channels * h * w,
                                 payload_bits)
    out_bits = address_event_bits(np.asarray(last.spikes_per_step), last.neurons, 0)
    return InferenceCounts(
        layers=layers,
        host_macs=host_macs(conv_shapes, h, w),
        dense_snn_macs=sum(len(t.spikes_per_channel) * t.input_channels * t.kernel**2 * math.prod(t.output_size)
                           for t in tallies),
        bridge_events={"host_to_chip": layers[0].input_events, "chip_to_host": last.spikes},
        bridge_bits={"host_to_chip": in_bits, "chip_to_host": out_bits},
    )


# -- NIR graphs (format-2 bundles) --------------------------------------------------------------

def conv_reach(n: int, kernel: int, stride: int, padding: int, outputs: int) -> np.ndarray:
    """(n,) int64: along an axis of n inputs, how many of the conv's ``outputs`` positions each input reaches."""
    y = np.arange(n)
    first = np.maximum(-((kernel - 1 - y - padding) // stride), 0)  # ceil((y + p - k + 1) / s), at least 0
    last = np.minimum((y + padding) // stride, outputs - 1)
    return np.maximum(last - first + 1, 0).astype(np.int64)


def conv_synops(events: np.ndarray, c_out: int, kernel: tuple[int, int], stride: tuple[int, int],
                padding: tuple[int, int], out_hw: tuple[int, int]) -> np.ndarray:
    """Synaptic operations per step of input events (T, C, H, W) into a conv (module docstring)."""
    active = (np.asarray(events) != 0).sum(axis=1, dtype=np.int64)  # (T, H, W)
    h, w = active.shape[1:]
    rows = conv_reach(h, kernel[0], stride[0], padding[0], out_hw[0])
    cols = conv_reach(w, kernel[1], stride[1], padding[1], out_hw[1])
    return (active * np.outer(rows, cols)).sum(axis=(1, 2)) * c_out


def events_per_step(values: np.ndarray) -> np.ndarray:
    """(T,) int64: nonzero values of (T, ...) per step."""
    values = np.asarray(values)
    return (values.reshape(values.shape[0], -1) != 0).sum(axis=1, dtype=np.int64)


def bias_axons(bias_mant: np.ndarray | None, synapses_per_connection: int = 1) -> int:
    """Always-on axons that carry a current bias: ``ceil(max|bias_mant| / 127)`` with 8-bit weights, or
    ``ceil(max|bias_mant| / WIDE_WEIGHT_MAX)`` with wide ones (two synapses per connection)."""
    largest = 0 if bias_mant is None else int(np.abs(np.asarray(bias_mant, np.int64)).max(initial=0))
    return -(-largest // (127 if synapses_per_connection == 1 else WIDE_WEIGHT_MAX))


def chip_layer_counts(name: str, kind: str, events: np.ndarray, spikes: np.ndarray, weight_shape: tuple[int, ...],
                      payload_bits: int, stride: tuple[int, int] = (1, 1),
                      padding: tuple[int, int] = (0, 0), current_bias: np.ndarray | None = None,
                      synapses_per_connection: int = 1) -> LayerCounts:
    """Counts of one chip layer of a graph over one sample: ``events`` it reads (T, *input_shape), ``spikes``
    it fires (T, *output_shape); ``weight_shape`` (O, C, kh, kw) for conv, (O, I) for dense and dense_rec;
    ``current_bias`` the bias mantissas (O,) of a bias into the filtered current (module docstring);
    ``synapses_per_connection`` 2 for wide weights, whose every connection is two synaptic operations."""
    spikes = np.asarray(spikes) != 0
    t, out_shape = spikes.shape[0], spikes.shape[1:]
    c_out = int(weight_shape[0])
    in_events = events_per_step(events)
    if kind == "conv":
        synops = conv_synops(events, c_out, tuple(weight_shape[2:]), stride, padding, tuple(out_shape[1:]))
    elif kind in ("dense", "dense_rec"):
        synops = in_events * c_out
    else:
        raise ValueError(f"unknown chip layer kind {kind!r}")
    fired = events_per_step(spikes)
    if kind == "dense_rec":
        synops = synops + np.concatenate([[0], fired[:-1]]).astype(np.int64) * c_out
    synops = synops * synapses_per_connection
    neurons = math.prod(out_shape)
    axons = bias_axons(current_bias, synapses_per_connection)
    per_axon = int(np.count_nonzero(current_bias)) * (neurons // c_out) * synapses_per_connection if axons else 0
    payload_synops = int(synops.sum())
    synops = synops + axons * per_axon  # every step of the sample
    per_channel = spikes.reshape(t, c_out, -1).sum(axis=(0, 2), dtype=np.int64)
    per_channel_neurons = neurons // c_out
    total = int(fired.sum())
    rate = total / (neurons * t) if neurons and t else 0.0
    return LayerCounts(
        name=name, kind=kind, timesteps=t, neurons=neurons,
        input_events=int(in_events.sum()), input_events_per_step=[int(v) for v in in_events],
        payload_bits=payload_bits, synops=int(synops.sum()), synops_per_step=[int(v) for v in synops],
        synop_payload_bits=payload_synops * payload_bits,
        spikes=total, spikes_per_step=[int(v) for v in fired],
        spikes_per_channel=[int(v) for v in per_channel], neuron_updates=neurons * t, firing_rate=rate,
        firing_rate_per_channel=[float(v) / (per_channel_neurons * t) for v in per_channel],
        sparsity=1.0 - rate, bias_axon_spikes=axons * t, bias_axon_synops=axons * per_axon * t,
    )


def chip_layer_dense_macs(kind: str, weight_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> int:
    """MACs per step of a chip layer computed densely on a host (the all-on-host baseline)."""
    if kind == "conv":
        return math.prod(output_shape) * math.prod(weight_shape[1:])
    macs = math.prod(weight_shape)
    return macs + weight_shape[0] ** 2 if kind == "dense_rec" else macs


def host_node_macs(kind: str, op: Any, output_shape: tuple[int, ...]) -> int:
    """MACs per step of one host node of a graph (module docstring); ``op`` as :mod:`neurodeploy.ir.graph` holds it."""
    if kind in ("Linear", "Affine"):
        return int(np.asarray(op.weight).size)
    if kind == "Conv2d":
        return math.prod(output_shape) * math.prod(np.shape(op.weight)[1:])
    return HOST_OPS[kind].macs(op, output_shape) if kind in HOST_OPS else 0


def cut_bits(events: np.ndarray, neurons: int, payload: str) -> int:
    """Bridge bits of one cut over one sample: ``events`` (T,) crossing per step, 8-bit payloads when graded."""
    return address_event_bits(np.asarray(events), neurons, 8 if payload == "graded" else 0)
