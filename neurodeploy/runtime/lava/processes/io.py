"""The Lava processes at the two ends of the spike bridge, and their models.

Lava's own ``Injector`` and ``Extractor`` carry float64 arrays through their
host pipes (8 bytes per neuron per step) and allocate a zeroed array on every
``receive``. The spike bridge moves integers: 8-bit input payloads in and
binary spikes out. So:

* :class:`FrameSource` sends the host's integer frames into the network; its
  host pipe carries uint8 (W, H, C) frames.
* :class:`SpikeSink` receives the network's spikes each step and sends them
  to the host bit-packed (``np.packbits``: one bit per neuron), which
  :meth:`SpikeSink.receive` unpacks.

As everywhere in Lava, what a process is (its ports) is separate from how it
is computed (the ``Py*Model`` classes, CPU, Loihi protocol).
"""

from __future__ import annotations

import math

import numpy as np

from neurodeploy.runtime.lava import compat as _lava_compat

_lava_compat.import_lava()

from lava.magma.core.decorator import implements, requires  # noqa: E402
from lava.magma.core.model.py.model import PyLoihiProcessModel  # noqa: E402
from lava.magma.core.model.py.ports import PyInPort, PyOutPort  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.magma.core.process.ports.ports import InPort, OutPort  # noqa: E402
from lava.magma.core.process.process import AbstractProcess  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402


class FrameSource(AbstractProcess):
    """Sends one host frame per time step (uint8 (W, H, C): payloads or binary spikes)."""

    def __init__(self, shape: tuple[int, ...], buffer_size: int) -> None:
        super().__init__(shape=shape, buffer_size=buffer_size)
        self.frame_shape = shape
        self.host_in = InPort(shape=shape)
        self.host_in.flag_external_pipe(buffer_size=buffer_size)
        self.s_out = OutPort(shape=shape)

    def send(self, frame: np.ndarray) -> None:
        """Queue the next step's frame (blocks while the buffer is full)."""
        self.host_in.external_pipe_csp_send_port.send(np.ascontiguousarray(frame, dtype=np.uint8))


class SpikeSink(AbstractProcess):
    """Receives binary spikes (W, H, C) each step and passes them to the host bit-packed."""

    def __init__(self, shape: tuple[int, ...], buffer_size: int) -> None:
        super().__init__(shape=shape, buffer_size=buffer_size)
        self.spike_shape = shape
        self.size = math.prod(shape)
        self.s_in = InPort(shape=shape)
        self.host_out = OutPort(shape=(math.ceil(self.size / 8),))
        self.host_out.flag_external_pipe(buffer_size=buffer_size)

    def receive(self) -> np.ndarray:
        """The next step's spikes as uint8 0/1 of shape (W, H, C) (blocks until they arrive)."""
        packed = self.host_out.external_pipe_csp_recv_port.recv()
        return np.unpackbits(packed, count=self.size).reshape(self.spike_shape)


@implements(proc=FrameSource, protocol=LoihiProtocol)
@requires(CPU)
class PyFrameSourceModel(PyLoihiProcessModel):
    host_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.uint8, precision=8)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)

    def run_spk(self) -> None:
        self.s_out.send(self.host_in.recv())


@implements(proc=SpikeSink, protocol=LoihiProtocol)
@requires(CPU)
class PySpikeSinkModel(PyLoihiProcessModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int8, precision=1)
    host_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.uint8, precision=8)

    def run_spk(self) -> None:
        spikes = self.s_in.recv()
        self.host_out.csp_ports[-1].send(np.packbits(spikes.reshape(-1) != 0))


IO_MODELS: dict[type, type] = {FrameSource: PyFrameSourceModel, SpikeSink: PySpikeSinkModel}
