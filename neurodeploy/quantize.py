"""Fixed-point quantization of chip layers to Loihi's number formats.

What gets rounded (the mapping itself is in :mod:`neurodeploy.lif_mapping`):

* weights: signed 8-bit mantissas, ``W_q = clip(round(s·W), -127, 127)``,
  one scale ``s`` per layer (a recurrent layer's two weights share it);
* a bias: ``bias_mant = round(s·P·B)``, signed 13 bits;
* current decay ``iDecay = round(b·4096)`` in [1, 4096] (netx stores
  ``du = iDecay - 1`` in 12 bits) and voltage decay ``vDecay = round(a·4096)``
  in [0, 4095] (12 bits);
* threshold ``vThMant = round(threshold_per_unit·s·P)``, unsigned 17 bits (< 131072).

The scale is where Loihi's per-layer weight exponent would go (``s = 2^e``),
but it is not limited to powers of two: the threshold is the only other place
it appears, and its 17-bit mantissa absorbs any factor, so ``s`` is searched
on a grid of ``SCALE_STEPS_PER_OCTAVE`` steps per octave. (With powers of two
only, the shipped model's weights lost 0.28 dB of hole PSNR; see
docs/BENCHMARKS.md.) The scale minimises the weights' relative squared error
``|W - W_q/s|² / |W|²`` (rounding and saturation both count) among the
scales that keep the fixed-point state in range for every possible input:

* the threshold fits 17 bits and rounds to at least 1;
* the bias fits 13 bits;
* the current ``u`` cannot wrap its 24 bits: inputs are non-negative payloads
  ``p`` in [0, P] (the first layer of a segment; 1 for every later one, which
  reads spikes), so the largest synaptic input is exactly
  ``m = max_o max(Σ W_q⁺·P + Σ W_rec⁺ + B⁺, Σ W_q⁻·P + Σ W_rec⁻ + B⁻)`` and the
  steady state ``64·m / b`` must stay below 2^23.

Saturated weights, a threshold that rounds to zero, a state that could wrap
and decays that do not fit are reported as warnings naming the layer and the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from neurodeploy.lif_mapping import DECAY_UNITY, STATE_SHIFT

if TYPE_CHECKING:
    from neurodeploy.chip_layers import ChipLayer

WEIGHT_MIN, WEIGHT_MAX = -128, 127
VTH_MAX = (1 << 17) - 1
STATE_LIMIT = 1 << 23
SCALE_STEPS_PER_OCTAVE = 32
SCALE_OCTAVES = range(-8, 25)  # s from 2^-8 to 2^24


def candidate_scales() -> np.ndarray:
    """Every scale the search considers: 2^(k / SCALE_STEPS_PER_OCTAVE) over SCALE_OCTAVES."""
    k = np.arange(SCALE_OCTAVES.start * SCALE_STEPS_PER_OCTAVE, SCALE_OCTAVES.stop * SCALE_STEPS_PER_OCTAVE + 1)
    return 2.0 ** (k / SCALE_STEPS_PER_OCTAVE)


# -- chip layers of any kind (neurodeploy.chip_layers), for multi-layer netx segments -----------------

CHIP_WEIGHT_MAX = 127  # mantissas in [-127, 127]: netx's weight-bit optimisation is then lossless
BIAS_MANT_MAX = (1 << 12) - 1  # bias_mant is a signed 13-bit register; netx fixes bias_exp = 6
CHIP_KINDS = ("conv", "dense", "dense_rec")


@dataclass(frozen=True)
class QuantizedChipLayer:
    r"""One chip layer in Loihi fixed point, as one netx block (``conv``, ``dense`` or ``dense_rec``).

    Each step, with ``p`` the layer's integer input (payloads for the first
    layer of a segment, 0/1 spikes after it) and ``z`` its own spikes::

        a_in_t = W p_t  (+ W_rec z_{t-1})       integers: weight ∈ [-127, 127]
        CUBA(a_in_t, bias_mant)                 (neurodeploy.lif_mapping.CubaMapping)

    ``weight`` is (O, C, kh, kw) for a conv (cross-correlation, zero padding,
    ``stride`` and ``padding`` per (H, W)) and (O, prod(input_shape)) for a
    dense block, which reads its input flattened in C order.
    """

    name: str
    kind: str  # one of CHIP_KINDS
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    weight: np.ndarray  # int8 mantissas
    weight_rec: np.ndarray | None  # int8 (O, O), dense_rec only
    bias: np.ndarray | None  # int32 bias mantissas (O,); Loihi adds bias << 6 to v
    stride: tuple[int, int]
    padding: tuple[int, int]
    i_decay: int
    v_decay: int
    vth_mant: int
    weight_scale: float  # s: W_q ≈ s·W
    payload_max: int  # P of this layer's input
    weight_error: float  # relative squared error of the weights (recurrent ones included)
    saturated_weights: int
    max_input: int  # the largest |a_in + bias_mant| any input can produce
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in CHIP_KINDS:
            raise ValueError(f"{self.name}: unknown chip layer kind {self.kind!r}")
        want = 4 if self.kind == "conv" else 2
        if self.weight.dtype != np.int8 or self.weight.ndim != want:
            raise ValueError(f"{self.name}: weight must be int8 with {want} axes")
        if (self.weight_rec is not None) != (self.kind == "dense_rec"):
            raise ValueError(f"{self.name}: weight_rec is given exactly for dense_rec layers")
        if not 1 <= self.i_decay <= DECAY_UNITY or not 0 <= self.v_decay < DECAY_UNITY:
            raise ValueError(f"{self.name}: decays out of their 12-bit range")
        if not 0 <= self.vth_mant <= VTH_MAX:
            raise ValueError(f"{self.name}: vth_mant out of its 17-bit range")
        if self.bias is not None and np.abs(self.bias).max(initial=0) > BIAS_MANT_MAX:
            raise ValueError(f"{self.name}: bias mantissas must fit 13 bits")


def _chip_weights(layer: ChipLayer) -> tuple[str, np.ndarray, np.ndarray | None]:
    from neurodeploy.chip_layers import ConvLayer, RecurrentDenseLayer

    if isinstance(layer, ConvLayer):
        return "conv", np.asarray(layer.weight, np.float64), None
    if isinstance(layer, RecurrentDenseLayer):
        return "dense_rec", np.asarray(layer.weight_in, np.float64), np.asarray(layer.weight_rec, np.float64)
    return "dense", np.asarray(layer.weight, np.float64), None


def _chip_fit(weight: np.ndarray, weight_rec: np.ndarray | None, bias: np.ndarray | None,
              threshold: float, payload_max: int, s: float
              ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, int, int]:
    """(W_q, W_rec_q, bias_mant, vThMant, largest |a_in + bias|) at scale ``s`` (bias unclipped)."""
    def q(w: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(w * s), -CHIP_WEIGHT_MAX, CHIP_WEIGHT_MAX).astype(np.int8)

    wq = q(weight)
    wrq = None if weight_rec is None else q(weight_rec)
    bq = None if bias is None else np.rint(bias * s * payload_max).astype(np.int64)
    w = wq.astype(np.int64).reshape(wq.shape[0], -1)
    pos, neg = np.clip(w, 0, None).sum(1) * payload_max, np.clip(-w, 0, None).sum(1) * payload_max
    if wrq is not None:  # recurrent input: the layer's own binary spikes
        r = wrq.astype(np.int64)
        pos, neg = pos + np.clip(r, 0, None).sum(1), neg + np.clip(-r, 0, None).sum(1)
    if bq is not None:
        pos, neg = pos + np.clip(bq, 0, None), neg + np.clip(-bq, 0, None)
    return wq, wrq, bq, round(threshold * s * payload_max), int(np.maximum(pos, neg).max(initial=0))


def _chip_state_fits(vth: int, bias: np.ndarray | None, largest: int, i_decay: int) -> bool:
    """The threshold fits 17 bits (>= 1), the bias 13 bits, and no input can wrap u's 24 bits."""
    steady_u = (largest << STATE_SHIFT) * DECAY_UNITY / i_decay
    return (1 <= vth <= VTH_MAX and (bias is None or np.abs(bias).max(initial=0) <= BIAS_MANT_MAX)
            and steady_u < STATE_LIMIT)


def quantize_chip_layer(layer: ChipLayer, payload_max: int, scale: float | None = None) -> QuantizedChipLayer:
    """Quantize one chip layer for input payloads in [0, ``payload_max``]; ``scale=None`` chooses s.

    The scale minimises the weights' relative squared error (input and
    recurrent weights together; rounding and saturation both count) among the
    scales where the threshold fits 17 bits and rounds to at least 1, the bias
    mantissas fit 13 bits, and the current ``u`` cannot wrap its 24 bits for
    any input: ``64·max|a_in + bias| / b < 2^23`` (see :func:`_chip_fit`).
    Saturation, a state that may wrap and decays that do not fit 12 bits are
    warnings naming the layer.
    """
    from neurodeploy.lif_mapping import map_neuron

    kind, weight, weight_rec = _chip_weights(layer)
    mapping = map_neuron(layer.neuron)
    bias = None if layer.bias is None else np.asarray(layer.bias, np.float64) * mapping.bias_per_unit
    i_decay = int(np.clip(round(mapping.current_decay * DECAY_UNITY), 1, DECAY_UNITY))
    v_decay = int(np.clip(round(mapping.voltage_decay * DECAY_UNITY), 0, DECAY_UNITY - 1))
    both = weight.reshape(-1) if weight_rec is None else np.concatenate([weight.reshape(-1), weight_rec.reshape(-1)])

    def fit(s: float) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, int, int]:
        return _chip_fit(weight, weight_rec, bias, mapping.threshold_per_unit, payload_max, s)

    def error(s: float) -> tuple[float, int]:
        scaled = both * s
        qd = np.clip(np.rint(scaled), -CHIP_WEIGHT_MAX, CHIP_WEIGHT_MAX)
        norm = float(np.sum(both ** 2)) or 1.0
        return (float(np.sum((both - qd / s) ** 2)) / norm,
                int(np.count_nonzero(np.abs(scaled) > CHIP_WEIGHT_MAX + 0.5)))

    if scale is None:
        best: tuple[float, float] | None = None
        for s in candidate_scales():
            _, _, bq, vth, largest = fit(float(s))
            if _chip_state_fits(vth, bq, largest, i_decay):
                err = error(float(s))[0]
                if best is None or err < best[0] - 1e-15:
                    best = (err, float(s))
        scale = best[1] if best is not None else next(
            (float(s) for s in candidate_scales() if fit(float(s))[3] >= 1), float(candidate_scales()[0]))
    s = float(scale)
    wq, wrq, bq, vth, largest = fit(s)
    err, saturated = error(s)
    notes: list[str] = []
    if saturated:
        notes.append(f"{layer.name}: {saturated} weight(s) saturate the 8-bit mantissa at scale {s:.4g}")
    if not 1 <= vth <= VTH_MAX:
        notes.append(f"{layer.name}: the threshold mantissa {vth} does not fit 1..{VTH_MAX}")
    if bq is not None and np.abs(bq).max(initial=0) > BIAS_MANT_MAX:
        notes.append(f"{layer.name}: bias mantissas up to {int(np.abs(bq).max())} do not fit 13 bits; clipped")
        bq = np.clip(bq, -BIAS_MANT_MAX, BIAS_MANT_MAX)
    if 1 <= vth <= VTH_MAX and not _chip_state_fits(vth, bq, largest, i_decay):
        notes.append(f"{layer.name}: the synaptic current may wrap its 24-bit register (largest input {largest})")
    for what, fraction, got in (("current", mapping.current_decay, i_decay / DECAY_UNITY),
                                ("voltage", mapping.voltage_decay, v_decay / DECAY_UNITY)):
        if abs(got - fraction) > 0.5 / DECAY_UNITY + 1e-12:
            notes.append(f"{layer.name}: the {what} decay {fraction:.6f} does not fit 12 bits (uses {got:.6f})")
    stride = getattr(layer, "stride", (1, 1))
    padding = getattr(layer, "padding", (0, 0))
    return QuantizedChipLayer(
        name=layer.name, kind=kind, input_shape=tuple(layer.input_shape), output_shape=tuple(layer.output_shape),
        weight=wq if kind == "conv" else wq.reshape(wq.shape[0], -1), weight_rec=wrq,
        bias=None if bq is None else bq.astype(np.int32), stride=tuple(stride), padding=tuple(padding),
        i_decay=i_decay, v_decay=v_decay, vth_mant=int(np.clip(vth, 0, VTH_MAX)), weight_scale=s,
        payload_max=payload_max, weight_error=err, saturated_weights=saturated, max_input=largest,
        warnings=tuple(notes))


def quantize_segment(layers: Sequence[ChipLayer], payload_max: int) -> tuple[QuantizedChipLayer, ...]:
    """Quantize a chip segment: the first layer reads payloads in [0, P], every later one binary spikes."""
    return tuple(quantize_chip_layer(layer, payload_max if i == 0 else 1) for i, layer in enumerate(layers))
