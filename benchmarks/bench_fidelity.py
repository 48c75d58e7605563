"""Accuracy kept, measured against each library's own execution (issue 22): digits as events, one network a library.

Each network of ``benchmarks/fidelity_nets.py`` is trained by its own library
on rate-coded scikit-learn digits and exported by its own exporter. On the
held-out samples the script measures, per network:

* the accuracy of the library's own forward pass (float32, the library's code);
* the accuracy of the NIR graph in float (:func:`neurodeploy.ir.float_run.run_float`
  on :func:`neurodeploy.ir.nir_reader.read_graph` of the export);
* the deployed accuracy through the real path: :func:`neurodeploy.inpainter.conversion.convert_graph`
  -> bundle -> :func:`neurodeploy.runtime.graph_run.run_graph` on ``lava`` (every test
  sample by default; ``--lava-samples K`` for the first K), checked bit-exact
  with the ``reference`` backend, whose output the scores are computed from
  (the same spikes: the check fails otherwise);
* every chip layer's spike F1 against the float graph, end to end and on the
  layer's own deployed upstream (``local``: its own error, not compounded),
  as ``simulate``'s JSON reports them (:func:`neurodeploy.runtime.graph_run.fidelity`);
* the deployed output against the library's own output (:func:`neurodeploy.runtime.graph_run.compare_scores`,
  what ``simulate --compare`` reports), and the float graph against the library
  (where the export and the forward disagree, and on how many samples' argmax);
* the same with calibrated quantization, ``convert_graph(..., calibrate=X_cal)``,
  when that keyword exists (otherwise "not run"), once per rounding mode
  (``rounding=``: ``nearest``, the scale alone; ``local`` and ``end_to_end``,
  the mantissas rounded for the layer's outputs, :mod:`neurodeploy.chip.calibration`),
  with each layer's rounding record from the manifest.

With ``--draws K`` the float graph and the two deployments (static and
calibrated) also run on K - 1 further seeded event draws of every test digit
(:func:`fidelity_nets.redraw_test_events`: the same digits, never trained on,
fresh spikes) on the ``reference`` backend, the first draw being the one
above (checked against Lava); per network the accuracy gap deployed - float
graph over all K draws, with its paired standard error and the exact McNemar
count of discordant samples (:func:`paired_gap`): one draw of 797 digits
resolves 0.125 points, too coarse for a 0.3-point bar.

Plus one single LIF neuron (NIR ``Affine([[1]]) -> LIF(tau 2.5 ms, r 1, v_th 0.1)``
at dt 0.1 ms) driven by seeded spikes: float spikes against deployed spikes.
Seeds are fixed; the JSON goes next to the table (docs/bench_fidelity.json)::

    OMP_NUM_THREADS=1 python benchmarks/bench_fidelity.py [--json docs/bench_fidelity.json] [--lava-samples K]
        [--draws K] [--wide-weights]

``--wide-weights`` deploys every network (static and calibrated) with wide
weights, two synapses per connection (``convert --wide-weights``,
:mod:`neurodeploy.chip.quantize`), into docs/bench_fidelity_wide.json;
otherwise ``convert``'s default, ``--weights auto`` (issue 35: per layer 8 bits
or wide weights, chosen on a probe, :mod:`neurodeploy.chip.precision`).

``--choice`` (issue 35) measures instead, per network, the default before
(``--weights 8``) against the default now (``auto``), static, side by side on
the test samples (reference backend): the width chosen per layer, each chip
layer's local and end-to-end spike F1, the argmax agreement with the float
graph and the accuracy, convert's wall time, and the synaptic operations per
sample each choice costs (``profile``'s count on the first ``CHOICE_SYNOPS_SAMPLES``),
into docs/bench_fidelity_choice.json::

    OMP_NUM_THREADS=1 python benchmarks/bench_fidelity.py --choice
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import nir
import numpy as np
import torch

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

import fidelity_nets as nets  # noqa: E402  (the builders beside this script)

from neurodeploy.bundle.convert import convert_graph  # noqa: E402
from neurodeploy.chip.calibration import DEFAULT_ROUNDING, ROUNDINGS  # noqa: E402
from neurodeploy.cost.profile import profile_graph  # noqa: E402
from neurodeploy.ir.float_run import run_float  # noqa: E402
from neurodeploy.ir.nir_reader import read_graph  # noqa: E402
from neurodeploy.runtime.graph_run import compare_scores, fidelity, run_graph  # noqa: E402
from neurodeploy.spike_metrics import output_scores  # noqa: E402

CALIBRATION_SAMPLES = 100  # training samples the calibrated quantization sees
TEST_SAMPLES = 797  # every digit the 1000 training samples leave: one sample is 0.125 points
DRAWS = 100  # seeded event draws of each test digit the accuracy gap is measured on
BAR_POINTS = 0.3  # issue 22: deployed accuracy within 0.3 points of the float graph's
LIF_SAMPLES, LIF_STEPS, LIF_RATE, LIF_DT = 32, 200, 0.3, 1e-4
CHOICE_SYNOPS_SAMPLES = 64


def accuracy(output: np.ndarray, labels: np.ndarray) -> float:
    """How often the argmax of the output (N, T, *classes) summed over time is the label."""
    return float(np.mean(output.sum(1).reshape(len(output), -1).argmax(1) == labels))


def correct(output: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per sample, whether the argmax of the output summed over time (ties: the first index) is the label."""
    return output.sum(1).reshape(len(output), -1).argmax(1) == labels


def paired_gap(deployed: np.ndarray, flt: np.ndarray, digits: int) -> dict[str, Any]:
    """The accuracy gap deployed - float over paired samples (draw-major: ``draws·digits`` booleans each).

    With d_i = correct_deployed_i - correct_float_i in {-1, 0, 1} over the n
    samples: gap = 100·mean(d) points; ``se_points`` = 100·std(d)/sqrt(n), the
    samples taken as independent; ``se_points_by_digit`` = 100·std(D_j)/sqrt(m)
    over the m digits' means D_j of d across their draws, which also counts
    that the draws of one digit are alike (a borderline digit flips in many
    draws): the larger of the two, and the one the verdict uses. The exact
    McNemar test counts the discordant samples, b (deployed right, float
    wrong) and c (deployed wrong, float right): gap = 100·(b - c)/n, and
    p = min(1, 2·P(Binomial(b + c, 1/2) <= min(b, c))) for "no difference".
    Verdict against the bar: ``within`` if |gap| + 1.96·se < 0.3, ``outside``
    if |gap| - 1.96·se > 0.3, else ``undecided`` (se by digit).
    """
    d = deployed.astype(np.float64) - flt
    n = d.size
    by_digit = d.reshape(-1, digits).mean(0)
    b, c = int(np.count_nonzero(d > 0)), int(np.count_nonzero(d < 0))
    tail = sum(math.comb(b + c, i) for i in range(min(b, c) + 1)) / 2 ** (b + c)
    gap, se = 100 * d.mean(), 100 * d.std(ddof=1) / math.sqrt(n)
    se_digit = 100 * by_digit.std(ddof=1) / math.sqrt(digits)
    verdict = ("within" if abs(gap) + 1.96 * se_digit < BAR_POINTS
               else "outside" if abs(gap) - 1.96 * se_digit > BAR_POINTS else "undecided")
    return {"samples": n, "draws": n // digits, "float_accuracy": float(flt.mean()),
            "deployed_accuracy": float(deployed.mean()), "gap_points": float(gap), "se_points": float(se),
            "se_points_by_digit": float(se_digit), "deployed_right_float_wrong": b, "deployed_wrong_float_right": c,
            "mcnemar_p": min(1.0, 2 * tail), "verdict_vs_0_3_points": verdict}


def argmax_differs(a: np.ndarray, b: np.ndarray) -> int:
    """On how many samples the argmax of the outputs summed over time differ (ties: the first index)."""
    return int(np.count_nonzero(a.sum(1).reshape(len(a), -1).argmax(1) != b.sum(1).reshape(len(b), -1).argmax(1)))


def can_calibrate() -> bool:
    return "calibrate" in inspect.signature(convert_graph).parameters


def roundings() -> tuple[str, ...]:
    """The rounding modes convert_graph takes with ``calibrate`` (none before the keyword existed)."""
    return ROUNDINGS if "rounding" in inspect.signature(convert_graph).parameters else ()


def deploy(graph: Any, dt: float | None, x: np.ndarray, lava_samples: int, folder: Path,
           calibrate: np.ndarray | None = None, rounding: str | None = None, wide: bool = False) -> dict[str, Any]:
    """Convert, run every sample on the reference and the first ``lava_samples`` on Lava; compare them."""
    started = time.perf_counter()
    options: dict[str, Any] = {"wide_weights": True} if wide else {}
    if calibrate is not None:  # convert_graph reads the calibration samples from a file, as the CLI does
        np.save(folder.with_suffix(".calibration.npy"), calibrate)
        options["calibrate"] = folder.with_suffix(".calibration.npy")
    if rounding is not None:
        options["rounding"] = rounding
    bundle = convert_graph(graph, folder, dt=dt, **options)
    deployment = bundle.deployment
    reference = run_graph(deployment, x, "reference")
    out: dict[str, Any] = {"deployment": deployment, "reference": reference,
                           "calibration": bundle.manifest.get("calibration"),
                           "chip_kinds": [layer["kind"] for s in bundle.manifest["segments"] if s["place"] == "chip"
                                          for layer in s["layers"]]}
    if lava_samples:
        lava = run_graph(deployment, x[:lava_samples], "lava")
        out["lava_exact"] = bool(lava.exact_vs_reference and np.array_equal(lava.output,
                                                                             reference.output[:lava_samples]))
        out["lava_seconds"] = lava.seconds
    out["seconds"] = time.perf_counter() - started
    return out


def layer_f1(got: dict[str, Any], x: np.ndarray) -> dict[str, Any]:
    """Per chip layer, the spike scores against the float graph end to end, with ``local`` inside."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a silent layer shows in the table as an undefined F1
        fid = fidelity(got["deployment"], x, got["reference"])
    return {layer["name"]: layer for layer in fid["layers"]}


def measure(trained: nets.Trained, d: nets.Digits, lava_samples: int,
            calibration_samples: int = CALIBRATION_SAMPLES, draws: int = 1, wide: bool = False) -> dict[str, Any]:
    x = trained.inputs(d.x_test).astype(np.float64)
    library = trained.forward(x).astype(np.float64)
    graph = read_graph(trained.graph, dt=trained.dt)
    flt = {k: v.numpy() for k, v in run_float(graph, torch.from_numpy(x)).items()}
    output_node = next(n for n, node in graph.nodes.items() if node.kind == "Output")
    float_out = flt[output_node]
    row: dict[str, Any] = {
        "network": trained.name, "library": trained.library, "dt": trained.dt,
        "tau_convention": graph.tau_convention, "train_accuracy": trained.train_accuracy,
        "test_samples": len(x), "timesteps": int(x.shape[1]),
        "library_accuracy": accuracy(library, d.y_test), "float_graph_accuracy": accuracy(float_out, d.y_test),
        "float_graph_vs_library": {**compare_scores(float_out, library),
                                   "argmax_differs": argmax_differs(float_out, library)},
    }
    with tempfile.TemporaryDirectory() as tmp:
        got = deploy(trained.graph, trained.dt, x, lava_samples, Path(tmp) / "bundle", wide=wide)
        names = got["deployment"].chip_layers
        deployed = got["reference"].output
        row.update({
            "chip_layers": list(names), "chip_kinds": got["chip_kinds"], "lava_samples": lava_samples,
            "lava_exact_vs_reference": got.get("lava_exact"), "convert_and_run_seconds": got["seconds"],
            "deployed_accuracy": accuracy(deployed, d.y_test),
            "deployed_vs_float_graph": {**output_scores(deployed, float_out),
                                        "argmax_differs": argmax_differs(deployed, float_out)},
            "layers_vs_float": layer_f1(got, x),
            "vs_compare": {**compare_scores(deployed, library), "argmax_differs": argmax_differs(deployed, library)},
        })
        row["calibrated"], row["calibrated_by_rounding"] = None, {}
        deployments = {"static": (got["deployment"], deployed)}  # each with its output on the first draw
        if can_calibrate():
            cal = trained.inputs(d.x_train[:calibration_samples]).astype(np.float64)
            for mode in roundings() or (None,):
                got = deploy(trained.graph, trained.dt, x, lava_samples if mode == DEFAULT_ROUNDING else 0,
                             Path(tmp) / f"calibrated-{mode}", calibrate=cal, rounding=mode, wide=wide)
                result = {"deployed_accuracy": accuracy(got["reference"].output, d.y_test),
                          "layers_vs_float": layer_f1(got, x), "lava_exact_vs_reference": got.get("lava_exact"),
                          "calibration_layers": got["calibration"]["layers"]}
                if mode is None or mode == DEFAULT_ROUNDING:  # what `convert --calibrate` does
                    row["calibrated"] = result
                    deployments["calibrated"] = (got["deployment"], got["reference"].output)
                if mode is not None:
                    row["calibrated_by_rounding"][mode] = result
        row["gap_over_draws"] = gap_over_draws(trained, d, graph, output_node, float_out, deployments, draws)
    row["accuracy_gap_points"] = 100 * (row["deployed_accuracy"] - row["float_graph_accuracy"])
    return row


def gap_over_draws(trained: nets.Trained, d: nets.Digits, graph: Any, output_node: str, float_out: np.ndarray,
                   deployments: dict[str, tuple[Any, np.ndarray]], draws: int) -> dict[str, Any]:
    """:func:`paired_gap` of each deployment against the float graph over ``draws`` event draws of the test digits.

    Draw 0 is the one the rest of the row measured (outputs passed in, Lava
    checked on it); draws 1.. are :func:`fidelity_nets.redraw_test_events`,
    run on the ``reference`` backend (bit-exact with Lava).
    """
    started = time.perf_counter()
    flt = [correct(float_out, d.y_test)]
    dep = {name: [correct(out, d.y_test)] for name, (_, out) in deployments.items()}
    for draw in range(1, draws):
        x = trained.inputs(nets.redraw_test_events(draw, test=len(d.y_test))).astype(np.float64)
        flt.append(correct(run_float(graph, torch.from_numpy(x))[output_node].numpy(), d.y_test))
        for name, (deployment, _) in deployments.items():
            dep[name].append(correct(run_graph(deployment, x, "reference").output, d.y_test))
    out: dict[str, Any] = {name: paired_gap(np.concatenate(v), np.concatenate(flt), len(d.y_test))
                           for name, v in dep.items()}
    out["seconds"] = time.perf_counter() - started
    return out


def single_lif_graph() -> nir.NIRGraph:
    """NIR Affine(weight [[1]]) -> LIF(tau 2.5 ms, r 1, v_threshold 0.1, v_leak 0, v_reset 0): one neuron."""
    one = np.ones(1)
    return nir.NIRGraph(
        nodes={"input": nir.Input(np.array([1])), "affine": nir.Affine(np.array([[1.0]]), np.zeros(1)),
               "lif": nir.LIF(tau=np.full(1, 2.5e-3), r=one, v_leak=np.zeros(1), v_threshold=np.full(1, 0.1),
                              v_reset=np.zeros(1)),
               "output": nir.Output(np.array([1]))},
        edges=[("input", "affine"), ("affine", "lif"), ("lif", "output")])


def measure_single_lif(lava_samples: int) -> dict[str, Any]:
    graph = single_lif_graph()
    x = (np.random.default_rng(7).random((LIF_SAMPLES, LIF_STEPS, 1)) < LIF_RATE).astype(np.float64)
    with tempfile.TemporaryDirectory() as tmp:
        got = deploy(graph, LIF_DT, x, min(lava_samples, LIF_SAMPLES), Path(tmp) / "bundle")
        row = {"network": "single LIF", "library": "NIR (by hand)", "dt": LIF_DT, "samples": LIF_SAMPLES,
               "timesteps": LIF_STEPS, "input_rate": LIF_RATE, "lava_samples": min(lava_samples, LIF_SAMPLES),
               "lava_exact_vs_reference": got.get("lava_exact"),
               "layers_vs_float": layer_f1(got, x)}
        if can_calibrate():
            cal = (np.random.default_rng(8).random((LIF_SAMPLES, LIF_STEPS, 1)) < LIF_RATE).astype(np.float64)
            got = deploy(graph, LIF_DT, x, 0, Path(tmp) / "calibrated", calibrate=cal)
            row["calibrated"] = {"layers_vs_float": layer_f1(got, x)}
        else:
            row["calibrated"] = None
    return row


def _f(value: float | None, digits: int = 3) -> str:
    return "undefined" if value is None else f"{value:.{digits}f}"


def table(rows: list[dict[str, Any]]) -> str:
    """The markdown table of docs/BENCHMARKS.md."""
    lines = ["| network | library | chip layers | library acc | NIR float acc | deployed acc | deployed - NIR "
             "(points) | Lava = reference | spike F1 per chip layer vs float: end to end (own) | vs library: "
             "output F1 / argmax agreement | float graph vs library: argmax differs | calibrated: acc / F1 per layer |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    modes = [m for m in ROUNDINGS if any(m in r.get("calibrated_by_rounding", {}) for r in rows)]
    if modes:
        lines[0] = lines[0][:-1] + "".join(f"| calibrated, rounding {m}: acc / F1 per layer (rounding kept) "
                                           for m in modes) + "|"
        lines[1] += "---|" * len(modes)
    def f1s(layers: dict[str, Any]) -> str:
        return ", ".join(f"{_f(s['spike_f1'])} ({_f(s['local']['spike_f1'])})" for s in layers.values())

    def rounded(cal: dict[str, Any]) -> str:
        kept = "".join("r" if c["rounding"] != "nearest" else "n" for c in cal["calibration_layers"])
        return f"{cal['deployed_accuracy']:.3f} / {f1s(cal['layers_vs_float'])} ({kept})"

    for r in rows:
        f1 = f1s(r["layers_vs_float"])
        cal = r["calibrated"]
        calibrated = "not run" if cal is None else (
            f1s(cal["layers_vs_float"]) if "deployed_accuracy" not in cal
            else f"{cal['deployed_accuracy']:.3f} / " + f1s(cal["layers_vs_float"]))
        lava = f"{_yes(r['lava_exact_vs_reference'])} ({r['lava_samples']} samples)"
        if "deployed_accuracy" not in r:  # the single LIF: spikes only
            lines.append(f"| {r['network']} | {r['library']} | 1 | - | - | - | - | {lava} | {f1} | - | - | "
                         f"{calibrated} |" + " - |" * len(modes))
            continue
        v, fl = r["vs_compare"], r["float_graph_vs_library"]
        by_mode = r.get("calibrated_by_rounding", {})
        extra = "".join(f" {rounded(by_mode[m])} |" if m in by_mode else " - |" for m in modes)
        lines.append(
            f"| {r['network']} | {r['library']} | {', '.join(r['chip_kinds'])} | {r['library_accuracy']:.3f} | "
            f"{r['float_graph_accuracy']:.3f} | {r['deployed_accuracy']:.3f} | {r['accuracy_gap_points']:+.1f} | "
            f"{lava} | {f1} | {_f(v.get('spike_f1'))} / {_f(v['output_agreement_vs_float'])} | "
            f"{fl['argmax_differs']} of {r['test_samples']} (F1 {_f(fl.get('spike_f1'))}) | {calibrated} |" + extra)
    return "\n".join(lines)


def gap_table(rows: list[dict[str, Any]]) -> str:
    """The markdown table of the accuracy gap over the event draws (docs/BENCHMARKS.md)."""
    lines = ["| network | library | quantization | float graph acc | deployed acc | gap (points) | SE paired "
             "| SE by digit | deployed right, float wrong | deployed wrong, float right | McNemar p "
             "| within 0.3 points |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        for name, g in r.get("gap_over_draws", {}).items():
            if name == "seconds":
                continue
            lines.append(f"| {r['network']} | {r['library']} | {name} | {g['float_accuracy']:.4f} | "
                         f"{g['deployed_accuracy']:.4f} | {g['gap_points']:+.3f} | {g['se_points']:.3f} | "
                         f"{g['se_points_by_digit']:.3f} | {g['deployed_right_float_wrong']} | "
                         f"{g['deployed_wrong_float_right']} | {g['mcnemar_p']:.3f} | {g['verdict_vs_0_3_points']} |")
    return "\n".join(lines)


def _yes(flag: bool | None) -> str:
    return "not run" if flag is None else "yes" if flag else "NO"


def measure_choice(trained: nets.Trained, d: nets.Digits) -> dict[str, Any]:
    """``--choice``: the network converted with ``--weights 8`` and ``auto`` (module docstring)."""
    x = trained.inputs(d.x_test).astype(np.float64)
    row: dict[str, Any] = {"network": trained.name, "samples": len(x)}
    with tempfile.TemporaryDirectory() as tmp:
        for weights in ("8", "auto"):
            started = time.perf_counter()
            bundle = convert_graph(trained.graph, Path(tmp) / weights, dt=trained.dt, weights=weights)
            seconds = time.perf_counter() - started
            run = run_graph(bundle.deployment, x, "reference", check=False)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fid = fidelity(bundle.deployment, x, run)
                summary, _ = profile_graph(bundle, x[:CHOICE_SYNOPS_SAMPLES], backend="reference")
            chip = [layer for s in bundle.manifest["segments"] if s["place"] == "chip" for layer in s["layers"]]
            row[weights] = {
                "widths": [layer["fidelity"]["width"] for layer in chip], "convert_seconds": seconds,
                "local_f1": [f["local"]["spike_f1"] for f in fid["layers"]],
                "end_to_end_f1": [f["spike_f1"] for f in fid["layers"]],
                "argmax_vs_float": fid["output_agreement_vs_float"], "ties": fid["output_ties"],
                "accuracy": accuracy(run.output, d.y_test),
                "synops_per_sample": float(sum(layer["synops"] for layer in summary["layers"])),
                "warnings": bundle.manifest["fidelity"]["warnings"]}
    return row


def choice_table(rows: list[dict[str, Any]]) -> str:
    """The markdown table of ``--choice`` (docs/BENCHMARKS.md)."""
    lines = ["| network | `--weights` | widths | local spike F1 | end-to-end spike F1 | argmax vs float | accuracy | "
             "synops / sample | convert s |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        for weights in ("8", "auto"):
            c = r[weights]
            lines.append(f"| {r['network']} | {weights}{' (before)' if weights == '8' else ' (default)'} | "
                         f"{', '.join(c['widths'])} | {', '.join(_f(v) for v in c['local_f1'])} | "
                         f"{', '.join(_f(v) for v in c['end_to_end_f1'])} | {_f(c['argmax_vs_float'])} | "
                         f"{c['accuracy']:.3f} | {c['synops_per_sample']:.4g} | {c['convert_seconds']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="default docs/bench_fidelity.json, with --wide-weights "
                                                  "docs/bench_fidelity_wide.json")
    parser.add_argument("--lava-samples", type=int, default=None,
                        help="held-out samples also run on Lava (default: every one)")
    parser.add_argument("--only", nargs="*", choices=list(nets.BUILDERS), help="networks to run (default: all)")
    parser.add_argument("--calibration-samples", type=int, default=CALIBRATION_SAMPLES,
                        help=f"training samples the calibrated quantization sees (default {CALIBRATION_SAMPLES})")
    parser.add_argument("--draws", type=int, default=DRAWS,
                        help=f"seeded event draws of each test digit for the accuracy gap (default {DRAWS})")
    parser.add_argument("--wide-weights", action="store_true",
                        help="deploy with wide weights (two synapses per connection, convert --wide-weights)")
    parser.add_argument("--choice", action="store_true",
                        help="--weights 8 against auto per network, with the synaptic operations (module docstring)")
    args = parser.parse_args()
    if args.choice:
        choice(args)
        return
    args.json = args.json or ROOT.parent / "docs" / f"bench_fidelity{'_wide' if args.wide_weights else ''}.json"
    if args.draws < 1:
        parser.error("--draws must be at least 1")
    torch.manual_seed(0)
    started = time.perf_counter()
    d = nets.digits_events(test=TEST_SAMPLES)
    print(f"digits: {len(d.x_train)} training / {len(d.x_test)} test samples of {d.x_train.shape[1]} steps; "
          f"calibrated quantization {'available' if can_calibrate() else 'not available: not run'}", flush=True)
    rows = []
    for name in args.only or list(nets.BUILDERS):
        t0 = time.perf_counter()
        trained = nets.BUILDERS[name](d)
        print(f"{name}: trained in {time.perf_counter() - t0:.1f} s (train accuracy {trained.train_accuracy:.3f})",
              flush=True)
        rows.append(measure(trained, d, len(d.x_test) if args.lava_samples is None else args.lava_samples,
                            args.calibration_samples, args.draws, args.wide_weights))
        r = rows[-1]
        print(f"{name}: library {r['library_accuracy']:.3f}, NIR float {r['float_graph_accuracy']:.3f}, deployed "
              f"{r['deployed_accuracy']:.3f}, Lava = reference {_yes(r['lava_exact_vs_reference'])} "
              f"({time.perf_counter() - t0:.1f} s)", flush=True)
        for name_, g in r["gap_over_draws"].items():
            if name_ != "seconds":
                print(f"  {name_}, {g['draws']} draws: gap {g['gap_points']:+.3f} +- {g['se_points_by_digit']:.3f} "
                      f"points (b {g['deployed_right_float_wrong']}, c {g['deployed_wrong_float_right']}): "
                      f"{g['verdict_vs_0_3_points']} ({r['gap_over_draws']['seconds']:.1f} s)", flush=True)
    rows.append(measure_single_lif(LIF_SAMPLES if args.lava_samples is None else args.lava_samples))
    seconds = time.perf_counter() - started
    print(f"single LIF: spike F1 {_f(rows[-1]['layers_vs_float']['lif']['spike_f1'])}; all in {seconds:.0f} s",
          flush=True)
    print(table(rows))
    print(gap_table(rows))
    args.json.write_text(json.dumps({"seconds": seconds, "torch_threads": torch.get_num_threads(),
                                     "calibration_available": can_calibrate(),
                                     "calibration_samples": args.calibration_samples, "draws": args.draws,
                                     "wide_weights": args.wide_weights,
                                     "rows": rows}, indent=2))
    print(f"JSON: {args.json}")


def choice(args: argparse.Namespace) -> None:
    torch.manual_seed(0)
    d = nets.digits_events(test=TEST_SAMPLES)
    rows = []
    for name in args.only or list(nets.BUILDERS):
        rows.append(measure_choice(nets.BUILDERS[name](d), d))
        print(choice_table(rows[-1:]), flush=True)
    print(choice_table(rows))
    path = args.json or ROOT.parent / "docs" / "bench_fidelity_choice.json"
    path.write_text(json.dumps({"torch_threads": torch.get_num_threads(), "rows": rows}, indent=2))
    print(f"JSON: {path}")


if __name__ == "__main__":
    main()
