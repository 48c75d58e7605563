r"""Latency model: the time of a time step from the busiest core, of an inference, and the throughput.

Yik et al. 2025 (arXiv 2511.21549) measured on Loihi 2, Speck and Akida that
network-wide operation counts do not predict deployed runtime, while the
load of the busiest core does; Timcheck et al. 2026 (arXiv 2601.10035) model
Loihi 2's time step as a max-affine lower bound over per-core compute and
communication terms followed by a barrier. This module takes that form with
the per-operation times of a profile (``[latency]`` of :mod:`neurodeploy.cost.hw`:
``synop_s``, ``neuron_update_s``, ``spike_s``, ``barrier_s``) and the core
mapping of :mod:`neurodeploy.cost.mapping`.

A chip layer l of n_l neurons on cores holding at most c_l neurons each
(:class:`neurodeploy.cost.mapping.LayerMapping`), at the Lava step τ in which
it processes its input step t = τ - l (Loihi's one-step delay per layer; no
input outside 0 <= t < T)::

    S_l(τ) = synops_l(t) · c_l / n_l           synaptic ops of its busiest core
    U_l    = c_l                               neuron updates (every neuron, every step)
    R_l(τ) = events_l(t) · f_l · w_l           synapse-memory words it reads: f_l = the share of the
                                               layer's inputs that reach the core (fan_in_per_core /
                                               inputs), w_l = the words one input event reads there
                                               (the core's synapse words per input axon; a conv kernel
                                               slice per input channel); only with ``synmem_read_s``
    M_l(τ) = spikes_l(t) · c_l / n_l · d_l     spike messages it sends, d_l = fan_out_l / c_l
    t_l(τ) = max(S_l · synop_s, U_l · neuron_update_s, R_l · synmem_read_s, M_l · spike_s)
    t(τ)   = max_l t_l(τ) + barrier_s
    per_inference = Σ_{τ = 0}^{T + depth - 1} t(τ),   per_step = per_inference / (T + depth)
    throughput    = 1 / per_inference  (inferences per second, one at a time)

the max-affine form of Timcheck et al. (the messages a core sends stand in
for its busiest link's traffic). Lava's benchmarks run inferences back to
back (a frame every T steps, every layer busy at every step, layer l at its
step (τ - l) mod T): ``streaming_per_step`` is the mean of t(τ) over such
a period, and ``streaming_throughput_per_s = 1 / (T · streaming_per_step)``,
what Lava-DL's PilotNet notebooks measure. Where the profile's per-op times
have a ``band`` (the range the measurements support), ``per_step_band``
and ``streaming_per_step_band`` are those figures with every time at its
band's low and high end.

with depth the number of chip layers. A dense layer's busiest core is exact
(every core receives every input event and holds c_l of the outputs); for a
conv layer ``c_l / n_l`` spreads the layer's operations evenly over its cores,
an ASSUMPTION (a core under a dense region of the image works more). A profile
with a fixed ``step_s`` (SpiNNaker 2's real-time 1 ms) has
``per_step = step_s``; without either, latency is ``None``.

Energy per inference on the chip (:func:`neurodeploy.cost.energy.estimate`) is then
the dynamic part (events x per-event energies) plus the static part
``static_w · chips · per_inference``.
"""

from __future__ import annotations

import math
from typing import Any

from neurodeploy.cost.hw import EnergyProfile
from neurodeploy.cost.mapping import ChipLayerInfo

TERMS = ("synops", "neuron_updates", "synmem_reads", "spike_messages")
PER_OP = ("synop_s", "neuron_update_s", "spike_s", "barrier_s")


def _at(values: tuple[float, ...], t: int) -> float:
    return float(values[t]) if 0 <= t < len(values) else 0.0


def _words_per_event(layer: ChipLayerInfo, m: dict[str, Any], word_bits: int) -> float:
    """Synapse-memory words one input event reads on a core: its axon's row there (dense), its channel's
    kernel slice (conv)."""
    if layer.kind == "input" or not m["synapse_bits_per_core"]:
        return 0.0
    axons = layer.weight_shape[1] if layer.kind == "conv" else layer.fan_in_neurons
    return m["synapse_bits_per_core"] / word_bits / axons


def _loads(layer: ChipLayerInfo, m: dict[str, Any], t: int, word_bits: int) -> dict[str, float]:
    c = m["neurons_per_core"]
    share = c / layer.neurons
    reach = m["fan_out_per_core"] / c if c else 0.0
    inputs = math.prod(layer.input_shape)
    fan_in = min(1.0, m["fan_in_per_core"] / inputs) if inputs and m["fan_in_per_core"] else share
    return {"synops": _at(layer.synops_per_step, t) * share, "neuron_updates": float(c),
            "synmem_reads": _at(layer.input_events_per_step, t) * fan_in * _words_per_event(layer, m, word_bits),
            "spike_messages": _at(layer.spikes_per_step, t) * share * reach}


def _times(profile: EnergyProfile, end: int | None) -> dict[str, float]:
    """Seconds per op of each term (0 for a term the profile lacks), at a band's end (0 low, 1 high) or not."""
    def get(key: str) -> float:
        figure = profile.latency.get(key)
        return 0.0 if figure is None else figure.value if end is None else figure.at(end)

    return {"synops": get("synop_s"), "neuron_updates": get("neuron_update_s"),
            "synmem_reads": get("synmem_read_s"), "spike_messages": get("spike_s"), "barrier": get("barrier_s")}


def step_times(layers: list[ChipLayerInfo], mapping: dict[str, Any], profile: EnergyProfile,
               streaming: bool = False, end: int | None = None) -> tuple[list[float], list[tuple[str, str]]]:
    """t(τ) for every Lava step of one inference (``streaming``: of one period of back-to-back inferences),
    and per step the (layer, term) of the busiest core; ``end`` takes every time at its band's low (0) or
    high (1) end."""
    per_op = _times(profile, end)
    word_bits = int(profile.resources["synapse_word_bits"].value) if "synapse_word_bits" in profile.resources \
        else 64
    timesteps = max((len(layer.synops_per_step) for layer in layers), default=0)
    steps = timesteps if streaming else timesteps + len(layers)
    out, busiest = [], []
    for tau in range(steps):
        best, where = 0.0, ("", "")
        for depth, (layer, m) in enumerate(zip(layers, mapping["layers"], strict=True)):
            t = (tau - depth) % timesteps if streaming else tau - depth
            load = _loads(layer, m, t, word_bits)
            for term in TERMS:
                if load[term] * per_op[term] > best:
                    best, where = load[term] * per_op[term], (layer.name, term)
        out.append(best + per_op["barrier"])
        busiest.append(where)
    return out, busiest


def _band(layers: list[ChipLayerInfo], mapping: dict[str, Any], profile: EnergyProfile,
          streaming: bool) -> list[float] | None:
    if not any(f.band for f in profile.latency.values()):
        return None
    ends = [step_times(layers, mapping, profile, streaming, end)[0] for end in (0, 1)]
    return [float(sum(t) / len(t)) if t else 0.0 for t in ends]


def latency(layers: list[ChipLayerInfo], mapping: dict[str, Any] | None, profile: EnergyProfile
            ) -> dict[str, Any] | None:
    """``latency_s.<profile>``: per_step, per_inference, throughput and the busiest core (module docstring)."""
    timesteps = max((len(layer.synops_per_step) for layer in layers), default=0)
    steps = timesteps + len(layers)
    if mapping is not None and mapping["chips"] is not None and all(k in profile.latency for k in PER_OP):
        times, busiest = step_times(layers, mapping, profile)
        total = float(sum(times))
        counts: dict[str, int] = {}
        for layer, term in busiest:
            counts[f"{layer}:{term}"] = counts.get(f"{layer}:{term}", 0) + 1
        bottleneck = max(counts, key=lambda k: counts[k]) if counts else ""
        out = {"per_step": total / steps, "per_inference": total,
               "throughput_per_s": 1.0 / total if total else None,
               "max_step": max(times), "steps": steps, "model": "busiest core (max-affine)",
               "bottleneck": bottleneck}
        if timesteps:
            stream = step_times(layers, mapping, profile, streaming=True)[0]
            out["streaming_per_step"] = float(sum(stream) / len(stream))
            out["streaming_throughput_per_s"] = 1.0 / (timesteps * out["streaming_per_step"])
            band = _band(layers, mapping, profile, streaming=True)
            if band is not None:
                out["streaming_per_step_band"] = band
                out["per_step_band"] = _band(layers, mapping, profile, streaming=False)
        return out
    if "step_s" in profile.latency:
        step = profile.latency["step_s"].value
        total = step * steps
        return {"per_step": step, "per_inference": total, "throughput_per_s": 1.0 / total if total else None,
                "max_step": step, "steps": steps, "model": "fixed time step", "bottleneck": ""}
    return None
