r"""A whole chip segment as one Lava process: ``ChipSegment`` and its bit-exact model.

Why one process: netx builds a segment of depth d as about 2d + 3 Lava
processes (a synapse and a neuron per block, a recurrent synapse per
``dense_rec``, plus the source and a sink per layer), and every Lava step
each of them answers the runtime's phase command and passes its messages
through channels. For a small dense segment that fixed cost is most of the
step (docs/BENCHMARKS.md, section 4b). ``ChipSegment`` computes every block of
the segment inside one ProcessModel, so a Lava step costs one process's
phase handshake; the sample's frames come in once per sample and every
layer's spikes go back once per sample, each through one host pipe.

It is still a Lava run: Lava's runtime, ``LoihiProtocol``, one
``run(RunSteps(T + d))`` per sample, the state advanced once per Lava step in
``run_spk``. The parameters are the netx file's (``read_segment``: the int8
mantissas, decays, threshold and bias mantissa of each block) and the
arithmetic is :mod:`neurodeploy.chip.cuba`'s, the same functions the reference
uses.

Why it is exact. Per Lava step s (``time_step``; j = (s - 1) mod (T + d) the
step within the sample) netx's blocks do, in this order of data flow::

    source:         x_0 = frame j (zeros for j >= T)
    block k synapse: sends buf_k, then buf_k <- W_k x_{k-1}          (one-step delay)
    block k rec:     sends rec_k, then rec_k <- W_rec,k x_k           (dense_rec only)
    block k neuron:  reset u, v if s mod (T + d) == (1 + k) mod (T + d)  (LIFReset, netx offset 1 + k)
                     x_k = cuba_step(buf_k + rec_k, bias_mant << 6)      (a voltage bias)
                     x_k = cuba_step(buf_k + rec_k + bias_mant, 0)        (a current bias)

A current bias (the file's ``bias_current``, which stock netx does not
read) is the always-on bias axon of :class:`~neurodeploy.chip.neuron_mapping.CubaMapping`:
a synapse whose buffer holds ``bias_mant`` at every step, read with the others.

A synapse sends the buffer it filled last step before it receives, so
within a step the neuron of block k reads the old buffers and the synapses
then fill new ones from this step's spikes. The model does exactly that,
block by block (k = 1 .. d): neuron from the old buffers, then the new
buffers; block k therefore emits frame t's spikes at j = t + k, as netx does,
and is reset at j = k, where its input is frame 0's. ``LavaSegment``'s netx
runner zeroes a recurrent synapse's buffer before the reset step (the spikes
it holds belong to the previous sample); here ``rec_k`` is ignored at j = k,
the same. Synapse and neuron arithmetic: conv
(:func:`~neurodeploy.chip.cuba.conv`, float32 GEMM when every partial sum is below
2^24, or :func:`~neurodeploy.chip.cuba.conv_strided` for strided or asymmetric
padding), dense (:func:`~neurodeploy.chip.cuba.dense_fixed` on the mantissas: netx
stores them shifted by a weight exponent that Lava shifts back, an exact
round trip), CUBA (:func:`~neurodeploy.chip.cuba.cuba_step`); a binary input
(``input_message_bits = 0``, and every spike between blocks) is ``x != 0``, as
Lava's bool ports read it.

The pipeline's fill and drain: at a step where block k holds no frame of the
sample (j < k for its neuron, j < k - 1 for its synapse; t = j - k >= T at
the end) netx computes numbers that nothing uses: the neuron's are discarded
by the runner and wiped by the reset at j = k, the synapse's are read only by
that wiped step. The model skips them, so a sample costs T steps of
arithmetic per block, as the reference's, spread over the T + d Lava steps.
A dense first block's synapse reads only the frames, all here at the
sample's first step, so it makes its T sums there as one GEMM
(:meth:`_Block.synapse_sample`) and hands frame t's out at step t, the
value netx's synapse holds then.
Every spike of every frame is therefore stock netx's (tested against
``netx.hdf5.Network`` with Lava's own models and against
:func:`neurodeploy.chip.reference.run_segment`).

Layout: frames in the host's order ((C, H, W) for a conv input, a vector for
a dense one) and spikes out in the host's order; netx's (W, H, C) is a
layout of the same numbers, so there is no transpose anywhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from neurodeploy.chip.cuba import (
    FLOAT32_EXACT,
    CubaParams,
    CubaState,
    bias_terms,
    conv,
    conv_strided,
    cuba_step,
    dense_fixed,
)
from neurodeploy.converters.netx_io import FixedPointLayer
from neurodeploy.runtime.lava import compat as _lava_compat

_lava_compat.import_lava()

from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.model.py.model import PyLoihiProcessModel  # noqa: E402
from lava.magma.core.model.py.ports import PyInPort, PyOutPort  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.magma.core.process.ports.ports import InPort, OutPort  # noqa: E402
from lava.magma.core.process.process import AbstractProcess  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402


class ChipSegment(AbstractProcess):
    """A chip segment's blocks (``read_segment``'s layers) as one process; a sample in, its spikes out.

    ``send`` queues a sample's frames (T, *input_shape), read at the sample's
    first step; after its ``T + depth`` steps, ``receive`` returns every
    layer's spikes, (T, *output_shape) uint8 per layer, output t for frame t.
    """

    def __init__(self, layers: Sequence[FixedPointLayer], timesteps: int, input_message_bits: int = 0) -> None:
        layers = tuple(layers)
        in_size = math.prod(layers[0].input_shape) * timesteps
        out_sizes = [math.prod(layer.output_shape) * timesteps for layer in layers]
        super().__init__(layers=layers, timesteps=timesteps, input_message_bits=input_message_bits)
        self.layers, self.timesteps, self.out_sizes = layers, timesteps, out_sizes
        self.host_in = InPort(shape=(in_size,))
        self.host_in.flag_external_pipe(buffer_size=2)
        self.host_out = OutPort(shape=(math.ceil(sum(self.out_sizes) / 8),))
        self.host_out.flag_external_pipe(buffer_size=2)

    def send(self, frames: np.ndarray) -> None:
        """Queue one sample's frames (ints in 0 .. 255)."""
        self.host_in.external_pipe_csp_send_port.send(np.ascontiguousarray(frames, dtype=np.uint8).reshape(-1))

    def receive(self) -> list[np.ndarray]:
        """The sample's spikes, per layer (T, *output_shape) uint8 (blocks until they arrive)."""
        flat = np.unpackbits(self.host_out.external_pipe_csp_recv_port.recv(), count=sum(self.out_sizes))
        bounds = np.cumsum([0, *self.out_sizes])
        return [flat[a:b].reshape(self.timesteps, *layer.output_shape)
                for a, b, layer in zip(bounds[:-1], bounds[1:], self.layers, strict=True)]


class _Block:
    """One block in the model: its synapse (with the one-step buffer), its CUBA neurons, their state."""

    def __init__(self, layer: FixedPointLayer, graded: bool) -> None:
        self.layer, self.graded = layer, graded
        self.params = CubaParams.of(layer)
        # a current bias is the always-on bias axon's input, joining the buffers every step
        self.input_bias, self.bias = bias_terms(layer.bias, layer.bias_site, layer.output_shape)
        self.state = CubaState.zeros(layer.output_shape)
        self.buf: np.ndarray = np.zeros(layer.output_shape)
        self.rec: np.ndarray | None = None if layer.weight_rec is None else np.zeros(layer.output_shape)
        square = layer.kind == "conv" and layer.weight.shape[2] == layer.weight.shape[3]
        # cuba.conv's case: stride 1 and "same" padding, its output the size of its input (a 4x4 kernel over
        # a 4x4 map without padding, a dense readout written as a conv, is not)
        self.plain_conv = (square and layer.stride == (1, 1) and layer.padding[0] == layer.padding[1]
                           and 2 * layer.padding[0] == layer.weight.shape[2] - 1)
        self.matrix, self.matrix_rec = self._dense_matrix(layer.weight, 255 if graded else 1), None
        if layer.weight_rec is not None:
            self.matrix_rec = self._dense_matrix(layer.weight_rec, 1)
        self._last: np.ndarray | None = None
        self._weight_rows: np.ndarray | None = None

    def synapse_sample(self, frames: np.ndarray) -> np.ndarray:
        """A dense first block's synaptic input for every frame of the sample at once: W x_t as columns (O, T).

        The frames are all here at the sample's first step, and the synapse of
        the first block reads nothing else, so its T sums are one GEMM (W^T
        read once, not T times); column t is exactly what :meth:`synapse`
        makes from frame t.
        """
        assert self.matrix is not None and self.layer.kind != "conv"
        if self._weight_rows is None:
            self._weight_rows = np.ascontiguousarray(self.matrix.T)
        x = frames.reshape(frames.shape[0], -1)
        x = x.astype(self.matrix.dtype) if self.graded else (x != 0).astype(self.matrix.dtype)
        return self._weight_rows @ x.T

    def _dense_matrix(self, weight: np.ndarray, max_input: int) -> np.ndarray | None:
        """W^T for :func:`dense_fixed`: float32 when every sum stays below 2^24, else float64."""
        if self.layer.kind == "conv":
            return None
        bound = int(np.abs(weight.astype(np.int64)).sum(axis=1).max(initial=0)) * max_input
        return np.ascontiguousarray(weight.T.astype(np.float32 if bound < FLOAT32_EXACT else np.float64))

    def synapse(self, x: np.ndarray) -> np.ndarray:
        """The synaptic input this block's neurons read next step, from this step's input x."""
        if self.graded:
            if self._last is not None and np.array_equal(x, self._last):
                return self.buf  # a graded input that does not change: the same sum
            self._last = x.copy()
        else:
            x = x != 0
        layer = self.layer
        if layer.kind != "conv":
            assert self.matrix is not None
            return dense_fixed(x.reshape(-1) if not self.graded else x.reshape(-1).astype(self.matrix.dtype),
                               self.matrix)
        x = x.reshape(layer.input_shape)
        if self.plain_conv:
            return conv(x.astype(np.uint8) if x.dtype == np.bool_ else x, layer.weight, layer.padding[0])
        return conv_strided(x[None].astype(np.float64), layer.weight, layer.stride, layer.padding)[0]

    def neuron(self, reset: bool) -> np.ndarray:
        """Reset (the sample's first input reaches this block) or not, then one CUBA step: spikes (bool)."""
        a = self.buf
        if reset:
            self.state.u.fill(0.0)
            self.state.v.fill(0.0)
        elif self.rec is not None:
            a = a + self.rec
        return cuba_step(self.state, a + self.input_bias, self.params, self.bias)


class _Pipeline:
    """The segment's blocks advanced one Lava step at a time; ``out`` collects each layer's spikes per frame."""

    def __init__(self, layers: Sequence[FixedPointLayer], timesteps: int, graded: bool) -> None:
        self.timesteps = timesteps
        self.steps = timesteps + len(layers)
        self.blocks = [_Block(layer, graded and k == 0) for k, layer in enumerate(layers)]
        self.out = [np.zeros((timesteps, math.prod(layer.output_shape)), dtype=bool) for layer in layers]
        self.zero = np.zeros(layers[0].input_shape, dtype=np.uint8)
        self.first_sums: np.ndarray | None = None  # a dense first block's W x_t of the sample, (O, T)

    def step(self, j: int, frames: np.ndarray) -> None:
        """Step j (0 .. T + depth - 1) of the sample whose frames are ``frames`` (T, *input_shape)."""
        x = frames[j] if j < self.timesteps else self.zero
        if j == 0 and self.blocks[0].layer.kind != "conv":
            self.first_sums = self.blocks[0].synapse_sample(frames)
        for k, block in enumerate(self.blocks, start=1):
            t = j - k  # the frame whose spikes block k makes now
            if t >= self.timesteps:
                continue  # past the sample's last frame (the deeper blocks are not)
            if t < -1:
                break  # the sample's first frame is not here yet, nor at the deeper blocks
            if t >= 0:
                spikes = block.neuron(reset=t == 0)
                self.out[k - 1][t] = spikes.reshape(-1)
                if block.matrix_rec is not None and t < self.timesteps - 1:
                    block.rec = dense_fixed(spikes, block.matrix_rec)
            if t < self.timesteps - 1:  # frame t + 1 reaches block k's synapse now
                block.buf = block.synapse(x) if k > 1 or self.first_sums is None else self.first_sums[:, j]
            if t < 0:
                break
            x = spikes

    def packed(self) -> np.ndarray:
        """Every layer's spikes of the sample, one bit each (``ChipSegment.receive`` unpacks them)."""
        return np.packbits(np.concatenate([o.reshape(-1) for o in self.out]))


@implements(proc=ChipSegment, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt", "neurodeploy")
class PyChipSegmentModel(PyLoihiProcessModel):
    """Every block of the segment, one Lava step per ``run_spk`` (see the module docstring)."""

    host_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.uint8, precision=8)
    host_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.uint8, precision=8)

    def __init__(self, proc_params: dict) -> None:
        super().__init__(proc_params)
        layers: tuple[FixedPointLayer, ...] = proc_params["layers"]
        self.pipeline = _Pipeline(layers, int(proc_params["timesteps"]), int(proc_params["input_message_bits"]) > 0)
        self.frames = np.zeros((self.pipeline.timesteps, *layers[0].input_shape), dtype=np.uint8)

    def run_spk(self) -> None:
        j = (self.time_step - 1) % self.pipeline.steps
        if j == 0:
            self.frames = self.host_in.recv().reshape(self.frames.shape)
        self.pipeline.step(j, self.frames)
        if j == self.pipeline.steps - 1:
            self.host_out.csp_ports[-1].send(self.pipeline.packed())
