"""netx networks in: Lava-DL's own (a netx HDF5 file as SLAYER's ``export_hdf5`` writes it) and a bundle's chip
segments (:func:`read_segment`, the same blocks with the toolkit's extensions), read as chip layers.

:func:`read_network` reads every block lava-dl 0.6's ``netx.hdf5.Network``
builds a CUBA network from, with netx's semantics (``lava/lib/dl/netx/hdf5.py``)::

    layer/0  input    shape (C, H, W); with a neuron group: a layer of neurons driven by the
                      frame through their bias (BiasInput); without: the shape the first block reads
    layer/i  conv     weight (O, C, kh, kw[, 1]), stride / padding / dilation (H, W), groups, bias (O,)
             flatten  the previous (C, H, W) output read flattened in C order by the next dense block
             dense    weight (O, I) (or flat), bias (O,), neuron/
             dense_rec  + weight_rec (O, O)
    neuron/  type CUBA or LOIHI (the same neuron: netx reads both alike), iDecay, vDecay, vThMant:
             Lava's LIF with du = iDecay - 1, dv = vDecay, vth = vThMant, bias_exp = 6

A conv kernel is the cross-correlation kernel in torch's order, as in
:func:`neurodeploy.converters.netx_io.write_segment` (netx flips it and Lava's conv flips
it back). Dense weights go through netx's ``optimize_weight_bits``, which
shifts them left by a weight exponent that Lava's Dense shifts back: exact for
integer weights, so the mantissas are the file's. Every chip layer becomes a
:class:`neurodeploy.converters.netx_io.FixedPointLayer`, the record the toolkit's
backends run and its cost model prices (``cost.mapping.ChipLayerInfo.of``).

The bias-driven input layer (:class:`BiasInput`) has no synapses: netx's
``Input`` block leaves its neurons' ``a_in`` unconnected and the frame is
written into their bias (``net.in_layer.neuron.bias_mant``, one value per
neuron), so each step ``u = 0``, ``v' = clip(trunc(v·(4096 - vDecay)/4096) +
bias·64)``, a spike where ``v' > vThMant·64``, then ``v' = 0``. The file's
``weight`` and ``bias`` of that layer are the frame's transform
(``net.in_layer.transform``): a frame x in the network's input units
becomes ``bias_mant = int32(weight·x + bias)`` (:meth:`BiasInput.bias_mant`).

What netx 0.6 does not build (pool, convT, unpool, average, concat) or the
toolkit's CUBA stack does not run (dense_comp, RF and SDNN neurons, synaptic
delays, graded spikes, grouped or dilated convs, weights beyond int8) is a
one-line :class:`~neurodeploy.errors.UserError` naming the layer and why.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from neurodeploy.converters.netx_io import FixedPointLayer, join_wide, pair
from neurodeploy.errors import UserError
from neurodeploy.ir.graph import conv_output_size

CUBA_TYPES = ("CUBA", "LOIHI")  # netx's get_neuron_params reads both as Lava's LIF
NOT_IN_NETX = ("pool", "convT", "unpool", "average", "concat")  # netx 0.6 raises NotImplementedError
DEFAULT_STEPS = 16  # steps per frame when the file has no simulation/tSample


@dataclass(frozen=True)
class BiasInput:
    r"""netx's input layer with a neuron group: CUBA neurons driven by the frame through their bias.

    Per step, with ``b`` the neuron's bias mantissa (the frame, :meth:`bias_mant`)::

        v' = clip(trunc(v·(4096 - v_decay) / 4096) + b·64, ±(2^23 - 1));  z = v' > vth_mant·64;  v' = 0 where z

    (no current: netx leaves the neurons' synaptic input unconnected).
    """

    shape: tuple[int, ...]  # (C, H, W), or (N,)
    i_decay: int
    v_decay: int
    vth_mant: int
    scale: float  # the file's layer/0/weight: netx's transform weight (64 without one)
    offset: float  # the file's layer/0/bias: the transform bias (0 without one)

    def bias_mant(self, x: np.ndarray) -> np.ndarray:
        """The neurons' bias mantissas of a frame ``x`` (*shape) in the network's input units:
        ``int32(scale·x + offset)`` (truncated toward 0, as lava-dl's PilotNet dataset casts it)."""
        return (self.scale * np.asarray(x, dtype=np.float64) + self.offset).astype(np.int32)

    @property
    def neurons(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class NetxNetwork:
    """A netx network as the toolkit runs it: the bias-driven input layer (if any) and the chip layers."""

    input: BiasInput | None  # None: the first chip layer reads spikes of shape input_shape
    input_shape: tuple[int, ...]  # what the first chip layer reads (the input layer's shape)
    layers: tuple[FixedPointLayer, ...]
    names: tuple[str, ...]  # one per chip layer: "layer<i>_<kind>", i the file's block index
    steps: int  # steps per frame: the file's simulation/tSample, else DEFAULT_STEPS

    @property
    def input_name(self) -> str:
        return "layer0_input"


@dataclass(frozen=True)
class NetxLayout:
    """One block's place in the network, whatever its neuron (:func:`read_layout`): what a core mapping needs."""

    name: str  # "layer<i>_<kind>"
    kind: str  # input, conv, dense, dense_rec
    neuron: str  # the file's neuron type: CUBA, LOIHI, SDNN, ... ("" without a neuron group)
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    weight_shape: tuple[int, ...]  # conv (O, C, kh, kw); dense (O, I); () for the input layer
    stride: tuple[int, int]
    padding: tuple[int, int]
    weight_range: tuple[int, int] = (0, 0)  # the smallest and largest weight (conv kernels pack by their width)


def read_network(path: str | os.PathLike[str]) -> NetxNetwork:
    """Read a Lava-DL netx network (module docstring); anything it cannot run is a one-line UserError."""
    return _open(path, None)


def read_layout(path: str | os.PathLike[str]) -> tuple[NetxLayout, ...]:
    """Every block's layout, the input layer first, for any neuron type netx builds (CUBA, LOIHI, SDNN:
    lava-dl's PilotNet SDNN too): the shapes the cost model maps, without running the network."""
    layout: list[NetxLayout] = []
    _open(path, layout)
    return tuple(layout)


def _open(path: str | os.PathLike[str], layout: list[NetxLayout] | None) -> NetxNetwork:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return _read(f, layout)
    except _RefusedError as exc:
        raise UserError(f"{path}: {exc}", "re-export the network with only the blocks listed in neurodeploy's "
                                          "README (conv, dense, dense_rec, flatten; CUBA neurons)") from None
    except (OSError, KeyError, ValueError, TypeError, IndexError) as exc:
        raise UserError(f"{path} is not a readable netx network ({type(exc).__name__}: {exc})",
                        "pass a netx HDF5 file written by SLAYER's export_hdf5 or neurodeploy convert") from None


class _RefusedError(ValueError):
    """A block the toolkit cannot run, with the reason (the message names the layer)."""


def _text(value: Any) -> str:
    """A netx string dataset (a bytes scalar, an object, or a one-element |S array) as str."""
    item = np.asarray(value).reshape(-1)[0]
    return item.decode() if isinstance(item, bytes) else str(item)


def _integers(g: Any, key: str, i: int, low: int, high: int) -> np.ndarray:
    values = np.asarray(g[key][()], dtype=np.float64)
    if not np.array_equal(values, np.rint(values)):
        raise _RefusedError(f"layer {i}: {key} holds non-integer values (not a quantized export)")
    if values.size and (values.min() < low or values.max() > high):
        raise _RefusedError(f"layer {i}: {key} spans [{values.min():g}, {values.max():g}], beyond [{low}, {high}]")
    return values


def _neuron_type(g: Any) -> str:
    """A block's neuron type ("CUBA", "LOIHI", "SDNN", ...; "" without a neuron group)."""
    return _text(g["neuron/type"][()]) if "neuron" in g else ""


def _neuron(g: Any, i: int) -> tuple[int, int, int]:
    """(iDecay, vDecay, vThMant) of a CUBA/LOIHI neuron group; other neurons are refused."""
    if "neuron" not in g:
        raise _RefusedError(f"layer {i}: no neuron group (netx's default integrator, vThMant 2^17, exceeds Loihi's 17 "
                       "bits)")
    neuron = g["neuron"]
    kind = _text(neuron["type"][()])
    if kind == "SDNN":
        raise _RefusedError(f"layer {i}: sigma-delta (SDNN) neurons; neurodeploy reads netx's CUBA/LOIHI networks")
    if kind not in CUBA_TYPES:
        raise _RefusedError(f"layer {i}: neuron type {kind!r} (resonate-and-fire?); neurodeploy runs CUBA/LOIHI")
    if "messageBits" in neuron and int(np.asarray(neuron["messageBits"][()])) != 0:
        raise _RefusedError(f"layer {i}: graded-spike CUBA neurons (messageBits > 0)")
    i_decay, v_decay, vth = (int(np.asarray(neuron[k][()])) for k in ("iDecay", "vDecay", "vThMant"))
    if not (0 <= i_decay <= 4096 and 0 <= v_decay < 4096 and 0 <= vth < 1 << 17):
        raise _RefusedError(f"layer {i}: iDecay {i_decay}, vDecay {v_decay}, vThMant {vth} outside Loihi's registers")
    return i_decay, v_decay, vth


def _bias(g: Any, i: int, channels: int) -> np.ndarray | None:
    if "bias" not in g:
        return None
    bias = _integers(g, "bias", i, -(1 << 31), (1 << 31) - 1).reshape(-1)
    if bias.size != channels:
        raise _RefusedError(f"layer {i}: a bias of {bias.size} values for {channels} channels (neuron-wise biases "
                       "are read for the input layer only)")
    return bias.astype(np.int32)


def read_segment(path: str | os.PathLike[str]) -> tuple[FixedPointLayer, ...]:
    """The layers of a bundle's chip segment (:func:`neurodeploy.converters.netx_io.write_segment`): netx's
    blocks as :func:`read_network` reads them, with the toolkit's two extensions (``bias_current``, and
    ``weight_low``/``weight_rec_low`` for wide weights); anything else is a one-line UserError."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return _read(f, extensions=True).layers
    except (OSError, KeyError, ValueError, TypeError, IndexError) as exc:
        raise UserError(f"{path} is not a neurodeploy netx network ({exc})",
                        "re-create it with neurodeploy convert") from None


def _extended(g: Any, i: int, layer: FixedPointLayer) -> FixedPointLayer:
    """``layer`` with a block's extensions read: a bias into the current, a wide layer's low bytes."""
    if "bias" in g and "bias_current" in g:
        raise _RefusedError(f"layer {i}: both a voltage bias and a current bias")
    changes: dict[str, Any] = {}
    if "bias_current" in g:
        bias = _integers(g, "bias_current", i, -(1 << 31), (1 << 31) - 1).reshape(-1)
        if bias.size != layer.output_shape[0]:
            raise _RefusedError(f"layer {i}: bias_current of {bias.size} values for {layer.output_shape[0]} channels")
        changes.update(bias=bias.astype(np.int32), bias_site="current")
    if "weight_low" in g:  # two synapses per connection
        changes["weight"] = join_wide(layer.weight, _low_byte(g, "weight_low", layer.weight.shape, i))
        if layer.weight_rec is not None:
            changes["weight_rec"] = join_wide(layer.weight_rec, _low_byte(g, "weight_rec_low", layer.weight_rec.shape,
                                                                          i))
    return replace(layer, **changes) if changes else layer


def _low_byte(g: Any, key: str, shape: tuple[int, ...], i: int) -> np.ndarray:
    """A wide layer's low bytes ``key``: the high bytes' shape (a conv's netx trailing axis dropped), integers
    in [-64, 64]."""
    low = _integers(g, key, i, -64, 64)
    low = low[..., 0] if low.ndim == len(shape) + 1 else low
    if low.shape != tuple(shape):
        raise _RefusedError(f"layer {i}: {key} {low.shape} is not the low bytes of weights {tuple(shape)}")
    return low.astype(np.int8)


def _read(f: Any, layout: list[NetxLayout] | None = None, extensions: bool = False) -> NetxNetwork:
    """The network; with ``layout`` a list, any neuron type is read and each block's layout appended to it
    (the CUBA parameters of the records are then placeholders, 0); ``extensions``: a bundle's chip segment,
    whose blocks may hold the toolkit's extensions (:func:`read_segment`)."""
    blocks = f["layer"]
    count = len(blocks)
    first = blocks["0"]
    if count < 2 or _text(first["type"][()]) != "input":
        raise _RefusedError("layer 0 is not an input block followed by a layer")
    shape: tuple[int, ...] = tuple(int(x) for x in np.asarray(first["shape"][()]).reshape(-1))
    if len(shape) not in (1, 3):
        raise _RefusedError(f"layer 0: input shape {shape}; neurodeploy reads (C, H, W) or (N,)")
    bias_input = None
    if layout is not None:
        layout.append(NetxLayout("layer0_input", "input", _neuron_type(first), shape, shape, (), (1, 1), (0, 0)))
    elif "neuron" in first:
        i_decay, v_decay, vth = _neuron(first, 0)
        scale = float(np.asarray(first["weight"][()])) if "weight" in first else 64.0
        offset = float(np.asarray(first["bias"][()])) if "bias" in first else 0.0
        bias_input = BiasInput(shape, i_decay, v_decay, vth, scale, offset)
    input_shape = shape
    layers: list[FixedPointLayer] = []
    names: list[str] = []
    flattened = False
    for i in range(1, count):
        g = blocks[str(i)]
        kind = _text(g["type"][()])
        if kind in NOT_IN_NETX:
            raise _RefusedError(f"layer {i}: a {kind!r} block, which lava-dl 0.6's netx does not build either")
        if kind == "flatten":
            shape, flattened = (math.prod(shape),), True
            continue
        if kind not in ("conv", "dense", "dense_rec"):
            raise _RefusedError(f"layer {i}: a {kind!r} block; neurodeploy runs conv, dense, dense_rec and flatten")
        if "delay" in g:
            raise _RefusedError(f"layer {i}: synaptic delays, which the toolkit's CUBA layers do not model")
        extra = [key for key in ("bias_current", "weight_low", "weight_rec_low") if key in g]
        if extra and not extensions:
            raise _RefusedError(f"layer {i}: {extra[0]}, a neurodeploy bundle's extension that stock netx ignores")
        i_decay, v_decay, vth = _neuron(g, i) if layout is None else (0, 0, 0)
        if kind == "conv":
            layer = _conv(g, i, shape, i_decay, v_decay, vth)
        else:
            if len(shape) != 1 and not flattened:
                raise _RefusedError(f"layer {i}: a {kind} block reads a {shape} output without a flatten block")
            layer = _dense(g, i, kind, math.prod(shape), i_decay, v_decay, vth)
        layers.append(_extended(g, i, layer) if extensions else layer)
        names.append(f"layer{i}_{kind}")
        if layout is not None:
            layout.append(NetxLayout(names[-1], kind, _neuron_type(g), layer.input_shape, layer.output_shape,
                                     tuple(layer.weight.shape), layer.stride, layer.padding,
                                     (min(int(w.min()) for w in layer.weights),
                                      max(int(w.max()) for w in layer.weights))))
        shape, flattened = layer.output_shape, False
    if not layers:
        raise _RefusedError("no layer after the input")
    steps = int(np.asarray(f["simulation/tSample"][()])) if "simulation/tSample" in f else DEFAULT_STEPS
    return NetxNetwork(bias_input, input_shape, tuple(layers), tuple(names), steps)


def _conv(g: Any, i: int, shape: tuple[int, ...], i_decay: int, v_decay: int, vth: int) -> FixedPointLayer:
    weight = _integers(g, "weight", i, -128, 127)
    if weight.ndim == 5 and weight.shape[-1] == 1:
        weight = weight[..., 0]
    if weight.ndim != 4 or len(shape) != 3 or weight.shape[1] != shape[0]:
        raise _RefusedError(f"layer {i}: conv weight {weight.shape} does not read input {shape}")
    if "dilation" in g and np.any(np.asarray(g["dilation"][()]) != 1):
        raise _RefusedError(f"layer {i}: a dilated conv; neurodeploy's conv has dilation 1")
    if "groups" in g and int(np.asarray(g["groups"][()])) != 1:
        raise _RefusedError(f"layer {i}: a grouped conv (groups {int(np.asarray(g['groups'][()]))}); neurodeploy's "
                       "conv has groups 1")
    stride = pair(g["stride"][()]) if "stride" in g else (1, 1)
    padding = pair(g["padding"][()]) if "padding" in g else (0, 0)
    (kh, kw), (sh, sw), (ph, pw) = weight.shape[2:], stride, padding
    out = (weight.shape[0], conv_output_size(shape[1], kh, sh, ph), conv_output_size(shape[2], kw, sw, pw))
    written = tuple(int(x) for x in np.asarray(g["shape"][()]).reshape(-1))
    if written != out:
        raise _RefusedError(f"layer {i}: conv shape {written}, its weights give {out}")
    return FixedPointLayer("conv", shape, out, weight.astype(np.int8), None, _bias(g, i, out[0]), stride,
                           padding, i_decay, v_decay, vth)


def _dense(g: Any, i: int, kind: str, inputs: int, i_decay: int, v_decay: int, vth: int) -> FixedPointLayer:
    outputs = math.prod(int(x) for x in np.asarray(g["shape"][()]).reshape(-1))
    weight = _integers(g, "weight", i, -128, 127)
    weight = weight.reshape(outputs, -1) if weight.ndim == 1 else weight
    if weight.shape != (outputs, inputs):
        raise _RefusedError(f"layer {i}: dense weight {weight.shape} does not map {inputs} inputs to {outputs} outputs")
    rec = None
    if kind == "dense_rec":
        rec = _integers(g, "weight_rec", i, -128, 127).reshape(outputs, -1)
        if rec.shape != (outputs, outputs):
            raise _RefusedError(f"layer {i}: weight_rec {rec.shape} is not square over {outputs}")
        rec = rec.astype(np.int8)
    return FixedPointLayer(kind, (inputs,), (outputs,), weight.astype(np.int8), rec, _bias(g, i, outputs),
                           (1, 1), (0, 0), i_decay, v_decay, vth)


def is_netx_file(path: str | os.PathLike[str]) -> bool:
    """An HDF5 file (not a bundle folder) with netx's ``layer`` group: what ``convert``, ``simulate`` and
    ``profile`` read as a netx network (a NIR graph is HDF5 too, with ``node`` instead)."""
    import h5py

    try:
        with open(path, "rb") as handle:
            if handle.read(8) != b"\x89HDF\r\n\x1a\n":
                return False
        with h5py.File(path, "r") as f:
            return "layer" in f
    except OSError:
        return False
