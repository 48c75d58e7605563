"""Run a sigma-delta netx file (:mod:`neurodeploy.converters.netx_sdnn`) in stock lava-dl netx on Lava's CPU.

The file is loaded as stock ``netx.hdf5.Network(path, skip_layers=1,
spike_exp=...)`` and run with Lava's own fixed-point models
(``Loihi2SimCfg(select_tag="fixed_pt")``: ``PyConvModelFixed``,
``PyDenseModelBitAcc``, ``PySigmaDeltaModelFixed``). The input payloads go
in through Lava's fixed-point ``source.RingBuffer`` (int32) and every
block's payloads come out through a ``sink.RingBuffer``, all steps in one
``run``. Lava's layout is (W, H, C); the host's (C, H, W) is transposed at
both ends. Every step's payloads of every layer come back, so the run can be
compared with :func:`neurodeploy.chip.sigma_delta.run_segment` step by step.

:func:`run_segment_process` runs the same layers as neurodeploy's own
one-process segment (:mod:`neurodeploy.runtime.lava.processes.sigma_delta_segment`),
which also runs what netx cannot load (a weight exponent).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from neurodeploy.chip.sigma_delta import SigmaDeltaLayer, read_sigma_delta_file
from neurodeploy.runtime.lava import compat as _lava_compat


def _to_lava(x: np.ndarray) -> np.ndarray:
    return x.transpose(2, 1, 0) if x.ndim == 3 else x.reshape(-1)


def run_stock_netx(path: str | Path, messages: np.ndarray) -> list[np.ndarray]:
    """Input payloads (steps, *input_shape) -> every block's payloads (steps, *output_shape), int64.

    One sample, no batch axis: a Lava run is one network state.
    """
    _lava_compat.import_lava()
    # Lava is imported here, not at the top: importing it starts its runtime machinery, which the
    # reference and torch backends never need
    from lava.lib.dl.netx.hdf5 import Network
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    layers = read_sigma_delta_file(str(path))
    messages = np.asarray(messages, dtype=np.int64)
    steps = messages.shape[0]
    if messages.shape[1:] != layers[0].input_shape:
        raise ValueError(f"payloads of shape {messages.shape[1:]} for input {layers[0].input_shape}")
    net = Network(str(path), skip_layers=1, spike_exp=layers[0].spike_exp)
    if len(net.layers) != len(layers):
        raise RuntimeError(f"netx built {len(net.layers)} blocks from {path}, expected {len(layers)}")
    data = np.stack([_to_lava(m) for m in messages], axis=-1).astype(np.int32)
    source = Source(data=data)
    source.s_out.connect(net.inp)
    sinks = []
    for block in net.layers:
        sink = Sink(shape=block.out.shape, buffer=steps)
        block.out.connect(sink.a_in)
        sinks.append(sink)
    try:
        net.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        received = [sink.data.get() for sink in sinks]
    finally:
        net.stop()
    outs = []
    for layer, got in zip(layers, received, strict=True):
        per_step = np.moveaxis(np.asarray(got), -1, 0).astype(np.int64)  # (steps, *lava shape)
        outs.append(per_step.transpose(0, 3, 2, 1) if len(layer.output_shape) == 3 else per_step)
    return outs


def run_segment_process(layers: Sequence[SigmaDeltaLayer], payloads: np.ndarray) -> list[np.ndarray]:
    """The layers as one :class:`~neurodeploy.runtime.lava.processes.sigma_delta_segment.SigmaDeltaSegment` in Lava.

    Input payloads (steps, *input_shape) -> every layer's payloads (steps, *output_shape), int64, as
    :func:`run_stock_netx` returns them; runs layers netx cannot load too (a weight exponent).
    """
    from lava.magma.core.run_conditions import RunSteps  # Lava imports: see run_stock_netx

    from neurodeploy.runtime.lava.lifecycle import receive, select_run_config, shut_down, start_runtime
    from neurodeploy.runtime.lava.processes.sigma_delta_segment import SigmaDeltaSegment

    payloads = np.asarray(payloads, dtype=np.int64)
    segment = SigmaDeltaSegment(layers, steps=payloads.shape[0])
    reaper = start_runtime(segment, select_run_config("lava", "neurodeploy"))
    failed = False
    try:
        segment.send(payloads)
        segment.run(condition=RunSteps(num_steps=payloads.shape[0], blocking=False))
        try:
            outs: list[np.ndarray] = receive(segment, segment)
        except Exception:
            failed = True
            raise
        segment.wait()
        return outs
    finally:
        shut_down(segment, failed, reaper)
