"""A Lava-DL netx network (:mod:`neurodeploy.converters.netx_in`) run as stock netx ``hdf5.Network`` in Lava.

What a Lava-DL user runs: ``Network(path)`` built by netx itself, the frame
written into the input layer's bias (``net.in_layer.neuron.bias_mant.init``, as
lava-dl's PilotNet benchmark does), no reset, Lava's fixed-point models
(``Loihi2SimCfg(select_tag="fixed_pt")``); every block's spikes come out through
a ``sink.RingBuffer``, all steps in one ``run``. Lava's layout is (W, H, C);
the toolkit's (C, H, W) is transposed at both ends. Steps are Lava's: block k
reads at step t what block k - 1 sent at step t - 1
(:func:`neurodeploy.runtime.netx_run.run_netx` runs the same steps).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from neurodeploy.converters.netx_in import NetxNetwork
from neurodeploy.runtime.lava import compat as _lava_compat


def _to_lava(x: np.ndarray) -> np.ndarray:
    return x.transpose(2, 1, 0) if x.ndim == 3 else x.reshape(-1)


def sink_every_block(net: object, steps: int) -> list[object]:
    """A ``sink.RingBuffer`` of ``steps`` on every block's output of a netx ``Network``, in block order."""
    from lava.proc.io.sink import RingBuffer as Sink  # Lava: imported by the caller's run first (see run_stock)

    sinks = []
    for block in net.layers:  # type: ignore[attr-defined]
        sink = Sink(shape=block.out.shape, buffer=steps)
        block.out.connect(sink.a_in)
        sinks.append(sink)
    return sinks


def run_stock(path: str | Path, network: NetxNetwork, bias_mant: np.ndarray, steps: int,
              seconds: dict[str, float] | None = None, reset_interval: int | None = None) -> list[np.ndarray]:
    """One frame's bias mantissas (*input shape) for ``steps`` Lava steps -> every block's spikes
    (steps, *shape) uint8, the input layer first. ``seconds``, if given, gets ``first_step`` (Lava's compile,
    start and step 0) and ``steps`` (the other steps' run), for a steps-per-second figure. ``reset_interval``:
    netx's own (``reset_offset`` 0: block k is reset at its step k, as lava-dl's PilotNet benchmark runs it)."""
    _lava_compat.import_lava()
    # Lava is imported here, not at the top: its runtime machinery is paid only by a Lava run
    from lava.lib.dl.netx.hdf5 import Network
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    if network.input is None:
        raise ValueError("run_stock drives a bias-driven input layer; this network has none")
    net = Network(str(path)) if reset_interval is None else Network(str(path), reset_interval=reset_interval)
    if len(net.layers) != len(network.layers) + 1:
        raise RuntimeError(f"netx built {len(net.layers)} blocks from {path}, expected {len(network.layers) + 1}")
    net.in_layer.neuron.bias_mant.init = _to_lava(np.asarray(bias_mant)).astype(np.int32)
    sinks = sink_every_block(net, steps)
    try:
        started = time.perf_counter()
        net.run(condition=RunSteps(num_steps=1), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        first = time.perf_counter()
        if steps > 1:
            net.run(condition=RunSteps(num_steps=steps - 1), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        if seconds is not None:
            seconds.update(first_step=first - started, steps=time.perf_counter() - first)
        received = [sink.data.get() for sink in sinks]
    finally:
        net.stop()
    shapes = [network.input.shape, *(layer.output_shape for layer in network.layers)]
    return [_from_lava(got, shape, steps) for shape, got in zip(shapes, received, strict=True)]



def run_stock_spikes(path: str | Path, network: NetxNetwork, spikes: np.ndarray) -> list[np.ndarray]:
    """A network whose input layer has no neuron group: one sample's input spikes (steps, *input shape) sent
    through a ``source.RingBuffer`` into ``net.inp`` -> every block's spikes (steps, *shape) uint8."""
    _lava_compat.import_lava()
    from lava.lib.dl.netx.hdf5 import Network  # Lava imports: see run_stock
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.source import RingBuffer as Source

    steps = spikes.shape[0]
    net = Network(str(path))
    if len(net.layers) != len(network.layers):
        raise RuntimeError(f"netx built {len(net.layers)} blocks from {path}, expected {len(network.layers)}")
    source = Source(data=np.stack([_to_lava(x) for x in np.asarray(spikes)], axis=-1).astype(np.int32))
    source.s_out.connect(net.inp)
    sinks = sink_every_block(net, steps)
    try:
        net.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        received = [sink.data.get() for sink in sinks]
    finally:
        net.stop()
    return [_from_lava(got, layer.output_shape, steps) for layer, got in zip(network.layers, received, strict=True)]


def _from_lava(got: np.ndarray, shape: tuple[int, ...], steps: int) -> np.ndarray:
    per_step = np.moveaxis(np.asarray(got), -1, 0)  # (steps, *lava shape)
    return (per_step.transpose(0, 3, 2, 1) if len(shape) == 3 else per_step.reshape(steps, *shape)).astype(np.uint8)
