r"""Sigma-delta chip layers: a ReLU conv or dense layer in Loihi 2's fixed point, as Lava and netx run it.

A sigma-delta layer sends graded messages (signed integer payloads) only
where its activation changed; the next layer's synapse adds up what it
receives (sigma), so each layer holds the running activation of the one
before it. Bit-exact with lava-nc 0.10's ``PyConvModelFixed`` /
``PyDenseModelBitAcc`` synapses and ``PySigmaDeltaModelFixed`` neuron, as
lava-dl's ``netx.hdf5.Network`` builds them for neuron type ``SDNN``
(``state_exp = 6``, ``spike_exp`` the Network's argument, ReLU,
``cum_error`` off).

One layer, per Lava step s, batch axis first, integers throughout
(``S = spike_exp + state_exp``; ``>>`` is the arithmetic shift, i.e. floor)::

    synapse (sends last step's sum, then sums this step's input messages m_in):
        a[s]      = buffer[s - 1]                                    buffer[-1] = 0
        buffer[s] = shift(wrap24(W ⋆ up(m_in[s])), weight_exp)        conv (stride, dilation, zero padding)
        buffer[s] = shift(W · m_in[s], weight_exp)                    dense (Lava sums in int32, no wrap)
    neuron:
        sigma[s]    = sigma[s-1] + a[s]                               sigma dendrite
        act[s]      = max(sigma[s] + (bias << S), 0)                  ReLU (activation "none": no max,
                                                                      a linear sigma readout)
        delta       = act[s] - act[s-1] + residue[s-1]                delta encoding
        sent        = delta  if |delta| >= (vth << S)  else 0         graded message, or none
        residue[s]  = delta - sent
        m_out[s]    = sent >> state_exp                               payload, signed, < 2^23

``up(m)`` is ``m`` itself, or for ``upsample = 2`` the input with a zero
between every two pixels (size 2H - 1): a transposed conv of stride 2 is
this conv of its flipped, in/out-swapped kernel with padding k - 1 - p
(:func:`transposed_as_conv`). Dilation, upsampling and the linear readout run
on neurodeploy's own segment process only (not stock netx, whose files hold
neither), as does a weight exponent.
``wrap24(z) = ((z + 2^23) mod 2^24) - 2^23`` is Lava's 24-bit conv buffer
(``signed_clamp``); the quantizer keeps every sum below 2^21, so it never
wraps and Lava's float32 conv stays exact (below 2^24). ``shift(z, e)`` is
``z << e`` for e >= 0 and ``z >> -e`` below, Dense's weight exponent; stock
Lava's Conv model ignores its ``weight_exp``, so netx files hold
``weight_exp = 0`` layers only (the quantizer makes no other). Note what the
neuron drops: ``sent``'s low ``state_exp`` bits leave neither as payload nor
as residue (Lava's model); the quantizer's step is small enough for that.
A message is sent where ``m_out != 0``.

Units. A payload unit of a layer's output is worth ``message_step`` (q_l) of
the float activation; its state (sigma, act) counts in q_l / 64; its input
payloads in q_{l-1}. With float weights w the integer weights are
``W = round(w · 64 · q_{l-1} / q_l)``; the bias mantissa and the threshold
mantissa count in ``2^spike_exp · q_l``: ``bias = round(b / (2^spike_exp q_l))``,
``vth = round(delta_threshold · act_scale / (2^spike_exp q_l))``.

:func:`quantize_relu_layer` picks q_l (:func:`message_step`) and rounds;
:func:`sigma_delta_step` (NumPy) and :func:`sigma_delta_step_torch` are the
pure step functions, state in, state out, bit-exact with each other and with
Lava (tests/test_sigma_delta.py); :func:`run_segment` chains layers over steps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from neurodeploy.chip.cuba import conv_strided
from neurodeploy.converters.netx_sdnn import read_sdnn_segment
from neurodeploy.errors import UserError

STATE_EXP = 6  # netx builds every SigmaDelta with state_exp = 6
SPIKE_EXP = 0  # the Network(spike_exp=...) the quantizer writes for: bias and threshold in steps of q_l
PAYLOAD_LIMIT = 1 << 23  # graded payloads and the conv buffer: signed 24 bits
SUM_LIMIT = 1 << 21  # the quantizer's bound on any synaptic sum: 4x headroom over the calibrated scale
WEIGHT_LIMIT = 127  # signed 8-bit weight mantissas
BIAS_LIMIT = 1 << 15  # SigmaDelta's bias Var is 16 bits
VTH_LIMIT = 1 << 17  # threshold mantissa (netx vThMant)

Kind = Literal["conv", "dense"]


@dataclass(frozen=True, eq=False)
class SigmaDeltaLayer:
    """One sigma-delta layer in Loihi 2 fixed point (the equations are the module docstring's).

    Shapes are the host's: conv (C, H, W) in, (O, Ho, Wo) out, weight (O, C, kh, kw);
    dense (I,) in, (O,) out, weight (O, I). ``message_step`` is the float value of one
    output payload unit (q_l), ``input_step`` of one input payload unit (q_{l-1}).
    """

    kind: Kind
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    weight: np.ndarray  # int64 mantissas in [-127, 127]
    bias: np.ndarray  # int64 mantissas (O,), in units of 2^spike_exp · message_step
    vth: int  # delta threshold mantissa, in units of 2^spike_exp · message_step
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    weight_exp: int = 0
    spike_exp: int = SPIKE_EXP
    state_exp: int = STATE_EXP
    message_step: float = 1.0
    input_step: float = 1.0
    activation: str = field(default="relu")  # or "none": a linear sigma readout (our segment process only)
    dilation: tuple[int, int] = (1, 1)
    upsample: int = 1  # 2: the input with zeros between its pixels (a transposed conv, see transposed_as_conv)

    def __post_init__(self) -> None:
        if self.activation not in ("relu", "none"):
            raise UserError(f"a sigma-delta layer computes ReLU or nothing, this one {self.activation!r}",
                            "keep the layer on the host or give it a ReLU")
        if self.upsample not in (1, 2) or min(self.dilation) < 1:
            raise UserError(f"upsampling {self.upsample}, dilation {self.dilation}",
                            "upsample by 1 or 2, dilate by 1 or more")
        if self.kind not in ("conv", "dense"):
            raise UserError(f"a sigma-delta layer is a conv or dense layer, not {self.kind!r}",
                            "keep the layer on the host")
        if self.state_exp != STATE_EXP:
            raise UserError(f"state exponent {self.state_exp}: netx builds sigma-delta neurons with 6",
                            "use `state_exp=6`")
        if self.vth < 0 or self.vth >= VTH_LIMIT:
            raise UserError(f"delta threshold mantissa {self.vth} is outside [0, 2^17)",
                            "pass a `delta_threshold` of 0 or more, a fraction of the activation scale")
        if not 0 <= self.spike_exp <= 7:
            raise UserError(f"spike exponent {self.spike_exp} does not fit Lava's 3 bits", "use 0 .. 7")
        weight = np.asarray(self.weight)
        if np.abs(weight).max(initial=0) > WEIGHT_LIMIT or not np.array_equal(weight, np.rint(weight)):
            raise UserError("sigma-delta weights must be 8-bit integer mantissas", "quantize the layer first")
        if self.kind == "conv":
            if weight.ndim != 4 or len(self.input_shape) != 3 or weight.shape[1] != self.input_shape[0]:
                raise UserError(f"conv weight {weight.shape} does not read input {self.input_shape}",
                                "pass (O, C, kh, kw) weights for a (C, H, W) input")
            if any(s not in (1, 2) for s in self.stride):
                raise UserError(f"conv stride {self.stride}: sigma-delta layers take stride 1 or 2",
                                "keep the layer on the host")
            want = conv_output_shape(self.input_shape, weight.shape, self.stride, self.padding, self.dilation,
                                     self.upsample)
            if tuple(self.output_shape) != want:
                raise UserError(f"conv output shape {self.output_shape}, its weights give {want}",
                                "pass the shape the conv makes")
        elif weight.shape != (self.output_shape[0], int(np.prod(self.input_shape))):
            raise UserError(f"dense weight {weight.shape} does not map {self.input_shape} to {self.output_shape}",
                            "pass (O, I) weights")
        if np.shape(self.bias) != (self.output_shape[0],):
            raise UserError(f"bias of shape {np.shape(self.bias)} for {self.output_shape[0]} outputs",
                            "pass one bias per output channel")
        if np.abs(np.asarray(self.bias)).max(initial=0) >= BIAS_LIMIT:
            raise UserError("a sigma-delta bias mantissa exceeds 16 bits", "re-quantize with a coarser step")

    @property
    def shift(self) -> int:
        """``spike_exp + state_exp``: how far Lava shifts the bias and the threshold into the state."""
        return self.spike_exp + self.state_exp

    @property
    def stock_netx(self) -> bool:
        """Whether stock netx runs this layer (else neurodeploy's segment process only)."""
        return (self.weight_exp == 0 and self.activation == "relu" and self.dilation == (1, 1)
                and self.upsample == 1)


def conv_output_shape(input_shape: tuple[int, ...], weight_shape: tuple[int, ...], stride: tuple[int, int],
                      padding: tuple[int, int], dilation: tuple[int, int] = (1, 1), upsample: int = 1
                      ) -> tuple[int, int, int]:
    """(O, Ho, Wo) of the conv ``W ⋆ up(m)``: ``(u·(H-1) + 1 + 2p - d·(k-1) - 1) // s + 1`` per axis."""
    sides = [(upsample * (n - 1) + 1 + 2 * p - d * (k - 1) - 1) // st + 1 for n, k, st, p, d in
             zip(input_shape[1:], weight_shape[2:], stride, padding, dilation, strict=True)]
    return (int(weight_shape[0]), *sides)  # type: ignore[return-value]


def transposed_as_conv(weight: np.ndarray, padding: int) -> tuple[np.ndarray, int]:
    """A stride-2 ``ConvTranspose2d``'s weight (C, O, kh, kw) and padding p -> the weight (O, C, kh, kw) and
    padding k - 1 - p of the same map as a conv of the input upsampled by zeros (``upsample = 2``)."""
    return np.ascontiguousarray(np.flip(np.asarray(weight), axis=(2, 3)).transpose(1, 0, 2, 3)), \
        weight.shape[-1] - 1 - padding


def upsampled(m_in: Any, factor: int) -> Any:
    """``up(m)``: zeros between the pixels of a (B, C, H, W) batch (NumPy or torch), or m itself."""
    if factor == 1:
        return m_in
    b, c, h, w = m_in.shape
    shape = (b, c, factor * (h - 1) + 1, factor * (w - 1) + 1)
    out = torch.zeros(shape, dtype=m_in.dtype, device=m_in.device) if isinstance(m_in, torch.Tensor) \
        else np.zeros(shape, dtype=m_in.dtype)
    out[..., ::factor, ::factor] = m_in
    return out


def _dilated(weight: np.ndarray, dilation: tuple[int, int]) -> np.ndarray:
    """The kernel with d - 1 zeros between its taps: a conv with it is the dilated conv."""
    if dilation == (1, 1):
        return weight
    o, c, kh, kw = weight.shape
    out = np.zeros((o, c, dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1), dtype=weight.dtype)
    out[..., ::dilation[0], ::dilation[1]] = weight
    return out


@dataclass(frozen=True, eq=False)
class SigmaDeltaState:
    """A layer's state, batch axis first: NumPy int64 arrays or torch int64 tensors (same names as Lava's Vars)."""

    buffer: Any  # the synapse's sum from the last step (Lava's a_buf / a_buff), output shape
    sigma: Any
    act: Any
    residue: Any


def zero_state(layer: SigmaDeltaLayer, batch: int = 1) -> SigmaDeltaState:
    """Lava's initial state: every Var zero."""
    z = np.zeros((batch, *layer.output_shape), dtype=np.int64)
    return SigmaDeltaState(z, z.copy(), z.copy(), z.copy())


def zero_state_torch(layer: SigmaDeltaLayer, batch: int = 1, device: str | torch.device = "cpu") -> SigmaDeltaState:
    """:func:`zero_state` as torch int64 tensors."""
    z = torch.zeros((batch, *layer.output_shape), dtype=torch.int64, device=device)
    return SigmaDeltaState(z, z.clone(), z.clone(), z.clone())


def read_sigma_delta_file(path: str) -> tuple[SigmaDeltaLayer, ...]:
    """A netx SDNN file (:func:`neurodeploy.converters.netx_sdnn.write_sdnn_segment`) as chip layers.

    The file holds integers only: ``message_step`` and ``input_step`` come back as 1.0 (payload units).
    """
    return tuple(SigmaDeltaLayer(kind=b.kind, input_shape=b.input_shape, output_shape=b.output_shape,  # type: ignore[arg-type]
                                 weight=b.weight, bias=b.bias, vth=b.vth, stride=b.stride, padding=b.padding,
                                 weight_exp=b.weight_exp, spike_exp=b.spike_exp, activation=b.activation,
                                 dilation=b.dilation, upsample=b.upsample)
                 for b in read_sdnn_segment(path))


def _per_channel(values: np.ndarray, output_shape: tuple[int, ...]) -> np.ndarray:
    return np.asarray(values, dtype=np.int64).reshape(-1, *([1] * (len(output_shape) - 1)))


def synapse(layer: SigmaDeltaLayer, m_in: np.ndarray) -> np.ndarray:
    """``shift(wrap24(W ⋆ m_in), weight_exp)`` (conv) or ``shift(W · m_in, weight_exp)`` (dense) of a batch
    of input payloads (B, *input_shape), int64."""
    if layer.kind == "conv":
        total = conv_strided(upsampled(m_in, layer.upsample), _dilated(layer.weight, layer.dilation),
                             layer.stride, layer.padding)
    else:
        total = m_in.reshape(m_in.shape[0], -1).astype(np.float64) @ layer.weight.astype(np.float64).T
    out = np.rint(total).astype(np.int64)  # float64 sums of integers below 2^53 are exact
    return out << layer.weight_exp if layer.weight_exp >= 0 else out >> -layer.weight_exp


def sigma_delta_step(layer: SigmaDeltaLayer, state: SigmaDeltaState, m_in: np.ndarray
                     ) -> tuple[np.ndarray, SigmaDeltaState]:
    """One Lava step of the layer (NumPy): input payloads (B, *input_shape) -> output payloads, new state."""
    sigma = state.sigma + state.buffer
    act = sigma + (_per_channel(layer.bias, layer.output_shape) << layer.shift)
    if layer.activation == "relu":
        act = np.maximum(act, 0)
    delta = act - state.act + state.residue
    sent = np.where(np.abs(delta) >= (layer.vth << layer.shift), delta, 0)
    m_out = sent >> layer.state_exp
    return m_out, SigmaDeltaState(synapse(layer, np.asarray(m_in)), sigma, act, delta - sent)


def synapse_torch(layer: SigmaDeltaLayer, m_in: torch.Tensor) -> torch.Tensor:
    """:func:`synapse` in torch: float64 sums (exact below 2^53), int64 out."""
    weight = torch.as_tensor(layer.weight, dtype=torch.float64, device=m_in.device)
    if layer.kind == "conv":
        total = F.conv2d(upsampled(m_in, layer.upsample).to(torch.float64), weight, stride=layer.stride,
                         padding=layer.padding, dilation=layer.dilation)
    else:
        total = m_in.reshape(m_in.shape[0], -1).to(torch.float64) @ weight.T
    out = torch.round(total).to(torch.int64)
    if layer.kind == "conv":  # wrap24: Lava's conv buffer (its Dense sums in int32 and does not wrap)
        out = torch.remainder(out + PAYLOAD_LIMIT, 2 * PAYLOAD_LIMIT) - PAYLOAD_LIMIT
    return out << layer.weight_exp if layer.weight_exp >= 0 else out >> -layer.weight_exp


def sigma_delta_step_torch(layer: SigmaDeltaLayer, state: SigmaDeltaState, m_in: torch.Tensor
                           ) -> tuple[torch.Tensor, SigmaDeltaState]:
    """:func:`sigma_delta_step` in torch (int64 tensors; ``>>`` on int64 is the arithmetic shift)."""
    bias = torch.as_tensor(_per_channel(layer.bias, layer.output_shape), device=m_in.device)
    sigma = state.sigma + state.buffer
    act = sigma + (bias << layer.shift)
    if layer.activation == "relu":
        act = torch.clamp(act, min=0)
    delta = act - state.act + state.residue
    sent = torch.where(delta.abs() >= (layer.vth << layer.shift), delta, torch.zeros_like(delta))
    m_out = sent >> layer.state_exp
    return m_out, SigmaDeltaState(synapse_torch(layer, m_in), sigma, act, delta - sent)


def run_segment(layers: Sequence[SigmaDeltaLayer], messages: np.ndarray,
                step: Callable[..., Any] = sigma_delta_step, zeros: Callable[..., Any] = zero_state
                ) -> list[Any]:
    """Chain layers over Lava steps: input payloads (steps, B, *input_shape) -> every layer's (steps, B, *out).

    Layer k (1-based) emits at step s what its input sent up to step s - k (one step per synapse), so
    run ``depth`` steps past the last input to see all of it. ``step``/``zeros`` pick NumPy or torch.
    """
    batch = messages.shape[1]
    states = [zeros(layer, batch) for layer in layers]
    outs: list[list[Any]] = [[] for _ in layers]
    for m in messages:
        for k, layer in enumerate(layers):
            m, states[k] = step(layer, states[k], m)
            outs[k].append(m)
    stack = torch.stack if isinstance(messages, torch.Tensor) else np.stack
    return [stack(o) for o in outs]


def run_segment_torch(layers: Sequence[SigmaDeltaLayer], messages: torch.Tensor) -> list[torch.Tensor]:
    """:func:`run_segment` with the torch step."""
    return run_segment(layers, messages, sigma_delta_step_torch,
                       lambda layer, batch: zero_state_torch(layer, batch, messages.device))


def delta_encode(frames: np.ndarray) -> np.ndarray:
    """Integer frames (steps, ...) -> input payloads: the first frame, then each frame's change."""
    frames = np.asarray(frames, dtype=np.int64)
    return np.concatenate([frames[:1], np.diff(frames, axis=0)])


def messages_sent(payloads: np.ndarray) -> int:
    """How many graded messages a payload stream holds: one per nonzero payload."""
    return int(np.count_nonzero(payloads))


# -- quantization of a float ReLU layer ------------------------------------------------------------

def message_step(weight: np.ndarray, bias: np.ndarray, input_step: float, sum_scale: float,
                 act_scale: float, spike_exp: int = SPIKE_EXP, weight_exp: int = 0) -> float:
    """The finest output step q_l the fixed point allows (e = weight_exp)::

        weights fit 8 bits:    64 · max|w| · q_{l-1} / (2^e · q_l) <= 127
        sums stay small:       64 · sum_scale / (2^e · q_l) <= 2^21          (Σ|W|·|payload| in the synapse)
        payloads fit:          act_scale / q_l <= 2^21
        bias fits 16 bits:     max|b| / (2^spike_exp · q_l) < 2^15

    ``sum_scale`` bounds ``Σ_j |w_oj|·|x_j|`` (float) over the outputs o: then every partial sum
    of the integer synapse is below 2^21 (8x under Lava's float32-exact 2^24, 4x under the 2^23 wrap).
    """
    w = np.abs(np.asarray(weight, dtype=np.float64)).reshape(len(weight), -1)
    b = float(np.abs(bias).max(initial=0.0))
    gain = 2.0 ** weight_exp
    candidates = [64.0 * w.max(initial=0.0) * input_step / (WEIGHT_LIMIT * gain),
                  64.0 * sum_scale / (SUM_LIMIT * gain),
                  act_scale / SUM_LIMIT,
                  b / (2.0 ** spike_exp * (BIAS_LIMIT - 1))]
    step = max(candidates)
    if not step > 0:
        raise UserError("a sigma-delta layer with all-zero weights and inputs", "keep the layer on the host")
    return step


def quantize_relu_layer(weight: np.ndarray, bias: np.ndarray | None, *, kind: Kind, input_shape: tuple[int, ...],
                        input_step: float, input_scale: float, act_scale: float, delta_threshold: float,
                        stride: tuple[int, int] = (1, 1), padding: tuple[int, int] = (0, 0),
                        spike_exp: int = SPIKE_EXP, weight_exp: int = 0, sum_scale: float | None = None,
                        activation: str = "relu", dilation: tuple[int, int] = (1, 1),
                        upsample: int = 1) -> SigmaDeltaLayer:
    """A float ReLU conv/dense layer -> :class:`SigmaDeltaLayer` (the units are the module docstring's).

    ``input_step``: float value of one input payload unit; ``input_scale``: the largest |input| the
    layer is calibrated for; ``act_scale``: the largest activation (calibrated); ``delta_threshold``:
    a fraction of ``act_scale`` below which a change of activation is not sent. ``sum_scale``: the
    largest ``Σ_j |w_oj|·|x_j|`` (:func:`calibrate_relu_stack`; default: the worst case
    ``max_o Σ|w_o| · input_scale``). ``weight_exp`` > 0
    makes the state 2^weight_exp finer for the same 8-bit weights (Loihi 2's weight exponent; stock
    Lava's conv ignores it, so netx files take 0 only).
    """
    if activation not in ("relu", "none"):
        raise UserError(f"a sigma-delta layer computes ReLU (or nothing), this layer {activation!r}",
                        "keep the layer on the host")
    if not delta_threshold >= 0:
        raise UserError(f"`delta_threshold={delta_threshold}` is below 0",
                        "pass a fraction of the activation scale, 0 or more (0 sends every change)")
    if not (input_step > 0 and input_scale > 0 and act_scale > 0):
        raise UserError("input step, input scale and activation scale must be positive",
                        "calibrate the layer on data that activates it")
    weight = np.asarray(weight, dtype=np.float64)
    bias_f = np.zeros(weight.shape[0]) if bias is None else np.asarray(bias, dtype=np.float64).reshape(-1)
    if sum_scale is None:  # the worst case: every input at input_scale with the weights' signs
        sum_scale = float(np.abs(weight).reshape(len(weight), -1).sum(axis=1).max()) * input_scale
    q = message_step(weight, bias_f, input_step, sum_scale, act_scale, spike_exp, weight_exp)
    w_int = np.clip(np.rint(weight * 64.0 * input_step / (q * 2.0 ** weight_exp)),
                    -WEIGHT_LIMIT, WEIGHT_LIMIT).astype(np.int64)
    unit = 2.0 ** spike_exp * q
    if kind == "conv":
        output_shape: tuple[int, ...] = conv_output_shape(input_shape, weight.shape, stride, padding, dilation,
                                                          upsample)
    else:
        output_shape = (weight.shape[0],)
    return SigmaDeltaLayer(
        kind=kind, input_shape=tuple(input_shape), output_shape=output_shape, weight=w_int,
        bias=np.rint(bias_f / unit).astype(np.int64), vth=round(delta_threshold * act_scale / unit),
        stride=tuple(stride), padding=tuple(padding), weight_exp=weight_exp, spike_exp=spike_exp, message_step=q,
        input_step=input_step, activation=activation, dilation=tuple(dilation), upsample=upsample)


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[-1]))


def _apply(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return layer(x.flatten(1) if isinstance(layer, nn.Linear) else x)


def calibrate_relu_stack(modules: Sequence[nn.Module], x: torch.Tensor) -> tuple[list[float], list[float]]:
    """Float calibration batch through ``[layer, ReLU, ...]`` -> (activation scales, sum scales), one per layer.

    The activation scale is the layer's largest ReLU output; the sum scale the largest
    ``Σ_j |w_oj|·|x_j|`` (the layer with |w| on |input|, no bias), which bounds its synapse's sums.
    """
    act_scales, sum_scales = [], []
    with torch.no_grad():
        for layer, act in zip(modules[0::2], modules[1::2], strict=True):
            sum_scales.append(float(_abs_sum(layer, x).max()))
            x = act(_apply(layer, x))
            act_scales.append(float(x.max()))
    return act_scales, sum_scales


def _abs_sum(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``Σ_j |w_oj|·|x_j|`` for every output of a Conv2d or Linear."""
    if isinstance(layer, nn.Linear):
        return x.flatten(1).abs() @ layer.weight.abs().T
    return F.conv2d(x.abs(), layer.weight.abs(), None, layer.stride, layer.padding, layer.dilation, layer.groups)


def quantize_relu_stack(modules: Sequence[nn.Module], input_shape: tuple[int, ...], input_step: float,
                        input_scale: float, act_scales: Sequence[float], delta_threshold: float,
                        spike_exp: int = SPIKE_EXP, weight_exp: int | Sequence[int] = 0,
                        sum_scales: Sequence[float] | None = None) -> list[SigmaDeltaLayer]:
    """``[Conv2d|Linear, ReLU, ...]`` -> sigma-delta layers; anything but a layer then a ReLU is refused.

    ``act_scales`` (and optionally ``sum_scales``): one per layer, e.g. from :func:`calibrate_relu_stack`.
    ``weight_exp``: one for all layers or one per layer. A dense layer after a conv reads its output
    flattened in (C, H, W) order (netx's flatten).
    """
    weight_exps = [weight_exp] * len(act_scales) if isinstance(weight_exp, int) else list(weight_exp)
    pairs = list(zip(modules[0::2], modules[1::2], strict=False))
    if len(modules) % 2 or len(pairs) != len(act_scales):
        raise UserError(f"{len(modules)} modules and {len(act_scales)} activation scales",
                        "pass layer, ReLU pairs and one scale per layer")
    layers: list[SigmaDeltaLayer] = []
    shape, step, scale = tuple(input_shape), input_step, input_scale
    for k, ((layer, act), act_scale) in enumerate(zip(pairs, act_scales, strict=True)):
        if not isinstance(act, nn.ReLU):
            raise UserError(f"layer {k} ({type(layer).__name__}) is followed by {type(act).__name__}, not ReLU",
                            "only ReLU layers become sigma-delta layers; keep this one on the host")
        if isinstance(layer, nn.Conv2d):
            if _pair(layer.dilation) != (1, 1) or layer.groups != 1 or not isinstance(layer.padding, tuple):
                raise UserError(f"layer {k}: dilated, grouped or 'same'-padded conv", "keep it on the host")
            kind: Kind = "conv"
            stride, padding = _pair(layer.stride), _pair(layer.padding)
        elif isinstance(layer, nn.Linear):
            kind, stride, padding = "dense", (1, 1), (0, 0)
            shape = (int(np.prod(shape)),)
        else:
            raise UserError(f"layer {k} is a {type(layer).__name__}", "only Conv2d and Linear become sigma-delta")
        bias = None if layer.bias is None else layer.bias.detach().cpu().numpy()
        sd = quantize_relu_layer(layer.weight.detach().cpu().numpy(), bias, kind=kind, input_shape=shape,
                                 input_step=step, input_scale=scale, act_scale=float(act_scale),
                                 delta_threshold=delta_threshold, stride=stride, padding=padding,
                                 spike_exp=spike_exp, weight_exp=weight_exps[k],
                                 sum_scale=None if sum_scales is None else float(sum_scales[k]))
        layers.append(sd)
        shape, step, scale = sd.output_shape, sd.message_step, float(act_scale)
    return layers
