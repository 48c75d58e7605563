"""The ``neurodeploy`` command: a thin layer over the Python API.

Each command parses its options, calls one API function and prints. A
:class:`~neurodeploy.errors.UserError` becomes one line on stderr and exit
status 2; nothing else is caught.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from neurodeploy.errors import EXIT_USER_ERROR, UserError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Deploy the spiking stage of a hybrid SNN-CNN trained with Norse onto Lava / Loihi 2.",
)
console = Console()


@app.callback()
def _root() -> None:
    """Deploy the spiking stage of a hybrid SNN-CNN trained with Norse onto Lava / Loihi 2."""
err_console = Console(stderr=True)


@app.command()
def doctor() -> None:
    """Report versions, the Lava compatibility layer, Loihi 2 support, and run a Lava smoke test."""
    from neurodeploy import _lava_compat
    from neurodeploy import doctor as doc

    found = doc.versions()
    smoke = doc.lava_smoke(steps=10)
    table = Table(title="neurodeploy doctor", show_header=False)
    for name, version in found.items():
        table.add_row(name, version)
    applied = [k for k, v in _lava_compat.APPLIED.items() if v]
    table.add_row("lava compat layer", ", ".join(applied) if applied else "not needed")
    table.add_row("Loihi 2 hardware (lava-loihi)", "installed" if doc.loihi_installed() else "not installed")
    verdict = "[green]pass[/green]" if smoke.passed else "[red]FAIL[/red]"
    detail = f"{smoke.spikes} spikes (expected {smoke.expected}) in {smoke.seconds:.2f} s"
    if smoke.error:
        detail = smoke.error
    table.add_row(f"Lava LIF smoke run ({smoke.steps} steps)", f"{verdict} {detail}")
    console.print(table)
    required_missing = [k for k in ("torch", "norse", "lava-nc", "lava-dl", "numpy") if found[k] == "missing"]
    if required_missing or not smoke.passed:
        raise typer.Exit(1)


@app.command()
def train(
    out: Annotated[Path, typer.Option("--out", "-o", help="Checkpoint to write after every epoch.")] = Path("model.pt"),
    data: Annotated[str, typer.Option(help="'builtin' (photos in scikit-image) or a folder of images.")] = "builtin",
    epochs: Annotated[int, typer.Option(help="Epochs to train (in total, with --resume).")] = 40,
    batch_size: Annotated[int, typer.Option(help="Global batch size (split over torchrun ranks).")] = 8,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 2e-3,
    timesteps: Annotated[int, typer.Option(help="Time steps T of the spiking layer.")] = 8,
    encoding: Annotated[str, typer.Option(help="Input encoding: constant or poisson.")] = "constant",
    crop: Annotated[int, typer.Option(help="Training crop size in pixels.")] = 128,
    samples_per_epoch: Annotated[int, typer.Option(help="Random crops per epoch.")] = 256,
    seed: Annotated[int, typer.Option(help="Seed for every random choice.")] = 0,
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:N or auto.")] = "auto",
    config: Annotated[Path | None, typer.Option(help="ModelConfig JSON; --timesteps/--encoding override it.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from --out if it exists.")] = False,
) -> None:
    """Train the hybrid SC-NN inpainter (Norse LIF + 5 conv layers) with MSE and Adam."""
    from neurodeploy.model import ModelConfig
    from neurodeploy.train import TrainConfig
    from neurodeploy.train import train as run_training

    base = ModelConfig()
    if config is not None:
        try:
            base = ModelConfig.from_json(config.read_text())
        except (OSError, ValueError, TypeError) as exc:
            raise UserError(f"--config {config} is not a valid ModelConfig JSON ({exc})",
                            "write it with ModelConfig.to_json()") from None
    try:
        model_config = ModelConfig.from_dict({**base.to_dict(), "timesteps": timesteps, "encoding": encoding})
    except ValueError as exc:
        raise UserError(str(exc), "see neurodeploy train --help") from None
    result = run_training(
        TrainConfig(data=data, out=str(out), epochs=epochs, batch_size=batch_size, lr=lr, crop=crop,
                    samples_per_epoch=samples_per_epoch, seed=seed, device=device, resume=resume),
        model_config,
    )
    if result.train_losses:
        console.print(f"done in {result.seconds:.1f} s: train MSE {result.train_losses[-1]:.5f}, "
                      f"validation MSE {result.val_losses[-1]:.5f} -> {out}")


@app.command()
def evaluate(
    model: Annotated[Path, typer.Argument(help="Checkpoint written by neurodeploy train.")],
    data: Annotated[str, typer.Option(help="'builtin' validation photos or a folder of images.")] = "builtin",
    image: Annotated[list[Path] | None, typer.Option(help="An image to evaluate (repeat; pair with --mask).")] = None,
    mask: Annotated[list[Path] | None, typer.Option(help="Its mask: white (nonzero) = missing.")] = None,
    crop: Annotated[int, typer.Option(help="Crop size of the fixed protocol.")] = 128,
    seed: Annotated[int, typer.Option(help="Seed of the crops and masks.")] = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON.")] = None,
) -> None:
    """Score the SC-NN against Telea, Navier-Stokes and biharmonic inpainting on the same holes."""
    import json

    from neurodeploy.checkpoint import load_model
    from neurodeploy.data import EvalSample, EvalSet, resolve_paths
    from neurodeploy.evaluate import METHODS
    from neurodeploy.evaluate import evaluate as run_evaluation
    from neurodeploy.io import atomic_path, read_image, read_mask

    net, _ = load_model(model)
    if image:
        if not mask or len(mask) != len(image):
            raise UserError("each --image needs its --mask", "pass --image IMG --mask MASK pairs")
        samples = []
        for img_path, mask_path in zip(image, mask, strict=True):
            rgb = read_image(img_path)
            samples.append(EvalSample(rgb, read_mask(mask_path, rgb.shape[:2]), img_path.stem))
    else:
        samples = list(EvalSet(resolve_paths(data, "val"), crop=crop, seed=seed))
    report = run_evaluation(net, samples, seed=seed)
    table = Table(title=f"inpainting on {report['images']} images (hole = masked pixels)")
    for col in ("method", "MSE (whole image)", "MSE (hole)", "PSNR hole dB", "SSIM"):
        table.add_column(col, justify="right")
    for name in METHODS:
        m = report["methods"][name]
        table.add_row(name, f"{m['mse']:.5f}", f"{m['mse_hole']:.5f}", f"{m['psnr_hole']:.2f}", f"{m['ssim']:.4f}")
    console.print(table)
    if json_out:
        with atomic_path(json_out) as tmp:
            tmp.write_text(json.dumps(report, indent=2))


@app.command()
def convert(
    model: Annotated[Path, typer.Argument(help="Checkpoint (.pt) or NIR graph (.nir).")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Bundle directory [MODEL.bundle].")] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing bundle directory.")] = False,
    tile: Annotated[int, typer.Option(help="Tile size (pixels) the netx network is built for.")] = 128,
    dt: Annotated[float, typer.Option(help="NIR input only: the time step in seconds.")] = 1e-3,
    tau_convention: Annotated[str, typer.Option(help="NIR input only: auto, seconds or norse-1.1.")] = "auto",
    encoding: Annotated[str, typer.Option(help="NIR input only: constant or poisson.")] = "poisson",
    timesteps: Annotated[int, typer.Option(help="NIR input only: time steps per input.")] = 8,
) -> None:
    """Turn a trained model into a bundle: snn.net (Lava-DL netx, Loihi fixed point), snn.nir, host.pt."""
    from neurodeploy.convert import convert as run_convert

    if tau_convention not in ("auto", "seconds", "norse-1.1"):
        raise UserError(f"unknown --tau-convention {tau_convention!r}", "pass auto, seconds or norse-1.1")
    target = out or model.with_suffix(".bundle")
    bundle = run_convert(model, target, force=force, tile=tile, dt=dt,
                         tau_convention=tau_convention, encoding=encoding, timesteps=timesteps)
    q = bundle.manifest["quantization"]
    table = Table(title=f"quantization of {q['name']} to Loihi fixed point")
    for col in ("weight scale", "weight rel. sq. error", "saturated", "vThMant", "threshold error",
                "iDecay", "vDecay"):
        table.add_column(col, justify="right")
    table.add_row(f"{q['weight_scale']:.4g}", f"{q['weight_error']:.2e}", str(q["saturated_weights"]),
                  str(q["vth_mant"]), f"{q['threshold_error']:.2e}", str(q["i_decay"]), str(q["v_decay"]))
    console.print(table)
    for warning in q["warnings"]:
        err_console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    console.print(f"bundle written to {bundle.path} ({', '.join(sorted(bundle.manifest['files']))}, manifest.json)")


def _simulation_inputs(image: Path, mask: Path | None, random_mask: int | None,
                       skip: Callable[[str], bool] | None = None) -> Iterator:
    """--image (file or folder) and --mask (file, folder of same-named masks) or --random-mask.

    Images are read one at a time as the simulation reaches them, so a bad
    file in a folder stops the run there, after the earlier outputs are written.
    """
    import numpy as np

    from neurodeploy.data import MaskSpec
    from neurodeploy.data import random_mask as draw_mask
    from neurodeploy.io import list_images, read_image, read_mask
    from neurodeploy.simulate import SimulationInput

    if mask is None and random_mask is None:
        raise UserError("--mask is needed: the inpainter fills the pixels a mask marks as missing",
                        "pass --mask MASK.png (white = missing; a folder of same-named masks for a folder "
                        "of images) or --random-mask SEED to draw one")
    if image.is_dir():
        paths = list_images(image)
        if not paths:
            raise UserError(f"image folder {image} holds no images", "pass a folder with PNG or JPEG files")
    else:
        paths = [image]
    for index, path in enumerate(paths):
        if skip is not None and skip(path.stem):
            continue
        rgb = read_image(path)
        if mask is None:
            rng = np.random.default_rng([random_mask or 0, index])
            hole = draw_mask(rng, rgb.shape[0], rgb.shape[1], MaskSpec())
        elif mask.is_dir():
            candidates = [p for p in list_images(mask) if p.stem == path.stem]
            if not candidates:
                raise UserError(f"no mask named {path.stem}.* in {mask}", "give every image a same-named mask")
            hole = read_mask(candidates[0], rgb.shape[:2])
        else:
            hole = read_mask(mask, rgb.shape[:2])
        yield SimulationInput(path.stem, rgb, hole)


@app.command()
def simulate(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory written by neurodeploy convert.")],
    image: Annotated[Path, typer.Option(help="An image, or a folder of images (the network compiles once).")],
    mask: Annotated[Path | None, typer.Option(help="Mask image (white = missing) or a folder of same-named masks.")]
    = None,
    random_mask: Annotated[int | None, typer.Option(help="Draw a seeded random mask instead of --mask.")] = None,
    backend: Annotated[str, typer.Option(help="lava (CPU simulation), reference (NumPy) or loihi2.")] = "lava",
    lava_models: Annotated[str, typer.Option(help="neurodeploy (fast, bit-exact) or stock lava-dl models.")]
    = "neurodeploy",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output PNG (a folder for a folder of images).")]
    = None,
    spikes: Annotated[Path | None, typer.Option(help="Save input frames and output spikes as .npz.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write timings, spikes and fidelity as JSON.")]
    = None,
    skip_existing: Annotated[bool, typer.Option(help="Skip images whose output PNG already exists.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of Poisson input spikes.")] = 0,
) -> None:
    """Inpaint images with the spiking stage in Lava and the CNN on the host, through the spike bridge."""
    import json

    import numpy as np

    from neurodeploy.bridge import BACKENDS
    from neurodeploy.bundle import Bundle
    from neurodeploy.io import atomic_path, write_png
    from neurodeploy.simulate import TileProgress
    from neurodeploy.simulate import simulate as run_simulation

    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}", f"pass one of {', '.join(BACKENDS)}")
    loaded = Bundle.load(bundle)
    folder = image.is_dir()
    target = out or (Path(f"{image.name}-inpainted") if folder else image.with_name(f"{image.stem}-inpainted.png"))

    def output_path(name: str) -> Path:
        return target / f"{name}.png" if folder else target

    items = _simulation_inputs(image, mask, random_mask,
                               skip=(lambda name: output_path(name).exists()) if skip_existing else None)
    saved: dict[str, np.ndarray] = {}

    def write(result) -> None:
        write_png(output_path(result.name), result.output)
        if spikes is not None:
            saved[f"{result.name}/frames"] = result.frames
            saved[f"{result.name}/spikes"] = result.spikes.numpy()
        console.print(f"{result.name}: {result.seconds['total']:.2f} s, "
                      f"{result.total_spikes} spikes -> {output_path(result.name)}")

    with TileProgress(err_console) as progress:  # --spikes keeps whole-image arrays, as asked
        report = run_simulation(loaded, items, backend=backend, models=lava_models, seed=seed, on_result=write,
                                keep_spikes=spikes is not None, progress=progress)
    if spikes is not None:
        with atomic_path(spikes) as tmp, open(tmp, "wb") as handle:
            np.savez_compressed(handle, **saved)
    if folder or report["images"] != 1:
        if report["images_per_second"]:
            console.print(f"{report['images']} images, compiled once in {report['seconds']['compile']:.2f} s, "
                          f"{report['images_per_second']:.2f} images/s")
    else:
        r = report["results"][0]
        f = r["fidelity"]
        console.print(f"fidelity vs the float model: PSNR {f['psnr_vs_float']:.2f} dB, spike agreement "
                      f"{f['spike_agreement_vs_float']:.4%}, exact vs reference: {f['exact_vs_reference']}")
    if json_out:
        document = report if folder or report["images"] != 1 else {**report["results"][0],
                                                            "seconds": {**report["results"][0]["seconds"],
                                                                        "compile": report["seconds"]["compile"]}}
        with atomic_path(json_out) as tmp:
            tmp.write_text(json.dumps(document, indent=2))


@app.command()
def profile(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory written by neurodeploy convert.")],
    image: Annotated[Path, typer.Option(help="An image, or a folder of images (counts are averaged).")],
    mask: Annotated[Path | None, typer.Option(help="Mask image (white = missing) or a folder of masks.")] = None,
    random_mask: Annotated[int | None, typer.Option(help="Draw a seeded random mask instead of --mask.")] = None,
    hw: Annotated[str | None, typer.Option(help="Profiles (names or .toml paths), comma-separated [all].")] = None,
    host: Annotated[str, typer.Option(help="Host profile that runs the CNN stage.")] = "gpu",
    backend: Annotated[str, typer.Option(help="lava, reference (fast, bit-exact) or loihi2.")] = "lava",
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the counts and energies as JSON.")] = None,
    report: Annotated[Path | None, typer.Option(help="Folder for PNG plots and report.html.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of Poisson inputs and of the raster's neuron sample.")] = 0,
) -> None:
    """Count spikes, synaptic ops, neuron updates, host MACs and bridge bits; price them per hardware profile."""
    import json

    from neurodeploy.bridge import BACKENDS
    from neurodeploy.bundle import Bundle
    from neurodeploy.io import atomic_path
    from neurodeploy.profiling import profile as run_profile

    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}", f"pass one of {', '.join(BACKENDS)}")
    loaded = Bundle.load(bundle)
    names = [n.strip() for n in hw.split(",") if n.strip()] if hw else None
    from neurodeploy.profiling import select_profiles

    select_profiles(names)  # a bad profile name fails before Lava starts
    summary, spikes = run_profile(loaded, _simulation_inputs(image, mask, random_mask), backend=backend,
                                  hw=names, host=host, seed=seed)
    layer = summary["layers"][0]
    counts = Table(title=f"per inference ({summary['images']} image(s), T={layer['timesteps']})")
    for col in ("layer", "spikes", "firing rate", "synops", "neuron updates", "host MACs", "bridge bits"):
        counts.add_column(col, justify="right")
    counts.add_row(layer["name"], f"{layer['spikes']:.4g}", f"{layer['firing_rate']:.4f}", f"{layer['synops']:.4g}",
                   f"{layer['neuron_updates']:.4g}", f"{summary['host_macs']:.4g}", f"{summary['bridge_bits']:.4g}")
    console.print(counts)
    energy = Table(title=f"energy per inference, CNN on {summary['host_profile']} (joules)")
    for col in ("profile", "spiking stage", "host CNN", "bridge", "total", "all-CNN baseline", "ratio"):
        energy.add_column(col, justify="right")
    for name, e in summary["energy_j"].items():
        energy.add_row(name, f"{e['snn']:.3e}", f"{e['host']:.3e}", f"{e['bridge']:.3e}", f"{e['total']:.3e}",
                       f"{e['all_cnn_baseline']:.3e}", f"{e['ratio_to_baseline']:.3f}")
    for name, joules in summary["baseline_j"].items():
        energy.add_row(f"all-CNN on {name}", "", "", "", f"{joules:.3e}", "", "")
    console.print(energy)
    if json_out:
        with atomic_path(json_out) as tmp:
            tmp.write_text(json.dumps(summary, indent=2))
    if report:
        from neurodeploy.report import write_report

        console.print(f"report: {write_report(report, summary, spikes, seed=seed)}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for everything the demo writes.")] = Path("demo-out"),
    model: Annotated[Path | None, typer.Option(help="Checkpoint [examples/models/scnn_inpaint.pt].")] = None,
    train: Annotated[bool, typer.Option(help="Train a small model from scratch instead (minutes).")] = False,
    size: Annotated[int, typer.Option(help="Side of the centre crop of the demo photo (0: whole photo).")] = 256,
    backend: Annotated[str, typer.Option(help="lava, reference or loihi2.")] = "lava",
) -> None:
    """The whole journey: convert the shipped model, inpaint a held-out photo in Lava, compare, profile."""
    import time

    from neurodeploy.demo import StageProgress, run_demo

    started = time.perf_counter()
    with StageProgress(console, stages=5 + int(train)) as stages:
        summary = run_demo(out, model=model, train=train, size=size or None, backend=backend, stage=stages)
    console.print(f"\n[bold]neurodeploy demo[/bold] ({time.perf_counter() - started:.1f} s), outputs in {out}/:")
    for line in summary.lines():
        console.print(f"  {line}", highlight=False, soft_wrap=True)  # one line each, whatever the width


hw_app = typer.Typer(help="List and show hardware profiles.", no_args_is_help=True)
app.add_typer(hw_app, name="hw")


@hw_app.command("list")
def hw_list() -> None:
    """List the shipped hardware profiles."""
    from neurodeploy.hw import list_profiles

    table = Table(title="hardware profiles (hw_profiles/*.toml)")
    for col in ("name", "kind", "description"):
        table.add_column(col)
    for p in list_profiles():
        table.add_row(p.name, p.kind, p.description)
    console.print(table)


@hw_app.command("show")
def hw_show(name: Annotated[str, typer.Argument(help="A profile name or a path to a .toml file.")]) -> None:
    """Show every figure of a profile with its unit, kind and source."""
    from neurodeploy.hw import load_profile, unit_of

    p = load_profile(name)
    table = Table(title=f"{p.name} ({p.kind}): {p.description}", show_lines=True)
    for col in ("figure", "value", "unit", "kind", "source / derivation"):
        table.add_column(col)
    for section, figures in (("energy", p.energy), ("latency", p.latency)):
        for key, f in figures.items():
            note = f.source + (f" | derived: {f.derivation}" if f.derivation else "")
            table.add_row(f"{section}.{key}", f"{f.value:.4g}", unit_of(key), f.kind, note)
    console.print(table)


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    """Entry point: UserError becomes one line and exit code 2; SIGTERM and Ctrl-C unwind cleanly.

    SIGTERM is turned into SystemExit so that, like Ctrl-C, it runs every
    ``finally``: the spike bridge stops its Lava processes and frees their
    shared memory, and temporary outputs are removed.
    """
    signal.signal(signal.SIGTERM, _terminate)
    try:
        app()
    except UserError as exc:
        err_console.print(f"[bold red]error:[/bold red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        err_console.print("interrupted", highlight=False)
        sys.exit(130)
