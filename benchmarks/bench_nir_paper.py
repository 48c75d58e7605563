"""The NIR paper's published graphs deployed with `convert`'s defaults (issue 35): per chip layer spike F1, argmax.

The graphs (Pedersen et al., Nat. Commun. 2024; github.com/neuromorphs/NIR,
``paper/03_rnn/braille_noDelay_bias_zero.nir``: snnTorch's Braille classifier,
CubaLIF recurrent with biases, read at dt 1e-4 s as its README says;
``paper/02_cnn/cnn_sinabs.nir``: Sinabs's N-MNIST CNN of integrate-and-fire
layers) are not part of this repository: their paths are arguments. Each is
converted by the CLI (``python -m neurodeploy convert PATH -o BUNDLE`` and
nothing else but the Braille graph's ``--dt 1e-4``: the defaults, ``--weights
auto``), and for comparison with ``--weights 8`` (before issue 35's default)
and ``--weights wide``. Every bundle runs on the ``reference`` backend
(bit-exact with Lava, tests/test_lava_exact.py) on inputs the conversion
never saw:

* Braille: random events, 12 channels, ``--samples`` samples of 100 steps, each
  at a rate drawn uniformly from 0.02 to 0.3 per step (seed 1);
* Sinabs: digit events: scikit-learn's digits (8x8) scaled to 32x32 (each pixel
  4x4), padded to 34x34, both polarity channels Bernoulli events at
  ``0.3 · intensity`` per step, 60 steps (seed 1).

Per network and width: each chip layer's local spike F1 (fed the deployed
upstream, against the float layer) and end-to-end spike F1 (against the float
graph), both by :func:`neurodeploy.runtime.graph_run.fidelity` from the
independent float execution :mod:`neurodeploy.ir.float_run`; the output argmax
agreement with that float execution on the untied samples; convert's own
estimate (the manifest's ``fidelity``) and its warnings; the synaptic
operations per sample (``profile``'s count, :func:`neurodeploy.cost.profile.profile_graph`),
and convert's wall time::

    OMP_NUM_THREADS=1 python benchmarks/bench_nir_paper.py --braille PATH --sinabs PATH [--samples 48]
        [--json docs/bench_nir_paper.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from neurodeploy.bundle.format import Bundle
from neurodeploy.cost.profile import profile_graph
from neurodeploy.runtime.graph_run import fidelity, run_graph

MODES = ("auto", "8", "wide")
SEED = 1


def braille_events(samples: int, steps: int = 100, seed: int = SEED) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rates = rng.uniform(0.02, 0.3, size=(samples, 1, 1))
    return (rng.random((samples, steps, 12)) < rates).astype(np.float64)


def digit_events(samples: int, steps: int = 60, seed: int = SEED, rate: float = 0.3) -> np.ndarray:
    from sklearn.datasets import load_digits  # only where the data is made

    rng = np.random.default_rng(seed)
    images = load_digits().images[rng.permutation(1797)[:samples]] / 16.0
    big = np.pad(np.kron(images, np.ones((4, 4))), ((0, 0), (1, 1), (1, 1)))  # (N, 34, 34)
    p = rate * big[:, None, None]  # (N, 1, 1, 34, 34)
    return (rng.random((samples, steps, 2, 34, 34)) < p).astype(np.float64)


def convert(path: Path, out: Path, mode: str, dt: float | None) -> tuple[float, str]:
    command = [sys.executable, "-m", "neurodeploy", "convert", str(path), "-o", str(out)]
    command += [] if mode == "auto" else ["--weights", mode]  # auto: the default, no option
    command += [] if dt is None else ["--dt", f"{dt:g}"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr}")
    return time.perf_counter() - started, done.stderr


def measure(path: Path, x: np.ndarray, dt: float | None, folder: Path) -> dict[str, Any]:
    rows = {}
    for mode in MODES:
        seconds, stderr = convert(path, folder / f"{path.stem}-{mode}.bundle", mode, dt)
        bundle = Bundle.load(folder / f"{path.stem}-{mode}.bundle")
        run = run_graph(bundle.deployment, x, "reference", check=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fid = fidelity(bundle.deployment, x, run)
            summary, _ = profile_graph(bundle, x[:16], backend="reference")
        layers = [s for s in bundle.manifest["segments"] if s["place"] == "chip"]
        chosen = {layer["name"]: layer for s in layers for layer in s["layers"]}
        rows[mode] = {
            "convert_seconds": seconds,
            "stderr_warnings": [line for line in stderr.splitlines() if line.startswith("warning: chip layer")],
            "layers": [{"name": f["name"], "width": chosen[f["name"]]["fidelity"]["width"],
                        "local_spike_f1": f["local"]["spike_f1"], "end_to_end_spike_f1": f["spike_f1"],
                        "convert_estimate_local": chosen[f["name"]]["fidelity"]["local_spike_f1"],
                        "convert_estimate_end_to_end": chosen[f["name"]]["fidelity"]["end_to_end_spike_f1"]}
                       for f in fid["layers"]],
            "output_agreement_vs_float": fid["output_agreement_vs_float"],
            "output_ties": fid["output_ties"], "samples": len(x),
            "synops_per_sample": float(sum(layer["synops"] for layer in summary["layers"])),
        }
    return rows


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def table(results: dict[str, Any]) -> str:
    lines = ["| network | `--weights` | widths | local spike F1 per layer | end-to-end F1 per layer | argmax vs float "
             "(untied) | synops / sample | convert s |", "|---|---|---|---|---|---|---|---|"]
    for name, rows in results.items():
        for mode, r in rows.items():
            untied = r["samples"] - r["output_ties"]
            lines.append(
                f"| {name} | {mode}{' (default)' if mode == 'auto' else ''} | "
                f"{', '.join(layer['width'] for layer in r['layers'])} | "
                f"{', '.join(_f(layer['local_spike_f1']) for layer in r['layers'])} | "
                f"{', '.join(_f(layer['end_to_end_spike_f1']) for layer in r['layers'])} | "
                f"{_f(r['output_agreement_vs_float'])} of {untied} | {r['synops_per_sample']:.4g} | "
                f"{r['convert_seconds']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--braille", type=Path, required=True, help="braille_noDelay_bias_zero.nir")
    parser.add_argument("--sinabs", type=Path, required=True, help="cnn_sinabs.nir")
    parser.add_argument("--samples", type=int, default=48)
    parser.add_argument("--json", type=Path, default=Path("docs/bench_nir_paper.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = {
            "Braille (snnTorch, CubaLIF recurrent, biases)": measure(args.braille, braille_events(args.samples),
                                                                    1e-4, Path(tmp)),
            "N-MNIST CNN (Sinabs IAF)": measure(args.sinabs, digit_events(args.samples), None, Path(tmp)),
        }
    print(table(results))
    args.json.write_text(json.dumps(results, indent=2))
    print(f"written {args.json}")


if __name__ == "__main__":
    main()
