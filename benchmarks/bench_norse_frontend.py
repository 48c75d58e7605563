"""Norse models through neurodeploy's Norse front end (issue 36): accuracy of Norse's forward vs deployed.

The two networks of ``benchmarks/fidelity_nets.py`` that Norse 1.1's ``to_nir`` cannot
export (``norse_recurrent``: LIFRecurrentCell 64 -> 48, Linear -> 10, LIFCell;
``norse_box_cnn``: Conv 1 -> 8, LIFBoxCell, Flatten, Linear 128 -> 10, LIFBoxCell) are
trained by Norse on the digits as events of section 15 (1000 training, 797 test
digits, T = 20) and converted with the defaults (``convert_module``, what
``neurodeploy convert model.py:build --state state.pt`` runs). Per network, on the
797 test digits:

* the accuracy of Norse's own forward, of the front end's graph in float
  (:func:`neurodeploy.ir.float_run.run_float` on :func:`~neurodeploy.ir.norse_reader.read_norse`)
  and deployed (the reference backend, checked bit-exact on torch for every sample
  and on Lava for the first ``--lava-samples``);
* the deployed output's argmax agreement with Norse's over the samples with a unique
  Norse argmax, and the output spike F1 against Norse's;
* every chip layer's spike F1 against Norse's own spikes of that layer
  (``SequentialState(return_hidden=True)``, end to end: not derived from the toolkit).

    OMP_NUM_THREADS=1 python benchmarks/bench_norse_frontend.py [--json docs/bench_norse_frontend.json]
        [--wide-weights] [--lava-samples K]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from benchmarks import fidelity_nets as nets  # noqa: E402
from neurodeploy.bundle.convert import convert_module  # noqa: E402
from neurodeploy.ir.float_run import run_float  # noqa: E402
from neurodeploy.ir.norse_reader import read_norse  # noqa: E402
from neurodeploy.runtime.graph_run import run_graph  # noqa: E402
from neurodeploy.spike_metrics import output_scores, spike_scores  # noqa: E402

TEST_SAMPLES = 797
BUILDERS = {"norse_recurrent": nets.norse_recurrent, "norse_box_cnn": nets.norse_box_cnn}


def norse_hidden(net: torch.nn.Module, x: np.ndarray) -> list[np.ndarray]:
    """Every module's output over time, Norse's own forward (``return_hidden``), as (N, T, ...) arrays."""
    net.return_hidden = True
    state, steps = None, []
    try:
        with torch.no_grad(), nets.one_thread():
            for t in range(x.shape[1]):
                out, state = net(torch.from_numpy(x[:, t]).float(), state)
                steps.append([o.double().numpy() for o in out])
    finally:
        net.return_hidden = False
    return [np.stack([s[k] for s in steps], 1) for k in range(len(steps[0]))]


def measure(trained: nets.Trained, d: nets.Digits, lava_samples: int, wide: bool = False) -> dict[str, Any]:
    x = trained.inputs(d.x_test.astype(np.float64))
    labels = d.y_test
    library = trained.forward(x)
    shape = None if trained.flat else (1, 8, 8)
    graph = read_norse(trained.module, input_shape=shape)
    (output,) = [n for n, node in graph.nodes.items() if node.kind == "Output"]
    flt = run_float(graph, torch.from_numpy(x))[output].numpy()
    hidden = norse_hidden(trained.module, x)
    with tempfile.TemporaryDirectory() as tmp:
        bundle = convert_module(trained.module, Path(tmp) / "net.bundle", input_shape=shape, wide_weights=wide)
        deployment = bundle.deployment
        kinds = [layer["kind"] for s in bundle.typed_manifest.segments for layer in s.layers or ()]
        deployed = run_graph(deployment, x, "reference")
        torch_exact = run_graph(deployment, x, "torch").exact_vs_reference
        lava = run_graph(deployment, x[:lava_samples], "lava") if lava_samples else None
    layers = {name: spike_scores(deployed.spikes[name], hidden[int(name.rsplit("_", 1)[1])])
              for name in deployment.chip_layers}

    def accuracy(out: np.ndarray) -> float:
        return float(np.mean(out.sum(1).reshape(len(out), -1).argmax(1) == labels))

    return {"network": trained.name, "wide_weights": wide, "chip_layers": list(deployment.chip_layers),
            "chip_kinds": kinds,
            "samples": len(x), "norse_accuracy": accuracy(library), "float_graph_accuracy": accuracy(flt),
            "deployed_accuracy": accuracy(deployed.output), "torch_exact_vs_reference": bool(torch_exact),
            "lava_samples": lava_samples,
            "lava_exact_vs_reference": None if lava is None else bool(
                lava.exact_vs_reference and np.array_equal(lava.output, deployed.output[:lava_samples])),
            "float_vs_norse_max_abs": float(np.abs(flt - library).max()),
            "vs_norse": {**output_scores(deployed.output, library),
                         "output_spike_f1": spike_scores(deployed.output, library)["spike_f1"]},
            "layers_vs_norse": layers, "train_accuracy": trained.train_accuracy}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="default docs/bench_norse_frontend.json (_wide with --wide-weights)")
    parser.add_argument("--wide-weights", action="store_true", help="convert with --wide-weights (two synapses "
                                                                    "per connection)")
    parser.add_argument("--lava-samples", type=int, default=50, help="test samples also run on Lava (default 50)")
    args = parser.parse_args()
    args.json = args.json or ROOT.parent / "docs" / f"bench_norse_frontend{'_wide' if args.wide_weights else ''}.json"
    started = time.perf_counter()
    d = nets.digits_events(test=TEST_SAMPLES)
    rows = []
    for name, build in BUILDERS.items():
        t0 = time.perf_counter()
        r = measure(build(d), d, args.lava_samples, args.wide_weights)
        rows.append(r)
        f1 = ", ".join(f"{n} {s['spike_f1']:.3f}" for n, s in r["layers_vs_norse"].items())
        agreement = r["vs_norse"]["output_agreement_vs_float"]
        print(f"{name}: Norse {r['norse_accuracy']:.3f}, float graph {r['float_graph_accuracy']:.3f}, deployed "
              f"{r['deployed_accuracy']:.3f}; argmax agreement with Norse {agreement:.3f} "
              f"({r['vs_norse']['output_ties']} ties); spike F1 vs Norse: {f1}; output F1 "
              f"{r['vs_norse']['output_spike_f1']:.3f}; torch exact {r['torch_exact_vs_reference']}, Lava exact "
              f"{r['lava_exact_vs_reference']} ({r['lava_samples']} samples); {time.perf_counter() - t0:.1f} s",
              flush=True)
    args.json.write_text(json.dumps({"rows": rows, "seconds": time.perf_counter() - started}, indent=1) + "\n")
    print(f"all in {time.perf_counter() - started:.0f} s; wrote {args.json}")


if __name__ == "__main__":
    main()
