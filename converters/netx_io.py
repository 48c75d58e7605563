"""The netx HDF5 file of a spiking conv layer: one write, one read, nothing else.

Layout (what ``lava.lib.dl.netx.hdf5.Network`` reads; shapes in C, H, W order)::

    layer/0  type=b"input"  shape=[C_in, H, W]            (no neuron: the Network's
                                                            in-port feeds the conv)
    layer/1  type=b"conv"   shape=[C_out, H, W]
             weight (C_out, C_in, kH, kW, 1) int8 mantissas
             stride=[1, 1] padding=[p, p] dilation=[1, 1] groups=1
             neuron/ type=b"CUBA" iDecay vDecay vThMant refDelay=1 gradedSpike=False

Load it with ``Network(path, input_message_bits=B, reset_interval=T+1,
reset_offset=1)``: B = 8 for graded 8-bit input, 0 for binary spikes (see
:mod:`neurodeploy.lif_mapping`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from neurodeploy.errors import UserError


@dataclass(frozen=True)
class NetxConvLayer:
    """The contents of a one-layer conv + CUBA netx file."""

    input_shape: tuple[int, int, int]  # (C_in, H, W)
    weight: np.ndarray  # int8 (C_out, C_in, k, k)
    padding: int
    i_decay: int
    v_decay: int
    vth_mant: int

    def __post_init__(self) -> None:
        c_in, h, w = self.input_shape
        if self.weight.ndim != 4 or self.weight.shape[1] != c_in:
            raise ValueError(f"weight {self.weight.shape} does not take {c_in} input channels")
        k = self.weight.shape[-1]
        if self.weight.shape[-2] != k or k % 2 == 0 or self.padding != k // 2:
            raise ValueError("only square, odd kernels with 'same' padding are supported")
        if min(c_in, h, w) < 1:
            raise ValueError(f"bad input shape {self.input_shape}")
        if np.abs(self.weight.astype(np.int64)).max(initial=0) > 128:
            raise ValueError("weights must be 8-bit mantissas")

    @property
    def output_shape(self) -> tuple[int, int, int]:
        return (int(self.weight.shape[0]), self.input_shape[1], self.input_shape[2])

    @property
    def kernel(self) -> int:
        return int(self.weight.shape[-1])


def write_netx(path: str | os.PathLike[str], layer: NetxConvLayer) -> None:
    """Write ``layer`` as a netx HDF5 network (input + conv/CUBA)."""
    import h5py

    c_out, h, w = layer.output_shape
    with h5py.File(path, "w") as f:
        inp = f.create_group("layer/0")
        inp["type"] = np.bytes_("input")
        inp["shape"] = np.array(layer.input_shape, dtype=np.int64)
        conv = f.create_group("layer/1")
        conv["type"] = np.bytes_("conv")
        conv["shape"] = np.array([c_out, h, w], dtype=np.int64)
        conv["weight"] = layer.weight.astype(np.int8)[..., None]
        conv["stride"] = np.array([1, 1], dtype=np.int64)
        conv["padding"] = np.array([layer.padding, layer.padding], dtype=np.int64)
        conv["dilation"] = np.array([1, 1], dtype=np.int64)
        conv["groups"] = np.int64(1)
        neuron = conv.create_group("neuron")
        neuron["type"] = np.bytes_("CUBA")
        neuron["iDecay"] = np.int64(layer.i_decay)
        neuron["vDecay"] = np.int64(layer.v_decay)
        neuron["vThMant"] = np.int64(layer.vth_mant)
        neuron["refDelay"] = np.int64(1)
        neuron["gradedSpike"] = np.bool_(False)


def read_netx(path: str | os.PathLike[str]) -> NetxConvLayer:
    """Read a file written by :func:`write_netx`; anything else is a one-line UserError."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            types = [f[f"layer/{i}/type"][()] for i in range(len(f["layer"]))]
            if [bytes(t) for t in types] != [b"input", b"conv"]:
                raise ValueError(f"layers {types}, expected [input, conv]")
            conv, neuron = f["layer/1"], f["layer/1/neuron"]
            if bytes(neuron["type"][()]) != b"CUBA":
                raise ValueError("neuron type is not CUBA")
            for key, want in (("stride", 1), ("dilation", 1)):
                if np.any(np.asarray(conv[key][()]) != want):
                    raise ValueError(f"{key} must be 1")
            if int(np.asarray(conv["groups"][()])) != 1:
                raise ValueError("groups must be 1")
            padding = np.atleast_1d(np.asarray(conv["padding"][()]))
            if padding.min() != padding.max():
                raise ValueError("padding must be equal in both dimensions")
            weight = np.asarray(conv["weight"][()])
            if weight.ndim != 5 or weight.shape[-1] != 1:
                raise ValueError(f"weight shape {weight.shape}, expected (out, in, k, k, 1)")
            if not np.array_equal(weight, np.rint(weight)):
                raise ValueError("weights are not integers")
            layer = NetxConvLayer(
                input_shape=tuple(int(x) for x in f["layer/0/shape"][()]),
                weight=weight[..., 0].astype(np.int8),
                padding=int(padding[0]),
                i_decay=int(neuron["iDecay"][()]),
                v_decay=int(neuron["vDecay"][()]),
                vth_mant=int(neuron["vThMant"][()]),
            )
            if tuple(int(x) for x in conv["shape"][()]) != layer.output_shape:
                raise ValueError("conv shape does not match the input shape and weights")
            return layer
    except (OSError, KeyError, ValueError, TypeError, IndexError) as exc:
        raise UserError(f"{path} is not a neurodeploy netx network ({exc})",
                        "re-create it with neurodeploy convert") from None
