"""Fixed-point quantization of the spiking layer to Loihi's number formats.

What gets rounded (the mapping itself is in :mod:`neurodeploy.lif_mapping`):

* weights: signed 8-bit mantissas, ``W_q = clip(round(W·2^e), -128, 127)``,
  one exponent ``e`` per layer;
* current decay ``iDecay = round(b·4096)`` in [1, 4096] (netx stores
  ``du = iDecay - 1`` in 12 bits) and voltage decay ``vDecay = round(a·4096)``
  in [0, 4095] (12 bits);
* threshold ``vThMant = round(v_th·2^e·P / a)``, unsigned 17 bits (< 131072).

The exponent is chosen to minimise the weights' relative squared error
``|W - W_q·2^-e|² / |W|²`` (rounding and saturation both count) among the
exponents that keep the fixed-point state in range:

* the threshold fits 17 bits and rounds to at least 1;
* the current ``u`` cannot wrap its 24 bits: for the largest input current
  ``m = max |conv(W_q, p)|`` (measured on calibration inputs when given, else
  the worst case ``max_o Σ|W_q|·P``) the steady state is ``64·m / b``, which
  must stay below 2^23;
* the conv output itself stays below 2^23 (Lava clamps it to 24 bits).

Saturated weights, a threshold that rounds to zero and decays that do not fit
are reported as warnings that name the layer and the fix.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from neurodeploy.lif_mapping import DECAY_UNITY, STATE_SHIFT, map_lif
from neurodeploy.model import LIFConfig

WEIGHT_MIN, WEIGHT_MAX = -128, 127
VTH_MAX = (1 << 17) - 1
STATE_LIMIT = 1 << 23
EXPONENT_RANGE = range(-8, 25)


@dataclass(frozen=True)
class QuantizedCubaLayer:
    """A conv + CUBA layer in Loihi fixed point, with what rounding cost."""

    name: str
    weight: np.ndarray  # int8 mantissas (out, in, kH, kW)
    weight_exponent: int
    payload_max: int  # P: 255 for 8-bit graded input, 1 for binary spikes
    i_decay: int  # netx iDecay (effective current decay = i_decay / 4096)
    v_decay: int  # netx vDecay
    vth_mant: int
    padding: int
    weight_error: float  # relative squared error of the weights
    threshold_error: float  # relative error of the threshold
    decay_error: dict[str, float]  # absolute error of each decay fraction
    saturated_weights: int
    max_current: int  # largest |conv output| assumed when checking for overflow
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.weight.dtype != np.int8 or self.weight.ndim != 4:
            raise ValueError("weight must be an int8 array (out, in, kH, kW)")
        if not 1 <= self.i_decay <= DECAY_UNITY or not 0 <= self.v_decay < DECAY_UNITY:
            raise ValueError("decays out of their 12-bit range")
        if not 0 <= self.vth_mant <= VTH_MAX:
            raise ValueError("vth_mant out of its 17-bit range")

    def summary(self) -> dict[str, object]:
        """JSON-able description for the bundle manifest (weights left out)."""
        out = asdict(self)
        out.pop("weight")
        return out


def weight_error(weight: np.ndarray, exponent: int) -> tuple[float, int]:
    """(relative squared error, saturated count) of quantizing ``weight`` with ``exponent``."""
    scaled = weight * 2.0**exponent
    q = np.clip(np.rint(scaled), WEIGHT_MIN, WEIGHT_MAX)
    norm = float(np.sum(weight.astype(np.float64) ** 2)) or 1.0
    err = float(np.sum((weight - q * 2.0**-exponent) ** 2)) / norm
    return err, int(np.count_nonzero((scaled < WEIGHT_MIN - 0.5) | (scaled > WEIGHT_MAX + 0.5)))


def quantize_weights(weight: np.ndarray, exponent: int) -> np.ndarray:
    """Signed 8-bit mantissas ``clip(round(W·2^e))``."""
    return np.clip(np.rint(weight * 2.0**exponent), WEIGHT_MIN, WEIGHT_MAX).astype(np.int8)


def worst_case_current(weight_q: np.ndarray, payload_max: int) -> int:
    """Largest |conv output| any input could produce: max over outputs of Σ|W_q|·P."""
    per_output = np.abs(weight_q.astype(np.int64)).reshape(weight_q.shape[0], -1).sum(axis=1)
    return int(per_output.max(initial=0)) * payload_max


def quantize_lif(lif: LIFConfig, exponent: int, payload_max: int) -> tuple[int, int, int, dict[str, float], float]:
    """(iDecay, vDecay, vThMant, decay errors, threshold relative error) for one exponent."""
    mapping = map_lif(lif)
    i_decay = int(np.clip(round(mapping.current_decay * DECAY_UNITY), 1, DECAY_UNITY))
    v_decay = int(np.clip(round(mapping.voltage_decay * DECAY_UNITY), 0, DECAY_UNITY - 1))
    vth_exact = mapping.threshold_per_weight_unit * 2.0**exponent * payload_max
    vth = round(vth_exact)
    decay_error = {"current": abs(i_decay / DECAY_UNITY - mapping.current_decay),
                   "voltage": abs(v_decay / DECAY_UNITY - mapping.voltage_decay)}
    return i_decay, v_decay, vth, decay_error, abs(vth - vth_exact) / vth_exact


def _fits(weight_q: np.ndarray, vth: int, i_decay: int, payload_max: int, max_current: int | None) -> tuple[bool, int]:
    current = worst_case_current(weight_q, payload_max) if max_current is None else max_current
    steady_u = (current << STATE_SHIFT) * DECAY_UNITY / i_decay
    ok = 1 <= vth <= VTH_MAX and current < STATE_LIMIT and steady_u < STATE_LIMIT
    return ok, current


def choose_exponent(weight: np.ndarray, lif: LIFConfig, payload_max: int,
                    calibration: np.ndarray | None = None) -> int:
    """The exponent with the least weight error among those whose state fits (see module doc).

    ``calibration``: representative inputs (N, in, H, W) as payload integers,
    to measure the largest conv output instead of assuming the worst case.
    """
    best: tuple[float, int] | None = None
    for e in EXPONENT_RANGE:
        wq = quantize_weights(weight, e)
        i_decay, _, vth, _, _ = quantize_lif(lif, e, payload_max)
        measured = None if calibration is None else max_abs_current(wq, calibration)
        ok, _ = _fits(wq, vth, i_decay, payload_max, measured)
        if not ok:
            continue
        err, _ = weight_error(weight, e)
        if best is None or err < best[0] - 1e-15:
            best = (err, e)
    if best is None:
        # Nothing fits: take the smallest exponent whose threshold is still representable.
        for e in EXPONENT_RANGE:
            if quantize_lif(lif, e, payload_max)[2] >= 1:
                return e
        return EXPONENT_RANGE.start
    return best[1]


def max_abs_current(weight_q: np.ndarray, inputs: np.ndarray) -> int:
    """Largest |conv(W_q, x)| over a batch of integer inputs (N, in, H, W), zero padding."""
    import torch
    import torch.nn.functional as F

    pad = weight_q.shape[-1] // 2
    out = F.conv2d(torch.from_numpy(inputs.astype(np.float64)),
                   torch.from_numpy(weight_q.astype(np.float64)), padding=pad)
    return int(out.abs().max().item()) if out.numel() else 0


def quantize_layer(name: str, weight: np.ndarray, lif: LIFConfig, payload_max: int,
                   calibration: np.ndarray | None = None, exponent: int | None = None) -> QuantizedCubaLayer:
    """Quantize one conv + LIF layer; ``exponent=None`` chooses it (:func:`choose_exponent`)."""
    weight = np.asarray(weight, dtype=np.float64)
    if weight.ndim != 4 or weight.shape[-1] != weight.shape[-2] or weight.shape[-1] % 2 == 0:
        raise ValueError(f"{name}: expected a square, odd conv kernel (out, in, k, k), got {weight.shape}")
    e = choose_exponent(weight, lif, payload_max, calibration) if exponent is None else exponent
    wq = quantize_weights(weight, e)
    i_decay, v_decay, vth, decay_error, vth_err = quantize_lif(lif, e, payload_max)
    err, saturated = weight_error(weight, e)
    measured = None if calibration is None else max_abs_current(wq, calibration)
    ok, current = _fits(wq, vth, i_decay, payload_max, measured)
    notes: list[str] = []
    if saturated:
        notes.append(f"{name}: {saturated} weight(s) saturate the 8-bit mantissa at exponent {e}; "
                     "retrain with weight decay or a smaller learning rate to shrink outlier weights")
    if vth < 1:
        notes.append(f"{name}: the threshold rounds to zero (v_th={lif.v_th}); "
                     "raise v_th or lower tau_mem_inv so v_th·2^e·P/a is at least 1")
    if vth > VTH_MAX:
        notes.append(f"{name}: the threshold {vth} exceeds 17 bits; lower v_th or raise tau_mem_inv")
    if not ok and vth >= 1:
        notes.append(f"{name}: the synaptic current may wrap its 24-bit register (largest conv output "
                     f"{current}); pass calibration images or retrain with smaller weights")
    for kind, fraction in (("current", map_lif(lif).current_decay), ("voltage", map_lif(lif).voltage_decay)):
        if decay_error[kind] > 0.5 / DECAY_UNITY + 1e-12:
            notes.append(f"{name}: the {kind} decay {fraction:.6f} does not fit 12 bits; "
                         "choose dt·tau_inv at most 4095/4096 for the voltage and at least 1/4096")
    return QuantizedCubaLayer(
        name=name, weight=wq, weight_exponent=e, payload_max=payload_max, i_decay=i_decay,
        v_decay=v_decay, vth_mant=int(np.clip(vth, 0, VTH_MAX)), padding=weight.shape[-1] // 2,
        weight_error=err, threshold_error=vth_err if math.isfinite(vth_err) else 1.0,
        decay_error=decay_error, saturated_weights=saturated, max_current=current, warnings=notes,
    )
