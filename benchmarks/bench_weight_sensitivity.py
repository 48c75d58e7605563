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
shows how a weight error in one layer spreads through the later ones.

Wider weights (``--bits B ...``, key ``wide_weights`` of the JSON): would a
chip that carried B-bit weights (Loihi 2, e.g. two synapses per connection, a
high byte at weight exponent e and a low byte at e - 8) keep the spikes? Every
layer's weights at once on the grid B bits wide, the 8-bit grid refined by
2^(B-8)::

    W -> clip(round(s_B·W), -(2^(B-1) - 1), 2^(B-1) - 1) / s_B,   s_B = s·2^(B-8)

(B = 8 is ``all rounded``), thresholds and biases exact; with the decays
either float or also on Loihi's 12-bit grid, which no weight width widens:
``a_q = clip(round(4096·a), 0, 4095)/4096`` and ``b_q = clip(round(4096·b),
1, 4096)/4096`` (:func:`neurodeploy.chip.quantize.quantize_chip_layer`) with
the input gain kept, as the chip keeps it (its threshold θ takes the float
decays): ``tau_mem -> dt/a_q, r -> r·a/a_q`` and ``tau_syn -> dt/b_q, w_in ->
w_in·b/b_q``, so the step ``v = (1 - a_q)·v + a·r·i`` (and ``i = (1 - b_q)·i +
b·w_in·S``) leaks with the rounded decay and takes its input as before.
The decays alone on their grid (float weights) run too::

    OMP_NUM_THREADS=1 python benchmarks/bench_weight_sensitivity.py [--json out.json] [--only NAME ...]
        [--bits B ...]   # default 8 9 ... 16
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

from neurodeploy.chip.cuba import DECAY_UNITY  # noqa: E402
from neurodeploy.chip.partition import ChipSegment, partition  # noqa: E402
from neurodeploy.chip.quantize import CHIP_WEIGHT_MAX, quantize_segment  # noqa: E402
from neurodeploy.ir.float_run import run_float  # noqa: E402
from neurodeploy.ir.graph import NEURON_KINDS, Conv, Dense, Graph, Neuron  # noqa: E402
from neurodeploy.ir.nir_reader import read_graph  # noqa: E402
from neurodeploy.spike_metrics import spike_scores  # noqa: E402

SEED = 11
PERTURBATIONS = ("rounded", "half step", "tenth step")
CHIP_WEIGHT_BITS = 8  # the chip's weight mantissa: ±CHIP_WEIGHT_MAX = ±(2^7 - 1)
WIDE_BITS = tuple(range(8, 17))  # 8 (the chip), 9, ..., 16 (two 8-bit synapses per connection)


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


def on_grid(weight: np.ndarray, scale: float, bits: int) -> np.ndarray:
    """``weight`` rounded to the ``bits``-wide grid at ``scale``·2^(bits-8) (module docstring)."""
    fine, largest = scale * 2.0 ** (bits - CHIP_WEIGHT_BITS), 2 ** (bits - 1) - 1
    return np.clip(np.rint(weight * fine), -largest, largest) / fine


def with_chip_decays(neuron: Neuron) -> Neuron:
    """``neuron`` with its decays on Loihi's 12-bit grid and its input gain unchanged (module docstring)."""
    kind = NEURON_KINDS[neuron.kind]
    out = neuron
    if kind.leaky:
        a = neuron.voltage_decay
        a_q = min(round(a * DECAY_UNITY), DECAY_UNITY - 1) / DECAY_UNITY
        if a_q == 0:  # no leak: the float step v + a·(-v + r·i) cannot say it; none of these networks has it
            raise ValueError(f"voltage decay {a:g} rounds to 0 in 12 bits")
        out = replace(out, tau_mem=neuron.dt / a_q, r=neuron.r * a / a_q)
    if kind.filtered:
        b = neuron.current_decay
        b_q = min(max(round(b * DECAY_UNITY), 1), DECAY_UNITY) / DECAY_UNITY
        out = replace(out, tau_syn=neuron.dt / b_q, w_in=neuron.w_in * b / b_q)
    return out


def measure(trained: nets.Trained, d: nets.Digits, wide_bits: tuple[int, ...] = WIDE_BITS) -> dict[str, Any]:
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
    wide = []
    for decays in ("float", "12-bit"):
        decayed = graph
        if decays == "12-bit":
            for n in names:  # a chip layer is named by its neuron node
                decayed = replace(decayed, nodes={**decayed.nodes, n: replace(
                    decayed.nodes[n], op=with_chip_decays(decayed.nodes[n].op))})
        for bits in ((None,) if decays == "12-bit" else ()) + tuple(wide_bits):
            g = decayed
            for node, scale in zip(synapses, scales, strict=True):
                if bits is not None:
                    g = with_weight(g, node, on_grid(np.asarray(graph.nodes[node].op.weight), scale, bits))
            wide.append({"bits": bits, "decays": decays, **scores(g)})
    return {"network": trained.name, "library": trained.library, "chip_layers": names,
            "float_accuracy": accuracy(exact[output], d.y_test), "rows": rows, "wide_weights": wide}


def _f1(values: list[float | None]) -> str:
    return ", ".join("undefined" if v is None else f"{v:.3f}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--only", nargs="*", choices=list(nets.BUILDERS), help="networks to run (default: all)")
    parser.add_argument("--bits", nargs="*", type=int, default=list(WIDE_BITS),
                        help="weight widths for every layer at once (default: 8 9 ... 16)")
    args = parser.parse_args()
    if any(not CHIP_WEIGHT_BITS <= b <= 24 for b in args.bits):
        parser.error(f"--bits must lie in {CHIP_WEIGHT_BITS}..24")
    torch.manual_seed(0)
    started = time.perf_counter()
    d = nets.digits_events(test=TEST_SAMPLES)
    results = []
    print("| network | perturbed layer | perturbation | spike F1 per chip layer vs float | accuracy (float) |")
    print("|---|---|---|---|---|")
    for name in args.only or list(nets.BUILDERS):
        r = measure(nets.BUILDERS[name](d), d, tuple(args.bits))
        results.append(r)
        for row in r["rows"]:
            print(f"| {r['network']} ({r['library']}) | {row['layer']} | {row['perturbation']} | "
                  f"{_f1(row['spike_f1'])} | {row['accuracy']:.3f} ({r['float_accuracy']:.3f}) |", flush=True)
        for row in r["wide_weights"]:
            width = "float" if row["bits"] is None else f"{row['bits']} bits"
            print(f"| {r['network']} ({r['library']}) | all | {width}, decays {row['decays']} | "
                  f"{_f1(row['spike_f1'])} | {row['accuracy']:.3f} ({r['float_accuracy']:.3f}) |", flush=True)
    print(f"all in {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
