"""neurodeploy's ProcessModels for Lava's Conv and LIF processes: faster, bit-exact.

These serve the spike bridge's one-layer ``snn.net``. A multi-layer chip
segment runs instead as one process, :mod:`.segment`'s ``ChipSegment``.

The netx Network loaded from ``snn.net`` is the same process graph either way;
only the ProcessModels of its leaf processes change, selected through the
run config's ``exception_proc_model_map`` (``FAST_MODELS``; see
:func:`neurodeploy.bridge.select_run_config`):

* ``lava.proc.conv.process.Conv`` -> :class:`NeurodeployConvModel`: the conv
  as one im2col GEMM in Lava's (W, H, C) layout (no transposes), in float32
  when every partial sum is below 2^24 (exact, as stock's own float32 torch
  conv), else float64; and the result is reused while the input frame does
  not change, which is every step of a constant-current image. Strided,
  dilated, grouped or not-'same' convs fall back, explicitly, to stock's
  ``conv_utils.conv`` inside the same model.
* ``lava.proc.lif.process.LIF`` / ``LIFReset`` -> :class:`NeurodeployLifModel`
  / :class:`NeurodeployLifResetModel`: the CUBA update of
  :mod:`neurodeploy.cuba` on float64 state (exact for 24-bit values), a few
  whole-array passes instead of stock's int64 round trips, and binary spikes
  sent as int8 rather than int32.

Both keep the stock timing: the conv sends the previous step's result first
(one-step delay); LIFReset zeroes u and v when ``time_step % reset_interval ==
reset_offset``. The synapse and neuron stay two processes: Lava's compiler
discovers the netx block's leaf processes through their port connections, so
a fused model for the block would not replace them (tried), and the channel
between the two costs little next to a large conv's arithmetic (see
docs/BENCHMARKS.md). ``ChipSegment`` is not a netx graph at all: one process
of neurodeploy's own, with no leaf processes to discover.
No torch inside: Lava forks these processes.
"""

from __future__ import annotations

import numpy as np

from neurodeploy import _lava_compat

_lava_compat.import_lava()

from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.model.py.model import PyLoihiProcessModel  # noqa: E402
from lava.magma.core.model.py.ports import PyInPort, PyOutPort  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402
from lava.proc.conv import utils as conv_utils  # noqa: E402
from lava.proc.conv.process import Conv  # noqa: E402
from lava.proc.lif.process import LIF, LIFReset  # noqa: E402

from neurodeploy.cuba import FLOAT32_EXACT, STATE_LIMIT, CubaParams, CubaState, cuba_step  # noqa: E402


@implements(proc=Conv, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt", "neurodeploy")
class NeurodeployConvModel(PyLoihiProcessModel):
    """Lava's fixed-point Conv, bit-exact with ``PyConvModelFixed``, as one cached GEMM."""

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    a_buf: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)  # last step's result: the delay
    weight: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=8)
    kernel_size: np.ndarray = LavaPyType(np.ndarray, np.int8, precision=8)
    stride: np.ndarray = LavaPyType(np.ndarray, np.int8, precision=8)
    padding: np.ndarray = LavaPyType(np.ndarray, np.int8, precision=8)
    dilation: np.ndarray = LavaPyType(np.ndarray, np.int8, precision=8)
    groups: np.ndarray = LavaPyType(np.ndarray, np.int8, precision=8)
    num_message_bits: np.ndarray = LavaPyType(np.ndarray, np.int8, precision=5)
    weight_exp: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=8)
    num_weight_bits: np.ndarray = LavaPyType(np.ndarray, np.int8, precision=5)

    def __init__(self, proc_params: dict) -> None:
        super().__init__(proc_params)
        self._last_input: np.ndarray | None = None
        self._matrix: dict[type, np.ndarray] = {}

    def _plain(self) -> bool:
        """Stride 1, dilation 1, one group and 'same' padding: the case the GEMM covers."""
        k = np.asarray(self.kernel_size).reshape(-1)
        return (np.all(np.asarray(self.stride) == 1) and np.all(np.asarray(self.dilation) == 1)
                and int(np.asarray(self.groups).reshape(-1)[0]) == 1 and k[0] == k[-1]
                and np.all(np.asarray(self.padding) == k[0] // 2))

    def _gemm(self, x: np.ndarray) -> np.ndarray:
        # weight is (out, kW, kH, in) and Lava's conv flips it spatially: the kernel that
        # correlates with the (W, H, C) input is weight[:, ::-1, ::-1, :].
        w_out, k = self.weight.shape[0], self.weight.shape[1]
        bound = int(np.abs(self.weight).reshape(w_out, -1).sum(axis=1).max(initial=0)) * int(np.abs(x).max(initial=0))
        dtype = np.float32 if bound < FLOAT32_EXACT else np.float64
        if dtype not in self._matrix:
            kernel = self.weight[:, ::-1, ::-1, :].astype(dtype)
            self._matrix[dtype] = np.ascontiguousarray(kernel.transpose(1, 2, 3, 0).reshape(-1, w_out))
        p = k // 2
        width, height, channels = x.shape
        padded = np.pad(x.astype(dtype, copy=False), ((p, p), (p, p), (0, 0)))
        windows = np.lib.stride_tricks.sliding_window_view(padded, (k, k), axis=(0, 1))  # W, H, C, kW, kH
        cols = windows.transpose(0, 1, 3, 4, 2).reshape(width * height, k * k * channels)
        out = (cols @ self._matrix[dtype]).reshape(width, height, w_out)
        if np.abs(out).max(initial=0) >= STATE_LIMIT:
            out = conv_utils.signed_clamp(out.astype(np.int64), bits=24)
        return out.astype(np.int32)

    def run_spk(self) -> None:
        self.a_out.send(self.a_buf)
        x = self.s_in.recv()
        if self._last_input is not None and np.array_equal(x, self._last_input):
            return  # the same frame as last step: the same result, already in the buffer
        if self._plain():
            self.a_buf = self._gemm(x)
        else:
            result = conv_utils.conv(x if self.num_message_bits.item() > 0 else x.astype(bool), self.weight,
                                     self.kernel_size, self.stride, self.padding, self.dilation,
                                     self.groups[0])
            self.a_buf = conv_utils.signed_clamp(result, bits=24).astype(np.int32)
        self._last_input = x.copy()


class _NeurodeployLifBase(PyLoihiProcessModel):
    """The CUBA update of :mod:`neurodeploy.cuba` on Lava's LIF Vars."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int8, precision=1)
    u: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    v: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    du: int = LavaPyType(int, np.uint16, precision=12)
    dv: int = LavaPyType(int, np.uint16, precision=12)
    bias_mant: np.ndarray = LavaPyType(np.ndarray, np.int16, precision=13)
    bias_exp: np.ndarray = LavaPyType(np.ndarray, np.int16, precision=3)
    vth: int = LavaPyType(int, np.int32, precision=17)

    def __init__(self, proc_params: dict) -> None:
        super().__init__(proc_params)
        self._state: CubaState | None = None
        self._params: CubaParams | None = None
        self._bias: np.ndarray | float = 0.0

    def _setup(self) -> None:
        du, dv = int(np.asarray(self.du).reshape(-1)[0]), int(np.asarray(self.dv).reshape(-1)[0])
        self._params = CubaParams(du=du, dv=dv, vth=int(np.asarray(self.vth).reshape(-1)[0]))
        mant = np.asarray(self.bias_mant, dtype=np.int64)
        exp = np.asarray(self.bias_exp, dtype=np.int64)
        bias = np.where(exp >= 0, np.left_shift(mant, np.maximum(exp, 0)), np.right_shift(mant, np.maximum(-exp, 0)))
        self._bias = bias.astype(np.float64) if np.any(bias) else 0.0
        # The state lives in the u and v attributes themselves (float64 holding integers), so
        # Var.get() reads the current values.
        self._state = CubaState(np.asarray(self.u, dtype=np.float64), np.asarray(self.v, dtype=np.float64))
        self.u, self.v = self._state.u, self._state.v

    def _reset_now(self) -> bool:
        return False

    def run_spk(self) -> None:
        a_in = self.a_in.recv()
        if self._state is None:
            self._setup()
        assert self._state is not None and self._params is not None
        if self._reset_now():
            self._state.u.fill(0.0)
            self._state.v.fill(0.0)
        spikes = cuba_step(self._state, a_in, self._params, self._bias)
        self.u, self.v = self._state.u, self._state.v
        self.s_out.send(spikes.view(np.int8))


@implements(proc=LIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt", "neurodeploy")
class NeurodeployLifModel(_NeurodeployLifBase):
    """Lava's fixed-point LIF, bit-exact with ``PyLifModelBitAcc``."""


@implements(proc=LIFReset, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt", "neurodeploy")
class NeurodeployLifResetModel(_NeurodeployLifBase):
    """Lava's fixed-point LIFReset, bit-exact with ``PyLifResetModelBitAcc``."""

    def __init__(self, proc_params: dict) -> None:
        super().__init__(proc_params)
        self.reset_interval = int(proc_params["reset_interval"])
        self.reset_offset = int(proc_params["reset_offset"]) % self.reset_interval

    def _reset_now(self) -> bool:
        return self.time_step % self.reset_interval == self.reset_offset


FAST_MODELS: dict[type, type] = {
    Conv: NeurodeployConvModel,
    LIF: NeurodeployLifModel,
    LIFReset: NeurodeployLifResetModel,
}
