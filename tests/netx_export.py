"""Netx files written the way SLAYER's ``export_hdf5`` writes them (lava-dl's ``slayer.block`` and ``slayer.auto``),
with h5py, for the netx-in tests: SLAYER itself does not import here (it imports torchvision).

Layout, as in lava-dl 0.6's blocks: every block's ``type`` a one-element ``|S10`` array, ``shape`` in
(C, H, W) order, float32 weights and biases holding integers, a conv's weight (O, C, kh, kw) with its
``inChannels``, ``outChannels``, ``kernelSize``, ``stride``, ``padding``, ``dilation``, ``groups``; a dense
block's ``inFeatures`` / ``outFeatures``; the CUBA neuron's ``device_params`` (type ``LOIHI``, iDecay, vDecay,
vThMant, refDelay, wgtExp); the input block's neuron and its scalar ``weight`` / ``bias``; the network's
``simulation`` group (Ts, tSample).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np


def _type(g: Any, name: str) -> None:
    g.create_dataset("type", (1,), "S10", [name.encode("ascii")])


def _neuron(g: Any, i_decay: int, v_decay: int, vth: int) -> None:
    for key, value in (("type", np.bytes_("LOIHI")), ("iDecay", i_decay), ("vDecay", v_decay), ("vThMant", vth),
                       ("refDelay", 1), ("wgtExp", 0)):
        g.create_dataset(f"neuron/{key}", data=value)


def write_slayer_net(path: Path, seed: int, recurrent: bool = False, steps: int = 12) -> Path:
    """input (3, 12, 16) driven through its bias -> conv 6x3x(3x5) stride 2 pad (1, 2) -> flatten -> dense 20
    (dense_rec 20 if ``recurrent``) -> dense 5; seeded integer weights and biases, leaky neurons."""
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        g = f.create_group("layer/0")
        _type(g, "input")
        g["shape"] = np.array([3, 12, 16])
        _neuron(g, 4096, 512, 40)
        g["weight"], g["bias"] = np.float32(48.0), np.float32(10.0)
        g = f.create_group("layer/1")
        _type(g, "conv")
        g["shape"] = np.array([6, 6, 8])
        for key, value in (("inChannels", 3), ("outChannels", 6), ("kernelSize", [3, 5]), ("stride", [2, 2]),
                           ("padding", [1, 2]), ("dilation", [1, 1]), ("groups", 1)):
            g[key] = np.array(value)
        g["weight"] = rng.integers(-40, 60, size=(6, 3, 3, 5)).astype(np.float32)
        g["bias"] = rng.integers(-4, 8, size=6).astype(np.float32)
        _neuron(g, 3072, 1024, 60)
        g = f.create_group("layer/2")
        _type(g, "flatten")
        g["shape"] = np.array([1, 1, 288])
        g = f.create_group("layer/3")
        _type(g, "dense_rec" if recurrent else "dense")
        g["shape"] = np.array([20, 1, 1])
        g["inFeatures"], g["outFeatures"] = 288, 20
        g["weight"] = (rng.integers(-20, 30, size=(20, 288)) * 2).astype(np.float32)  # even: a weight exponent
        if recurrent:
            g["weight_rec"] = rng.integers(-30, 30, size=(20, 20)).astype(np.float32)
        g["bias"] = rng.integers(-2, 6, size=20).astype(np.float32)
        _neuron(g, 2048, 256, 80)
        g = f.create_group("layer/4")
        _type(g, "dense")
        g["shape"] = np.array([5, 1, 1])
        g["inFeatures"], g["outFeatures"] = 20, 5
        g["weight"] = rng.integers(-60, 100, size=(5, 20)).astype(np.float32)
        _neuron(g, 4096, 128, 50)
        f["simulation/Ts"], f["simulation/tSample"] = 1, steps
    return path


def edit(path: Path, key: str, value: Any = None) -> Path:
    """Replace (or, with ``value`` None, delete) one dataset of a netx file in place."""
    with h5py.File(path, "a") as f:
        del f[key]
        if value is not None:
            f[key] = value
    return path
