r"""Core mapping: how many cores and chips the chip layers take on a neuromorphic profile, and whether they fit.

Every chip layer (:class:`ChipLayerInfo`: the inpainter's one conv layer, or
the conv / dense / dense_rec layers of a graph bundle's chip segments) is
split onto whole cores of its own, one layer per core, the way Lava-DL's
netx compilers and NxTF (Rueckauer et al. 2021, arXiv 2101.04261) place a
layer: a core holds a block of the layer's output neurons together with every
synapse that feeds them. With the profile's per-core limits (``[resources]``
of :mod:`neurodeploy.cost.hw`: N neurons, M synaptic-memory bits, F_in input
axons, F_out output axons) and ``b`` bits per stored synapse:

* **dense** (O outputs reading I inputs; a recurrent layer also reads its own
  O outputs, I' = I + O): a core holds n outputs, every input reaches every
  core, so per core ``neurons = n``, ``fan_in = I'``, ``synapse bits =
  n · I' · b`` (the weight matrix stored densely, zeros too, as netx's
  Dense does), and n is the largest value with ``n <= N``, ``n · I' · b <=
  M`` and ``n · d <= F_out``; ``cores = ceil(O / n)``.
* **conv** (weight (O, C, kh, kw), stride s, output (O, OH, OW)): a core holds
  a block of co channels x th rows x tw columns of the output; it reads the
  block's receptive field, so per core ``neurons = co·th·tw``,
  ``fan_in = C · min(H, (th-1)·s + kh) · min(W, (tw-1)·s + kw)``,
  ``synapse bits = co·th·tw · C·kh·kw · b`` (ASSUMPTION: every connection
  stored, no weight sharing between positions) and ``neurons · d <= F_out``.
  A compiler that stores a conv kernel once per core (Loihi's weight sharing,
  as NxTF exploits) needs only ``co · C·kh·kw · b``: ``shared_conv_weights``
  in the JSON is the whole mapping again under that assumption. Among the blocks that
  meet every limit the one with the fewest cores
  ``ceil(O/co)·ceil(OH/th)·ceil(OW/tw)`` is taken (ties: the most square).
* ``d``, the output axons a neuron needs, is the number of cores of the next
  chip layer it reaches (all of a dense layer's cores; for a conv layer, the
  blocks its kernel footprint can touch; 1 for the last layer, whose spikes
  leave the chip).

``cores`` is the sum over layers; ``chips = ceil(cores / cores_per_chip)``;
``fits`` is true when the network maps and takes one chip. Otherwise
``limiting`` names the resource: the per-core limit that leaves not even one
neuron per core (``fan_in_per_core`` or ``synapse_bits_per_core``: a single
neuron's synapses do not fit a core; such a layer is not mapped at all), or
``cores_per_chip`` when the layers map but need more than one chip.
Utilisation per layer: neurons placed / (cores · N), and synaptic bits
stored / (cores · M). ``largest_input`` is the largest square input
(side x side, same channels) whose conv-only network fits one chip,
found by bisection; ``None`` when a dense layer fixes the input size.

Assumptions, stated: one layer per core (no packing of small layers together;
NengoLoihi and netx do the same), b = 8 bits per synapse (netx int8
weights; no index or compression overhead), a fan-in limit counted in input
neurons (one axon per presynaptic neuron). An ``input`` layer (netx's input
block: neurons driven by the frame through their bias, no synapses) takes
``ceil(neurons / N)`` cores.

**Lava's Loihi 2 compiler.** A profile with ``synmem_words_per_core`` is
mapped the way Lava's Loihi 2 compiler partitions netx layers, as its
printed per-core tables show (Lava-DL's PilotNet benchmark notebooks) and
OzU-CAST/LoihiScalingEfficiency describes it: one unconstrained core per
layer, divided until its constraint database is satisfied. With S the
synapse-memory words per core (``synmem_words_per_core``), M the memory
words per core, neurons and synapses together (``memory_words_per_core``),
a = ``words_per_neuron``, w = ``synapse_word_bits``, d =
``dense_synapse_bits`` and b a layer's weight bits (the signed width of its
largest weight, ``weight_bits``)::

    conv / input  a core holds every channel and row of a block of output columns;
                  syn = C·kh·kw·ceil(O'·b / w)       (O' the block's channels, each one kernel
                                                     shared by the core's neurons; 0 for input)
                  the block starts at the whole width and halves to the power of two below
                  until a·O·OH·width + syn <= M, syn <= S and O·OH·width <= N
                  (a single column too big: its rows, then its channels halve alike; the
                  channels first where the kernels alone exceed S or M: ASSUMPTIONS, no
                  printed table shows either); cores = ceil(O / O')·ceil(OH / rows)·ceil(OW / width)
    dense         r = 1; n = ceil(O / r); syn = I'·ceil(n·d / w) (every axon's row of n synapses)
                  while max(syn / S, (a·n + syn) / M, n / N) = ρ > 1:  r = r·ceil(ρ)
                  cores = ceil(O / n)

(for PilotNet's 2560 -> 100 layer the compiler printed 61,440 words where
this rule counts 64,000, both ratio 6; then 12,800 words, ratio 2, alike;
12 cores).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from neurodeploy.converters.netx_io import FixedPointLayer
from neurodeploy.cost.hw import EnergyProfile
from neurodeploy.ir.graph import conv_output_size

SYNAPSE_BITS = 8  # netx stores int8 weight mantissas (wide weights: two per connection)


@dataclass(frozen=True)
class ChipLayerInfo:
    """What the core mapping and the latency model need about one chip layer.

    Counts are per inference (averaged over the profiled samples), per time step.
    """

    name: str
    kind: str  # conv, dense, dense_rec, or input (bias-driven neurons, no synapses; weight_shape ())
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    weight_shape: tuple[int, ...]  # conv (O, C, kh, kw); dense (O, I)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    synops_per_step: tuple[float, ...] = ()
    spikes_per_step: tuple[float, ...] = ()
    input_events_per_step: tuple[float, ...] = ()
    synapse_bits: int = SYNAPSE_BITS  # per connection: 8, or 16 for wide weights (two synapses)
    weight_bits: int = SYNAPSE_BITS  # the signed width of the largest weight (Loihi 2 packs conv kernels by it)

    @classmethod
    def of(cls, name: str, layer: FixedPointLayer, counts: Mapping[str, Any]) -> ChipLayerInfo:
        """A deployed layer's kind and shapes from its fixed-point record, with its per-step ``counts``
        (``synops_per_step``, ``spikes_per_step``, ``input_events_per_step``)."""
        return cls(name, layer.kind, tuple(layer.input_shape), tuple(layer.output_shape), tuple(layer.weight.shape),
                   tuple(layer.stride), tuple(layer.padding), tuple(counts["synops_per_step"]),
                   tuple(counts["spikes_per_step"]), tuple(counts["input_events_per_step"]),
                   SYNAPSE_BITS * layer.synapses_per_connection, weight_bits(layer.weights))

    @property
    def neurons(self) -> int:
        return math.prod(self.output_shape)

    @property
    def fan_in_neurons(self) -> int:
        """Inputs a dense layer reads, its own outputs included when recurrent."""
        return math.prod(self.input_shape) + (self.weight_shape[0] if self.kind == "dense_rec" else 0)


def weight_bits(weights: list[np.ndarray]) -> int:
    """The signed width that holds every weight: b with -2^(b-1) <= w <= 2^(b-1) - 1 (at least 1)."""
    low = min((int(w.min()) for w in weights if w.size), default=0)
    high = max((int(w.max()) for w in weights if w.size), default=0)
    return max(1, (max(high, -low - 1)).bit_length() + 1)


@dataclass(frozen=True)
class LayerMapping:
    """One layer's place on the cores of a profile."""

    name: str
    kind: str
    cores: int
    neurons_per_core: int  # the largest block
    block: tuple[int, ...]  # conv (co, th, tw); dense (n,)
    fan_in_per_core: int
    fan_out_per_core: int
    synapse_bits_per_core: int
    neuron_utilisation: float
    synapse_utilisation: float
    binding: str  # the per-core limit that bounds the block, or "layer size"
    limiting: str | None = None  # set when the layer does not map at all

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _limit(profile: EnergyProfile, key: str) -> float:
    figure = profile.resources.get(key)
    return figure.value if figure else math.inf


def _fits(limit: float, cost: int) -> float:
    """How many units of ``cost`` a ``limit`` holds (inf for an unchecked limit)."""
    return limit if math.isinf(limit) else limit // cost


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _candidates(n: int) -> list[int]:
    """The block sizes along an axis of n that give distinct core counts: ceil(n / k), k = 1..n."""
    return sorted({_ceil(n, k) for k in range(1, n + 1)}, reverse=True)


def _conv_reach(next_layer: ChipLayerInfo, mapping: LayerMapping) -> int:
    """Blocks of a conv layer one input neuron can reach: per axis ceil(k / (t·s)) + 1 blocks, all channel blocks."""
    co, th, tw = mapping.block
    kh, kw = next_layer.weight_shape[2:]
    (sh, sw), (_, oh, ow) = next_layer.stride, next_layer.output_shape
    rows = min(_ceil(oh, th), _ceil(kh, th * sh) + 1)
    cols = min(_ceil(ow, tw), _ceil(kw, tw * sw) + 1)
    return min(mapping.cores, _ceil(next_layer.weight_shape[0], co) * rows * cols)


def map_dense(layer: ChipLayerInfo, profile: EnergyProfile, reach: int) -> LayerMapping:
    n_max, m_max = _limit(profile, "neurons_per_core"), _limit(profile, "synapse_bits_per_core")
    f_in, f_out = _limit(profile, "fan_in_per_core"), _limit(profile, "fan_out_per_core")
    outputs, inputs = layer.weight_shape[0], layer.fan_in_neurons
    bounds = {"layer size": outputs, "neurons_per_core": n_max,
              "synapse_bits_per_core": _fits(m_max, inputs * layer.synapse_bits),
              "fan_out_per_core": _fits(f_out, reach)}
    binding = min(bounds, key=lambda k: bounds[k])
    n = int(bounds[binding])
    limiting = "fan_in_per_core" if inputs > f_in else (binding if n < 1 else None)
    if limiting:
        return LayerMapping(layer.name, layer.kind, 0, 0, (0,), inputs, 0, 0, 0.0, 0.0, limiting, limiting)
    cores = _ceil(outputs, n)
    bits = layer.synapse_bits
    return LayerMapping(layer.name, layer.kind, cores, n, (n,), inputs, n * reach, n * inputs * bits,
                        outputs / (cores * n_max), outputs * inputs * bits / (cores * m_max), binding)


def map_conv(layer: ChipLayerInfo, profile: EnergyProfile, reach: int, shared: bool = False) -> LayerMapping:
    n_max, m_max = _limit(profile, "neurons_per_core"), _limit(profile, "synapse_bits_per_core")
    f_in, f_out = _limit(profile, "fan_in_per_core"), _limit(profile, "fan_out_per_core")
    o, c, kh, kw = layer.weight_shape
    _, h, w = layer.input_shape
    _, oh, ow = layer.output_shape
    sh, sw = layer.stride
    per_neuron_bits = c * kh * kw * layer.synapse_bits

    def stored(co: int, neurons: int) -> int:  # synapse bits a block of co channels and this many neurons stores
        return co * per_neuron_bits if shared else neurons * per_neuron_bits

    best: tuple[tuple[int, int], tuple[int, int, int]] | None = None
    for co in _candidates(o):
        for th in _candidates(oh):
            rows_in = min(h, (th - 1) * sh + kh)
            if co * th > n_max or c * rows_in * min(w, kw) > f_in or stored(co, co * th) > m_max:
                continue
            for tw in _candidates(ow):  # the widest block that meets every limit, then stop
                neurons = co * th * tw
                if (neurons <= n_max and c * rows_in * min(w, (tw - 1) * sw + kw) <= f_in
                        and stored(co, neurons) <= m_max and neurons * reach <= f_out):
                    cores = _ceil(o, co) * _ceil(oh, th) * _ceil(ow, tw)
                    key = (cores, abs(th - tw))
                    if best is None or key < best[0]:
                        best = (key, (co, th, tw))
                    break
    if best is None:
        one_in = c * min(h, kh) * min(w, kw)
        limiting = ("fan_in_per_core" if one_in > f_in else "synapse_bits_per_core" if per_neuron_bits > m_max
                    else "fan_out_per_core")
        return LayerMapping(layer.name, layer.kind, 0, 0, (0, 0, 0), one_in, 0, 0, 0.0, 0.0, limiting, limiting)
    co, th, tw = best[1]
    cores, neurons = best[0][0], co * th * tw
    fan_in = c * min(h, (th - 1) * sh + kh) * min(w, (tw - 1) * sw + kw)
    bits = stored(co, neurons)
    # which limit stops the block from growing: the one closest to being reached
    use = {"neurons_per_core": neurons / n_max, "synapse_bits_per_core": bits / m_max,
           "fan_in_per_core": fan_in / f_in, "fan_out_per_core": neurons * reach / f_out}
    binding = "layer size" if cores == 1 else max(use, key=lambda k: use[k])
    total_bits = stored(o, layer.neurons) * (cores // _ceil(o, co) if shared else 1)
    return LayerMapping(layer.name, layer.kind, cores, neurons, (co, th, tw), fan_in, neurons * reach, bits,
                        layer.neurons / (cores * n_max), total_bits / (cores * m_max), binding)


def map_input(layer: ChipLayerInfo, profile: EnergyProfile, reach: int) -> LayerMapping:
    """An input layer (bias-driven neurons, no synapses): as many neurons per core as a core holds."""
    n = int(min(layer.neurons, _limit(profile, "neurons_per_core")))
    cores = _ceil(layer.neurons, n)
    return LayerMapping(layer.name, layer.kind, cores, n, (n,), 0, n * reach, 0,
                        layer.neurons / (cores * _limit(profile, "neurons_per_core")), 0.0,
                        "layer size" if cores == 1 else "neurons_per_core")


def lava_loihi2(profile: EnergyProfile) -> bool:
    """Whether a profile is mapped by Lava's Loihi 2 compiler's rules (module docstring)."""
    return "synmem_words_per_core" in profile.resources


def _loihi2_limits(profile: EnergyProfile) -> dict[str, float]:
    keys = ("neurons_per_core", "synmem_words_per_core", "memory_words_per_core", "words_per_neuron",
            "synapse_word_bits", "dense_synapse_bits")
    return {k: _limit(profile, k) for k in keys}


def _loihi2_over(lim: dict[str, float], neurons: int, syn: int) -> dict[str, float]:
    """Each Loihi 2 limit's allocation / limit for a core of this many neurons and synapse words."""
    return {"synmem_words_per_core": syn / lim["synmem_words_per_core"],
            "memory_words_per_core": (lim["words_per_neuron"] * neurons + syn) / lim["memory_words_per_core"],
            "neurons_per_core": neurons / lim["neurons_per_core"]}


def map_loihi2_columns(layer: ChipLayerInfo, profile: EnergyProfile, reach: int) -> LayerMapping:
    """A conv or input layer by Lava's Loihi 2 compiler: blocks of whole channels and rows, the width halved
    (then the rows, then the channels, where one column is too big)."""
    lim = _loihi2_limits(profile)
    o, oh, ow = layer.output_shape

    def synapse_words(channels: int) -> int:  # the kernels of the block's output channels: shared by its neurons
        if layer.kind != "conv":
            return 0
        _, c, kh, kw = layer.weight_shape
        return c * kh * kw * _ceil(channels * layer.weight_bits, int(lim["synapse_word_bits"]))

    block, binding = [o, oh, ow], "layer size"
    while True:
        syn = synapse_words(block[0])
        over = _loihi2_over(lim, math.prod(block), syn)
        worst = max(over, key=lambda k: over[k])
        if over[worst] <= 1:
            break
        # columns first, then rows, then channels; but kernels too big for a core whatever its neurons only
        # shrink with the channels
        kernels_alone = syn > min(lim["synmem_words_per_core"], lim["memory_words_per_core"])
        axis = next((a for a in ((0,) if kernels_alone else (2, 1, 0)) if block[a] > 1), None)
        if axis is None:
            return LayerMapping(layer.name, layer.kind, 0, 0, (0, 0, 0), 0, 0, 0, 0.0, 0.0, worst, worst)
        block[axis], binding = 1 << ((block[axis] - 1).bit_length() - 1), worst  # the power of two below
    co, th, width = block
    cores, neurons = _ceil(o, co) * _ceil(oh, th) * _ceil(ow, width), co * th * width
    fan_in = 0
    if layer.kind == "conv":
        _, c, kh, kw = layer.weight_shape
        fan_in = (c * min(layer.input_shape[1], (th - 1) * layer.stride[0] + kh)
                  * min(layer.input_shape[2], (width - 1) * layer.stride[1] + kw))
    bits = syn * int(lim["synapse_word_bits"])
    return LayerMapping(layer.name, layer.kind, cores, neurons, (co, th, width), fan_in, neurons * reach, bits,
                        layer.neurons / (cores * lim["neurons_per_core"]),
                        syn / lim["synmem_words_per_core"], binding)


def map_loihi2_dense(layer: ChipLayerInfo, profile: EnergyProfile, reach: int) -> LayerMapping:
    """A dense layer by Lava's Loihi 2 compiler: divided by the worst ratio of allocation to limit until it fits."""
    lim = _loihi2_limits(profile)
    outputs, inputs = layer.weight_shape[0], layer.fan_in_neurons
    bits = lim["dense_synapse_bits"] * layer.synapse_bits / SYNAPSE_BITS  # wide weights: two synapses
    ratio, binding = 1, "layer size"
    while True:
        n = _ceil(outputs, ratio)
        syn = inputs * _ceil(int(n * bits), int(lim["synapse_word_bits"]))
        over = _loihi2_over(lim, n, syn)
        worst = max(over, key=lambda k: over[k])
        if over[worst] <= 1:
            break
        if n == 1:
            return LayerMapping(layer.name, layer.kind, 0, 0, (0,), inputs, 0, 0, 0.0, 0.0, worst, worst)
        ratio, binding = ratio * math.ceil(over[worst]), worst
    cores = _ceil(outputs, n)
    return LayerMapping(layer.name, layer.kind, cores, n, (n,), inputs, n * reach,
                        syn * int(lim["synapse_word_bits"]), outputs / (cores * lim["neurons_per_core"]),
                        syn / lim["synmem_words_per_core"], binding)


def _map_one(layer: ChipLayerInfo, profile: EnergyProfile, reach: int, shared: bool) -> LayerMapping:
    if lava_loihi2(profile):
        return (map_loihi2_dense(layer, profile, reach) if layer.kind in ("dense", "dense_rec")
                else map_loihi2_columns(layer, profile, reach))
    if layer.kind == "input":
        return map_input(layer, profile, reach)
    return map_conv(layer, profile, reach, shared) if layer.kind == "conv" else map_dense(layer, profile, reach)


def map_layers(layers: list[ChipLayerInfo], profile: EnergyProfile, shared: bool = False) -> list[LayerMapping]:
    """Every layer on its own cores, last layer first (a layer's fan-out depends on the next layer's blocks)."""
    out: list[LayerMapping] = []
    following: tuple[ChipLayerInfo, LayerMapping] | None = None
    for layer in reversed(layers):
        reach = 1
        if following is not None and not following[1].limiting:
            nxt, m = following
            reach = _conv_reach(nxt, m) if nxt.kind == "conv" else m.cores
        mapping = _map_one(layer, profile, reach, shared)
        out.append(mapping)
        following = (layer, mapping)
    return out[::-1]


def map_network(layers: list[ChipLayerInfo], profile: EnergyProfile,
                resize: Callable[[int], list[ChipLayerInfo]] | None = None, shared: bool = False) -> dict[str, Any]:
    """The mapping JSON of one profile (module docstring); ``resize(side)`` rebuilds the layers for a
    side x side input, for ``largest_input``; ``shared``: conv kernels stored once per core."""
    mapped = map_layers(layers, profile, shared)
    per_chip = int(_limit(profile, "cores_per_chip"))
    unmapped = [m for m in mapped if m.limiting]
    cores = sum(m.cores for m in mapped)
    chips = _ceil(cores, per_chip) if not unmapped else None
    fits = not unmapped and chips == 1
    if unmapped:
        m = unmapped[0]
        limiting = m.limiting
        why = f"layer {m.name}: one neuron's {limiting.replace('_per_core', '')} exceeds a core's"
    elif not fits:
        limiting, why = "cores_per_chip", f"{cores} cores need {chips} chips of {per_chip}"
    else:
        limiting, why = None, ""
    out = {"cores": cores, "chips": chips, "fits": fits, "limiting": limiting, "why": why,
           "cores_per_chip": per_chip, "layers": [m.as_dict() for m in mapped],
           "neuron_utilisation": (sum(layer.neurons for layer in layers)
                                  / (cores * _limit(profile, "neurons_per_core")) if cores else 0.0)}
    out["largest_input"] = largest_input(resize, profile, shared=shared) if resize is not None else None
    if not shared and not lava_loihi2(profile) and any(layer.kind == "conv" for layer in layers):
        alt = map_network(layers, profile, resize, shared=True)
        out["shared_conv_weights"] = {k: alt[k] for k in ("cores", "chips", "fits", "limiting", "largest_input")}
    return out


def fits_one_chip(layers: list[ChipLayerInfo], profile: EnergyProfile, shared: bool = False) -> bool:
    mapped = map_layers(layers, profile, shared)
    return (not any(m.limiting for m in mapped)
            and sum(m.cores for m in mapped) <= _limit(profile, "cores_per_chip"))


def largest_input(resize: Callable[[int], list[ChipLayerInfo]], profile: EnergyProfile,
                  upper: int = 1 << 14, shared: bool = False) -> int | None:
    """The largest side whose side x side input fits one chip (bisection); None if even 1 x 1 does not."""
    def fits(side: int) -> bool:
        return fits_one_chip(resize(side), profile, shared)

    if not fits(1):
        return None
    low, high = 1, 2
    while high <= upper and fits(high):
        low, high = high, high * 2
    if high > upper:
        return low
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if fits(mid) else (low, mid)
    return low


def resize_conv_chain(layers: list[ChipLayerInfo]) -> Callable[[int], list[ChipLayerInfo]] | None:
    """For a conv-only network: ``side -> layers`` on a side x side input (same channels and kernels);
    None when a dense layer fixes the input size."""
    if not layers or any(layer.kind != "conv" for layer in layers):
        return None

    def resize(side: int) -> list[ChipLayerInfo]:
        out, h, w = [], side, side
        for layer in layers:
            o, c, kh, kw = layer.weight_shape
            (sh, sw), (ph, pw) = layer.stride, layer.padding
            oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
            if oh < 1 or ow < 1:
                oh, ow = 1, 1
            out.append(replace(layer, input_shape=(c, h, w), output_shape=(o, oh, ow)))
            h, w = oh, ow
        return out

    return resize


def mapping_profiles(profiles: list[EnergyProfile]) -> list[EnergyProfile]:
    """The neuromorphic profiles that have resources to map onto."""
    return [p for p in profiles if p.kind == "neuromorphic" and p.resources]
