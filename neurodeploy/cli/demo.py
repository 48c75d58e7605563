"""``neurodeploy demo`` and ``neurodeploy sweep``: the inpainter's journey and its comparison with its all-CNN twin."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from neurodeploy.cli.app import app, console
from neurodeploy.cli.inputs import read_model_config, share
from neurodeploy.cost.report import sweep_notes, training_budget
from neurodeploy.errors import UserError
from neurodeploy.inpainter.demo import StageProgress, run_demo
from neurodeploy.inpainter.sd_placement import PLACEMENTS
from neurodeploy.inpainter.sweep import SweepConfig, run_sweep
from neurodeploy.inpainter.train import ConvergenceRule
from neurodeploy.runtime.backends import backend_help
from neurodeploy.text import plural


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for everything the demo writes.")] = Path("demo-out"),
    model: Annotated[Path | None, typer.Option(help="Checkpoint (default: examples/models/scnn_inpaint.pt).")]
    = None,
    train: Annotated[bool, typer.Option(help="Train a small model from scratch instead (minutes).")] = False,
    size: Annotated[int, typer.Option(help="Side of the centre crop of the demo photo (0: whole photo).")] = 0,
    backend: Annotated[str, typer.Option(help=backend_help())] = "lava",
    chip: Annotated[str, typer.Option(help="'all': also run the photo with the CNN on the chip (sigma-delta "
                                           "layers) and show the three placements side by side (about a "
                                           "minute more).")] = "spiking",
) -> None:
    """The whole journey: convert the shipped model, inpaint a held-out photo in Lava, compare, profile."""
    started = time.perf_counter()
    if chip not in PLACEMENTS:
        raise UserError(f"unknown placement --chip {chip}", "pass --chip spiking (default) or --chip all")
    with StageProgress(console, stages=5 + int(train) + int(chip == "all")) as stages:
        summary = run_demo(out, model=model, train=train, size=size or None, backend=backend, stage=stages,
                           chip=chip)
    console.print(f"\n[bold]neurodeploy demo[/bold] ({time.perf_counter() - started:.1f} s), outputs in {out}/:")
    for line in summary.lines():
        console.print(f"  {line}", highlight=False, soft_wrap=True)  # one line each, whatever the width


@app.command()
def sweep(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for sweep.json, sweep.png, report.html, "
                                                          "models/ and bundles/.")],
    epochs: Annotated[int | None, typer.Option(help="Epochs to train every model (default 10).")] = None,
    until_converged: Annotated[bool, typer.Option(
        "--until-converged", help="Train every model at a constant learning rate until the mean validation MSE "
                                  "of its last quarter of epochs (5 at least) is not 1% below the mean of as many "
                                  "epochs before them (between --min-epochs and "
                                  "--max-epochs).")] = False,
    min_epochs: Annotated[int | None, typer.Option(help="With --until-converged: epochs at least (default 10).")]
    = None,
    max_epochs: Annotated[int | None, typer.Option(help="With --until-converged: epochs at most (default 60).")]
    = None,
    seeds: Annotated[int, typer.Option(help="Seeds 0 .. N-1: every variant is trained once per seed.")] = 2,
    variants: Annotated[str, typer.Option(help="Spiking-layer counts, comma-separated (0: the all-CNN twin, "
                                               "1: the paper's SC-NN).")] = "0,1,2,3",
    data: Annotated[str, typer.Option(help="'builtin' (photos in scikit-image) or a folder of images.")] = "builtin",
    device: Annotated[str, typer.Option(help="Training device: cpu, cuda, cuda:N or auto.")] = "auto",
    backend: Annotated[str, typer.Option(help=backend_help())] = "lava",
    samples_per_epoch: Annotated[int, typer.Option(help="Random crops per epoch.")] = 256,
    crop: Annotated[int, typer.Option(help="Training crop size in pixels (evaluation: 128).")] = 128,
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = 8,
    lr: Annotated[float, typer.Option(help="Adam learning rate (docs/BENCHMARKS.md section 23: 5e-4 with the "
                                           "hole loss keeps the residual network learning).")] = 5e-4,
    loss: Annotated[str, typer.Option(help="hole (each crop's hole MSE), image (MSE over the crop, the paper's) "
                                           "or psnr (its log).")] = "hole",
    config: Annotated[Path | None, typer.Option(help="ModelConfig JSON (its spiking_layers is ignored).")] = None,
    hw: Annotated[str | None, typer.Option(help="Chip profiles, comma-separated (default: all).")] = None,
    host: Annotated[str, typer.Option(help="Host profile for the host part and the twin.")] = "gpu",
    force: Annotated[bool, typer.Option(help="Replace the models of an earlier sweep in --out.")] = False,
    resume: Annotated[bool, typer.Option(help="Continue the models of an earlier sweep in --out (same settings); "
                                              "finished ones are not retrained.")] = False,
) -> None:
    """Train the all-CNN twin, the SC-NN and deeper spiking variants alike; compare quality and energy."""
    converge = None
    if until_converged:
        if epochs is not None:
            raise UserError("--epochs and --until-converged both given",
                            "pass one: a fixed number of epochs, or --min-epochs/--max-epochs for the rule")
        converge = ConvergenceRule(**{k: v for k, v in (("min_epochs", min_epochs), ("max_epochs", max_epochs))
                                      if v is not None})
    elif min_epochs is not None or max_epochs is not None:
        raise UserError("--min-epochs/--max-epochs bound a run to convergence", "pass --until-converged too")
    model = read_model_config(config)
    try:
        counts = tuple(int(v) for v in variants.split(",") if v.strip())
    except ValueError:
        raise UserError(f"`variants={variants}` is not a list of integers", "pass e.g. `variants=0,1,2,3`") from None
    names = tuple(n.strip() for n in hw.split(",") if n.strip()) if hw else None
    document = run_sweep(SweepConfig(out=str(out), variants=counts, seeds=seeds, epochs=epochs or 10, data=data,
                                     device=device, backend=backend, hw=names, host=host, batch_size=batch_size,
                                     lr=lr, loss=loss, crop=crop, samples_per_epoch=samples_per_epoch, force=force,
                                     resume=resume,
                                     model=model, converge=converge),
                         log=lambda line: console.print(line, highlight=False, soft_wrap=True))
    _print_sweep(document)
    console.print(f"sweep.json, sweep.png and report.html in {out}/")


def _print_sweep(document: dict[str, Any]) -> None:
    """Two tables of 80 columns: per variant quality and fidelity (with the baselines), then energy on the plot
    profile, hybrid and all on the chip, against the twin."""
    protocol = document["protocol"]
    profile = protocol["plot_profile"]
    quality = Table(title=f"sweep ({training_budget(document)}, {plural(len(protocol['seeds']), 'seed')})",
                    box=box.SIMPLE_HEAD)
    for col in ("variant", "seeds", "hole PSNR dB", "SSIM", "spike F1"):
        quality.add_column(col, justify="right", no_wrap=True)
    for name, v in document["variants"].items():
        psnr = "collapsed" if v["psnr_hole"] is None else f"{v['psnr_hole']:.2f} ± {v['psnr_hole_std']:.2f}"
        kept, seeds = len(v.get("seeds_in_means", v["seeds"])), len(v["seeds"])
        quality.add_row(name, str(seeds) if kept == seeds else f"{kept} of {seeds}*", psnr,
                        "" if v["ssim"] is None else f"{v['ssim']:.4f}", share(v["fidelity"].get("spike_f1")))
    fill = document.get("hole_fill_alone")
    if fill is not None:  # what every variant gets from the fill it starts from, with no network at all
        quality.add_row("hole fill alone", "", f"{fill['psnr_hole']:.2f}", f"{fill['ssim']:.4f}", "")
    for name, s in document["classical"].items():
        quality.add_row(name, "", f"{s['psnr_hole']:.2f}", f"{s['ssim']:.4f}", "")
    console.print(quality)
    for name, v in document["variants"].items():  # seeds left out of the means, figures over fewer seeds
        for note in sweep_notes(v):
            console.print(f"* {name}: {note}", highlight=False, soft_wrap=True)
    energy = Table(title=f"energy per inference: {profile} chip + {protocol['host_profile']} host", box=box.SIMPLE_HEAD)
    for col in ("variant", "hybrid J", "/ twin", "all on chip J", "/ twin"):
        energy.add_column(col, justify="right", no_wrap=True)
    for name, v in document["variants"].items():
        hybrid = v.get("energy_j", {}).get(profile)
        on_chip = v.get("energy_all_on_chip_j", {}).get(profile)  # convert --chip all of the same model
        ratio, on_chip_ratio = (v.get(key, {}).get(profile) for key in ("energy_vs_twin", "energy_all_on_chip_vs_twin"))
        energy.add_row(name, "not measured" if hybrid is None else f"{hybrid['total']:.3e}",
                       "" if ratio is None else f"{ratio:.3f}",
                       "" if on_chip is None else f"{on_chip['total']:.3e}",
                       "" if on_chip_ratio is None else f"{on_chip_ratio:.3f}")
    console.print(energy)
