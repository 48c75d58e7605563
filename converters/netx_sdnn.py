"""Sigma-delta chip segments as netx HDF5 files (neuron type ``SDNN``): a write and a read.

A file of its own module rather than a branch in :mod:`converters.netx_io`:
the layers are another kind (:class:`~neurodeploy.chip.sigma_delta.SigmaDeltaLayer`),
the neuron group has other fields, and netx loads the file with other
arguments, so the CUBA reader stays as strict as it is. As netx_io does, the
format does not import the chip layer above it: it writes anything with the
fields of :class:`SigmaDeltaFileLayer` and reads back :class:`NetxSigmaDeltaLayer`
(``neurodeploy.chip.sigma_delta.read_sigma_delta_file`` makes chip layers of them).

A layer stock netx cannot run is written only when asked (``stock_netx=False``)
and runs on neurodeploy's own sigma-delta segment process only
(:func:`runs_in_stock_netx`): a weight exponent (Loihi 2's synaptic shift;
stock Lava's conv ignores it and netx re-derives it for dense) kept as
``weightExp``, an upsampled input (a transposed conv) as ``upsample``, a
dilation other than 1 in ``dilation``, and a linear readout as the neuron's
``activation = b"none"``.

Stock lava-dl loads a file as::

    netx.hdf5.Network(path, skip_layers=1, spike_exp=sdnn_spike_exp(path))

``skip_layers=1``: layer 0 is netx's SDNN input (a ``Delta`` encoder), whose
input port netx leaves unconnected; skipping it, netx reads its shape and
message bits (16, netx's default for SDNN) and the host sends the first
block the input payloads itself, as Lava-DL's PilotNet SDNN example does.
``spike_exp`` is a Network argument, not a file field: the file keeps it in
each neuron group as ``spikeExp``, which netx does not read.

Layout (host shapes, (C, H, W))::

    layer/0  input  shape, neuron/ type=b"SDNN" vThMant=0
    layer/i  conv   shape (O, Ho, Wo), weight (O, C, kh, kw, 1) int8 (torch's cross-correlation order;
                    netx flips and transposes it, Lava's conv flips it back), stride, padding (H, W),
                    dilation [1, 1], groups 1, bias (O,), neuron/
             flatten  before a dense block that reads a conv's output (netx: (W, H, C) -> C order)
             dense  shape [O], weight (O, I) int8, bias (O,), neuron/
    neuron/  type=b"SDNN" vThMant spikeExp
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from neurodeploy.converters.netx_io import input_group, layer_groups, pair
from neurodeploy.errors import UserError


class SigmaDeltaFileLayer(Protocol):
    """What the format needs of a sigma-delta layer (:class:`neurodeploy.chip.sigma_delta.SigmaDeltaLayer`
    has it): a file format does not import the chip layer above it."""

    kind: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    weight: np.ndarray
    bias: np.ndarray
    vth: int
    stride: tuple[int, int]
    padding: tuple[int, int]
    weight_exp: int
    spike_exp: int
    activation: str
    dilation: tuple[int, int]
    upsample: int


@dataclass(frozen=True, eq=False)
class NetxSigmaDeltaLayer:
    """One SDNN block of a file as read back (integers only; the fields of :class:`SigmaDeltaFileLayer`)."""

    kind: str  # conv or dense
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    weight: np.ndarray  # int64 mantissas: conv (O, C, kh, kw), dense (O, I)
    bias: np.ndarray  # int64 mantissas (O,)
    vth: int
    stride: tuple[int, int]
    padding: tuple[int, int]
    weight_exp: int
    spike_exp: int
    activation: str = "relu"
    dilation: tuple[int, int] = (1, 1)
    upsample: int = 1


def _stock(layer: SigmaDeltaFileLayer) -> bool:
    return (layer.weight_exp == 0 and layer.activation == "relu" and tuple(layer.dilation) == (1, 1)
            and layer.upsample == 1)


def runs_in_stock_netx(layers: Sequence[SigmaDeltaFileLayer]) -> bool:
    """Whether stock ``netx.hdf5.Network`` computes these layers: ReLU, no weight exponent, dilation or
    upsampling."""
    return all(_stock(layer) for layer in layers)


def write_sdnn_segment(path: str | os.PathLike[str], layers: Sequence[SigmaDeltaFileLayer],
                       stock_netx: bool = True) -> None:
    """Write sigma-delta layers (each reading the previous one) as one netx network; see the module docstring.

    ``stock_netx=False`` admits what stock netx cannot run (see the module docstring: a file only
    neurodeploy's segment process runs)."""
    import h5py  # h5py comes with lava-dl; imported here as netx_io does, so the package imports without it

    if not layers:
        raise ValueError("a sigma-delta segment has at least one layer")
    spike_exps = {layer.spike_exp for layer in layers}
    if len(spike_exps) != 1:
        raise UserError(f"sigma-delta layers with spike exponents {sorted(spike_exps)} in one segment",
                        "netx takes one spike_exp per network: quantize them with one")
    for k, layer in enumerate(layers):
        if stock_netx and not _stock(layer):
            raise UserError(f"sigma-delta layer {k} has weight exponent {layer.weight_exp} (or a dilation, "
                            "upsampling or linear readout), which stock netx does not run",
                            "quantize with quantize_relu_layer (weight exponent 0), or write with "
                            "stock_netx=False for neurodeploy's own segment process")
    with h5py.File(path, "w") as f:
        _write_neuron(input_group(f, layers[0]), vth=0, spike_exp=layers[0].spike_exp)
        for g, layer in layer_groups(f, layers):
            if layer.kind == "conv":
                g["dilation"] = np.array(layer.dilation, dtype=np.int64)
                if layer.upsample != 1:
                    g["upsample"] = np.int64(layer.upsample)
                g["groups"] = np.int64(1)
            g["bias"] = np.asarray(layer.bias).astype(np.int32)
            if layer.weight_exp != 0:
                g["weightExp"] = np.int64(layer.weight_exp)
            _write_neuron(g, vth=layer.vth, spike_exp=layer.spike_exp)
            if layer.activation != "relu":
                g["neuron/activation"] = np.bytes_(layer.activation)


def _write_neuron(group: object, vth: int, spike_exp: int) -> None:
    neuron = group.create_group("neuron")  # type: ignore[attr-defined]
    neuron["type"] = np.bytes_("SDNN")
    neuron["vThMant"] = np.int64(vth)
    neuron["spikeExp"] = np.int64(spike_exp)


def read_sdnn_segment(path: str | os.PathLike[str]) -> tuple[NetxSigmaDeltaLayer, ...]:
    """Read a file of :func:`write_sdnn_segment`; anything else is a one-line UserError."""
    import h5py  # see write_sdnn_segment

    try:
        with h5py.File(path, "r") as f:
            if bytes(f["layer/0/type"][()]) != b"input" or bytes(f["layer/0/neuron/type"][()]) != b"SDNN":
                raise ValueError("layer 0 is not an SDNN input")
            shape: tuple[int, ...] = tuple(int(x) for x in f["layer/0/shape"][()])
            out: list[NetxSigmaDeltaLayer] = []
            for i in range(1, len(f["layer"])):
                g = f[f"layer/{i}"]
                kind = bytes(g["type"][()]).decode()
                if kind == "flatten":
                    shape = (int(np.prod(shape)),)
                    continue
                if kind not in ("conv", "dense") or bytes(g["neuron/type"][()]) != b"SDNN":
                    raise ValueError(f"layer {i} is not an SDNN conv or dense block")
                weight = np.asarray(g["weight"][()]).astype(np.int64)
                stride, padding, dilation = (1, 1), (0, 0), (1, 1)
                if kind == "conv":
                    weight, stride, padding = weight[..., 0], pair(g["stride"][()]), pair(g["padding"][()])
                    dilation = pair(g["dilation"][()])
                layer = NetxSigmaDeltaLayer(
                    kind=kind, input_shape=shape, output_shape=tuple(int(x) for x in g["shape"][()]),
                    weight=weight, bias=np.asarray(g["bias"][()]).astype(np.int64).reshape(-1),
                    vth=int(g["neuron/vThMant"][()]), stride=stride, padding=padding,
                    weight_exp=int(g["weightExp"][()]) if "weightExp" in g else 0,
                    spike_exp=int(g["neuron/spikeExp"][()]),
                    activation=bytes(g["neuron/activation"][()]).decode() if "activation" in g["neuron"] else "relu",
                    dilation=dilation, upsample=int(g["upsample"][()]) if "upsample" in g else 1)
                out.append(layer)
                shape = layer.output_shape
            if not out:
                raise ValueError("no layer after the input")
            return tuple(out)
    except (OSError, KeyError, ValueError, TypeError, IndexError) as exc:
        raise UserError(f"{path} is not a neurodeploy sigma-delta netx network ({exc})",
                        "re-create it with write_sdnn_segment") from None


def sdnn_spike_exp(path: str | os.PathLike[str]) -> int:
    """The ``spike_exp`` to load the file with (``netx.hdf5.Network(..., spike_exp=...)``)."""
    return read_sdnn_segment(path)[0].spike_exp
