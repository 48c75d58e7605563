"""Graphs from other libraries, converted and run: placement, fidelity and bit-exactness (issue 13).

Each network is built and exported to NIR by its own library (the builders of
``tests/test_chip_segments.py``: snnTorch, Sinabs, Norse, Rockpool), written with
``neurodeploy.convert`` (a format-2 bundle, the graph in it written by ``nir.write``) and
run with ``neurodeploy simulate --input X.npy --backend lava`` on seeded
binary inputs. Per network the table gives the nodes, the placement, Lava's
agreement with the independent float execution of the graph (all chip
layers; the output's argmax), whether Lava equals the NumPy reference bit for
bit, and the reference's agreement with the library's own forward pass (the
first chip layer's spikes; the argmax of the summed output spikes), and the
host values clipped at host->chip cuts (``fidelity["cuts"]``), and the Lava
step time of the graph's chip segments on its own payloads, stock lava-dl
models against neurodeploy's one-process segment (``LAVA_SAMPLES`` samples,
best of ``LAVA_ROUNDS`` rounds, compile time apart; every segment summed)::

    python benchmarks/bench_graphs.py [--json graphs.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from neurodeploy import convert  # noqa: E402
from tests import test_chip_segments as cases  # noqa: E402  (the test builders: one place for the networks)


def _networks() -> dict[str, tuple[str, object, object, np.ndarray, dict[str, np.ndarray], float | None]]:
    """name -> (library, module, NIR graph, input X (N, T, ...), the library's spikes per chip layer, dt)."""
    out = {}
    net, graph = cases._mlp_net()
    x = cases._binary((cases.SAMPLES, cases.STEPS, 20), 0.3, seed=2)
    out["LIF MLP"] = ("snnTorch", net, graph, x, cases._snntorch_forward(net, x, {1: "1", 3: "3"}), 1e-4)
    net, graph = cases._recurrent_net()
    x = cases._binary((cases.SAMPLES, cases.STEPS, 8), 0.3, seed=3)
    out["recurrent CubaLIF, biases"] = ("snnTorch", net, graph, x,
                                        cases._snntorch_forward(net, x, {1: "1.lif", 3: "3"}), 1e-4)
    net, graph = cases._sinabs_net()
    x = cases._binary((cases.SAMPLES, cases.STEPS, 2, 16, 16), 0.5, seed=1)
    out["IF conv net (untrained)"] = ("Sinabs", net, graph, x, cases._sinabs_forward(net, x), None)
    net, graph, _ = cases._trained_sinabs_net()
    x, _ = cases._patterns(cases.HELD_OUT, (2, 16, 16), seed=11)
    out["IF conv net (trained)"] = ("Sinabs", net, graph, x, cases._sinabs_forward(net, x), None)
    net, graph, _ = cases._trained_norse_net()
    x, _ = cases._patterns(cases.HELD_OUT, (20,), seed=21)
    with torch.no_grad():
        library = {n: v.numpy() for n, v in cases._norse_spikes(net, torch.from_numpy(x).float()).items()}
    out["LIF MLP (trained)"] = ("Norse", net, graph, x, library, cases.NORSE_DT)
    for name, tau_mem in (("LIF MLP (trained)", cases.ROCKPOOL_TAU_MEM), ("LIF MLP, tau_mem 10 ms (trained)", 1e-2)):
        net, graph, _ = cases._trained_rockpool_net(tau_mem=tau_mem)
        x, _ = cases._patterns(cases.HELD_OUT, (20,), seed=31)
        with torch.no_grad():
            library = {n: v.numpy() for n, v in cases._rockpool_spikes(net, torch.from_numpy(x).float()).items()}
        out[name + " "] = ("Rockpool", net, graph, x, library, cases.ROCKPOOL_DT)  # a space: a second key
    return out


LAVA_SAMPLES, LAVA_ROUNDS = 4, 3


def lava_step_seconds(bundle: Path, x: np.ndarray) -> dict[str, float]:
    """Seconds per Lava step of the bundle's chip segments, per models, on the payloads the graph feeds them."""
    import time

    from neurodeploy.bundle.deployment import ChipPart
    from neurodeploy.bundle.format import Bundle
    from neurodeploy.runtime.graph_run import run_graph
    from neurodeploy.runtime.lava.segment_run import LavaSegment

    deployment = Bundle.load(bundle).deployment
    payloads = run_graph(deployment, x[:LAVA_SAMPLES], backend="reference").payloads
    out = {}
    for models in ("stock", "neurodeploy"):
        total = 0.0
        for part in deployment.parts:
            if not isinstance(part, ChipPart):
                continue
            frames = payloads[part.index]
            with LavaSegment(part.path, timesteps=frames.shape[1], input_message_bits=part.input_message_bits,
                             models=models) as seg:  # type: ignore[arg-type]
                best = float("inf")
                for _ in range(LAVA_ROUNDS):
                    started = time.perf_counter()
                    for sample in frames:
                        seg.run(sample)
                    best = min(best, (time.perf_counter() - started) / (len(frames) * seg.steps))
            total += best
        out[models] = total
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write the rows as JSON")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i, (name, (library, _, graph, x, library_spikes, dt)) in enumerate(_networks().items()):
            convert(graph, root / f"{i}.bundle", dt=dt)  # writes the graph as graph.nir (nir.write)
            m = cases._measure((None, graph, x, library_spikes, dt))
            manifest = json.loads((root / f"{i}.bundle" / "manifest.json").read_text())
            np.save(root / f"{i}.npy", x.astype(np.float32))
            sim = subprocess.run([sys.executable, "-m", "neurodeploy", "simulate", str(root / f"{i}.bundle"),
                                  "--input", str(root / f"{i}.npy"), "-o", str(root / f"{i}.npz"),
                                  "--json", str(root / f"{i}.json"), "--backend", "lava"],
                                 check=True, capture_output=True, text=True)
            assert sim.returncode == 0
            fidelity = json.loads((root / f"{i}.json").read_text())["fidelity"]
            chip = [layer for s in manifest["segments"] if s["place"] == "chip" for layer in s["layers"]]
            step = lava_step_seconds(root / f"{i}.bundle", x)
            rows.append({
                "network": name.strip(), "library": library, "nodes": len(graph.nodes),
                "chip_layers": [layer["kind"] for layer in chip], "host_nodes": len(manifest["host_nodes"]),
                "samples": int(x.shape[0]), "timesteps": int(x.shape[1]),
                "lava_exact_vs_reference": fidelity["exact_vs_reference"],
                "lava_spike_f1_vs_float": fidelity["spike_f1"],
                "lava_output_agreement_vs_float": fidelity["output_agreement_vs_float"],
                "reference_first_layer_vs_library": m["first_layer"],
                "reference_argmax_vs_library": m["argmax"],
                "float_vs_library": m["float_vs_library"],
                "clipped_at_cuts": sum(c["clipped"] for c in fidelity["cuts"]),
                "lava_s_per_step": step, "lava_speedup_vs_stock": step["stock"] / step["neurodeploy"],
            })
    print("| network | library | NIR nodes | chip layers | host nodes | Lava = reference | spike F1 vs float "
          "| argmax vs float (untied) | 1st layer vs library | argmax vs library | float vs library | clipped at cuts "
          "| Lava s/step, stock / ours |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['network']} | {r['library']} | {r['nodes']} | {', '.join(r['chip_layers'])} | "
              f"{r['host_nodes']} | {r['lava_exact_vs_reference']} | {r['lava_spike_f1_vs_float']:.4f} | "
              f"{r['lava_output_agreement_vs_float']:.3f} | {r['reference_first_layer_vs_library']:.4f} | "
              f"{r['reference_argmax_vs_library']:.3f} | {r['float_vs_library']:.4f} | {r['clipped_at_cuts']} | "
              f"{r['lava_s_per_step']['stock']:.2e} / {r['lava_s_per_step']['neurodeploy']:.2e} "
              f"({r['lava_speedup_vs_stock']:.1f}x) |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
