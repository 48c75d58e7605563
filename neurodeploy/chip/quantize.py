"""Fixed-point quantization of chip layers to Loihi's number formats.

What gets rounded (the mapping itself is in :mod:`neurodeploy.chip.neuron_mapping`):

* weights: signed 8-bit mantissas, ``W_q = clip(round(s·W), -127, 127)``,
  one scale ``s`` per layer (a recurrent layer's two weights share it); or,
  with ``wide=True``, wide weights ``clip(round(s·W), ±16319)`` that two
  synapses per connection carry (a high byte at weight exponent 7 and a low
  byte at 0: :class:`~neurodeploy.converters.netx_io.FixedPointLayer`), at
  twice the synaptic operations, for a network whose spike times must follow
  the float graph more closely than 8 bits allow (docs/BENCHMARKS.md section
  15: a deep integrate-and-fire stack needs about 13 bits for a spike F1 of
  0.9 at its last layer). Everything below holds for both, with 127 read as
  the largest mantissa; the state's range then usually decides the scale;
* a bias: ``bias_mant = round(s·P·B)``, signed 13 bits;
* current decay ``iDecay = round(b·4096)`` in [1, 4096] (netx stores
  ``du = iDecay - 1`` in 12 bits) and voltage decay ``vDecay = round(a·4096)``
  in [0, 4095] (12 bits);
* threshold ``vThMant = round(θ·s·P)``, unsigned 17 bits (< 131072),
  ``θ = v_th / (b·w_in·g)`` (:class:`~neurodeploy.chip.neuron_mapping.CubaMapping`).

θ is taken with the float decays, not the 12-bit ones: a membrane driven by
spikes is dominated by its last few inputs, whose decay the 12-bit rounding
barely changes, so the float θ keeps more spike times than one corrected to
the rounded decay's steady state (measured on the single LIF below, a = 0.04:
a threshold/weight ratio of exactly 2.5 reproduced 99.75 % of 400 random
spike trains, the steady-state correction 97.25 %).

The scale is where Loihi's per-layer weight exponent would go (``s = 2^e``),
but it is not limited to powers of two: the threshold and the bias are the
only other places it appears, and their 17- and 13-bit mantissas absorb any
factor. Everything that ``s`` rounds counts in the objective, each as a
relative squared error (a threshold off by a fraction ε acts like every weight
off by -ε, whose relative squared weight error is ε²)::

    J(s) = |W - W_q/s|²/|W|²  +  ((vThMant - θsP)/(θsP))²  +  |bias_mant - sPB|²/|sPB|²

The weights' term is unavoidable at 8 bits (about 0.5-1 % for a
Gaussian layer); the threshold's and the bias's can often be made near exact,
and a small threshold mantissa makes its rounding large: the weight 1.0 is
exact at s = 1, where a threshold of 2.5 units rounds to 2 (-20 %), while at
s = 126 both are exact. So ``s`` is chosen in two steps:

1. the candidates (ascending; of equal J the larger scale wins, because
   a larger threshold mantissa makes the voltage's per-step truncation finer)
   are the grid of ``SCALE_STEPS_PER_OCTAVE`` steps per octave
   over ``SCALE_OCTAVES``, the scales ``k / max|W|`` (k = 1..127) that put the
   largest weight exactly on the mantissa grid, and ``FINE_STEPS`` per octave
   in the octave below saturation, where a few biases or a small threshold can
   land near whole mantissas (on a Norse LIF layer with biases this raised the
   spike F1 against the float graph from 0.90 to 0.94); the search estimates
   the weights' error on at most ``SEARCH_WEIGHTS`` of them and bounds the
   state from row sums (:func:`_input_bound`), exact where the bound is not
   enough. A candidate must keep the fixed-point state in range for every
   possible input:

   * the threshold fits 17 bits and rounds to at least 1;
   * the bias fits 13 bits;
   * the current ``u`` cannot wrap its 24 bits: inputs are non-negative payloads
     ``p`` in [0, P] (the first layer of a segment; 1 for every later one, which
     reads spikes), so the largest synaptic input is exactly
     ``m = max_o max(Σ W_q⁺·P + Σ W_rec⁺ + B⁺, Σ W_q⁻·P + Σ W_rec⁻ + B⁻)`` and the
     steady state ``64·m / b`` must stay below 2^23;

2. among the fitting candidates whose threshold rounds within
   ``SCALAR_TOLERANCE`` (0.5 %) and whose weight error is at most twice the
   least of any fitting candidate, if any, the one with the least J; otherwise
   the least J of all fitting candidates. (The bound on the weights keeps a
   threshold from buying its last 0.1 % with saturated weights; a bias has no
   such preference, its error counts in J only.)

A threshold or decay whose relative rounding error exceeds
``SCALAR_TOLERANCE`` at the chosen scale, saturated weights, a threshold that
rounds to zero and a state that could wrap are reported as warnings naming the
layer, the parameter and the error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from neurodeploy.chip.cuba import BIAS_SITES, DECAY_UNITY, STATE_LIMIT, STATE_SHIFT
from neurodeploy.chip.layers import ChipLayer, ConvLayer, RecurrentDenseLayer
from neurodeploy.chip.neuron_mapping import map_neuron
from neurodeploy.converters.netx_io import WIDE_WEIGHT_MAX, FixedPointLayer

VTH_MAX = (1 << 17) - 1
CHIP_WEIGHT_MAX = 127  # mantissas in [-127, 127]: netx's weight-bit optimisation is then lossless
SCALE_STEPS_PER_OCTAVE = 32
SCALE_OCTAVES = range(-8, 25)  # s from 2^-8 to 2^24
SEARCH_WEIGHTS = 1 << 16
FINE_STEPS = 512  # candidates in the octave below saturation, where the mantissas' range is used
SCALAR_TOLERANCE = 0.005  # the relative rounding error a threshold, bias or decay may keep


def candidate_scales(weights: np.ndarray | None = None, weight_max: int = CHIP_WEIGHT_MAX) -> np.ndarray:
    """Every scale the search considers, ascending: 2^(k / SCALE_STEPS_PER_OCTAVE) over SCALE_OCTAVES, and
    with ``weights`` also ``k·m / max|W|`` for k = 1..127 (the largest weight exactly on the mantissa grid;
    m = 1, or 2^7 for wide weights, whose largest mantissa is ``weight_max``)."""
    k = np.arange(SCALE_OCTAVES.start * SCALE_STEPS_PER_OCTAVE, SCALE_OCTAVES.stop * SCALE_STEPS_PER_OCTAVE + 1)
    grid = 2.0 ** (k / SCALE_STEPS_PER_OCTAVE)
    largest = 0.0 if weights is None else float(np.abs(weights).max(initial=0.0))
    if largest > 0:
        exact = np.arange(1, CHIP_WEIGHT_MAX + 1) * (weight_max // CHIP_WEIGHT_MAX) / largest
        fine = (weight_max + 0.5) / largest * 2.0 ** (-np.arange(FINE_STEPS) / FINE_STEPS)
        extra = np.concatenate([exact, fine])
        grid = np.concatenate([grid, extra[(extra >= grid[0]) & (extra <= grid[-1])]])
    return np.unique(grid)


def relative_error(exact: np.ndarray | float, rounded: np.ndarray | float) -> float:
    """|rounded - exact| / |exact| (L2 over arrays); 0 when both are 0."""
    exact, rounded = np.asarray(exact, np.float64), np.asarray(rounded, np.float64)
    norm = float(np.sqrt(np.sum(exact ** 2)))
    miss = float(np.sqrt(np.sum((rounded - exact) ** 2)))
    return miss / norm if norm else (0.0 if miss == 0 else float("inf"))


# -- chip layers of any kind (neurodeploy.chip.layers), for multi-layer netx segments -----------------

BIAS_MANT_MAX = (1 << 12) - 1  # bias_mant is a signed 13-bit register; netx fixes bias_exp = 6


@dataclass(frozen=True)
class QuantizedChipLayer:
    """One chip layer quantized: its fixed-point record (``layer``: what the netx file holds and the backends
    run, :class:`~neurodeploy.converters.netx_io.FixedPointLayer`) and the quantizer's report on it (the
    scale, the rounding errors, the warnings), which the manifest shows and calibration reads."""

    name: str
    layer: FixedPointLayer
    weight_scale: float  # s: W_q ≈ s·W
    payload_max: int  # P of this layer's input
    weight_error: float  # relative squared error of the weights (recurrent ones included)
    saturated_weights: int
    max_input: int  # the largest |a_in + bias_mant| any input can produce
    warnings: tuple[str, ...] = ()
    threshold_error: float = 0.0  # |vth_mant - θ·s·P| / (θ·s·P), θ with the decays as rounded
    bias_error: float = 0.0  # |bias_mant - s·P·B| / |s·P·B| (L2); 0 without a bias

    @property
    def weight_max(self) -> int:
        """The largest weight mantissa: 127, or WIDE_WEIGHT_MAX for wide weights."""
        return WIDE_WEIGHT_MAX if self.layer.wide else CHIP_WEIGHT_MAX

    def __post_init__(self) -> None:
        """The chip's registers: decays in 12 bits, the threshold in 17, bias mantissas in 13, a known site."""
        layer = self.layer
        if not 1 <= layer.i_decay <= DECAY_UNITY or not 0 <= layer.v_decay < DECAY_UNITY:
            raise ValueError(f"{self.name}: decays out of their 12-bit range")
        if not 0 <= layer.vth_mant <= VTH_MAX:
            raise ValueError(f"{self.name}: vth_mant out of its 17-bit range")
        if layer.bias is not None and np.abs(layer.bias).max(initial=0) > BIAS_MANT_MAX:
            raise ValueError(f"{self.name}: bias mantissas must fit 13 bits")
        if layer.bias_site not in BIAS_SITES:
            raise ValueError(f"{self.name}: bias_site must be one of {BIAS_SITES}")


def fixed_point(quantized: Sequence[QuantizedChipLayer]) -> tuple[FixedPointLayer, ...]:
    """The fixed-point records of a quantized segment: what :func:`~neurodeploy.converters.netx_io.write_segment`
    writes and the backends run."""
    return tuple(q.layer for q in quantized)


def _chip_weights(layer: ChipLayer) -> tuple[str, np.ndarray, np.ndarray | None]:
    if isinstance(layer, ConvLayer):
        return "conv", np.asarray(layer.weight, np.float64), None
    if isinstance(layer, RecurrentDenseLayer):
        return "dense_rec", np.asarray(layer.weight_in, np.float64), np.asarray(layer.weight_rec, np.float64)
    return "dense", np.asarray(layer.weight, np.float64), None


def _chip_fit(weight: np.ndarray, weight_rec: np.ndarray | None, bias: np.ndarray | None,
              threshold: float, payload_max: int, s: float, weight_max: int = CHIP_WEIGHT_MAX
              ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, int, int]:
    """(W_q, W_rec_q, bias_mant, vThMant, largest |a_in + bias|) at scale ``s`` (bias unclipped); W_q int8, or
    int16 (wide) when ``weight_max`` exceeds 127."""
    dtype = np.int8 if weight_max <= CHIP_WEIGHT_MAX else np.int16

    def q(w: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(w * s), -weight_max, weight_max).astype(dtype)

    wq = q(weight)
    wrq = None if weight_rec is None else q(weight_rec)
    bq = None if bias is None else np.rint(bias * s * payload_max).astype(np.int64)
    return wq, wrq, bq, round(threshold * s * payload_max), largest_input(wq, wrq, bq, payload_max)


def largest_input(wq: np.ndarray, wrq: np.ndarray | None, bq: np.ndarray | None, payload_max: int) -> int:
    """The largest |a_in + bias_mant| any input can produce: per output neuron, its positive (negative)
    mantissas times the largest payload P (1 for the recurrent spikes), plus its bias."""
    w = wq.astype(np.int64).reshape(wq.shape[0], -1)
    pos, neg = np.clip(w, 0, None).sum(1) * payload_max, np.clip(-w, 0, None).sum(1) * payload_max
    if wrq is not None:  # recurrent input: the layer's own binary spikes
        r = wrq.astype(np.int64)
        pos, neg = pos + np.clip(r, 0, None).sum(1), neg + np.clip(-r, 0, None).sum(1)
    if bq is not None:
        pos, neg = pos + np.clip(bq, 0, None), neg + np.clip(-bq, 0, None)
    return int(np.maximum(pos, neg).max(initial=0))


def _input_bound(weight: np.ndarray, weight_rec: np.ndarray | None, payload_max: int,
                 weight_max: int = CHIP_WEIGHT_MAX) -> Callable[[float, np.ndarray | None], int]:
    """An upper bound, cheap at any scale, of :func:`_chip_fit`'s largest input: a weight rounds to at most
    ``|s·w| + 1/2`` (and at most 127, the largest mantissa), so a row's positive sum is at most
    ``min(s·Σw⁺ + n⁺/2, 127·n⁺)``."""
    def sums(w: np.ndarray, p: int) -> tuple[np.ndarray, ...]:
        w = w.reshape(w.shape[0], -1)
        return (np.clip(w, 0, None).sum(1) * p, np.count_nonzero(w > 0, axis=1) * p,
                np.clip(-w, 0, None).sum(1) * p, np.count_nonzero(w < 0, axis=1) * p)

    parts = [sums(weight, payload_max)] + ([] if weight_rec is None else [sums(weight_rec, 1)])

    def bound(s: float, bias: np.ndarray | None) -> int:
        pos = sum(np.minimum(s * sp + n / 2, weight_max * n) for sp, n, _, _ in parts)
        neg = sum(np.minimum(s * sn + n / 2, weight_max * n) for _, _, sn, n in parts)
        if bias is not None:
            pos, neg = pos + np.clip(bias, 0, None), neg + np.clip(-bias, 0, None)
        return int(np.ceil(np.maximum(pos, neg).max(initial=0)))

    return bound


def _chip_state_fits(vth: int, bias: np.ndarray | None, largest: int, i_decay: int) -> bool:
    """The threshold fits 17 bits (>= 1), the bias 13 bits, and no input can wrap u's 24 bits."""
    steady_u = (largest << STATE_SHIFT) * DECAY_UNITY / i_decay
    return (1 <= vth <= VTH_MAX and (bias is None or np.abs(bias).max(initial=0) <= BIAS_MANT_MAX)
            and steady_u < STATE_LIMIT)


def quantize_chip_layer(layer: ChipLayer, payload_max: int, scale: float | None = None,
                        wide: bool = False) -> QuantizedChipLayer:
    """Quantize one chip layer for input payloads in [0, ``payload_max``]; ``scale=None`` chooses s
    (module docstring: the least total relative rounding error J among the scales where the state fits,
    the threshold and bias within ``SCALAR_TOLERANCE`` where any such scale exists); ``wide``: wide
    weights, two synapses per connection."""
    kind, weight, weight_rec = _chip_weights(layer)
    weight_max = WIDE_WEIGHT_MAX if wide else CHIP_WEIGHT_MAX
    mapping = map_neuron(layer.neuron)
    bias = None if layer.bias is None else np.asarray(layer.bias, np.float64) * mapping.bias_per_unit
    i_decay = int(np.clip(round(mapping.current_decay * DECAY_UNITY), 1, DECAY_UNITY))
    v_decay = int(np.clip(round(mapping.voltage_decay * DECAY_UNITY), 0, DECAY_UNITY - 1))
    theta = mapping.threshold_per_unit
    both = weight.reshape(-1) if weight_rec is None else np.concatenate([weight.reshape(-1), weight_rec.reshape(-1)])

    def fit(s: float) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, int, int]:
        return _chip_fit(weight, weight_rec, bias, theta, payload_max, s, weight_max)

    # the search estimates the weights' error on at most SEARCH_WEIGHTS of them (evenly strided, the largest
    # kept): the candidates are many, a layer's weights can be millions; the chosen scale's error is exact
    sample = both if both.size <= SEARCH_WEIGHTS else np.append(both[:: -(-both.size // SEARCH_WEIGHTS)],
                                                                  both[np.argmax(np.abs(both))])

    def weight_error(s: float, w: np.ndarray = both) -> tuple[float, int]:
        scaled = w * s
        qd = np.clip(np.rint(scaled), -weight_max, weight_max)
        return (float(np.sum((w - qd / s) ** 2)) / (float(np.sum(w ** 2)) or 1.0),
                int(np.count_nonzero(np.abs(scaled) > weight_max + 0.5)))

    def scalar_errors(s: float, vth: int, bq: np.ndarray | None) -> tuple[float, float]:
        exact_bias = 0.0 if bias is None or bq is None else relative_error(bias * s * payload_max, bq)
        return relative_error(theta * s * payload_max, vth), exact_bias

    if scale is None:
        rows = []  # (s, weight error, threshold error, J) of every candidate where the state fits
        bound = _input_bound(weight, weight_rec, payload_max, weight_max)
        for s in candidate_scales(both, weight_max):  # ascending: of equal J the larger s wins (finer state)
            bq = None if bias is None else np.rint(bias * s * payload_max).astype(np.int64)
            vth = round(theta * s * payload_max)
            if _chip_state_fits(vth, bq, bound(float(s), bq), i_decay) or (  # else the exact bound
                    _chip_state_fits(vth, bq, 0, i_decay) and _chip_state_fits(vth, bq, fit(float(s))[4], i_decay)):
                e_weights = weight_error(float(s), sample)[0]
                e_threshold, e_bias = scalar_errors(float(s), vth, bq)
                rows.append((float(s), e_weights, e_threshold, e_weights + e_threshold ** 2 + e_bias ** 2))
        if rows:
            affordable = 2 * min(r[1] for r in rows) + 1e-12  # the threshold's tolerance may at most double e_W
            best = min(rows, key=lambda r: (r[1] > affordable or r[2] > SCALAR_TOLERANCE, r[3], -r[0]))
            scale = best[0]
        else:
            scale = next((float(s) for s in candidate_scales() if fit(float(s))[3] >= 1), float(candidate_scales()[0]))
    s = float(scale)
    wq, wrq, bq, vth, largest = fit(s)
    err, saturated = weight_error(s)
    e_threshold, e_bias = scalar_errors(s, vth, bq)
    notes: list[str] = []
    if saturated:
        notes.append(f"{layer.name}: {saturated} weight(s) saturate the mantissa (±{weight_max}) at scale {s:.4g}")
    if not 1 <= vth <= VTH_MAX:
        notes.append(f"{layer.name}: the threshold mantissa {vth} does not fit 1..{VTH_MAX}")
    elif e_threshold > SCALAR_TOLERANCE:
        notes.append(f"{layer.name}: the threshold rounds to {vth} from {theta * s * payload_max:.4g}, "
                     f"a {e_threshold:.2%} error (no scale that fits and keeps the weights rounds it within "
                     f"{SCALAR_TOLERANCE:.1%})")
    if bq is not None and np.abs(bq).max(initial=0) > BIAS_MANT_MAX:
        notes.append(f"{layer.name}: bias mantissas up to {int(np.abs(bq).max())} do not fit 13 bits; clipped")
        bq = np.clip(bq, -BIAS_MANT_MAX, BIAS_MANT_MAX)
        e_bias = relative_error(bias * s * payload_max, bq) if bias is not None else 0.0
    if 1 <= vth <= VTH_MAX and not _chip_state_fits(vth, bq, largest, i_decay):
        notes.append(f"{layer.name}: the synaptic current may wrap its 24-bit register (largest input {largest})")
    for what, fraction, got in (("current", mapping.current_decay, i_decay / DECAY_UNITY),
                                ("voltage", mapping.voltage_decay, v_decay / DECAY_UNITY)):
        if relative_error(fraction, got) > SCALAR_TOLERANCE:
            notes.append(f"{layer.name}: the {what} decay {fraction:.6f} rounds to {got:.6f} in 12 bits, "
                         f"a {relative_error(fraction, got):.2%} error")
    stride = getattr(layer, "stride", (1, 1))
    padding = getattr(layer, "padding", (0, 0))
    fixed = FixedPointLayer(
        kind=kind, input_shape=tuple(layer.input_shape), output_shape=tuple(layer.output_shape),
        weight=wq if kind == "conv" else wq.reshape(wq.shape[0], -1), weight_rec=wrq,
        bias=None if bq is None else bq.astype(np.int32), stride=tuple(stride), padding=tuple(padding),
        i_decay=i_decay, v_decay=v_decay, vth_mant=int(np.clip(vth, 0, VTH_MAX)),
        bias_site="current" if bq is not None and layer.neuron.filters_current else "voltage")
    return QuantizedChipLayer(
        name=layer.name, layer=fixed, weight_scale=s, payload_max=payload_max, weight_error=err,
        saturated_weights=saturated, max_input=largest, warnings=tuple(notes), threshold_error=e_threshold,
        bias_error=e_bias)


def quantize_segment(layers: Sequence[ChipLayer], payload_max: int, scales: Sequence[float] | None = None,
                     wide: bool = False) -> tuple[QuantizedChipLayer, ...]:
    """Quantize a chip segment: the first layer reads payloads in [0, P], every later one binary spikes;
    ``scales``: each layer's scale (e.g. calibrated), else each chooses its own; ``wide``: wide weights."""
    chosen = [None] * len(layers) if scales is None else scales
    return tuple(quantize_chip_layer(layer, payload_max if i == 0 else 1, scale, wide)
                 for i, (layer, scale) in enumerate(zip(layers, chosen, strict=True)))


def with_mantissas(q: QuantizedChipLayer, layer: ChipLayer, weight: np.ndarray, bias: np.ndarray | None,
                   vth_mant: int) -> QuantizedChipLayer:
    """``q`` with its weight mantissas (``q.layer.weight``'s shape), bias mantissas and threshold mantissa replaced
    (e.g. rounded for the layer's outputs, :mod:`neurodeploy.chip.calibration`), its error figures and largest
    input recomputed at the same scale ``s``. A recurrent layer's recurrent weights are kept."""
    _, w, w_rec = _chip_weights(layer)
    mapping = map_neuron(layer.neuron)
    s, p = q.weight_scale, q.payload_max
    wq = np.asarray(weight).astype(q.layer.weight.dtype).reshape(q.layer.weight.shape)
    w_rec_q = q.layer.weight_rec
    exact = w.reshape(-1) if w_rec is None else np.concatenate([w.reshape(-1), w_rec.reshape(-1)])
    got = wq.reshape(-1) if w_rec_q is None else np.concatenate([wq.reshape(-1), w_rec_q.reshape(-1)])
    bq = None if bias is None else np.asarray(bias).astype(np.int32)
    exact_bias = None if layer.bias is None else np.asarray(layer.bias, np.float64) * mapping.bias_per_unit * s * p
    return replace(
        q, layer=replace(q.layer, weight=wq, bias=bq, vth_mant=int(vth_mant)),
        max_input=largest_input(wq, w_rec_q, bq, p),
        weight_error=float(np.sum((exact - got / s) ** 2)) / (float(np.sum(exact ** 2)) or 1.0),
        threshold_error=relative_error(mapping.threshold_per_unit * s * p, vth_mant),
        bias_error=0.0 if exact_bias is None or bq is None else relative_error(exact_bias, bq))
