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
    M_l(τ) = spikes_l(t) · c_l / n_l · d_l     spike messages it sends, d_l = fan_out_l / c_l
    t_l(τ) = max(S_l · synop_s, U_l · neuron_update_s, M_l · spike_s)
    t(τ)   = max_l t_l(τ) + barrier_s
    per_inference = Σ_{τ = 0}^{T + depth - 1} t(τ),   per_step = per_inference / (T + depth)
    throughput    = 1 / per_inference  (inferences per second, one at a time)

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

from typing import Any

from neurodeploy.cost.hw import EnergyProfile
from neurodeploy.cost.mapping import ChipLayerInfo

TERMS = ("synops", "neuron_updates", "spike_messages")
PER_OP = ("synop_s", "neuron_update_s", "spike_s", "barrier_s")


def _at(values: tuple[float, ...], t: int) -> float:
    return float(values[t]) if 0 <= t < len(values) else 0.0


def step_times(layers: list[ChipLayerInfo], mapping: dict[str, Any], profile: EnergyProfile
               ) -> tuple[list[float], list[tuple[str, str]]]:
    """t(τ) for every Lava step of one inference, and per step the (layer, term) of the busiest core."""
    times = {k: profile.latency[k].value for k in PER_OP}
    per_op = {"synops": times["synop_s"], "neuron_updates": times["neuron_update_s"],
              "spike_messages": times["spike_s"]}
    steps = max((len(layer.synops_per_step) for layer in layers), default=0) + len(layers)
    out, busiest = [], []
    for tau in range(steps):
        best, where = 0.0, ("", "")
        for depth, (layer, m) in enumerate(zip(layers, mapping["layers"], strict=True)):
            c, share = m["neurons_per_core"], m["neurons_per_core"] / layer.neurons
            reach = m["fan_out_per_core"] / c if c else 0.0
            t = tau - depth
            load = {"synops": _at(layer.synops_per_step, t) * share, "neuron_updates": float(c),
                    "spike_messages": _at(layer.spikes_per_step, t) * share * reach}
            for term in TERMS:
                if load[term] * per_op[term] > best:
                    best, where = load[term] * per_op[term], (layer.name, term)
        out.append(best + times["barrier_s"])
        busiest.append(where)
    return out, busiest


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
        return {"per_step": total / steps, "per_inference": total, "throughput_per_s": 1.0 / total if total else None,
                "max_step": max(times), "steps": steps, "model": "busiest core (max-affine)",
                "bottleneck": bottleneck}
    if "step_s" in profile.latency:
        step = profile.latency["step_s"].value
        total = step * steps
        return {"per_step": step, "per_inference": total, "throughput_per_s": 1.0 / total if total else None,
                "max_step": step, "steps": steps, "model": "fixed time step", "bottleneck": ""}
    return None
