"""``neurodeploy profile``: where the spikes and joules of an inference go.

Runs the spiking stage on a backend (Lava by default) through the spike
bridge, counts every event exactly (:mod:`neurodeploy.cost.counting`), and prices
the counts on hardware profiles (:mod:`neurodeploy.cost.energy`). With several
images every count is averaged: the figures are per inference.

A format-2 bundle (a NIR graph) is profiled by :func:`profile_graph` (or
:func:`profile` given the bundle and X): X (N, T, *input_shape) runs through
the partition (:func:`neurodeploy.runtime.graph_run.run_graph`), and every chip
layer, host node and cut is counted per sample by the rules of
:mod:`neurodeploy.cost.counting`, then averaged over the N samples. The summary
has the inpainter's shape (``layers``, ``host_macs``, ``bridge_bits``,
``energy_j``, ``baseline_j``) plus ``cuts`` (src, dst, direction, payload,
neurons, events, bits); ``baseline_j`` is the whole graph on the host, every
chip layer computed densely every step. A layer with a bias into a filtered
current also counts its always-on bias axons (``bias_axon_spikes``, and
``bias_axon_synops`` inside its ``synops``, so the energy prices them).

Both kinds then go through the same deployment view (:func:`add_deployment`),
from a list of chip layers (:class:`neurodeploy.cost.mapping.ChipLayerInfo`):
``mapping.<profile>`` (cores, chips, fits, limiting, per layer;
:mod:`neurodeploy.cost.mapping`), ``latency_s.<profile>`` (per_step,
per_inference; :mod:`neurodeploy.cost.latency`), ``neurobench`` (NeuroBench's
metrics of the deployed layers; :mod:`neurodeploy.cost.neurobench_metrics`), and
every chip energy re-priced with its static part (static power x chips x
the latency per inference) next to the dynamic part.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from neurodeploy.bundle.deployment import ChipPart, GraphDeployment
from neurodeploy.bundle.format import Bundle
from neurodeploy.bundle.manifest import Cut
from neurodeploy.cost.counting import (
    InferenceCounts,
    LayerCounts,
    chip_layer_counts,
    chip_layer_dense_macs,
    cut_bits,
    events_per_step,
    host_node_macs,
)
from neurodeploy.cost.energy import all_cnn, estimate
from neurodeploy.cost.hw import EnergyProfile, list_profiles, load_profile
from neurodeploy.cost.latency import latency
from neurodeploy.cost.mapping import ChipLayerInfo, map_network, mapping_profiles, resize_conv_chain
from neurodeploy.cost.neurobench_metrics import layer_operations, metrics
from neurodeploy.errors import UserError
from neurodeploy.runtime.backends import LavaModels
from neurodeploy.runtime.graph_run import GraphRun, run_graph
from neurodeploy.runtime.graph_run import fidelity as graph_fidelity

DEFAULT_HOST = "gpu"


def _mean(values: list[Any]) -> Any:
    """Element-wise mean of equally shaped JSON values (numbers, lists, dicts)."""
    first = values[0]
    if isinstance(first, dict):
        return {k: _mean([v[k] for v in values]) for k in first}
    if isinstance(first, list):
        if len({len(v) for v in values}) != 1:
            return first
        return [_mean([v[i] for v in values]) for i in range(len(first))]
    if isinstance(first, (int, float)) and not isinstance(first, bool):
        return float(np.mean(values))
    return first


def select_profiles(names: Iterable[str] | None) -> list[EnergyProfile]:
    """Profiles by name or path; ``None`` means every shipped one."""
    if names is None:
        return list_profiles()
    return [load_profile(name) for name in names]


def price(counts: InferenceCounts, profiles: list[EnergyProfile], host: EnergyProfile) -> dict[str, Any]:
    """Energy per inference on every neuromorphic profile (CNN on ``host``) and the all-CNN baselines."""
    hosts = [p for p in profiles if p.kind == "host"] or [host]
    return {
        "energy_j": {p.name: estimate(counts, p, host).as_dict() for p in profiles if p.kind == "neuromorphic"},
        "baseline_j": {h.name: all_cnn(counts, h)[0] for h in hosts},
    }


def summarize(per_image: list[dict[str, Any]], backend: str, hw: Iterable[str] | None = None,
              host: str = DEFAULT_HOST) -> dict[str, Any]:
    """Counts of simulated images averaged per inference and priced on the profiles."""
    profiles = select_profiles(hw)
    host_profile = load_profile(host)
    if host_profile.kind != "host":
        raise UserError(f"`host={host_profile.name}` is a {host_profile.kind} profile",
                        "pass a host profile such as gpu or cpu")
    if not per_image:
        raise UserError("no images to profile", "pass at least one image")
    summary = _mean(per_image)
    summary.update(price(InferenceCounts.from_dict(summary), profiles, host_profile))
    summary.update({"backend": backend, "images": len(per_image), "host_profile": host_profile.name,
                    "profiles": {p.name: {"kind": p.kind, "description": p.description, "file": p.path}
                                 for p in profiles}})
    return summary


def graph_view(deployment: GraphDeployment, summary: dict[str, Any], hw: Iterable[str] | None,
               host: str) -> dict[str, Any]:
    """Add the deployment view (:func:`add_deployment`) to a graph bundle's summary."""
    infos, weights, biases = graph_chip_layers(deployment, summary["layers"])
    spikes = sum(layer["spikes"] for layer in summary["layers"])
    outputs = sum(layer["neuron_updates"] for layer in summary["layers"])
    nb = metrics(summary.pop("neurobench_operations"), spikes, outputs, weights, biases)
    add_deployment(summary, infos, nb, hw, host)
    return summary


# -- NIR graphs (format-2 bundles) --------------------------------------------------------------

def count_graph_sample(deployment: GraphDeployment, run: GraphRun, cuts: tuple[Cut, ...],
                       n: int) -> InferenceCounts:
    """The exact counts of sample ``n`` of ``run`` (:mod:`neurodeploy.cost.counting`'s rules for graphs)."""

    layers: list[LayerCounts] = []
    operations: list[dict[str, float]] = []
    host_total = dense_total = 0
    steps = 0
    first_payload: dict[int, np.ndarray] = {}
    for part in deployment.parts:
        if not isinstance(part, ChipPart):
            continue
        events = first_payload[part.index] = run.payloads[part.index][n]
        steps = events.shape[0]
        bits = 0 if part.payload == "spikes" else int(part.payload_max).bit_length()
        for layer, name in zip(part.layers, part.names, strict=True):
            spikes = run.spikes[name][n]
            layers.append(chip_layer_counts(name, layer.kind, events.reshape(steps, *layer.input_shape), spikes,
                                            tuple(layer.weight.shape), bits, layer.stride, layer.padding,
                                            layer.bias if layer.bias_site == "current" else None,
                                            layer.synapses_per_connection))
            operations.append(layer_operations(layer.kind, events.reshape(steps, *layer.input_shape), layer.weight,
                                               layer.stride, layer.padding, layer.weight_rec, spikes))
            dense_total += chip_layer_dense_macs(layer.kind, tuple(layer.weight.shape), layer.output_shape) * steps
            events, bits = spikes, 0
    for part in deployment.parts:
        if isinstance(part, ChipPart):
            continue
        for name in part.nodes:
            node = deployment.graph.nodes[name]
            host_total += host_node_macs(node.kind, node.op, tuple(node.output_shape)) * steps
    counted = []
    sums = {"host_to_chip": [0, 0], "chip_to_host": [0, 0]}  # events, bits
    for cut in cuts:
        direction = cut.direction
        neurons = int(np.prod(cut.shape))
        if direction == "host->chip":
            events = events_per_step(first_payload[int(cut.dst_segment or 0)])
        elif cut.src in run.spikes:
            events = events_per_step(run.spikes[cut.src][n])
        else:
            events = np.zeros(0, np.int64)
        crossing = direction in ("host->chip", "chip->host")
        bits = cut_bits(events, neurons, cut.payload) if crossing else 0
        if crossing:
            key = direction.replace("->", "_to_")
            sums[key][0] += int(events.sum())
            sums[key][1] += bits
        counted.append({"src": cut.src, "dst": cut.dst, "direction": direction, "payload": cut.payload,
                        "neurons": neurons, "events": int(events.sum()), "bits": bits})
    return InferenceCounts(layers=layers, host_macs=int(host_total), dense_snn_macs=int(dense_total),
                           bridge_events={k: v[0] for k, v in sums.items()},
                           bridge_bits={k: v[1] for k, v in sums.items()},
                           extra={"cuts": counted, "neurobench_operations": operations})


def summarize_graph(per_sample: list[dict[str, Any]], backend: str, hw: Iterable[str] | None, host: str,
                    timesteps: int, exact_vs_reference: bool) -> dict[str, Any]:
    """:func:`summarize` for a graph bundle's samples."""
    summary = summarize(per_sample, backend, hw, host)
    summary.pop("images")
    summary.update({"kind": "graph", "samples": len(per_sample), "timesteps": timesteps,
                    "exact_vs_reference": exact_vs_reference})
    return summary


def profile_graph(bundle: Bundle, x: np.ndarray, backend: str = "reference", models: LavaModels = "neurodeploy",
                  hw: Iterable[str] | None = None, host: str = DEFAULT_HOST,
                  device: str = "cpu", fidelity: bool = False) -> tuple[dict[str, Any], np.ndarray]:
    """Profile a graph bundle on X (N, T, *input_shape); returns (summary JSON, the first chip layer's
    spikes of the last sample, (T, *shape), for the raster). Counts are per sample, averaged.
    ``fidelity``: also score the run against the float graph (the summary's ``fidelity``,
    :func:`neurodeploy.runtime.graph_run.fidelity`: spike precision, recall and F1 overall and per chip
    layer, output agreement, bit-exactness with the reference backend)."""

    hw = None if hw is None else list(hw)
    select_profiles(hw)  # a bad profile fails before the run
    load_profile(host)
    deployment = bundle.require("graph").deployment
    run = run_graph(deployment, x, backend=backend, models=models, device=device)
    per_sample = [count_graph_sample(deployment, run, bundle.typed_manifest.cuts, n).as_dict()
                  for n in range(x.shape[0])]
    summary = summarize_graph(per_sample, backend, hw, host, int(x.shape[1]), bool(run.exact_vs_reference))
    graph_view(deployment, summary, hw, host)
    if fidelity:
        summary["fidelity"] = graph_fidelity(deployment, x, run)
    first = deployment.chip_layers[0]
    return summary, run.spikes[first][-1]


# -- the deployment view of both kinds: mapping, latency, NeuroBench --------------------------------

def graph_chip_layers(deployment: GraphDeployment, layers: list[dict[str, Any]]
                      ) -> tuple[list[ChipLayerInfo], list[np.ndarray], list[np.ndarray | None]]:
    """The chip layers of a graph bundle (with their averaged counts), their weights and biases as deployed."""

    infos, weights, biases = [], [], []
    counted = iter(layers)
    for part in deployment.parts:
        if not isinstance(part, ChipPart):
            continue
        for layer, name in zip(part.layers, part.names, strict=True):
            c = next(counted)
            infos.append(ChipLayerInfo.of(name, layer, c))
            weights += layer.weights
            biases.append(layer.bias)
    return infos, weights, biases


def add_deployment(summary: dict[str, Any], layers: list[ChipLayerInfo], neurobench: dict[str, Any],
                   hw: Iterable[str] | None, host: str) -> None:
    """Add ``mapping``, ``latency_s`` and ``neurobench`` to a summary and re-price every chip profile with its
    static energy over the modelled latency (module docstring)."""
    profiles = select_profiles(hw)
    host_profile = load_profile(host)
    counts = InferenceCounts.from_dict(summary)
    resize = resize_conv_chain(layers)
    mapping = {p.name: map_network(layers, p, resize) for p in mapping_profiles(profiles)}
    timing = {p.name: latency(layers, mapping.get(p.name), p) for p in profiles if p.kind == "neuromorphic"}
    for p in profiles:
        if p.kind != "neuromorphic":
            continue
        t = timing[p.name]
        chips = (mapping.get(p.name) or {}).get("chips") or 1
        summary["energy_j"][p.name] = estimate(counts, p, host_profile, t["per_inference"] if t else None,
                                               chips).as_dict()
    summary.update({"mapping": mapping, "latency_s": timing, "neurobench": neurobench})
