"""Chip segments as netx HDF5 files: the layer record (:class:`FixedPointLayer`) and its write
(:func:`write_segment`); :func:`neurodeploy.converters.netx_in.read_segment` reads them back.

Every chip segment of a bundle, the inpainter's spiking stack included, is
one such file; ``lava.lib.dl.netx.hdf5.Network(path, input_message_bits=B,
reset_interval=T + depth, reset_offset=1)`` loads it (B = 8 for graded 8-bit
input, 0 for binary spikes; see :func:`neurodeploy.chip.reference.run_segment_batch`
for the timing). The layout is in :func:`write_segment`'s docstring. A file
with a ``bias_current`` (:func:`runs_in_stock_netx` is False) holds a bias
into a filtered synaptic current, which stock netx does not read: it runs on
neurodeploy's backends only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

LAYER_KINDS = ("conv", "dense", "dense_rec")  # the netx blocks a chip layer is
LOW_BITS = 7  # the high byte's weight exponent: W = W_high·2^7 + W_low
WIDE_WEIGHT_MAX = 127 * (1 << LOW_BITS) + (1 << (LOW_BITS - 1)) - 1  # 16319: W_high <= 127, |W_low| <= 64


@dataclass(frozen=True)
class FixedPointLayer:
    r"""One chip layer in Loihi fixed point: its integer parameters, as one netx block holds them.

    The quantizer (:func:`neurodeploy.chip.quantize.quantize_chip_layer`) makes it,
    :func:`write_segment` writes it, :func:`~neurodeploy.converters.netx_in.read_segment` reads it back, and
    every backend (reference, torch, Lava) runs it. Each step, with ``p`` the
    layer's integer input (payloads for the first layer of a segment, 0/1
    spikes after it) and ``z`` its own spikes::

        a_in_t = W p_t  (+ W_rec z_{t-1})       integers: weight ∈ [-127, 127]
        CUBA(a_in_t, bias_mant)                 (neurodeploy.chip.neuron_mapping.CubaMapping)

    Wide weights (``weight`` int16, :attr:`wide`): each connection is two
    synapses into the same neuron, a high byte at weight exponent 7 and a low
    byte at exponent 0, which the neuron's input sums::

        W = W_high·2^7 + W_low,   W_high ∈ [-127, 127],  W_low ∈ [-64, 64]   (|W| <= WIDE_WEIGHT_MAX)

    so ``a_in_t = W p_t`` as above, the same integer the two synapses add (no
    partial sum wraps: the quantizer keeps the whole sum in range), at twice
    the synaptic operations and synapse memory. Why 7 and 0: 7 is the largest
    weight exponent Loihi takes (-8..7), and Lava's Dense shifts a negative
    exponent's sum right (a floor), which would drop the low byte's bits.
    :func:`split_wide` and :func:`join_wide` convert between the two forms;
    the file holds the bytes.

    ``bias_site`` says where ``bias_mant`` goes: ``"voltage"``, Loihi's bias
    register (``v += bias_mant << 6``), or ``"current"``, an always-on input
    axon into the synaptic current (``a_in_t += bias_mant``), for a layer with
    a bias whose neuron filters its current. ``weight`` is (O, C, kh, kw) for a
    conv (cross-correlation, zero padding, ``stride`` and ``padding`` per
    (H, W)) and (O, prod(input_shape)) for a dense block, which reads its input
    flattened in C order. The registers' ranges and the bias sites are the
    chip's (:class:`neurodeploy.chip.quantize.QuantizedChipLayer` checks them).
    """

    kind: str  # one of LAYER_KINDS
    input_shape: tuple[int, ...]  # conv: (C, H, W); dense: any, read flattened
    output_shape: tuple[int, ...]
    weight: np.ndarray  # int8 mantissas, or int16 wide weights (two synapses per connection)
    weight_rec: np.ndarray | None  # (O, O), dense_rec only, the dtype of ``weight``
    bias: np.ndarray | None  # int32 bias mantissas (O,)
    stride: tuple[int, int]
    padding: tuple[int, int]
    i_decay: int
    v_decay: int
    vth_mant: int
    bias_site: str = "voltage"  # "voltage" (Loihi's bias register) or "current" (an always-on bias axon)

    def __post_init__(self) -> None:
        if self.kind not in LAYER_KINDS:
            raise ValueError(f"unknown chip layer kind {self.kind!r}")
        want = 4 if self.kind == "conv" else 2
        if self.weight.dtype not in (np.int8, np.int16) or self.weight.ndim != want:
            raise ValueError(f"a {self.kind} layer's weight must be int8 (or int16, wide) with {want} axes")
        if (self.weight_rec is not None) != (self.kind == "dense_rec"):
            raise ValueError("weight_rec is given exactly for dense_rec layers")
        if self.weight_rec is not None and self.weight_rec.dtype != self.weight.dtype:
            raise ValueError("weight_rec has the dtype of weight")
        if self.wide and any(np.abs(w.astype(np.int32)).max(initial=0) > WIDE_WEIGHT_MAX for w in self.weights):
            raise ValueError(f"wide weights must lie within ±{WIDE_WEIGHT_MAX}")

    @property
    def wide(self) -> bool:
        """Two synapses per connection (``weight`` int16), else one (int8)."""
        return self.weight.dtype == np.int16

    @property
    def synapses_per_connection(self) -> int:
        return 2 if self.wide else 1

    @property
    def weights(self) -> tuple[np.ndarray, ...]:
        """The weight arrays: feed-forward, and recurrent for dense_rec."""
        return (self.weight,) if self.weight_rec is None else (self.weight, self.weight_rec)


def split_wide(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Wide weights as their two synapses' mantissas (high, low), int8: ``W_high = round(W / 2^7)``, the
    remainder ``W_low = W - W_high·2^7`` in [-64, 64]."""
    w = weight.astype(np.int32)
    high = np.rint(w / (1 << LOW_BITS)).astype(np.int32)
    return high.astype(np.int8), (w - high * (1 << LOW_BITS)).astype(np.int8)


def join_wide(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """The wide weights two synapses make: ``W_high·2^7 + W_low``, int16."""
    return (high.astype(np.int32) * (1 << LOW_BITS) + low.astype(np.int32)).astype(np.int16)


def _write_cuba(layer_group: Any, i_decay: int, v_decay: int, vth_mant: int) -> None:
    """A layer's ``neuron`` group: Loihi's CUBA neuron, binary spikes, refractory delay 1."""
    neuron = layer_group.create_group("neuron")
    neuron["type"] = np.bytes_("CUBA")
    neuron["iDecay"] = np.int64(i_decay)
    neuron["vDecay"] = np.int64(v_decay)
    neuron["vThMant"] = np.int64(vth_mant)
    neuron["refDelay"] = np.int64(1)
    neuron["gradedSpike"] = np.bool_(False)


# -- a chip segment: several layers in one file ------------------------------------------------------

def write_segment(path: str | os.PathLike[str], layers: Sequence[FixedPointLayer]) -> None:
    """Write a chip segment (quantized layers, each reading the previous one) as one netx HDF5 network.

    Layout, as ``lava.lib.dl.netx.hdf5.Network`` reads it (shapes C, H, W)::

        layer/0  input      shape = the first layer's input (C, H, W), or [N] if it is dense
        layer/i  conv       weight (O, C, kh, kw, 1) int8, stride / padding (H, W), dilation [1, 1],
                            groups 1, bias (O,) if any, neuron/
                 flatten    before a dense block that reads a conv's (C, H, W) output
                 dense      weight (O, I), bias (O,) if any, neuron/
                 dense_rec  weight (O, I), weight_rec (O, O), bias, neuron/
        neuron/  type=b"CUBA" iDecay vDecay vThMant refDelay=1 gradedSpike=False
        bias_current (O,)   instead of bias, for a bias into the filtered current
                            (``bias_site = "current"``; lif_mapping.CubaMapping)
        weight_low, weight_rec_low
                            beside weight and weight_rec for wide weights (two synapses per
                            connection: FixedPointLayer); weight then holds the high bytes

    netx reads a conv kernel flipped and transposed to (O, kW, kH, C), and
    Lava's conv flips it back: the file holds the cross-correlation kernel in
    torch's order. A dense block after ``flatten`` reads the previous (W, H, C)
    output transposed to (C, H, W) and flattened: C order, as the float graph.
    A bias is ``bias_mant``; netx sets ``bias_exp = 6``. A current bias is
    ``bias_mant`` added to the synaptic input every step, and a low byte a
    second synapse; stock netx ignores both datasets (it would run the layer
    without them), so the manifest marks the segment as not runnable there and
    the stock runner refuses it.
    """
    import h5py

    if not layers:
        raise ValueError("a chip segment has at least one layer")
    with h5py.File(path, "w") as f:
        input_group(f, layers[0])
        for g, layer in layer_groups(f, layers):
            if layer.kind == "conv":
                g["dilation"] = np.array([1, 1], dtype=np.int64)
                g["groups"] = np.int64(1)
            elif layer.weight_rec is not None:
                g["weight_rec"] = _first_synapse(layer.weight_rec)
            if layer.wide:  # the second synapses' mantissas, shaped as the first's
                low = split_wide(layer.weight)[1]
                g["weight_low"] = low[..., None] if layer.kind == "conv" else low
                if layer.weight_rec is not None:
                    g["weight_rec_low"] = split_wide(layer.weight_rec)[1]
            if layer.bias is not None:
                g["bias_current" if layer.bias_site == "current" else "bias"] = layer.bias.astype(np.int32)
            _write_cuba(g, layer.i_decay, layer.v_decay, layer.vth_mant)


def input_group(f: Any, first: Any) -> Any:
    """netx's block ``layer/0``: the input, its shape the first layer's input (a dense layer's flattened)."""
    inp = f.create_group("layer/0")
    inp["type"] = np.bytes_("input")
    shape = first.input_shape if first.kind == "conv" else (int(np.prod(first.input_shape)),)
    inp["shape"] = np.array(shape, dtype=np.int64)
    return inp


def layer_groups(f: Any, layers: Sequence[Any]) -> Iterator[tuple[Any, Any]]:
    """netx's blocks ``layer/1 ..`` of ``layers``, a ``flatten`` block before a dense one that follows a conv:
    yields (group, layer) with the group's type, shape and int8 weight (a conv's with netx's trailing axis, its
    stride and padding) written; the caller writes the rest of the block before the next one starts."""
    index = 1
    previous = None
    for layer in layers:
        if previous is not None and layer.kind != "conv" and len(previous.output_shape) > 1:
            f.create_group(f"layer/{index}")["type"] = np.bytes_("flatten")
            index += 1
        g = f.create_group(f"layer/{index}")
        g["type"] = np.bytes_(layer.kind)
        if layer.kind == "conv":
            g["shape"] = np.array(layer.output_shape, dtype=np.int64)
            g["weight"] = _first_synapse(layer.weight)[..., None]
            g["stride"] = np.array(layer.stride, dtype=np.int64)
            g["padding"] = np.array(layer.padding, dtype=np.int64)
        else:
            g["shape"] = np.array([layer.output_shape[0]], dtype=np.int64)
            g["weight"] = _first_synapse(layer.weight)
        yield g, layer
        index += 1
        previous = layer


def _first_synapse(weight: np.ndarray) -> np.ndarray:
    """The file's ``weight`` (``weight_rec``): the int8 mantissas, or a wide array's high bytes."""
    return split_wide(weight)[0] if weight.dtype == np.int16 else weight.astype(np.int8)


def runs_in_stock_netx(layers: Sequence[FixedPointLayer]) -> bool:
    """Whether stock ``netx.hdf5.Network`` computes these layers: no bias into a filtered current, one synapse
    per connection."""
    return all((layer.bias is None or layer.bias_site == "voltage") and not layer.wide for layer in layers)


def pair(value: np.ndarray) -> tuple[int, int]:
    """A netx stride, padding or dilation read back as a pair of ints (a scalar means both)."""
    arr = np.atleast_1d(np.asarray(value)).astype(int)
    return (int(arr[0]), int(arr[-1]))
