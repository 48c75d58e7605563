"""``neurodeploy sweep``: the SC-NN against its all-CNN twin and deeper spiking variants, quality and energy.

The network has six conv layers; ``ModelConfig.spiking_layers = K`` makes
the first K of them LIF convolutions (the chip part) and leaves the rest on
the host (:mod:`neurodeploy.inpainter.model`). The variants:

* K = 0, ``all_cnn``: the all-CNN twin, the same six layers with ReLU in
  place of the LIF stage, no spikes; nothing to deploy on a chip,
* K = 1, ``scnn``: the paper's SC-NN, one spiking layer,
* K = 2, 3, ``spiking2``, ``spiking3``: the first host convolutions (stride
  2 in the default encoder-decoder) become LIF convolutions too.

Not variants, and why (``not_variants`` in the JSON): K = 4 would make the
dilated conv a chip layer, which a chip layer cannot be, and the all-spiking
network cannot deploy at all: its last two layers are transposed convs
(upsampling), which Lava-DL netx has no layer for.

Protocol, the same for every variant:

1. Train with :func:`neurodeploy.inpainter.train.train` on the same data, budget
   (``epochs``, ``batch_size``, ``samples_per_epoch``) and seeds (``0 ..
   seeds - 1``; a seed fixes the weights, crops, masks and sample order, so
   variant K and variant K' of seed s see the same batches).
2. Score the float model on the evaluation protocol of
   :mod:`neurodeploy.inpainter.evaluate` (the validation photos, 4 seeded crops each,
   each with a seeded hole, seed 0): hole PSNR and SSIM, with the classical
   methods (Telea, Navier-Stokes, biharmonic, harmonic fill) on the same
   images and holes, once.
3. Deploy (K >= 1): :func:`neurodeploy.inpainter.conversion.convert` to a bundle,
   :func:`neurodeploy.inpainter.simulation.simulate` on the same images (fidelity:
   ``spike_f1`` (the deployed spikes against the float model's, mean over
   images; :mod:`neurodeploy.spike_metrics`), the output's PSNR against the float model,
   bit-exactness with the reference backend, and the deployed output's hole
   PSNR), :func:`neurodeploy.cost.profile.profile` on them (spikes, and energy
   per inference on every neuromorphic profile for the whole deployment:
   chip part + host part on ``host`` + bridge, :mod:`neurodeploy.cost.energy`).
   Every K deploys the same way: the spiking stack is one chip segment of
   the general partitioner (stride-2 layers included), tiled over the image.
   The twin's energy is the whole network on the host,
   :func:`neurodeploy.cost.energy.all_cnn` of its MACs (:func:`neurodeploy.cost.counting.host_macs`),
   the same for every chip profile, as it uses no chip.
4. Per variant, over the seeds: the mean and the spread (sample standard
   deviation, ``ddof = 1``; 0 for one seed) of every figure, and the
   differences to the twin: ``psnr_vs_twin = psnr_hole - psnr_hole(twin)``,
   ``energy_vs_twin.<profile> = total / total(twin)``.

``DIR/sweep.json`` holds it all (rewritten after every trained model, so an
interrupted sweep leaves what it measured), ``DIR/sweep.png`` the plot of
energy (Loihi 2 chip + GPU host) against hole PSNR, ``DIR/report.html`` both;
the checkpoints are in ``DIR/models`` (each with its training seconds, ``NAME.seconds.json``),
the bundles in ``DIR/bundles``. ``resume=True`` continues the models of an earlier sweep in the folder.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neurodeploy.errors import UserError
from neurodeploy.inpainter.model import ModelConfig

VARIANTS = (0, 1, 2, 3)
PLOT_PROFILE = "loihi2"  # the plot's energy: this chip profile's total, host part on `host`
ALL_SPIKING_REASON = ("all six layers spiking cannot deploy: layers 4 and 5 are transposed convs (upsampling) "
                      "and Lava-DL netx has no transposed conv layer; layer 3 is a dilated conv, which a chip "
                      "layer cannot be either")


def variant_name(spiking_layers: int) -> str:
    """``all_cnn`` (0), ``scnn`` (1, the paper's), ``spikingK`` (K >= 2)."""
    return {0: "all_cnn", 1: "scnn"}.get(spiking_layers, f"spiking{spiking_layers}")


def variant_label(spiking_layers: int) -> str:
    return {0: "all-CNN twin", 1: "SC-NN (1 spiking)"}.get(spiking_layers, f"{spiking_layers} spiking layers")


@dataclass(frozen=True)
class SweepConfig:
    """Options of ``neurodeploy sweep`` (module docstring)."""

    out: str
    variants: tuple[int, ...] = VARIANTS
    seeds: int = 2
    epochs: int = 10
    data: str = "builtin"
    device: str = "auto"
    backend: str = "lava"
    hw: tuple[str, ...] | None = None  # chip profiles to price (None: every shipped one)
    host: str = "gpu"
    batch_size: int = 8
    lr: float = 2e-3
    crop: int = 128
    samples_per_epoch: int = 256
    eval_crop: int = 128
    eval_crops_per_image: int = 4
    tile: int = 128
    force: bool = False  # replace the models of an earlier sweep in `out`
    resume: bool = False  # continue the models of an earlier sweep of the same settings (none retrained)
    model: ModelConfig = field(default_factory=ModelConfig)  # everything but spiking_layers

    def variant_config(self, spiking_layers: int) -> ModelConfig:
        return ModelConfig.from_dict({**self.model.to_dict(), "spiking_layers": spiking_layers})


def check(config: SweepConfig) -> None:
    """Every check that needs no work, as one-line UserErrors, before the first model trains."""
    from neurodeploy.cost.hw import load_profile
    from neurodeploy.cost.profile import select_profiles
    from neurodeploy.inpainter.data import resolve_paths
    from neurodeploy.inpainter.train import TrainConfig, resolve_device
    from neurodeploy.io import check_output_folder
    from neurodeploy.runtime.backends import BACKENDS

    if not config.variants or len(set(config.variants)) != len(config.variants):
        raise UserError(f"`variants={','.join(map(str, config.variants))}` must list distinct spiking-layer counts",
                        "pass e.g. `variants=0,1,2,3`")
    for k in config.variants:
        try:
            config.variant_config(k)
        except ValueError as exc:
            raise UserError(f"variant with {k} spiking layers: {exc}", "leave it out of `variants`") from None
    if config.seeds < 1:
        raise UserError(f"`seeds={config.seeds}` must be at least 1", "pass e.g. `seeds=2`")
    if config.eval_crops_per_image < 1 or config.tile < 1:
        raise UserError("`eval_crops_per_image` and `tile` must be at least 1", "pass positive numbers")
    if config.backend not in BACKENDS:
        raise UserError(f"unknown `backend={config.backend}`", f"pass one of {', '.join(BACKENDS)}")
    TrainConfig(epochs=config.epochs, batch_size=config.batch_size, lr=config.lr, crop=config.crop,
                samples_per_epoch=config.samples_per_epoch, val_crop=config.eval_crop)
    if config.samples_per_epoch < config.batch_size:
        raise UserError("`samples_per_epoch` is smaller than `batch_size`", "raise `samples_per_epoch`")
    resolve_device(config.device)
    resolve_paths(config.data, "train")
    resolve_paths(config.data, "val")
    profiles = [p for p in select_profiles(config.hw) if p.kind == "neuromorphic"]
    if not profiles:
        raise UserError("`hw` names no neuromorphic profile", "pass e.g. `hw=loihi2`")
    if load_profile(config.host).kind != "host":
        raise UserError(f"`host={config.host}` is not a host profile", "pass e.g. `host=gpu`")
    out = check_output_folder(config.out)
    if config.resume and config.force:
        raise UserError("both `resume=True` and `force=True` given", "pass one: continue the models or replace them")
    if config.resume:
        for k in config.variants:
            for seed in range(config.seeds):
                check_resumable(config, k, seed)
    elif (out / "models").is_dir() and any((out / "models").iterdir()) and not config.force:
        raise UserError(f"{out / 'models'} already holds trained models, which the sweep would replace",
                        "pass `resume=True` to continue them or `force=True` to replace them")


def model_path(config: SweepConfig, spiking_layers: int, seed: int) -> Path:
    return Path(config.out) / "models" / f"{variant_name(spiking_layers)}_seed{seed}.pt"


def check_resumable(config: SweepConfig, spiking_layers: int, seed: int) -> None:
    """With `resume`, an existing checkpoint must be of the same variant, seed and training settings."""
    from neurodeploy.inpainter.checkpoint import read_checkpoint

    path = model_path(config, spiking_layers, seed)
    if not path.exists():
        return
    ckpt = read_checkpoint(path)
    wanted = {"data": config.data, "batch_size": config.batch_size, "lr": config.lr, "crop": config.crop,
              "samples_per_epoch": config.samples_per_epoch, "seed": seed, "val_crop": config.eval_crop}
    had = {key: ckpt.get("train_config", {}).get(key) for key in wanted}
    same_model = ModelConfig.from_dict(dict(ckpt["model_config"])) == config.variant_config(spiking_layers)
    if not same_model or had != wanted or int(ckpt.get("epoch", 0)) > config.epochs:
        raise UserError(f"{path} was trained with other settings ({int(ckpt.get('epoch', 0))} epochs, {had}) "
                        "than this sweep asks for", "pass the same settings, or `force=True` to retrain")


def not_variants(config: SweepConfig) -> dict[str, str]:
    """The deeper networks that are not variants, with the reason."""
    reasons = {}
    for k in range(max(VARIANTS) + 1, 6):
        try:
            config.variant_config(k)
            continue
        except ValueError as exc:
            reasons[variant_name(k)] = str(exc)
    reasons["all_spiking"] = ALL_SPIKING_REASON
    return reasons


def _stats(values: list[float]) -> tuple[float, float]:
    """(mean, sample standard deviation; 0 for one value)."""
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if array.size > 1 else 0.0


def twin_energy(config: ModelConfig, shapes: list[tuple[int, int]], profiles: list[str], host: str) -> dict[str, Any]:
    """The all-CNN twin's energy per inference: the whole network on ``host`` (no chip part), for every profile.

    The twin's MACs are those of its six convs (:func:`neurodeploy.cost.counting.host_macs`), averaged over the
    images' sizes, priced by :func:`neurodeploy.cost.energy.all_cnn`.
    """
    from neurodeploy.cost.counting import InferenceCounts, host_macs
    from neurodeploy.cost.energy import all_cnn
    from neurodeploy.cost.hw import load_profile
    from neurodeploy.inpainter.model import host_conv_shapes

    macs = float(np.mean([host_macs(host_conv_shapes(config), h, w) for h, w in shapes]))
    counts = InferenceCounts(layers=[], host_macs=round(macs), dense_snn_macs=0, bridge_events={},
                             bridge_bits={})
    joules = all_cnn(counts, load_profile(host))[0]
    return {"host_macs": macs,
            "energy_j": {p: {"chip": 0.0, "host": joules, "bridge": 0.0, "total": joules} for p in profiles}}


def deploy(model: Any, bundle_dir: Path, items: list[Any], config: SweepConfig, seed: int) -> dict[str, Any]:
    """Convert, simulate (fidelity, deployed PSNR) and profile (spikes, energy) one trained model."""
    from neurodeploy.inpainter.conversion import convert
    from neurodeploy.inpainter.evaluate import mean_scores, score
    from neurodeploy.inpainter.profile import profile
    from neurodeploy.inpainter.simulation import simulate

    bundle = convert(model, bundle_dir, force=True, tile=config.tile)
    report = simulate(bundle, items, backend=config.backend, seed=seed)  # type: ignore[arg-type]
    fidelity = [r["fidelity"] for r in report.results]
    deployed = mean_scores([score(item.image, report.outputs[item.name], item.mask) for item in items])
    summary, _ = profile(bundle, items, backend=config.backend, hw=config.hw, host=config.host,  # type: ignore
                         seed=seed)
    # the same model with every layer the chip runs on it (convert --chip all): its energy beside the hybrid's
    on_chip = convert(model, bundle_dir.with_name(f"{bundle_dir.name}_all"), force=True, tile=config.tile, chip="all")
    all_summary, _ = profile(on_chip, items, backend=config.backend, hw=config.hw, host=config.host,  # type: ignore
                             seed=seed)
    return {
        "psnr_hole_deployed": deployed.psnr_hole,
        "fidelity": {
            "spike_f1": _mean_defined([f["spike_f1"] for f in fidelity]),
            "psnr_vs_float": float(np.mean([f["psnr_vs_float"] for f in fidelity])),
            "exact_vs_reference": all(bool(f["exact_vs_reference"]) for f in fidelity),
        },
        "spikes": float(sum(layer["spikes"] for layer in summary["layers"])),
        "spikes_per_layer": [float(layer["spikes"]) for layer in summary["layers"]],
        "host_macs": float(summary["host_macs"]),
        "bridge_bits": float(summary["bridge_bits"]),
        "energy_j": {name: {"chip": e["snn"], "host": e["host"], "bridge": e["bridge"], "total": e["total"]}
                     for name, e in summary["energy_j"].items()},
        "baseline_j": summary["baseline_j"],
        "energy_all_on_chip_j": {name: {"chip": e["snn"], "host": e["host"], "bridge": e["bridge"],
                                        "total": e["total"]} for name, e in all_summary["energy_j"].items()},
        "simulate_seconds": report.seconds["total"],
    }


def _mean_defined(values: list[float | None]) -> float | None:
    """The mean of the values that are defined (a score is None where it has no spikes to score)."""
    defined = [v for v in values if v is not None]
    return float(np.mean(defined)) if defined else None


def aggregate(runs: list[dict[str, Any]], spiking_layers: int) -> dict[str, Any]:
    """A variant's figures over its seeds: mean and spread (module docstring)."""
    out: dict[str, Any] = {"spiking_layers": spiking_layers, "label": variant_label(spiking_layers),
                           "seeds": [r["seed"] for r in runs]}
    for key in ("psnr_hole", "ssim", "mse_hole", "val_mse", "train_seconds"):
        out[key], out[f"{key}_std"] = _stats([r[key] for r in runs])
    deployed = [r for r in runs if r.get("deployment", {}).get("measured")]
    if spiking_layers == 0:
        out["deployed"] = False
        out["fidelity"] = {"spike_f1": None, "note": "n/a: the twin has no spikes"}
        out["spikes"] = 0.0
        out["energy_j"] = {p: {**e, "total_std": 0.0} for p, e in runs[0]["energy_j"].items()}
        out["energy_note"] = "the whole network on the host profile; no chip part, so the same for every chip profile"
        return out
    out["deployed"] = bool(deployed) and len(deployed) == len(runs)
    if not deployed:
        reasons = {r.get("deployment", {}).get("reason", "not run") for r in runs}
        out["fidelity"] = {"spike_f1": None, "note": "not measured: " + "; ".join(sorted(reasons))}
        out["energy_j"] = {}
        out["spikes"] = None
        return out
    d = [r["deployment"] for r in deployed]
    out["psnr_hole_deployed"], out["psnr_hole_deployed_std"] = _stats([x["psnr_hole_deployed"] for x in d])
    f1 = [x["fidelity"]["spike_f1"] for x in d if x["fidelity"]["spike_f1"] is not None]
    f1_mean, f1_std = _stats(f1) if f1 else (None, None)
    out["fidelity"] = {"spike_f1": f1_mean, "spike_f1_std": f1_std,
                       "psnr_vs_float": _stats([x["fidelity"]["psnr_vs_float"] for x in d])[0],
                       "exact_vs_reference": all(x["fidelity"]["exact_vs_reference"] for x in d)}
    out["spikes"], out["spikes_std"] = _stats([x["spikes"] for x in d])
    out["spikes_per_layer"] = [float(v) for v in np.mean([x["spikes_per_layer"] for x in d], axis=0)]
    out["energy_j"] = {}
    for profile in d[0]["energy_j"]:
        parts = {part: _stats([x["energy_j"][profile][part] for x in d])[0] for part in ("chip", "host", "bridge")}
        total, total_std = _stats([x["energy_j"][profile]["total"] for x in d])
        out["energy_j"][profile] = {**parts, "total": total, "total_std": total_std}
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
        v["psnr_vs_twin"] = v["psnr_hole"] - twin["psnr_hole"]
        v["energy_vs_twin"] = {p: e["total"] / twin["energy_j"][p]["total"]
                               for p, e in v.get("energy_j", {}).items() if p in twin["energy_j"]}
        v["energy_all_on_chip_vs_twin"] = {p: e["total"] / twin["energy_j"][p]["total"]
                                           for p, e in v.get("energy_all_on_chip_j", {}).items()
                                           if p in twin["energy_j"]}


def run_sweep(config: SweepConfig, log: Callable[[str], None] = print, progress: bool = True) -> dict[str, Any]:
    """Train, score, deploy and price every variant for every seed; write ``sweep.json``, ``sweep.png`` and
    ``report.html`` into ``config.out``; return the JSON document."""
    from neurodeploy.cost.profile import select_profiles
    from neurodeploy.inpainter.data import EvalSet, resolve_paths
    from neurodeploy.inpainter.evaluate import classical_methods, mean_scores, scnn_inpainter, score
    from neurodeploy.inpainter.simulator import SimulationInput
    from neurodeploy.inpainter.train import TrainConfig, resolve_device, train

    check(config)
    started = time.perf_counter()
    out = Path(config.out)
    (out / "models").mkdir(parents=True, exist_ok=True)
    samples = list(EvalSet(resolve_paths(config.data, "val"), crop=config.eval_crop,
                           crops_per_image=config.eval_crops_per_image, seed=0))
    items = [SimulationInput(s.name.replace("#", "_"), s.image, s.mask) for s in samples]
    profiles = [p.name for p in select_profiles(config.hw) if p.kind == "neuromorphic"]
    log(f"classical methods on the {len(samples)} evaluation images")
    classical = {name: mean_scores([score(s.image, method(s.image, s.mask), s.mask) for s in samples]).as_dict()
                 for name, method in classical_methods().items()}
    device = resolve_device(config.device)
    document: dict[str, Any] = {
        "protocol": {
            "variants": list(config.variants), "seeds": list(range(config.seeds)), "epochs": config.epochs,
            "batch_size": config.batch_size, "lr": config.lr, "crop": config.crop,
            "samples_per_epoch": config.samples_per_epoch, "data": config.data, "device": str(device),
            "backend": config.backend, "host_profile": config.host, "plot_profile": PLOT_PROFILE,
            "evaluation": {"images": len(samples), "crop": config.eval_crop,
                           "crops_per_image": config.eval_crops_per_image, "seed": 0,
                           "measure": "neurodeploy.inpainter.evaluate: hole PSNR per image from its hole MSE, then "
                                      "averaged; SSIM of the whole image"},
            "spread": "sample standard deviation over the seeds (ddof = 1); 0 for one seed",
            "resumed": config.resume,  # True: the models were continued from an earlier sweep in the folder
            "model_config": config.model.to_dict(),
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_device": _device_name(device)},
        },
        "classical": classical,
        "not_variants": not_variants(config),
        "variants": {},
        "complete": False,
    }
    runs: dict[int, list[dict[str, Any]]] = {k: [] for k in config.variants}
    total, done = len(config.variants) * config.seeds, 0
    for k in config.variants:
        model_config = config.variant_config(k)
        for seed in range(config.seeds):
            done += 1
            name = f"{variant_name(k)}_seed{seed}"
            log(f"[{done}/{total}] {variant_label(k)}, seed {seed}: train {config.epochs} epochs")
            path = model_path(config, k, seed)
            result = train(TrainConfig(data=config.data, out=str(path), epochs=config.epochs,
                                       batch_size=config.batch_size, lr=config.lr, crop=config.crop,
                                       samples_per_epoch=config.samples_per_epoch, seed=seed, device=config.device,
                                       resume=config.resume, force=True, val_crop=config.eval_crop),
                           model_config, progress=progress)
            from neurodeploy.inpainter.checkpoint import load_model

            model, _ = load_model(path)
            scores = mean_scores([score(s.image, scnn_inpainter(model, seed)(s.image, s.mask), s.mask)
                                  for s in samples])
            seconds = record_training_seconds(path, result.seconds, config.resume)
            run: dict[str, Any] = {"seed": seed, **scores.as_dict(), "val_mse": result.val_losses[-1],
                                   "train_seconds": seconds}
            log(f"[{done}/{total}] {variant_label(k)}, seed {seed}: hole PSNR {scores.psnr_hole:.2f} dB, "
                f"SSIM {scores.ssim:.4f}")
            if k == 0:
                run.update(twin_energy(model_config, [s.mask.shape for s in samples], profiles, config.host))
            else:
                log(f"[{done}/{total}] {variant_label(k)}, seed {seed}: deploy ({config.backend}) and profile")
                try:
                    run["deployment"] = {"measured": True, **deploy(model, out / "bundles" / name, items, config,
                                                                      seed)}
                except UserError as exc:  # a deployment this neurodeploy cannot make yet: say so, go on
                    run["deployment"] = {"measured": False, "reason": str(exc)}
                    log(f"[{done}/{total}] not deployed: {exc}")
            runs[k].append(run)
            document["variants"][variant_name(k)] = {**aggregate(runs[k], k), "per_seed": runs[k]}
            compare_to_twin(document["variants"])
            document["seconds"] = time.perf_counter() - started
            write_json(out / "sweep.json", document)
    document["complete"] = True
    document["seconds"] = time.perf_counter() - started
    write_json(out / "sweep.json", document)
    from neurodeploy.cost.report import write_sweep_report

    write_sweep_report(out, document)
    return document


def record_training_seconds(model: Path, seconds: float, resume: bool) -> float:
    """A model's training seconds in all, kept beside it (``NAME.seconds.json``): a resumed run adds its own."""
    from neurodeploy.io import atomic_path

    path = model.with_suffix(".seconds.json")
    earlier = 0.0
    if resume and path.is_file():
        try:
            earlier = float(json.loads(path.read_text())["train_seconds"])
        except (OSError, ValueError, KeyError, TypeError):
            earlier = 0.0
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"train_seconds": earlier + seconds}))
    return earlier + seconds


def twin_quality(sweep: dict[str, Any], spiking_layers: int, source: str) -> dict[str, Any] | None:
    """The quality of the variant with ``spiking_layers`` against the twin in a sweep, or None if it lacks one."""
    variant, twin = sweep["variants"].get(variant_name(spiking_layers)), sweep["variants"].get(variant_name(0))
    if variant is None or twin is None or spiking_layers == 0:
        return None
    return {"psnr_hole": variant["psnr_hole"], "twin_psnr_hole": twin["psnr_hole"],
            "psnr_vs_twin": variant["psnr_hole"] - twin["psnr_hole"], "epochs": sweep["protocol"]["epochs"],
            "seeds": len(sweep["protocol"]["seeds"]), "source": source}


def _device_name(device: Any) -> str:
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()})"


def write_json(path: Path, document: dict[str, Any]) -> None:
    from neurodeploy.io import atomic_path

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

