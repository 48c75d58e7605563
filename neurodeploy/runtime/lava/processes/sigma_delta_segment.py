"""A segment of sigma-delta layers as one Lava process: ``SigmaDeltaSegment`` and its model.

Stock netx runs a sigma-delta layer as Lava's ``Conv``/``Dense`` synapse and
``SigmaDelta`` neuron, and Lava's fixed-point conv model ignores a weight
exponent. This process runs the same layers with
:func:`neurodeploy.chip.sigma_delta.sigma_delta_step`, the reference's own
step, once per Lava step in ``run_spk`` (Lava's runtime, ``LoihiProtocol``,
one ``run(RunSteps(steps))`` per sequence), so it runs what stock netx runs
bit for bit (same equations, tested against it) and also what netx cannot
load: a weight exponent, Loihi 2's per-synapse shift that the first
sigma-delta layer after binary LIF spikes needs (docs/bench_sigma_delta.json).

Per Lava step j of a sequence (state zeroed at j = 0, as the reference's
:func:`~neurodeploy.chip.sigma_delta.run_segment` starts): the input payloads
of step j go into layer 1, layer k's output payloads into layer k + 1, each
layer one :func:`sigma_delta_step` (its synapse's one-step buffer included:
netx's timing). The sequence's payloads come in once (int32) and every
layer's payloads of every step go back once, at its last step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from neurodeploy.chip.sigma_delta import SigmaDeltaLayer, sigma_delta_step, zero_state
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


class SigmaDeltaSegment(AbstractProcess):
    """Sigma-delta layers as one process: ``send`` a sequence's payloads, ``receive`` every layer's."""

    def __init__(self, layers: Sequence[SigmaDeltaLayer], steps: int) -> None:
        layers = tuple(layers)
        super().__init__(layers=layers, steps=steps)
        self.layers, self.steps = layers, steps
        self.out_sizes = [math.prod(layer.output_shape) * steps for layer in layers]
        self.host_in = InPort(shape=(math.prod(layers[0].input_shape) * steps,))
        self.host_in.flag_external_pipe(buffer_size=2)
        self.host_out = OutPort(shape=(sum(self.out_sizes),))
        self.host_out.flag_external_pipe(buffer_size=2)

    def send(self, payloads: np.ndarray) -> None:
        """Queue one sequence's input payloads (steps, *input_shape), signed, below 2^23."""
        self.host_in.external_pipe_csp_send_port.send(np.ascontiguousarray(payloads, dtype=np.int32).reshape(-1))

    def receive(self) -> list[np.ndarray]:
        """Every layer's payloads of the sequence, (steps, *output_shape) int64 (blocks until they arrive)."""
        flat = self.host_out.external_pipe_csp_recv_port.recv().astype(np.int64)
        bounds = np.cumsum([0, *self.out_sizes])
        return [flat[a:b].reshape(self.steps, *layer.output_shape)
                for a, b, layer in zip(bounds[:-1], bounds[1:], self.layers, strict=True)]


@implements(proc=SigmaDeltaSegment, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt", "neurodeploy")
class PySigmaDeltaSegmentModel(PyLoihiProcessModel):
    """Every layer of the segment, one Lava step per ``run_spk`` (see the module docstring)."""

    host_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    host_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)

    def __init__(self, proc_params: dict) -> None:
        super().__init__(proc_params)
        self.layers: tuple[SigmaDeltaLayer, ...] = proc_params["layers"]
        self.steps = int(proc_params["steps"])
        self.payloads = np.zeros((self.steps, 1, *self.layers[0].input_shape), dtype=np.int64)
        self.states = [zero_state(layer) for layer in self.layers]
        self.out = [np.zeros((self.steps, *layer.output_shape), dtype=np.int64) for layer in self.layers]

    def run_spk(self) -> None:
        j = (self.time_step - 1) % self.steps
        if j == 0:
            self.payloads = self.host_in.recv().astype(np.int64).reshape(self.payloads.shape)
            self.states = [zero_state(layer) for layer in self.layers]
        m = self.payloads[j]
        for k, layer in enumerate(self.layers):
            m, self.states[k] = sigma_delta_step(layer, self.states[k], m)
            self.out[k][j] = m[0]
        if j == self.steps - 1:
            self.host_out.csp_ports[-1].send(np.concatenate([o.reshape(-1) for o in self.out]).astype(np.int32))
