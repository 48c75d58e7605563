"""The sweep's results: variant names, the mean and spread over seeds, the comparison with the twin, sweep.json.

What :mod:`neurodeploy.inpainter.sweep` measures per model becomes, here, one
entry per variant (:func:`aggregate`: mean and sample standard deviation over
the seeds), compared with the all-CNN twin (:func:`compare_to_twin`), written
and read back as ``sweep.json`` (:func:`write_json`, :func:`read_sweep`), and
quoted by the demo (:func:`twin_quality`).

A collapsed run (:func:`collapse_of`) is one whose network does not compute
from its input; it is kept in ``per_seed`` with its signs, named in the
variant's ``collapsed`` and ``means_note``, and left out of every mean,
since a mean over it describes neither it nor the runs that learned. The
signs, each measured on the run's own record:

* ``constant output``: the pixels it writes into the holes of the
  evaluation images (as composited, 8 bits) spread less than half a level
  (standard deviation over every hole pixel and colour of every image,
  ``hole_output_std``): whatever the image, it paints the same value, as a
  network with a dead final ReLU does (all zeros: about 6 dB hole PSNR);
* ``no learning``: the validation MSE is the same at every epoch (two or
  more, relative range below 1e-6): the weights never moved, as when every
  gradient is zero (a dead ReLU passes none);
* ``silent chip``: the deployed spiking stage's last layer emits no spike on
  the evaluation images: the host sees zeros whatever the image, spike F1
  has nothing to score and the chip's energy is that of an idle chip.

A network that learns nothing beyond a smooth hole fill is not collapsed by
these signs (its output follows the fill, which follows the image).
Where a figure comes from fewer seeds than the means (spike F1 has no
spikes to score on a seed, a deployment failed), ``spike_f1_seeds`` and
``energy_seeds`` list the seeds it is over.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from neurodeploy.cost.report import training_budget
from neurodeploy.errors import UserError
from neurodeploy.io import atomic_path
from neurodeploy.text import plural


def variant_name(spiking_layers: int) -> str:
    """``all_cnn`` (0), ``scnn`` (1, the paper's), ``spikingK`` (K >= 2)."""
    return {0: "all_cnn", 1: "scnn"}.get(spiking_layers, f"spiking{spiking_layers}")


def variant_label(spiking_layers: int) -> str:
    return {0: "all-CNN twin", 1: "SC-NN (1 spiking)"}.get(spiking_layers, f"{spiking_layers} spiking layers")


def _stats(values: list[float]) -> tuple[float, float]:
    """(mean, sample standard deviation; 0 for one value)."""
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if array.size > 1 else 0.0


def mean_defined(values: list[float | None]) -> float | None:
    """The mean of the values that are defined (a score is None where it has no spikes to score)."""
    defined = [v for v in values if v is not None]
    return float(np.mean(defined)) if defined else None


CONSTANT_OUTPUT_LEVELS = 0.5  # hole pixels spread less than half an 8-bit level: one value painted everywhere
FLAT_VALIDATION = 1e-6  # relative range of the validation MSE over the epochs below which the weights never moved


def hole_output_std(outputs: list[np.ndarray], masks: list[np.ndarray]) -> float:
    """The standard deviation, in 8-bit levels, of every hole pixel and colour of the inpainted ``outputs``
    (uint8 (H, W, 3)) together, ``masks`` (bool (H, W), True = hole) saying where the holes are."""
    values = np.concatenate([np.asarray(o)[np.asarray(m, bool)].ravel() for o, m in zip(outputs, masks, strict=True)])
    return float(values.astype(np.float64).std()) if values.size else 0.0


def collapse_of(run: dict[str, Any]) -> list[str]:
    """The signs of collapse of one run's record (module docstring), each in words; empty: not collapsed."""
    signs = []
    spread = run.get("hole_output_std")
    if spread is not None and spread < CONSTANT_OUTPUT_LEVELS:
        signs.append(f"constant output: its hole pixels spread {spread:.2f} of an 8-bit level")
    curve = [float(v) for v in run.get("val_mse_curve", [])]
    if len(curve) >= 2 and max(curve) - min(curve) <= FLAT_VALIDATION * max(abs(max(curve)), 1e-12):
        signs.append(f"no learning: validation MSE {curve[-1]:.5f} at all {len(curve)} epochs")
    deployment = run.get("deployment", {})
    if deployment.get("measured") and deployment.get("spikes_per_layer") and deployment["spikes_per_layer"][-1] == 0:
        signs.append("silent chip: its last spiking layer emits no spike")
    return signs


def _seeds(runs: list[dict[str, Any]], of: int) -> str:
    """``seed 0 (1 of 2 seeds)``."""
    listed = ", ".join(str(r["seed"]) for r in runs)
    return f"seed{'s' * (len(runs) > 1)} {listed} ({len(runs)} of {plural(of, 'seed')})"


def _means_note(runs: list[dict[str, Any]], kept: list[dict[str, Any]]) -> str | None:
    """Which seeds the means leave out and why, in words (None: every seed is in them)."""
    left = [r for r in runs if r not in kept]
    if not left:
        return None
    why = "; ".join(f"seed {r['seed']} ({'; '.join(collapse_of(r))})" for r in left)
    if not kept:
        return f"no means: every seed collapsed: {why}"
    return f"means over {_seeds(kept, len(runs))} only; left out, collapsed: {why}"


def aggregate(runs: list[dict[str, Any]], spiking_layers: int) -> dict[str, Any]:
    """A variant's figures over its seeds that did not collapse: mean and spread (module docstring)."""
    out: dict[str, Any] = {"spiking_layers": spiking_layers, "label": variant_label(spiking_layers),
                           "seeds": [r["seed"] for r in runs]}
    kept = [r for r in runs if not collapse_of(r)]
    out["seeds_in_means"] = [r["seed"] for r in kept]
    out["collapsed"] = [{"seed": r["seed"], "signs": collapse_of(r)} for r in runs if r not in kept]
    out["means_note"] = _means_note(runs, kept)
    for key in ("psnr_hole", "ssim", "mse_hole", "val_mse", "train_seconds", "epochs_trained"):
        out[key], out[f"{key}_std"] = _stats([r[key] for r in kept]) if kept else (None, None)
    out["converged"] = [r["converged"] for r in runs]
    deployed = [r for r in kept if r.get("deployment", {}).get("measured")]
    if spiking_layers == 0:
        out["deployed"] = False
        out["fidelity"] = {"spike_f1": None, "note": "n/a: the twin has no spikes"}
        out["spikes"] = 0.0
        out["energy_j"] = {p: {**e, "total_std": 0.0} for p, e in kept[0]["energy_j"].items()} if kept else {}
        out["energy_note"] = "the whole network on the host profile; no chip part, so the same for every chip profile"
        return out
    out["deployed"] = bool(deployed) and len(deployed) == len(kept)
    if not deployed:
        reasons = {r.get("deployment", {}).get("reason", "not run") for r in kept} or {"every seed collapsed"}
        out["fidelity"] = {"spike_f1": None, "note": "not measured: " + "; ".join(sorted(reasons))}
        out["energy_j"] = {}
        out["spikes"] = None
        return out
    d = [r["deployment"] for r in deployed]
    out["energy_seeds"] = [r["seed"] for r in deployed]
    if len(deployed) < len(kept):
        out["energy_note"] = f"energy, spikes and fidelity over {_seeds(deployed, len(kept))}: the others did " \
                             "not deploy"
    out["psnr_hole_deployed"], out["psnr_hole_deployed_std"] = _stats([x["psnr_hole_deployed"] for x in d])
    scored = [r for r in deployed if r["deployment"]["fidelity"]["spike_f1"] is not None]
    f1_mean, f1_std = _stats([r["deployment"]["fidelity"]["spike_f1"] for r in scored]) if scored else (None, None)
    out["fidelity"] = {"spike_f1": f1_mean, "spike_f1_std": f1_std, "spike_f1_seeds": [r["seed"] for r in scored],
                       "psnr_vs_float": _stats([x["fidelity"]["psnr_vs_float"] for x in d])[0],
                       "exact_vs_reference": all(x["fidelity"]["exact_vs_reference"] for x in d)}
    if len(scored) < len(kept):
        why = [*(["no spikes to score on"] if len(scored) < len(deployed) else []),
               *(["no deployment of"] if len(deployed) < len(kept) else [])]
        out["fidelity"]["note"] = f"spike F1 over {_seeds(scored, len(kept))}: {' or '.join(why)} the others"
    out["spikes"], out["spikes_std"] = _stats([x["spikes"] for x in d])
    out["spikes_per_layer"] = [float(v) for v in np.mean([x["spikes_per_layer"] for x in d], axis=0)]
    out["energy_j"] = {}
    for name in d[0]["energy_j"]:
        parts = {part: _stats([x["energy_j"][name][part] for x in d])[0] for part in ("chip", "host", "bridge")}
        total, total_std = _stats([x["energy_j"][name]["total"] for x in d])
        out["energy_j"][name] = {**parts, "total": total, "total_std": total_std}
    if all("energy_all_on_chip_j" in x for x in d):  # convert --chip all of the same models
        out["energy_all_on_chip_j"] = {p: {"total": _stats([x["energy_all_on_chip_j"][p]["total"] for x in d])[0]}
                                       for p in d[0]["energy_all_on_chip_j"]}
    if all("baseline_j" in x for x in d):  # the image pipeline's all-CNN baseline (section 7 of BENCHMARKS)
        out["baseline_j"] = {h: _stats([x["baseline_j"][h] for x in d])[0] for h in d[0]["baseline_j"]}
    return out


def compare_to_twin(variants: dict[str, Any]) -> None:
    """Add ``psnr_vs_twin`` and ``energy_vs_twin`` to every variant, where the twin was run."""
    twin = variants.get(variant_name(0))
    if twin is None:
        return
    for v in variants.values():
        v["psnr_vs_twin"] = None if None in (v["psnr_hole"], twin["psnr_hole"]) else v["psnr_hole"] - twin["psnr_hole"]
        v["energy_vs_twin"] = {p: e["total"] / twin["energy_j"][p]["total"]
                               for p, e in v.get("energy_j", {}).items() if p in twin["energy_j"]}
        v["energy_all_on_chip_vs_twin"] = {p: e["total"] / twin["energy_j"][p]["total"]
                                           for p, e in v.get("energy_all_on_chip_j", {}).items()
                                           if p in twin["energy_j"]}


def twin_quality(sweep: dict[str, Any], spiking_layers: int, source: str) -> dict[str, Any] | None:
    """The quality of the variant with ``spiking_layers`` against the twin in a sweep, or None if it lacks one."""
    variant, twin = sweep["variants"].get(variant_name(spiking_layers)), sweep["variants"].get(variant_name(0))
    if variant is None or twin is None or spiking_layers == 0 or None in (variant["psnr_hole"], twin["psnr_hole"]):
        return None  # no such variant, or every seed of one collapsed: no quality to quote
    fill = sweep.get("hole_fill_alone")
    return {"psnr_hole": variant["psnr_hole"], "twin_psnr_hole": twin["psnr_hole"],
            "psnr_vs_twin": variant["psnr_hole"] - twin["psnr_hole"], "epochs": sweep["protocol"]["epochs"],
            "budget": training_budget(sweep), "seeds": len(sweep["protocol"]["seeds"]), "source": source,
            "fill_psnr_hole": None if fill is None else fill["psnr_hole"]}


def write_json(path: Path, document: dict[str, Any]) -> None:

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(document, indent=2))


def read_sweep(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A ``sweep.json`` written by :func:`run_sweep`, checked for the keys the report and the demo read."""
    try:
        document = json.loads(Path(path).read_text())
        missing = [key for key in ("protocol", "classical", "variants") if key not in document]
        missing += [f"variants.{name}.{key}" for name, v in document["variants"].items()
                    for key in ("spiking_layers", "psnr_hole", "psnr_hole_std", "energy_j") if key not in v]
        if missing:
            raise KeyError(", ".join(missing))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UserError(f"{path} is not a sweep.json written by neurodeploy sweep ({type(exc).__name__}: {exc})",
                        "pass the sweep.json of a `neurodeploy sweep` run") from None
    return document
