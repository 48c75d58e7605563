r"""Lava's fixed-point conv synapse and CUBA neuron, as pure NumPy step functions.

The one place for the deployed layer's integer arithmetic; the reference
backend, the torch backend and neurodeploy's Lava segment process all call it. Bit-exact with
lava-nc 0.10's ``PyConvModelFixed`` and ``PyLifResetModelBitAcc``:

Conv (``lava.proc.conv.utils.conv`` then ``signed_clamp(·, 24)``)::

    a = wrap24( Σ_{c,i,j} W[o,c,i,j] · x[c, y+i-p, x+j-p] )     (zero padding)
    wrap24(z) = ((z + 2^23) mod 2^24) - 2^23

Stock Lava sums in float32 (torch), which is exact while every partial sum
stays below 2^24; :func:`conv_bound` gives the bound, and the converter keeps
it (for larger sums neither implementation is reproducible bit for bit).

CUBA step, M = 2^23 (``AbstractPyLifModelFixed.subthr_dynamics``)::

    u' = trunc(u·(4096 - (du+1)) / 4096) + (a << 6)
    u' = u' - 2M  if u' > M;   then  u' + 2M (of the unwrapped value) if <= -M
    v' = clip(trunc(v·(4096 - dv) / 4096) + u' + bias, -(M-1), M-1)
    s  = v' > vth << 6;   v' = 0 where s

A bias into a filtered current (``bias_site = "current"``, :func:`bias_terms`)
is part of ``a``; a voltage bias is the step's ``bias``.

State is kept in float64: a 24-bit state times a 12-bit decay is below 2^36,
so every product and ``trunc`` is exact and matches the integer code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

STATE_LIMIT = 1 << 23  # M: currents wrap and voltages clip at 24 bits
DECAY_UNITY = 1 << 12  # 12-bit decays: a decay d keeps (4096 - d) / 4096
STATE_SHIFT = 6  # Loihi MSB-aligns synaptic input, bias and threshold by 6 bits
STATE_SCALE = 1 << STATE_SHIFT  # 64
FLOAT32_EXACT = 1 << 24


@dataclass(frozen=True)
class CubaParams:
    """The neuron's integer parameters as Lava holds them (``du = iDecay - 1``)."""

    du: int
    dv: int
    vth: int

    def __post_init__(self) -> None:
        if not -1 <= self.du < DECAY_UNITY or not 0 <= self.dv < DECAY_UNITY:
            raise ValueError("du and dv must fit 12 bits")
        if not 0 <= self.vth < 1 << 17:
            raise ValueError("vth must fit 17 bits")

    @classmethod
    def of(cls, layer: Any) -> CubaParams:
        """From a chip layer's netx parameters (``i_decay``, ``v_decay``, ``vth_mant``)."""
        return cls(du=layer.i_decay - 1, dv=layer.v_decay, vth=layer.vth_mant)

    @property
    def current_keep(self) -> float:
        return (DECAY_UNITY - (self.du + 1)) / DECAY_UNITY

    @property
    def voltage_keep(self) -> float:
        return (DECAY_UNITY - self.dv) / DECAY_UNITY


@dataclass
class CubaState:
    """Current and voltage (float64 arrays holding integers) and scratch space for the step."""

    u: np.ndarray
    v: np.ndarray
    scratch: np.ndarray | None = None
    below: np.ndarray | None = None

    @classmethod
    def zeros(cls, shape: tuple[int, ...]) -> CubaState:
        return cls(np.zeros(shape), np.zeros(shape))


def conv_bound(weight: np.ndarray, max_input: int) -> int:
    """Largest partial sum any input in [-max_input, max_input] can make: max_o Σ|W|·max_input."""
    return int(np.abs(weight.astype(np.int64)).reshape(weight.shape[0], -1).sum(axis=1).max(initial=0)) * max_input


def im2col(x: np.ndarray, kernel: int, padding: int) -> np.ndarray:
    """(C, H, W) -> (C·k·k, H·W) patches, zero padded, in (c, i, j) order."""
    c, h, w = x.shape
    padded = np.pad(x, ((0, 0), (padding, padding), (padding, padding)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (kernel, kernel), axis=(1, 2))
    return windows.transpose(0, 3, 4, 1, 2).reshape(c * kernel * kernel, h * w)


def conv(x: np.ndarray, weight: np.ndarray, padding: int) -> np.ndarray:
    """Lava's fixed-point conv of one frame: (C_in, H, W) ints -> (C_out, H, W) float64 ints."""
    c_out, _, k, _ = weight.shape
    max_input = int(np.abs(x).max(initial=0))
    dtype = np.float32 if conv_bound(weight, max_input) < FLOAT32_EXACT else np.float64
    cols = im2col(x.astype(dtype, copy=False), k, padding)
    out = (weight.reshape(c_out, -1).astype(dtype) @ cols).astype(np.float64)
    if np.abs(out).max(initial=0) >= STATE_LIMIT:
        out = (out + STATE_LIMIT) % (2 * STATE_LIMIT) - STATE_LIMIT  # signed_clamp(·, 24)
    return out.reshape(c_out, *x.shape[1:])


def cuba_step(state: CubaState, a_in: np.ndarray, p: CubaParams, bias: np.ndarray | float = 0.0) -> np.ndarray:
    """One CUBA step on ``state``, in place (``bias`` = bias_mant << bias_exp); returns the spikes (bool).

    Whole-array in-place passes into preallocated scratch; the wrap and the
    clip run only when two cheap reductions find a value out of range, and
    the reset multiplies by the sub-threshold mask (a masked store is ~6x slower).
    """
    u, v = state.u, state.v
    if state.scratch is None or state.scratch.shape != u.shape:
        state.scratch, state.below = np.empty_like(u), np.empty(u.shape, dtype=bool)
    scratch, below = state.scratch, state.below
    assert below is not None
    if p.current_keep == 0.0:  # the current forgets everything each step (iDecay = 4096)
        np.multiply(a_in, float(STATE_SCALE), out=u)
    else:
        u *= p.current_keep
        np.trunc(u, out=u)
        np.multiply(a_in, float(STATE_SCALE), out=scratch)
        u += scratch
    if u.max(initial=0.0) > STATE_LIMIT or u.min(initial=0.0) <= -STATE_LIMIT:
        wrapped = np.where(u > STATE_LIMIT, u - 2 * STATE_LIMIT, u)
        u[...] = np.where(wrapped <= -STATE_LIMIT, u + 2 * STATE_LIMIT, wrapped)
    if p.voltage_keep != 1.0:
        v *= p.voltage_keep
        np.trunc(v, out=v)
    v += u
    if np.any(bias):
        v += bias
    if v.max(initial=0.0) > STATE_LIMIT - 1 or v.min(initial=0.0) < -(STATE_LIMIT - 1):
        np.clip(v, -(STATE_LIMIT - 1), STATE_LIMIT - 1, out=v)
    np.less_equal(v, p.vth * STATE_SCALE, out=below)
    v *= below  # reset to 0 where the neuron spiked
    return ~below


BIAS_SITES = ("voltage", "current")


def bias_current(bias_mant: np.ndarray | None, output_shape: tuple[int, ...]) -> np.ndarray | float:
    """The bias a CUBA step adds to v: ``bias_mant << 6`` (netx's ``bias_exp = 6``) per output channel, or 0.0."""
    if bias_mant is None or not np.any(bias_mant):
        return 0.0
    return bias_mant.astype(np.float64).reshape(-1, *([1] * (len(output_shape) - 1))) * 64.0


def bias_terms(bias_mant: np.ndarray | None, site: str, output_shape: tuple[int, ...]
               ) -> tuple[np.ndarray | float, np.ndarray | float]:
    """A layer's bias as (added to the synaptic input ``a``, added to ``v`` by the step), one of them 0.0.

    ``site`` "voltage": Loihi's bias register, ``v += bias_mant << 6`` (:func:`bias_current`).
    ``site`` "current": the always-on bias axon (:mod:`neurodeploy.chip.quantize`), ``a += bias_mant``
    every step, so that ``u' = trunc(u·keep_u) + ((a + bias_mant) << 6)``; per output channel.
    """
    if site not in BIAS_SITES:
        raise ValueError(f"unknown bias site {site!r}")
    if site == "voltage" or bias_mant is None or not np.any(bias_mant):
        return 0.0, bias_current(bias_mant, output_shape)
    return bias_mant.astype(np.float64).reshape(-1, *([1] * (len(output_shape) - 1))), 0.0


# -- the synapses of a multi-layer chip segment (a leading batch axis everywhere) ---------------------

def wrap24(x: np.ndarray) -> np.ndarray:
    """Lava's ``signed_clamp(x, 24)``: wrap to [-2^23, 2^23)."""
    if np.abs(x).max(initial=0) < STATE_LIMIT:
        return x
    return (x + STATE_LIMIT) % (2 * STATE_LIMIT) - STATE_LIMIT


def conv_strided(x: np.ndarray, weight: np.ndarray, stride: tuple[int, int], padding: tuple[int, int]) -> np.ndarray:
    """Lava's fixed-point conv (``PyConvModelFixed``) of a batch: (B, C, H, W) ints -> (B, O, Ho, Wo) float64.

    ``a[o, y, x] = wrap24(Σ_{c,i,j} W[o,c,i,j] · in[c, s_h·y + i - p_h, s_w·x + j - p_w])`` (zero
    padding; Lava's scipy conv sums in float64, exact below 2^53, as this GEMM does).
    """
    b, c, _, _ = x.shape
    o, _, kh, kw = weight.shape
    (sh, sw), (ph, pw) = stride, padding
    padded = np.pad(x.astype(np.float64, copy=False), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    ho, wo = windows.shape[2:4]
    cols = windows.transpose(0, 2, 3, 1, 4, 5).reshape(b * ho * wo, c * kh * kw)
    out = cols @ weight.reshape(o, -1).astype(np.float64).T
    return wrap24(out.reshape(b, ho, wo, o).transpose(0, 3, 1, 2))


def dense_synapse(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Lava's fixed-point Dense (``PyDenseModelBitAcc``) of a batch: (B, I) ints -> (B, O) float64.

    ``a = W x``, exact; Lava sums in int32 and does not wrap (the quantizer
    keeps every sum far below 2^23). netx stores the mantissas shifted left by
    its weight exponent and Lava shifts the sum back right: with mantissas in
    [-127, 127] that round trip is exact (:mod:`neurodeploy.chip.quantize`).
    """
    return dense_fixed(x.reshape(x.shape[0], -1).astype(np.float64, copy=False), weight.astype(np.float64).T)


def dense_fixed(x: np.ndarray, weight_t: np.ndarray, weight_exp: int = 0) -> np.ndarray:
    """Lava's fixed-point dense accumulation: ``(x @ W^T) << weight_exp`` (``>>`` when negative), exact.

    ``x`` (..., I) (or one bool vector of binary spikes: a sparse one sums the
    rows of ``weight_t`` that spiked, as stock's ``weights[:, s].sum(1)``) and
    ``weight_t`` (I, O) are float arrays holding integers; the sum is exact
    while it stays below 2^24 in float32 or 2^53 in float64 (the caller picks
    the dtype). Scaling by a power of two is exact in floating point and
    ``floor`` of it is the arithmetic right shift, so the result equals
    ``PyDenseModelBitAcc``'s ``np.right_shift(W·s, -weight_exp)``, as long as
    that int32 sum does not wrap (|sum| < 2^31: with 8-bit weights and inputs,
    a fan-in under about 33,000; the quantizer keeps sums far below, within
    the 24-bit current).
    """
    if x.dtype == np.bool_ and x.ndim == 1:  # binary spikes: add the rows of the inputs that spiked
        active = np.flatnonzero(x)
        out = weight_t[active].sum(axis=0) if 4 * active.size < x.size else x.astype(weight_t.dtype) @ weight_t
    else:
        out = x @ weight_t
    if weight_exp > 0:
        out *= float(1 << weight_exp)
    elif weight_exp < 0:
        out *= 1.0 / float(1 << -weight_exp)
        np.floor(out, out=out)
    return out
