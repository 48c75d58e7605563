"""How far 8-bit weights alone move a float network's spikes: ONE layer's weights perturbed, all else float.

Issue 22 asks every chip layer's spike F1 against the float graph to be
>= 0.9 (0.95 calibrated), end to end. This measures what the weights' 8-bit
grid alone allows, without the chip: on the networks of
``benchmarks/fidelity_nets.py`` (trained as ``bench_fidelity.py`` trains
them), for each chip layer k, the float graph (float64,
:func:`neurodeploy.ir.float_run.run_float`) with only layer k's synapse
weights W changed, every threshold, decay and other layer exact:

* ``rounded``: ``W -> clip(round(s·W), -127, 127) / s``, the chip's own nearest
  rounding at the layer's static scale ``s`` (:func:`neurodeploy.chip.quantize.quantize_segment`);
* ``half step``: ``W -> W + u / s``, ``u`` uniform in [-1/2, 1/2) (seeded): an
  error as large as rounding's, drawn afresh;
* ``tenth step``: ``W -> W + u / (10·s)``: a tenth of that;

and ``all rounded``: every layer's weights rounded at once (weight-only
quantization). Reported: each chip layer's spike F1 against the unperturbed
float graph (:func:`neurodeploy.spike_metrics.spike_scores`) and the accuracy.
A perturbation of layer k leaves layers before k exact (F1 1), so the table
shows how a weight error in one layer spreads through the later ones::

    OMP_NUM_THREADS=1 python benchmarks/bench_weight_sensitivity.py [--json out.json] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

import fidelity_nets as nets  # noqa: E402  (the builders beside this script)
from bench_fidelity import TEST_SAMPLES, accuracy  # noqa: E402

from neurodeploy.chip.partition import ChipSegment, partition  # noqa: E402
from neurodeploy.chip.quantize import CHIP_WEIGHT_MAX, quantize_segment  # noqa: E402
from neurodeploy.ir.float_run import run_float  # noqa: E402
from neurodeploy.ir.graph import Conv, Dense, Graph  # noqa: E402
from neurodeploy.ir.nir_reader import read_graph  # noqa: E402
from neurodeploy.spike_metrics import spike_scores  # noqa: E402

SEED = 11
PERTURBATIONS = ("rounded", "half step", "tenth step")


def with_weight(graph: Graph, node: str, weight: np.ndarray) -> Graph:
    """``graph`` with synapse ``node``'s weight replaced."""
    nodes = dict(graph.nodes)
    nodes[node] = replace(nodes[node], op=replace(nodes[node].op, weight=weight))
    return replace(graph, nodes=nodes)


def perturbed(weight: np.ndarray, scale: float, how: str, rng: np.random.Generator) -> np.ndarray:
    if how == "rounded":
        return np.clip(np.rint(weight * scale), -CHIP_WEIGHT_MAX, CHIP_WEIGHT_MAX) / scale
    step = {"half step": 1.0, "tenth step": 0.1}[how] / scale
    return weight + step * (rng.random(weight.shape) - 0.5)


def measure(trained: nets.Trained, d: nets.Digits) -> dict[str, Any]:
    x = torch.from_numpy(trained.inputs(d.x_test).astype(np.float64))
    graph = read_graph(trained.graph, dt=trained.dt)
    (segment,) = [s for s in partition(graph).segments if isinstance(s, ChipSegment)]
    scales = [q.weight_scale for q in quantize_segment(segment.layers, payload_max=1)]  # spike input: P = 1
    synapses = [next(n for n in layer.nodes if isinstance(graph.nodes[n].op, (Conv, Dense)))
                for layer in segment.layers]
    names = [layer.name for layer in segment.layers]
    for layer, node in zip(segment.layers, synapses, strict=True):  # the chip's weights are the graph's (pools
        # folded by replicating them), so a step of 1/s on the graph's weight is one on the chip's
        chip = layer.weight_in if hasattr(layer, "weight_in") else layer.weight
        assert np.isclose(np.abs(chip).max(), np.abs(graph.nodes[node].op.weight).max(), rtol=1e-9), node
    output = next(n for n, node in graph.nodes.items() if node.kind == "Output")
    exact = {k: v.numpy() for k, v in run_float(graph, x).items()}

    def scores(g: Graph) -> dict[str, Any]:
        got = {k: v.numpy() for k, v in run_float(g, x).items()}
        return {"accuracy": accuracy(got[output], d.y_test),
                "spike_f1": [spike_scores(got[n], exact[n])["spike_f1"] for n in names]}

    rows = []
    for k, (node, scale) in enumerate(zip(synapses, scales, strict=True)):
        weight = np.asarray(graph.nodes[node].op.weight, np.float64)
        for how in PERTURBATIONS:
            rng = np.random.default_rng([SEED, k])
            rows.append({"layer": k, "perturbation": how, "scale": scale,
                         **scores(with_weight(graph, node, perturbed(weight, scale, how, rng)))})
    every = graph
    for node, scale in zip(synapses, scales, strict=True):
        every = with_weight(every, node, perturbed(np.asarray(graph.nodes[node].op.weight), scale, "rounded", None))
    rows.append({"layer": "all", "perturbation": "rounded", **scores(every)})
    return {"network": trained.name, "library": trained.library, "chip_layers": names,
            "float_accuracy": accuracy(exact[output], d.y_test), "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--only", nargs="*", choices=list(nets.BUILDERS), help="networks to run (default: all)")
    args = parser.parse_args()
    torch.manual_seed(0)
    started = time.perf_counter()
    d = nets.digits_events(test=TEST_SAMPLES)
    results = []
    print("| network | perturbed layer | perturbation | spike F1 per chip layer vs float | accuracy (float) |")
    print("|---|---|---|---|---|")
    for name in args.only or list(nets.BUILDERS):
        r = measure(nets.BUILDERS[name](d), d)
        results.append(r)
        for row in r["rows"]:
            f1 = ", ".join("undefined" if v is None else f"{v:.3f}" for v in row["spike_f1"])
            print(f"| {r['network']} ({r['library']}) | {row['layer']} | {row['perturbation']} | {f1} | "
                  f"{row['accuracy']:.3f} ({r['float_accuracy']:.3f}) |", flush=True)
    print(f"all in {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
