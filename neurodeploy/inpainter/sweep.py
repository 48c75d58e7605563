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
   variant K and variant K' of seed s see the same batches). With
   ``converge`` (``--until-converged``) each model trains at a constant
   learning rate until its validation MSE has converged by the
   :class:`neurodeploy.inpainter.train.ConvergenceRule` (the mean validation MSE
   of its last quarter of epochs, 5 at least, is not 1% below the mean of as many
   epochs before them), between
   ``min_epochs`` and ``max_epochs``; every model's learning curves (train
   and validation MSE per epoch) are kept in the JSON and plotted
   (``learning_curves.png``). A progress line after every epoch gives the
   time left for the whole campaign: for every model still to train, the
   epochs it is expected to take (the mean of the finished models', at
   least ``min_epochs`` and at least the epochs done) times its variant's
   measured seconds per epoch (the mean of all variants' until it has one),
   plus the measured seconds of scoring and deployment per model.
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
4. Per variant, over the seeds that did not collapse (constant output, no learning or a silent chip,
   :func:`neurodeploy.inpainter.sweep_results.collapse_of`; each named with its signs): the mean and the
   spread (sample standard deviation, ``ddof = 1``; 0 for one seed) of every figure, and the
   differences to the twin: ``psnr_vs_twin = psnr_hole - psnr_hole(twin)``,
   ``energy_vs_twin.<profile> = total / total(twin)``.

With a smooth hole fill (``hole_fill="smooth"``, the shipped model's), the
fill alone, without any network, is the ``hole_fill_alone`` entry: the
quality every variant gets for free.

``DIR/sweep.json`` holds it all (rewritten after every trained model, so an
interrupted sweep leaves what it measured), ``DIR/sweep.png`` the plot of
energy (Loihi 2 chip + GPU host) against hole PSNR, ``DIR/learning_curves.png``
the learning curves, ``DIR/report.html`` all of it;
the checkpoints are in ``DIR/models`` (each with its training seconds, ``NAME.seconds.json``),
the bundles in ``DIR/bundles``. ``resume=True`` continues the models of an earlier sweep in the folder:
every checkpoint is written atomically after every epoch with the optimizer's and the random generator's
state, so a sweep interrupted at any point and resumed gives the same models and figures as one run through.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurodeploy.cost.counting import InferenceCounts, host_macs
from neurodeploy.cost.energy import all_cnn
from neurodeploy.cost.hw import load_profile
from neurodeploy.cost.profile import select_profiles
from neurodeploy.cost.report import write_sweep_report
from neurodeploy.errors import UserError
from neurodeploy.inpainter.checkpoint import load_model, read_checkpoint
from neurodeploy.inpainter.conversion import convert
from neurodeploy.inpainter.data import EvalSet, resolve_paths
from neurodeploy.inpainter.evaluate import classical_methods, mean_scores, scnn_inpainter, score
from neurodeploy.inpainter.model import ModelConfig, host_conv_shapes
from neurodeploy.inpainter.profile import profile
from neurodeploy.inpainter.simulation import simulate
from neurodeploy.inpainter.simulator import SimulationInput
from neurodeploy.inpainter.sweep_results import (
    aggregate,
    collapse_of,
    compare_to_twin,
    hole_output_std,
    mean_defined,
    variant_label,
    variant_name,
    write_json,
)
from neurodeploy.inpainter.train import ConvergenceRule, TrainConfig, resolve_device, train
from neurodeploy.io import atomic_path, check_output_folder
from neurodeploy.runtime.backends import BACKENDS

VARIANTS = (0, 1, 2, 3)
PLOT_PROFILE = "loihi2"  # the plot's energy: this chip profile's total, host part on `host`


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
    lr: float = 5e-4
    loss: str = "hole"  # what training minimizes (neurodeploy.inpainter.train.training_loss)
    crop: int = 128
    samples_per_epoch: int = 256
    eval_crop: int = 128
    eval_crops_per_image: int = 4
    tile: int = 128
    force: bool = False  # replace the models of an earlier sweep in `out`
    resume: bool = False  # continue the models of an earlier sweep of the same settings (none retrained)
    model: ModelConfig = field(default_factory=ModelConfig)  # everything but spiking_layers
    converge: ConvergenceRule | None = None  # train each model until converged (then `epochs` is unused)

    @property
    def max_epochs(self) -> int:
        """The epochs a model trains at most: ``epochs``, or the convergence rule's maximum."""
        return self.epochs if self.converge is None else self.converge.max_epochs

    def train_config(self, spiking_layers: int, seed: int) -> TrainConfig:
        """The :class:`neurodeploy.inpainter.train.TrainConfig` of one model of the sweep."""
        return TrainConfig(data=self.data, out=str(model_path(self, spiking_layers, seed)), epochs=self.max_epochs,
                           batch_size=self.batch_size, lr=self.lr, loss=self.loss, crop=self.crop,
                           samples_per_epoch=self.samples_per_epoch, seed=seed, device=self.device,
                           resume=self.resume, force=True, val_crop=self.eval_crop, converge=self.converge)

    def variant_config(self, spiking_layers: int) -> ModelConfig:
        return ModelConfig.from_dict({**self.model.to_dict(), "spiking_layers": spiking_layers})


def check(config: SweepConfig) -> None:
    """Every check that needs no work, as one-line UserErrors, before the first model trains."""

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
    TrainConfig(epochs=config.max_epochs, batch_size=config.batch_size, lr=config.lr, loss=config.loss,
                crop=config.crop,
                samples_per_epoch=config.samples_per_epoch, val_crop=config.eval_crop, converge=config.converge)
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

    path = model_path(config, spiking_layers, seed)
    if not path.exists():
        return
    ckpt = read_checkpoint(path)
    wanted = {"data": config.data, "batch_size": config.batch_size, "lr": config.lr, "loss": config.loss,
              "crop": config.crop,
              "samples_per_epoch": config.samples_per_epoch, "seed": seed, "val_crop": config.eval_crop,
              "converge": None if config.converge is None else dataclasses.asdict(config.converge)}
    had = {key: ckpt.get("train_config", {}).get(key) for key in wanted}
    same_model = ModelConfig.from_dict(dict(ckpt["model_config"])) == config.variant_config(spiking_layers)
    if not same_model or had != wanted or int(ckpt.get("epoch", 0)) > config.max_epochs:
        raise UserError(f"{path} was trained with other settings ({int(ckpt.get('epoch', 0))} epochs, {had}) "
                        "than this sweep asks for", "pass the same settings, or `force=True` to retrain")


def not_variants(config: SweepConfig) -> dict[str, str]:
    """The deeper networks that are not variants, with the reason."""
    reasons = {}
    for k in range(max(VARIANTS) + 1, 7):  # 6: all six layers, which the model refuses as it does the others
        try:
            config.variant_config(k)
        except ValueError as exc:
            reasons["all_spiking" if k == 6 else variant_name(k)] = str(exc)
    return reasons


def twin_energy(config: ModelConfig, shapes: list[tuple[int, int]], profiles: list[str], host: str) -> dict[str, Any]:
    """The all-CNN twin's energy per inference: the whole network on ``host`` (no chip part), for every profile.

    The twin's MACs are those of its six convs (:func:`neurodeploy.cost.counting.host_macs`), averaged over the
    images' sizes, priced by :func:`neurodeploy.cost.energy.all_cnn`.
    """

    macs = float(np.mean([host_macs(host_conv_shapes(config), h, w) for h, w in shapes]))
    counts = InferenceCounts(layers=[], host_macs=round(macs), dense_snn_macs=0, bridge_events={},
                             bridge_bits={})
    joules = all_cnn(counts, load_profile(host))[0]
    return {"host_macs": macs,
            "energy_j": {p: {"chip": 0.0, "host": joules, "bridge": 0.0, "total": joules} for p in profiles}}


def deploy(model: Any, bundle_dir: Path, items: list[Any], config: SweepConfig, seed: int) -> dict[str, Any]:
    """Convert, simulate (fidelity, deployed PSNR) and profile (spikes, energy) one trained model."""

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
            "spike_f1": mean_defined([f["spike_f1"] for f in fidelity]),
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


class CampaignClock:
    """The time left for the whole sweep, from what it has measured so far (module docstring, step 1)."""

    def __init__(self, config: SweepConfig) -> None:
        self.config = config
        self.started = time.perf_counter()
        self.epoch_seconds: dict[int, list[float]] = {}  # spiking layers -> seconds of each epoch trained
        self.finished_epochs: list[int] = []  # epochs each finished model took
        self.after_training: list[float] = []  # seconds of scoring, deploying and pricing each model

    def expected_epochs(self, done: int = 0) -> int:
        """The epochs a model is expected to take in all, ``done`` of them already trained."""
        if self.config.converge is None:
            return self.config.epochs
        guess = round(float(np.mean(self.finished_epochs))) if self.finished_epochs else self.config.converge.min_epochs
        return min(self.config.converge.max_epochs, max(guess, self.config.converge.min_epochs, done))

    def seconds_per_epoch(self, spiking_layers: int) -> float | None:
        measured = self.epoch_seconds.get(spiking_layers)
        if measured:
            return float(np.mean(measured))
        every = [s for seconds in self.epoch_seconds.values() for s in seconds]
        return float(np.mean(every)) if every else None

    def left(self, current: tuple[int, int], epochs_done: int, queued: list[int]) -> float | None:
        """Seconds left: the rest of the current model (``current`` = (spiking layers, seed)), then every
        model in ``queued`` (their spiking-layer counts); None until an epoch has been timed."""
        per_epoch = self.seconds_per_epoch(current[0])
        if per_epoch is None:
            return None
        after = float(np.mean(self.after_training)) if self.after_training else 0.0
        seconds = (self.expected_epochs(epochs_done) - epochs_done) * per_epoch + after
        for k in queued:
            seconds += self.expected_epochs() * (self.seconds_per_epoch(k) or per_epoch) + after
        return seconds

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


@dataclass(frozen=True)
class _Campaign:
    """What every model of a sweep is scored and deployed on: the evaluation images (as crops and as the
    simulator's inputs), the neuromorphic profiles, the clock, the log and the queue of (variant, seed)."""

    config: SweepConfig
    samples: list[Any]
    items: list[SimulationInput]
    profiles: list[str]
    clock: CampaignClock
    log: Callable[[str], None]
    queue: list[tuple[int, int]]


def run_sweep(config: SweepConfig, log: Callable[[str], None] = print, progress: bool = True) -> dict[str, Any]:
    """Train, score, deploy and price every variant for every seed; write ``sweep.json``, ``sweep.png``,
    ``learning_curves.png`` and ``report.html`` into ``config.out``; return the JSON document."""

    check(config)
    clock = CampaignClock(config)
    out = Path(config.out)
    (out / "models").mkdir(parents=True, exist_ok=True)
    samples = list(EvalSet(resolve_paths(config.data, "val"), crop=config.eval_crop,
                           crops_per_image=config.eval_crops_per_image, seed=0))
    items = [SimulationInput(s.name.replace("#", "_"), s.image, s.mask) for s in samples]
    profiles = [p.name for p in select_profiles(config.hw) if p.kind == "neuromorphic"]
    log(f"classical methods on the {len(samples)} evaluation images")
    classical = {name: mean_scores([score(s.image, method(s.image, s.mask), s.mask) for s in samples]).as_dict()
                 for name, method in classical_methods(biharmonic_limit=0).items()}  # holes the crop size bounds
    document: dict[str, Any] = {
        "protocol": _protocol(config, len(samples), resolve_device(config.device)),
        "classical": classical,
        "not_variants": not_variants(config),
        "variants": {},
        "complete": False,
    }
    if config.model.hole_fill == "smooth":  # the fill the network starts from is the classical harmonic fill
        document["hole_fill_alone"] = {**classical["harmonic"], "method": "harmonic",
                                       "note": "the hole fill of hole_fill=smooth alone, no network: every "
                                               "variant's output starts from it"}
    queue = [(k, seed) for k in config.variants for seed in range(config.seeds)]
    campaign = _Campaign(config, samples, items, profiles, clock, log, queue)
    runs: dict[int, list[dict[str, Any]]] = {k: [] for k in config.variants}
    for done, (k, _) in enumerate(queue, start=1):
        runs[k].append(_run_variant(campaign, done, progress))
        document["variants"][variant_name(k)] = {**aggregate(runs[k], k), "per_seed": runs[k]}
        compare_to_twin(document["variants"])
        document["seconds"] = clock.elapsed()
        write_json(out / "sweep.json", document)
    document["complete"] = True
    document["seconds"] = clock.elapsed()
    document["protocol"]["machine"]["load_average_at_end"] = _load_average()
    write_json(out / "sweep.json", document)

    write_sweep_report(out, document)
    return document


def _protocol(config: SweepConfig, images: int, device: Any) -> dict[str, Any]:
    """The JSON's ``protocol``: the settings every variant shares, the measures, the machine."""
    return {
        "variants": list(config.variants), "seeds": list(range(config.seeds)),
        "epochs": "until converged" if config.converge else config.epochs,
        "convergence": None if config.converge is None else config.converge.to_dict(),
        "learning_rate_schedule": "constant" if config.converge else "cosine from lr to 0 over the epochs",
        "batch_size": config.batch_size, "lr": config.lr, "loss": config.loss, "crop": config.crop,
        "samples_per_epoch": config.samples_per_epoch, "data": config.data, "device": str(device),
        "backend": config.backend, "host_profile": config.host, "plot_profile": PLOT_PROFILE,
        "evaluation": {"images": images, "crop": config.eval_crop,
                       "crops_per_image": config.eval_crops_per_image, "seed": 0,
                       "measure": "neurodeploy.inpainter.evaluate: hole PSNR per image from its hole MSE, then "
                                  "averaged; SSIM of the whole image"},
        "validation_mse": "after every epoch: whole-image MSE of the inpainted result on the validation "
                          "photos' crops (neurodeploy.inpainter.train.validation_mse, holes seeded by the "
                          "model's seed)",
        "spread": "sample standard deviation over the seeds (ddof = 1); 0 for one seed",
        "resumed": config.resume,  # True: the models were continued from an earlier sweep in the folder
        "model_config": config.model.to_dict(),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_device": _device_name(device),
                    "load_average_at_start": _load_average()},
    }


def _run_variant(campaign: _Campaign, done: int, progress: bool) -> dict[str, Any]:
    """The ``done``-th model of the queue (1-based): train it, score it, deploy and price it (the twin:
    its host energy); returns its entry of ``per_seed``."""
    config, clock, log, queue = campaign.config, campaign.clock, campaign.log, campaign.queue
    k, seed = queue[done - 1]
    tag = f"[{done}/{len(queue)}]"
    model_config = config.variant_config(k)
    budget = (f"train until converged ({config.converge.min_epochs} to {config.converge.max_epochs} epochs)"
              if config.converge else f"train {config.epochs} epochs")
    log(f"{tag} {variant_label(k)}, seed {seed}: {budget}")
    queued = [later for later, _ in queue[done:]]

    def on_epoch(epoch: int, train_mse: float, val_mse: float, seconds: float) -> None:
        clock.epoch_seconds.setdefault(k, []).append(seconds)
        left = clock.left((k, seed), epoch, queued)
        log(f"{tag} {variant_name(k)} seed {seed} epoch {epoch}: train MSE {train_mse:.5f}, "
            f"validation MSE {val_mse:.5f} ({seconds:.0f} s); sweep {_minutes(clock.elapsed())} so far, "
            + ("time left not yet known" if left is None else f"about {_minutes(left)} left (estimate)"))

    path = model_path(config, k, seed)
    result = train(config.train_config(k, seed), model_config, progress=progress and config.converge is None,
                   on_epoch=on_epoch)
    clock.finished_epochs.append(result.epochs)
    scoring_started = time.perf_counter()
    model, _ = load_model(path)
    samples = campaign.samples
    outputs = [scnn_inpainter(model, seed)(s.image, s.mask) for s in samples]
    scores = mean_scores([score(s.image, output, s.mask) for s, output in zip(samples, outputs, strict=True)])
    seconds = record_training_seconds(path, result.seconds, config.resume)
    run: dict[str, Any] = {"seed": seed, **scores.as_dict(), "val_mse": result.val_losses[-1],
                           "hole_output_std": hole_output_std(outputs, [s.mask for s in samples]),
                           "best_val_mse": min(result.val_losses), "train_seconds": seconds,
                           "epochs_trained": result.epochs, "converged": result.converged,
                           "train_mse_curve": result.train_losses, "val_mse_curve": result.val_losses}
    stop = ("" if result.converged is None else
            f" (converged after {result.epochs} epochs)" if result.converged else
            f" (NOT converged: stopped at the maximum, {result.epochs} epochs)")
    log(f"{tag} {variant_label(k)}, seed {seed}: hole PSNR {scores.psnr_hole:.2f} dB, SSIM {scores.ssim:.4f}{stop}")
    if k == 0:
        run.update(twin_energy(model_config, [s.mask.shape for s in samples], campaign.profiles, config.host))
    else:
        log(f"{tag} {variant_label(k)}, seed {seed}: deploy ({config.backend}) and profile")
        bundle = Path(config.out) / "bundles" / f"{variant_name(k)}_seed{seed}"
        try:
            run["deployment"] = {"measured": True, **deploy(model, bundle, campaign.items, config, seed)}
        except UserError as exc:  # a deployment this neurodeploy cannot make yet: say so, go on
            run["deployment"] = {"measured": False, "reason": str(exc)}
            log(f"{tag} not deployed: {exc}")
    run["collapsed"] = collapse_of(run)  # a run that computes nothing from its input: out of the means
    if run["collapsed"]:
        log(f"{tag} {variant_label(k)}, seed {seed}: COLLAPSED, left out of the means: {'; '.join(run['collapsed'])}")
    clock.after_training.append(time.perf_counter() - scoring_started)
    return run


def _load_average() -> list[float] | None:
    """The machine's load average over 1, 5 and 15 minutes (what else ran beside the sweep), where the OS has one."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def record_training_seconds(model: Path, seconds: float, resume: bool) -> float:
    """A model's training seconds in all, kept beside it (``NAME.seconds.json``): a resumed run adds its own."""

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


def _device_name(device: Any) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()})"
