"""Run a multi-layer chip segment (one netx HDF5 file of :func:`~neurodeploy.converters.netx_io.write_segment`) in Lava.

Every layer's spikes come back, not only the last layer's, so the whole
segment can be checked against :func:`neurodeploy.chip.reference.run_segment`.

Timing (see :func:`neurodeploy.chip.reference.run_segment_batch`): a sample runs
``T + depth`` Lava steps: T frames, then ``depth`` zero frames; layer k
(1-based) emits the spikes of frame t at step t + k and is reset at step k
(``reset_interval = T + depth``, ``reset_offset = 1``: netx adds one per
layer). A recurrent block's own synapse would carry into step k the spikes
the layer made at step k - 1, which belong to no frame of this sample; the
runner pauses there and zeroes that synapse's buffer, so every sample starts
from zero state, as the reference and the float graph do.

``models="neurodeploy"`` (the default) runs the whole segment as one Lava
process, :class:`~neurodeploy.runtime.lava.processes.segment.ChipSegment`, whose
model advances every block per Lava step as the netx blocks do (its
docstring says why it is exact; the recurrent zeroing is modelled there);
the sample's frames go in once and every layer's spikes come back once per
sample. ``models="stock"`` loads the file in lava-dl's
``netx.hdf5.Network`` with Lava's own fixed-point models: frames go in
through a :class:`~neurodeploy.runtime.lava.processes.io.FrameSource` and each
block's spikes come out through a
:class:`~neurodeploy.runtime.lava.processes.io.SpikeSink`, one frame per step. Stock
netx does not read a bias into a filtered current (the file's
``bias_current``): a segment with one is refused there in one line
(:func:`check_stock_netx`), before Lava starts.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import numpy as np

from neurodeploy.chip.neuron_mapping import NETX_RESET_OFFSET, segment_steps
from neurodeploy.converters.netx_in import read_segment
from neurodeploy.converters.netx_io import FixedPointLayer, runs_in_stock_netx
from neurodeploy.errors import UserError
from neurodeploy.runtime.backends import LavaModels
from neurodeploy.runtime.lava import reaper as _reaper
from neurodeploy.runtime.lava.lifecycle import (
    LavaProcessError,
    receive,
    select_run_config,
    shut_down,
    start_runtime,
)


def check_stock_netx(path: str | Path, layers: tuple[FixedPointLayer, ...]) -> None:
    """A segment stock ``netx.hdf5.Network`` would run wrong (a current bias or a low byte it ignores) is a
    UserError."""
    if not runs_in_stock_netx(layers):
        k, layer = next((k, layer) for k, layer in enumerate(layers) if not runs_in_stock_netx([layer]))
        what = ("has wide weights (a second synapse per connection)" if layer.wide else
                "adds its bias to a filtered synaptic current (an always-on bias axon)")
        raise UserError(f"{path}: chip layer {k} {what}, which stock lava-dl netx does not read and would run "
                        "without", "run it on neurodeploy's Lava models (the default: --lava-models neurodeploy, "
                        "in Python models=\"neurodeploy\") or on the reference or torch backend")


class LavaSegment:
    """A compiled chip segment; use as a context manager::

        with LavaSegment(path, timesteps=T) as seg:
            spikes = seg.run(frames)     # (T, *input_shape) -> [per layer (T, *output_shape) uint8]
    """

    def __init__(self, path: str | Path, timesteps: int, input_message_bits: int = 0,
                 models: LavaModels = "neurodeploy", backend: str = "lava") -> None:
        self.path = Path(path)
        self.layers: tuple[FixedPointLayer, ...] = read_segment(self.path)
        self.timesteps = int(timesteps)
        self.steps = segment_steps(self.timesteps, len(self.layers))
        self.input_message_bits = input_message_bits
        self.models = models
        self.backend = backend  # "lava" (CPU simulation) or "loihi2" (lava-loihi: bridge.select_run_config)
        self.one_process = backend == "lava" and models == "neurodeploy"  # ChipSegment; else the netx graph
        if not self.one_process:
            check_stock_netx(self.path, self.layers)
        self.compile_seconds = 0.0
        self._net: Any = None
        self._source: Any = None
        self._sinks: list[Any] = []
        self._failed = False
        self._reaper: _reaper.Reaper | None = None

    def __enter__(self) -> LavaSegment:
        run_cfg = select_run_config(self.backend, self.models)
        started = time.perf_counter()
        net = self._fused() if self.one_process else self._netx()
        self._reaper = start_runtime(net, run_cfg)  # the bridge's start: Ctrl-C, SIGKILL, shared memory
        self._net = net
        self.compile_seconds = time.perf_counter() - started
        return self

    def _fused(self) -> Any:
        """The segment as one ChipSegment process."""
        # lazy: the process module imports Lava (seconds of start-up), paid only when a segment compiles
        from neurodeploy.runtime.lava.processes.segment import ChipSegment

        return ChipSegment(self.layers, self.timesteps, self.input_message_bits)

    def _netx(self) -> Any:
        """The file in stock netx, a FrameSource into its input and a SpikeSink on every block."""
        # lazy: Lava and the process modules cost seconds to import, paid only when a segment compiles
        from lava.lib.dl.netx.hdf5 import Network

        from neurodeploy.runtime.lava.processes.io import FrameSource, SpikeSink

        net = Network(str(self.path), input_message_bits=self.input_message_bits,
                      reset_interval=self.steps, reset_offset=NETX_RESET_OFFSET)
        if len(net.layers) != len(self.layers):
            raise RuntimeError(f"netx built {len(net.layers)} blocks from {self.path}, expected {len(self.layers)}")
        source = FrameSource(shape=net.inp.shape, buffer_size=self.steps + 1)
        source.s_out.connect(net.inp)
        sinks = []
        for block in net.layers:
            sink = SpikeSink(shape=block.out.shape, buffer_size=self.steps + 1)
            block.out.connect(sink.s_in)
            sinks.append(sink)
        self._source, self._sinks = source, sinks
        return net

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the runtime (the bridge's STOP handshake, or its forced stop); idempotent."""
        net, self._net = self._net, None
        reaper, self._reaper = self._reaper, None
        shut_down(net, self._failed, reaper)

    def run(self, frames: np.ndarray) -> list[np.ndarray]:
        """One sample: frames (T, *input_shape) ints -> every layer's spikes (T, *output_shape), uint8.

        Output t belongs to frame t (the per-layer delays are removed).
        """
        if self._net is None:
            raise RuntimeError("LavaSegment.run needs the segment to be entered (use `with`)")
        from lava.magma.core.run_conditions import RunSteps

        frames = np.asarray(frames)
        first = self.layers[0]
        if frames.shape[0] != self.timesteps or frames[0].size != int(np.prod(first.input_shape)):
            raise ValueError(f"frames of shape {frames.shape} for T = {self.timesteps} and input {first.input_shape}")
        if frames.size and (frames.min() < 0 or frames.max() > 255):
            raise ValueError("frames must hold ints in 0 .. 255 (8-bit payloads or binary spikes)")
        if self.one_process:  # one ChipSegment: the sample in, T + depth steps, the spikes out
            self._net.send(frames)
            self._net.run(condition=RunSteps(num_steps=self.steps, blocking=False))
            fused: list[np.ndarray] = self._receive(self._net)
            self._net.wait()
            return fused
        return self._run_netx(frames)

    def _run_netx(self, frames: np.ndarray) -> list[np.ndarray]:
        """One sample through stock netx: a frame in and every block's spikes out per Lava step."""
        from lava.magma.core.run_conditions import RunSteps

        first = self.layers[0]
        outs = [np.zeros((self.timesteps, *layer.output_shape), dtype=np.uint8) for layer in self.layers]
        pauses = sorted({k + 1 for k, layer in enumerate(self.layers) if layer.kind == "dense_rec"})
        bounds = [0, *[p for p in pauses if p < self.steps], self.steps]
        zero = np.zeros(self._source.frame_shape, dtype=np.uint8)
        for start, stop in itertools.pairwise(bounds):
            if start in pauses:  # zero the recurrent synapse of layer `start` before its reset step
                block = self._net.layers[start - 1]
                block.synapse_rec.a_buff.set(np.zeros(block.synapse_rec.a_buff.shape, dtype=np.int32))
            if stop == start:
                continue
            self._net.run(condition=RunSteps(num_steps=stop - start, blocking=False))
            for step in range(start, stop):
                if step < self.timesteps:  # host (C, H, W) -> Lava (W, H, C); a dense input reads C order
                    frame = frames[step]
                    self._source.send(frame.transpose(2, 1, 0) if frame.ndim == 3 and first.kind == "conv"
                                      else frame.reshape(-1))
                else:
                    self._source.send(zero)
                for k, sink in enumerate(self._sinks):
                    spikes = self._receive(sink)
                    t = step - (k + 1)
                    if 0 <= t < self.timesteps:
                        outs[k][t] = spikes.transpose(2, 1, 0) if spikes.ndim == 3 else spikes
            self._net.wait()
        return outs

    def _receive(self, sink: Any) -> Any:
        """A sink's next message (the bridge's :func:`receive`); a failure marks the runtime for the forced stop."""
        try:
            return receive(sink, self._net)
        except LavaProcessError:
            self._failed = True
            raise
