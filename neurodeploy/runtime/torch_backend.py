r"""The ``torch`` backend: any chip segment on a batch, Loihi's fixed point bit for bit, on CPU or CUDA.

Same contract as :func:`neurodeploy.chip.reference.run_segment_batch` over the same
layer list (:class:`~neurodeploy.converters.netx_io.FixedPointLayer` records,
as quantized or read back from a netx file, the inpainter's one conv layer included), and the same equations
(:mod:`neurodeploy.chip.cuba`, whose constants and decay factors it imports)::

    a_t = wrap24(W x_t) (conv) | W x_t (dense)  (+ W_rec z_{t-1})  (+ bias: bias_site "current")
    u_t = wrap(trunc(u_{t-1}·keep_u) + 64·a_t);  v_t = clip(trunc(v_{t-1}·keep_v) + u_t + 64·bias)
                                                                   (64·bias: bias_site "voltage")
    z_t = v_t > 64·vth;  v_t = 0 where z_t

What changes is the order of the work, not the arithmetic: layer by layer,
the synaptic input of all B samples and all T steps is one GEMM (a layer's
input at step t is the previous layer's output at step t; only a recurrent
block's ``W_rec z_{t-1}`` waits for the step), then the neuron runs its T
steps on the whole batch at once. A sample whose T input frames are equal
(constant encoding) has its synapse computed once, and when its current does not
persist (iDecay = 4096, the inpainter's LIF) its whole spike train is a function
of one integer, the drive a + bias: the trains of every drive from 0 to vth + 1
are simulated once and each neuron reads its own (:func:`_drive_table_neurons`).
Memory: the synaptic
inputs of a layer, B·T·neurons float64 (B·neurons when the input is constant),
and the GEMM's patches.

Why it is exact, on any device:

* Synapses: integer weights (|W| <= 128) times integer inputs (payloads
  0..255 or spikes 0/1), summed as a GEMM (``unfold`` for a conv: no
  convolution algorithm such as Winograd or FFT, which round). The dtype is
  float32 when :func:`neurodeploy.chip.cuba.conv_bound` (Σ|W|·max input, a bound
  on every partial sum in any summation order) is below 2^24, float32's exact
  integer range, else float64 (exact below 2^53). Every partial sum is then
  an exactly representable integer, so the order of summation, blocking and
  threads cannot change the result. TF32 and reduced-precision reductions
  would round the 8-bit products' inputs or sums: :func:`exact_settings`
  turns them off (``torch.backends.cuda.matmul.allow_tf32``,
  ``torch.backends.cudnn.allow_tf32``,
  ``set_float32_matmul_precision("highest")``) before a CUDA run.
* Neuron: state in float64 holding integers, as the reference: a 24-bit
  state times a 12-bit decay factor ``(4096 - d) / 4096`` is below 2^36, the
  product is exact and ``trunc`` is the integer code's truncating division;
  IEEE float64 multiply, add, trunc and compare are the same on CPU and GPU.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from neurodeploy.chip.cuba import FLOAT32_EXACT, STATE_LIMIT, STATE_SCALE, CubaParams, conv_bound
from neurodeploy.converters.netx_io import FixedPointLayer
from neurodeploy.errors import UserError

DEVICES = ("cpu", "cuda")


def exact_settings() -> None:
    """Turn off every reduced-precision float32 path (TF32 GEMMs and convolutions); see the module docstring."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")


def check_device(device: str) -> torch.device:
    """The torch device for ``device`` ("cpu" or "cuda"); a CUDA device torch cannot see is a UserError."""
    if device not in DEVICES:
        raise UserError(f"unknown device {device!r}", f"pass one of {', '.join(DEVICES)}")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("`device=cuda` but torch sees no CUDA GPU", "use `device=cpu`, or install a CUDA build "
                                                                     "of torch on a machine with a GPU")
    return torch.device(device)


def run_segment_batch(layers: Sequence[FixedPointLayer], frames: np.ndarray | torch.Tensor,
                      device: str = "cpu") -> list[np.ndarray]:
    """Run a chip segment on a batch: frames (B, T, *input_shape) ints -> per layer spikes (B, T, *out) uint8.

    Equal to :func:`neurodeploy.chip.reference.run_segment_batch` bit for bit (see its
    docstring for the alignment with Lava's steps; every sample starts from zero state).
    """
    dev = check_device(device)
    if dev.type == "cuda":
        exact_settings()
    x = torch.as_tensor(np.asarray(frames) if not isinstance(frames, torch.Tensor) else frames).to(dev)
    batch, steps = x.shape[:2]
    outputs = []
    with torch.no_grad():
        for layer in layers:
            a = _synapse(x.reshape(batch, steps, *layer.input_shape), layer)
            x = _neurons(a, layer)
            outputs.append(x)
    return [out.cpu().numpy() for out in outputs]


def _synapse(x: torch.Tensor, layer: FixedPointLayer) -> torch.Tensor:
    """The layer's feed-forward synaptic input for every (sample, step): (B, T, *out) holding integers.

    float32 when every partial sum is exact in it (see the module docstring), else float64; a constant
    input's synapse is computed once and expanded over the steps (stride 0 on the step axis).
    """
    batch, steps = x.shape[:2]
    constant = steps > 1 and bool((x[:, 1:] == x[:, :1]).all())
    if constant:  # the same frame every step: the synapse once
        x = x[:, :1]
    flat = x.reshape(-1, *layer.input_shape)
    max_input = max(int(flat.max()), -int(flat.min())) if flat.numel() else 0
    bound = conv_bound(layer.weight, max_input)
    dtype = torch.float32 if bound < FLOAT32_EXACT else torch.float64
    weight = torch.from_numpy(layer.weight.reshape(layer.weight.shape[0], -1)).to(flat.device, dtype)
    if layer.kind == "conv":
        _, _, kh, kw = layer.weight.shape
        cols = torch.nn.functional.unfold(flat.to(dtype), (kh, kw), padding=layer.padding, stride=layer.stride)
        a = (weight @ cols).reshape(flat.shape[0], *layer.output_shape)
        if bound >= STATE_LIMIT:  # only then can a sum leave the 24-bit range
            a = _wrap24(a.to(torch.float64))
    else:
        a = flat.reshape(flat.shape[0], -1).to(dtype) @ weight.T
    a = a.reshape(batch, x.shape[1], *layer.output_shape)
    return a.expand(batch, steps, *layer.output_shape) if constant else a


def _wrap24(a: torch.Tensor) -> torch.Tensor:
    """Lava's ``signed_clamp(a, 24)`` (:func:`neurodeploy.chip.cuba.wrap24`)."""
    if a.numel() == 0 or float(a.abs().max()) < STATE_LIMIT:
        return a
    return torch.remainder(a + STATE_LIMIT, 2 * STATE_LIMIT) - STATE_LIMIT


def _neurons(a: torch.Tensor, layer: FixedPointLayer) -> torch.Tensor:
    """T CUBA steps on the whole batch (:func:`neurodeploy.chip.cuba.cuba_step`): input (B, T, *out) -> spikes uint8."""
    p = CubaParams.of(layer)
    bias = None
    if layer.bias is not None and np.any(layer.bias):
        bias = torch.from_numpy(layer.bias.astype(np.float64)).to(a.device)
        bias = bias.reshape(-1, *([1] * (len(layer.output_shape) - 1)))
    rec = None
    if getattr(layer, "weight_rec", None) is not None:
        rec = torch.from_numpy(layer.weight_rec.astype(np.float64)).to(a.device)
    constant = a.shape[1] == 1 or a.stride(1) == 0
    if bias is not None and layer.bias_site == "current":  # the always-on bias axon: part of a, in float64
        base = (a[:, :1] if constant else a).to(torch.float64) + bias
        a, bias = (base.expand(a.shape) if constant else base), None
    if constant and rec is None and p.current_keep == 0.0 and STATE_SCALE * (p.vth + 1) < STATE_LIMIT:
        drive = _constant_drive(a[:, 0], bias)
        if drive is not None:
            return _drive_table_neurons(drive, p, a.shape[1])
    a = a[:, :1].to(torch.float64).expand(a.shape) if constant else a.to(torch.float64)
    return _step_neurons(a, p, None if bias is None else bias * float(STATE_SCALE), rec)


def _constant_drive(a0: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor | None:
    """d = a + bias (B, *out), each neuron's drive per step in units of 64 (integers in a0's dtype), when
    the current cannot wrap (64·|a| < 2^23) and the sum is exact in that dtype; else None (the step
    loop handles it)."""
    largest = max(float(a0.max()), -float(a0.min())) if a0.numel() else 0.0
    bias_largest = float(bias.abs().max()) if bias is not None else 0.0
    exact = FLOAT32_EXACT if a0.dtype == torch.float32 else 1 << 53
    if STATE_SCALE * largest >= STATE_LIMIT or largest + bias_largest >= exact:
        return None
    return a0 + bias.to(a0.dtype) if bias is not None else a0


def _drive_table_neurons(drive: torch.Tensor, p: CubaParams, steps: int) -> torch.Tensor:
    r"""T CUBA steps of neurons whose input is the same every step and whose current does not persist.

    With iDecay = 4096 the current is ``u_t = 64·a`` each step, so the voltage
    ``v_t = clip(trunc(v_{t-1}·keep_v) + 64·d)``, d = a + bias, from v_0 = 0, and
    with it the whole spike train, is a function of the integer d alone:

    * d <= 0: v stays <= 0 (trunc of a non-positive value is non-positive), never above
      the threshold 64·vth >= 0: no spike;
    * d >= vth + 1: v_1 = 64·d > 64·vth (no clip: 64·(vth + 1) < 2^23), a spike and the reset
      to 0, and the same every step: a spike every step;
    * 0 < d <= vth: the train of that d.

    So the trains of d = 0 .. vth + 1 are simulated once with the step equations
    (:func:`_step_neurons`, a table of vth + 2 neurons) and every neuron reads its row: one
    gather instead of T passes of the step over all neurons. Bit for bit the same trains.
    """
    rows = torch.arange(p.vth + 2, dtype=torch.float64, device=drive.device)
    table = _step_neurons(rows.expand(1, steps, -1), p, None, None)[0]  # (T, vth + 2) uint8
    index = drive.clamp(0, p.vth + 1).to(torch.int32).reshape(-1)
    out = torch.empty((drive.shape[0], steps, *drive.shape[1:]), dtype=torch.uint8, device=drive.device)
    if steps <= 8:  # one gather of the train packed in a byte, then a shift per step
        packed = (table.to(torch.int32) << torch.arange(steps, device=drive.device)[:, None]).sum(0)
        trains = packed.to(torch.uint8).index_select(0, index).reshape(drive.shape)
        for t in range(steps):
            torch.bitwise_right_shift(trains, t, out=out[:, t]).bitwise_and_(1)
    else:
        for t in range(steps):
            out[:, t] = table[t].index_select(0, index).reshape(drive.shape)
    return out


def _step_neurons(a: torch.Tensor, p: CubaParams, bias: torch.Tensor | None, rec: torch.Tensor | None) -> torch.Tensor:
    """The T CUBA steps one after another: a (B, T, *out) float64, ``bias`` already times 64 -> spikes uint8."""
    batch, steps = a.shape[:2]
    shape = (batch, *a.shape[2:])
    u = torch.zeros(shape, dtype=torch.float64, device=a.device)
    v = torch.zeros_like(u)
    out = torch.empty((batch, steps, *a.shape[2:]), dtype=torch.uint8, device=a.device)
    spikes = torch.empty(shape, dtype=torch.bool, device=a.device)
    threshold = float(p.vth * STATE_SCALE)
    wrap, clip = _needs_wrap_and_clip(a, p, bias, rec)
    for t in range(steps):  # in place: fresh tensors each step would cost a page fault per page on CPU
        a_t = a[:, t]
        if rec is not None and t > 0:
            a_t = a_t + out[:, t - 1].to(torch.float64) @ rec.T
        if p.voltage_keep != 1.0:
            _trunc_(v.mul_(p.voltage_keep))
        if p.current_keep == 0.0 and not wrap:  # u = 64·a: add it to v without keeping it
            v.add_(a_t, alpha=float(STATE_SCALE))
        else:
            if p.current_keep == 0.0:
                torch.mul(a_t, float(STATE_SCALE), out=u)
            else:
                _trunc_(u.mul_(p.current_keep)).add_(a_t, alpha=float(STATE_SCALE))
            if wrap:
                wrapped = torch.where(u > STATE_LIMIT, u - 2 * STATE_LIMIT, u)
                u.copy_(torch.where(wrapped <= -STATE_LIMIT, u + 2 * STATE_LIMIT, wrapped))
            v.add_(u)
        if bias is not None:
            v.add_(bias)
        if clip:
            v.clamp_(-(STATE_LIMIT - 1), STATE_LIMIT - 1)
        torch.gt(v, threshold, out=spikes)
        v.masked_fill_(spikes, 0.0)
        out[:, t] = spikes
    return out


def _trunc_(x: torch.Tensor) -> torch.Tensor:
    """``x.trunc_()``; on CPU through NumPy on the tensor's memory: torch 2.13's CPU trunc of float64 is
    about 10x slower than NumPy's (measured), and both are IEEE round-toward-zero, the same values."""
    if x.device.type == "cpu" and x.is_contiguous():
        np.trunc(x.numpy(), out=x.numpy())
        return x
    return x.trunc_()


def _needs_wrap_and_clip(a: torch.Tensor, p: CubaParams, bias: torch.Tensor | None,
                         rec: torch.Tensor | None) -> tuple[bool, bool]:
    """Whether the current's wrap and the voltage's clip can change anything in this run, from bounds.

    With A = max |a| (+ Σ|W_rec| per row for a recurrent block) and B = max
    |64·bias|: |u_t| <= 64·A when the current does not persist (iDecay =
    4096), else <= t·64·A (trunc and the decay only shrink |u|), so no wrap is
    needed while that stays below 2^23. The voltage after a step is at most
    64·vth + 64·A + B (it was at most 64·vth, else reset to 0) and at least
    -t·(64·A + B); no clip is needed while both stay within 2^23 - 1. Both
    are cheap whole-run reductions instead of two per step (the bounds are
    exact conditions for skipping, so the result is the same either way).
    """
    base = a[:, :1] if a.shape[1] > 1 and a.stride(1) == 0 else a  # a constant input: one step of it
    largest = max(float(base.max()), -float(base.min())) if a.numel() else 0.0
    if rec is not None:
        largest += float(rec.abs().sum(dim=1).max()) if rec.numel() else 0.0
    current = STATE_SCALE * largest if p.current_keep == 0.0 else STATE_SCALE * largest * a.shape[1]
    wrap = current >= STATE_LIMIT
    drive = min(current, float(STATE_LIMIT)) + (float(bias.abs().max()) if bias is not None else 0.0)
    clip = wrap or max(STATE_SCALE * p.vth + drive, a.shape[1] * drive) > STATE_LIMIT - 1
    return wrap, clip
