"""The ``neurodeploy`` command: a thin layer over the Python API.

Each command parses its options, calls one API function and prints. A
:class:`~neurodeploy.errors.UserError` becomes one line on stderr and exit
status 2; nothing else is caught.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from neurodeploy.errors import EXIT_USER_ERROR, UserError
from neurodeploy.text import plural

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
    applied = [_lava_compat.DESCRIPTIONS[k] for k, v in _lava_compat.APPLIED.items() if v]
    table.add_row("Lava fixes applied at import", "; ".join(applied) if applied else "none needed")
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


def _model_config(path: Path | None) -> Any:
    """The ModelConfig of ``--config`` (the defaults without one); a file that is none is a UserError."""
    from neurodeploy.model import ModelConfig

    if path is None:
        return ModelConfig()
    try:
        return ModelConfig.from_json(path.read_text())
    except (OSError, ValueError, TypeError) as exc:
        raise UserError(f"--config {path} is not a valid ModelConfig JSON ({exc})",
                        "write it with ModelConfig.to_json()") from None


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
    spiking_layers: Annotated[int | None, typer.Option(
        help="LIF conv layers, from the first (1: the paper's, 0: the all-CNN twin); default 1.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from --out if it exists.")] = False,
    force: Annotated[bool, typer.Option(help="Replace a model that exists at --out (without --resume).")] = False,
) -> None:
    """Train the hybrid SC-NN inpainter (Norse LIF + 5 conv layers) with MSE and Adam."""
    from neurodeploy.model import ModelConfig
    from neurodeploy.train import TrainConfig
    from neurodeploy.train import train as run_training

    base = _model_config(config)
    try:
        chosen = {} if spiking_layers is None else {"spiking_layers": spiking_layers}
        model_config = ModelConfig.from_dict({**base.to_dict(), "timesteps": timesteps, "encoding": encoding,
                                              **chosen})
    except ValueError as exc:
        raise UserError(str(exc), "see neurodeploy train --help") from None
    result = run_training(
        TrainConfig(data=data, out=str(out), epochs=epochs, batch_size=batch_size, lr=lr, crop=crop,
                    samples_per_epoch=samples_per_epoch, seed=seed, device=device, resume=resume, force=force),
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
    protocol: Annotated[str, typer.Option(help="crops (128-px crops, holes of 5-25%), photos (whole photos, "
                                               "holes of 10-30%) or both.")] = "both",
    crop: Annotated[int, typer.Option(help="Crop size of the crops protocol.")] = 128,
    seed: Annotated[int, typer.Option(help="Seed of the crops and masks.")] = 0,
    deployed: Annotated[bool, typer.Option(help="Also convert the model and score it deployed (spiking stage "
                                                "in Loihi fixed point, --backend).")] = True,
    backend: Annotated[str, typer.Option(help="Chip backend of the deployed model: reference (bit-exact with "
                                              "lava, faster), lava or torch.")] = "reference",
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON.")] = None,
) -> None:
    """Score the SC-NN, float and deployed, against Telea, Navier-Stokes, biharmonic and harmonic inpainting
    on the same holes: on 128-px crops and on whole photos."""
    import contextlib
    import json
    import tempfile

    from neurodeploy.checkpoint import load_model
    from neurodeploy.conversion import convert as run_convert
    from neurodeploy.data import EvalSample, EvalSet, WholePhotoSet, resolve_paths
    from neurodeploy.evaluate import METHODS, deployed_inpainter
    from neurodeploy.evaluate import evaluate as run_evaluation
    from neurodeploy.io import atomic_path, check_output_file, read_image, read_mask

    if json_out:
        check_output_file(json_out, "JSON")
    if protocol not in ("crops", "photos", "both"):
        raise UserError(f"--protocol {protocol!r} is none of crops, photos, both", "pass --protocol both")
    _check_backend(backend)
    net, _ = load_model(model)
    sets: dict[str, list[Any]] = {}
    if image:
        if not mask or len(mask) != len(image):
            raise UserError("each --image needs its --mask", "pass --image IMG --mask MASK pairs")
        samples = []
        for img_path, mask_path in zip(image, mask, strict=True):
            rgb = read_image(img_path)
            samples.append(EvalSample(rgb, read_mask(mask_path, rgb.shape[:2]), img_path.stem))
        sets["images"] = samples
    else:
        paths = resolve_paths(data, "val")
        if protocol in ("crops", "both"):
            sets["crops"] = list(EvalSet(paths, crop=crop, seed=seed))
        if protocol in ("photos", "both"):
            sets["photos"] = list(WholePhotoSet(paths, seed=seed))
    titles = {"images": "the given images", "crops": f"{crop}-px crops of the validation photos",
              "photos": "whole validation photos"}
    reports = {}
    with contextlib.ExitStack() as stack:
        inpaint = None
        if deployed:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="neurodeploy-evaluate-")))
            inpaint = stack.enter_context(deployed_inpainter(run_convert(model, folder / "bundle"), backend, seed))
        for name, samples in sets.items():
            reports[name] = report = run_evaluation(net, samples, seed=seed, deployed=inpaint)
            table = Table(title=f"inpainting on {plural(report['images'], 'image')} ({titles[name]}; "
                                "hole = masked pixels)")
            for col in ("method", "MSE (whole image)", "MSE (hole)", "PSNR hole dB", "SSIM"):
                table.add_column(col, justify="right")
            for method in METHODS:
                if method in report["methods"]:
                    m = report["methods"][method]
                    table.add_row(method, f"{m['mse']:.5f}", f"{m['mse_hole']:.5f}", f"{m['psnr_hole']:.2f}",
                                  f"{m['ssim']:.4f}")
            console.print(table)
    if json_out:
        with atomic_path(json_out) as tmp:
            tmp.write_text(json.dumps(reports, indent=2))


@app.command()
def convert(
    model: Annotated[Path, typer.Argument(help="Checkpoint (.pt) or NIR graph (.nir).")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Bundle directory (default: MODEL with .bundle).")]
    = None,
    force: Annotated[bool, typer.Option(help="Replace an existing bundle (never a file or another folder).")] = False,
    tile: Annotated[int, typer.Option(help="Checkpoint only: tile size (pixels) the netx network is built for.")]
    = 128,
    dt: Annotated[float | None, typer.Option(help="NIR input only: the time step in seconds (default: the "
                                                  "graph's metadata).")] = None,
    payload: Annotated[str, typer.Option(help="NIR input only: the graph's input is spikes (0/1 events) or "
                                              "graded (frames in [0, 1], 8-bit payloads).")] = "spikes",
    plan: Annotated[bool, typer.Option(help="NIR input only: print where each node would run; write nothing.")]
    = False,
    host: Annotated[str | None, typer.Option(help="NIR input only: nodes to keep on the host, comma-separated.")]
    = None,
    tau_convention: Annotated[str, typer.Option(help="NIR input only: how tau is stored: auto, seconds (NIR), "
                                                     "norse-1.1 (dt times seconds) or rockpool-3.1.")] = "auto",
    calibrate: Annotated[Path | None, typer.Option(help="NIR input: samples X (N, T, *input) as .npy, the "
                                                        "format simulate --input reads; checkpoint: a folder of "
                                                        "photos (or one), cut into at most 64 seeded tiles with "
                                                        "seeded holes. Each chip layer's scale is chosen on them "
                                                        "to reproduce the float spikes.")]
    = None,
) -> None:
    """Turn a trained model or a NIR graph into a bundle (netx files in Loihi fixed point + host parameters)."""
    from neurodeploy.conversion import convert as run_convert

    if plan:
        _print_plan(model, host, dt, tau_convention)
        return
    target = out or model.with_suffix(".bundle")
    names = [n.strip() for n in (host or "").split(",") if n.strip()]
    bundle = run_convert(model, target, force=force, tile=tile, dt=dt, host=names, payload=payload,
                         tau_convention=tau_convention, calibrate=calibrate)  # type: ignore[arg-type]
    _print_bundle(bundle)


def _print_bundle(bundle: Any) -> None:
    """``convert``'s report: one row per chip layer, the warnings, where the bundle is."""
    table = Table(title=f"chip layers in Loihi fixed point ({bundle.manifest['summary']})", box=box.SIMPLE_HEAD)
    for col in ("segment", "layer", "kind", "input", "weight scale", "weight rel. sq. error", "vThMant",
                "threshold error"):
        table.add_column(col, justify="right")
    for k, segment in enumerate(bundle.manifest["segments"]):
        for layer in segment.get("layers", []):
            q = layer["quantization"]
            table.add_row(str(k), escape(layer["name"]), layer["kind"], segment["input"]["payload"],
                          f"{q['weight_scale']:.4g}", f"{q['weight_error']:.2e}", str(q["vth_mant"]),
                          f"{q.get('threshold_error', 0.0):.3%}")
            for warning in q["warnings"]:
                err_console.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False)
    console.print(table)
    calibration = bundle.manifest.get("calibration")
    if calibration:
        shape = "x".join(map(str, calibration["samples"]["shape"]))
        table = Table(title=f"calibrated on {escape(calibration['samples']['file'])} ({shape}): spike F1 vs the "
                            "float layer", box=box.SIMPLE_HEAD)
        for col in ("layer", "static scale", "F1 static", "scale", "F1"):
            table.add_column(col, justify="right")
        for row in calibration["layers"]:
            table.add_row(escape(row["name"]), f"{row['static_scale']:.4g}", _score(row["spike_f1_static"]),
                          f"{row['scale']:.4g}", _score(row["spike_f1"]))
        console.print(table)
    console.print(f"bundle written to {bundle.path} ({', '.join(sorted(bundle.manifest['files']))}, manifest.json)")


def _score(value: float | None) -> str:
    """A score to 4 places; None (no spikes on either side) as a dash."""
    return "-" if value is None else f"{value:.4f}"


def _print_plan(graph: Path, host: str | None, dt: float | None, tau_convention: str = "auto") -> None:
    """``convert --plan``: the placement table and a one-line summary."""
    from neurodeploy.partition import HOST, plan

    names = [n.strip() for n in (host or "").split(",") if n.strip()]
    result = plan(graph, host=names, dt=dt, tau_convention=tau_convention)  # type: ignore[arg-type]
    table = Table(title=f"placement of {graph.name}", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("node", "type", "shape", "place", "reason"):
        table.add_column(col, overflow="fold")
    for row in result.placement:
        place = f"[yellow]{row.place}[/yellow]" if row.place == HOST else f"[green]{row.place}[/green]"
        shape = "x".join(str(d) for d in row.shape)
        table.add_row(escape(row.node), row.kind, shape, place, escape(row.reason))
    console.print(table)
    console.print(f"{result.summary()}; nothing written", highlight=False)


@dataclass(frozen=True)
class _Job:
    """One image to run: its output name, its file, and its mask file (None: a drawn mask)."""

    name: str
    image: Path
    mask: Path | None
    index: int  # position in the whole folder: the random mask's seed is (--random-mask, index)


def _plan_inputs(image: Path, mask: Path | None, random_mask: int | None) -> list[_Job]:
    """--image (file or folder) with --mask (file, or folder of same-named masks) or --random-mask SEED.

    Everything that can be checked without reading pixels is checked here,
    before any work: exactly one mask source, a seed >= 0, existing paths,
    no two images with the same output name, a mask for every image.
    """
    from neurodeploy.io import list_images

    if mask is not None and random_mask is not None:
        raise UserError("both --mask and --random-mask given", "pass one: a mask to use, or a seed to draw one")
    if mask is None and random_mask is None:
        raise UserError("--mask is needed: the inpainter fills the pixels a mask marks as missing",
                        "pass --mask MASK.png (white = missing; a folder of same-named masks for a folder "
                        "of images) or --random-mask SEED to draw one")
    if random_mask is not None and random_mask < 0:
        raise UserError(f"--random-mask {random_mask}: the number is the seed of the drawn mask and "
                        "cannot be negative", "pass a seed of 0 or more, e.g. --random-mask 3")
    for what, path in (("image", image), ("mask", mask)):
        if path is not None and not path.exists():
            raise UserError(f"{what} {path} does not exist", "check the path")
    if image.is_dir():
        paths = list_images(image)
        if not paths:
            raise UserError(f"image folder {image} holds no images", "pass a folder with PNG or JPEG files")
    else:
        paths = [image]
    by_name: dict[str, list[Path]] = {}
    for path in paths:
        by_name.setdefault(path.stem, []).append(path)
    for name, same in by_name.items():
        if len(same) > 1:
            raise UserError(f"{same[0]} and {same[1]} would both be written as {name}.png",
                            "give the images different names")
    masks: dict[str, Path] = {}
    if mask is not None and mask.is_dir():
        for path in reversed(list_images(mask)):
            masks[path.stem] = path
        missing = [p.stem for p in paths if p.stem not in masks]
        if missing:
            shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
            raise UserError(f"{len(missing)} of {plural(len(paths), 'image')} have no same-named mask in "
                            f"{mask} ({shown})", "give every image a mask of the same name (white = missing)")
    return [_Job(path.stem, path, masks.get(path.stem, mask) if mask is not None else None, index)
            for index, path in enumerate(paths)]


def _read_inputs(jobs: list[_Job], random_mask: int | None) -> Iterator[Any]:
    """The planned images, read one at a time as the simulation reaches them."""
    import numpy as np

    from neurodeploy.data import PHOTO_MASKS
    from neurodeploy.data import random_mask as draw_mask
    from neurodeploy.io import read_image, read_mask
    from neurodeploy.simulation import SimulationInput

    for job in jobs:
        rgb = read_image(job.image)
        if job.mask is None:
            hole = draw_mask(np.random.default_rng([random_mask or 0, job.index]), rgb.shape[0], rgb.shape[1],
                             PHOTO_MASKS)
        else:
            hole = read_mask(job.mask, rgb.shape[:2])
        yield SimulationInput(job.name, rgb, hole)


def _graph_input(image: Path | None, input_path: Path | None, backend: str, lava_models: str = "neurodeploy") -> bool:
    """Exactly one of --image (an inpainter bundle) and --input (a graph bundle), and a backend that runs it.

    True for a graph's --input.
    """
    if image is not None and input_path is not None:
        raise UserError("both --image and --input given", "pass --image for an inpainter bundle, --input for "
                                                          "a graph bundle")
    if image is None and input_path is None:
        raise UserError("--image or --input is needed", "pass --image PHOTO for an inpainter bundle, "
                                                        "--input X.npy for a graph bundle")
    if input_path is not None:
        from neurodeploy.graph_run import GRAPH_BACKENDS

        if backend not in GRAPH_BACKENDS:
            raise UserError(f"unknown backend {backend!r} for a graph bundle",
                            f"pass one of {', '.join(GRAPH_BACKENDS)}")
    _check_backend(backend, lava_models)
    return input_path is not None


def _check_backend(backend: str, lava_models: str = "neurodeploy") -> None:
    from neurodeploy.bridge import BACKENDS

    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}", f"pass one of {', '.join(BACKENDS)}")
    if lava_models not in ("neurodeploy", "stock"):
        raise UserError(f"unknown --lava-models {lava_models!r}", "pass neurodeploy or stock")


# The scale options simulate and profile share (neurodeploy.cluster, neurodeploy.torch_backend)
DeviceOption = Annotated[str, typer.Option(help="torch backend: cpu or cuda.")]
ClusterOption = Annotated[str | None, typer.Option(help="ray (a local Ray cluster) or ray:ADDRESS: spread a folder "
                                                       "or an input set over Ray workers.")]
WorkersOption = Annotated[int, typer.Option(help="Workers of a local Ray cluster (--cluster ray).")]
ResultsOption = Annotated[Path | None, typer.Option(help="Per-item results as JSON lines, written as items finish; "
                                                        "a rerun resumes.")]
# The run options simulate and profile share (neurodeploy.run_options)
ThreadsOption = Annotated[int | None, typer.Option(help="torch and BLAS threads of this process (default: the cores "
                                                        "less one, less one more beside Lava).")]
FidelityOption = Annotated[str, typer.Option(help="Check against the float model and the reference backend: all "
                                                  "images or samples, the first only, or none.")]

def _check_scale(backend: str, device: str, cluster: str | None, results: Path | None) -> None:
    """--device, --cluster and --results, checked before any work (:mod:`neurodeploy.cluster`)."""
    from neurodeploy.cluster import ResultsLog, parse_cluster
    from neurodeploy.torch_backend import DEVICES, check_device

    if device not in DEVICES:
        raise UserError(f"unknown --device {device!r}", f"pass one of {', '.join(DEVICES)}")
    if device != "cpu" and backend != "torch":
        raise UserError(f"`device={device}` runs only on the torch backend", "add `backend=torch`")
    if backend == "torch":
        check_device(device)
    parse_cluster(cluster)
    if results is not None:
        ResultsLog(results)


def _image_items(jobs: list[_Job], random_mask: int | None) -> list[tuple[str, Any]]:
    """The planned images as (name, loader) items of :func:`neurodeploy.cluster.run_items`."""
    return [(job.name, (lambda job=job: next(_read_inputs([job], random_mask)))) for job in jobs]


@app.command()
def simulate(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory written by neurodeploy convert.")],
    image: Annotated[Path | None, typer.Option(help="Inpainter bundle: an image, or a folder of images (the "
                                                    "network compiles once).")] = None,
    input_path: Annotated[Path | None, typer.Option("--input", help="Graph bundle: X (N, T, *input shape) as "
                                                                    ".npy, or .npz with key 'input'.")] = None,
    compare: Annotated[Path | None, typer.Option(help="Graph bundle: the library's own output Y (N, T, *output "
                                                      "shape) on --input, .npy; scored in fidelity.vs_compare.")]
    = None,
    mask: Annotated[Path | None, typer.Option(help="Mask image (white = missing) or a folder of same-named masks.")]
    = None,
    random_mask: Annotated[int | None, typer.Option(help="Seed of a random mask to draw instead of --mask: "
                                                         "rectangles or strokes over 10-30% of the image.")] = None,
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
    device: DeviceOption = "cpu",
    cluster: ClusterOption = None,
    workers: WorkersOption = 2,
    results: ResultsOption = None,
    threads: ThreadsOption = None,
    fidelity: FidelityOption = "all",
) -> None:
    """Run a bundle: inpaint images (--image), or run a graph on X (--input), chip part in Lava, rest on the host."""
    import json

    import numpy as np

    from neurodeploy.bundle import Bundle
    from neurodeploy.io import atomic_path, check_output_file, check_output_folder, write_png
    from neurodeploy.run_options import fidelity_mode, plan_threads, sized_threads
    from neurodeploy.simulation import SimulationReport, TileProgress
    from neurodeploy.simulation import simulate as run_simulation

    graph = _graph_input(image, input_path, backend, lava_models)
    _check_scale(backend, device, cluster, results)
    large = cluster is not None or results is not None
    if workers < 1:
        raise UserError(f"--workers {workers}: a cluster needs at least one worker", "pass --workers 2")
    mode, plan = fidelity_mode(fidelity), plan_threads(backend, threads)
    if mode == "first" and large:
        raise UserError("--fidelity first checks the first item of one process; it does not combine with "
                        "--cluster or --results", "pass --fidelity all or --fidelity none")
    if graph:
        assert input_path is not None
        with sized_threads(plan):
            _simulate_graph(bundle, input_path, out, json_out, backend, lava_models, device,
                            (cluster, workers, results) if large else None, compare, mode, plan.as_dict())
        return
    if compare is not None:
        raise UserError("--compare scores a graph bundle's output", "pass it with --input, not --image")
    assert image is not None
    jobs = _plan_inputs(image, mask, random_mask)
    folder = image.is_dir()
    target = out or (Path(f"{image.name}-inpainted") if folder else image.with_name(f"{image.stem}-inpainted.png"))

    def output_path(name: str) -> Path:
        return target / f"{name}.png" if folder else target

    if folder:
        check_output_folder(target)
    for job in jobs:
        check_output_file(output_path(job.name), "PNG image", ".png")
    if spikes is not None:
        if large:
            raise UserError("--spikes keeps every image's spikes in this process; it does not combine with "
                            "--cluster or --results", "simulate the images you want spikes of without them")
        check_output_file(spikes, "npz archive", ".npz")
    if json_out is not None:
        check_output_file(json_out, "JSON")
    loaded = Bundle.load(bundle).require("inpainter")
    skipped = [job.name for job in jobs if skip_existing and output_path(job.name).exists()]
    skipped_names = set(skipped)
    pending = [job for job in jobs if job.name not in skipped_names]
    if skipped:
        console.print(f"--skip-existing: {plural(len(skipped), 'image')} skipped (output exists), "
                      f"{len(pending)} to simulate")
    saved: dict[str, np.ndarray] = {}

    def write(result: Any) -> None:
        write_png(output_path(result.name), result.output)
        if spikes is not None:
            saved[f"{result.name}/frames"] = result.frames
            saved[f"{result.name}/spikes"] = result.spikes.numpy()
        console.print(f"{result.name}: {result.seconds['total']:.2f} s, "
                      f"{result.total_spikes:,} spikes -> {output_path(result.name)}")
        for note in result.fidelity.get("warnings", []):
            err_console.print(f"warning: {result.name}: {note}", highlight=False, soft_wrap=True)

    if pending and large:
        with sized_threads(plan):
            report = _simulate_items(bundle, _image_items(pending, random_mask), output_path, backend, lava_models,
                                     device, seed, cluster, workers, results, loaded.timesteps, mode == "all")
    elif pending:
        with TileProgress(err_console) as progress:  # --spikes keeps whole-image arrays, as asked
            report = run_simulation(loaded, _read_inputs(pending, random_mask), backend=backend,  # type: ignore
                                    models=lava_models, seed=seed, on_result=write,  # type: ignore[arg-type]
                                    keep_outputs=False, keep_spikes=spikes is not None, progress=progress,
                                    device=device, fidelity=mode, threads=threads)
    else:
        report = SimulationReport(backend, loaded.timesteps, [], {"compile": 0.0, "run": 0.0, "total": 0.0})
        console.print("nothing to simulate: every output exists")
    report.skipped, report.fidelity, report.threads = skipped, mode, plan.as_dict()
    if spikes is not None:
        with atomic_path(spikes) as tmp, open(tmp, "wb") as handle:
            np.savez_compressed(handle, **saved)
    if report.images == 1 and report.results[0]["fidelity"]:
        f = report.results[0]["fidelity"]
        console.print("fidelity of the run against the float model:")
        console.print(f"  output image PSNR {f['psnr_vs_float']:.2f} dB, spike F1 {_share(f['spike_f1'])} "
                      f"(precision {_share(f['spike_precision'])}, recall {_share(f['spike_recall'])})")
        console.print(f"  spikes bit-exact with the reference backend: {_yes(f['exact_vs_reference'])}")
    elif report.images_per_second:
        console.print(f"{plural(report.images, 'image')}, compiled once in {report.seconds['compile']:.2f} s, "
                      f"{report.images_per_second:.2f} images/s")
    if json_out:
        with atomic_path(json_out) as tmp:
            tmp.write_text(json.dumps(report.to_dict(), indent=2))
        console.print(f"JSON ({report.to_dict()['covers']}): {json_out}")


def _simulate_items(bundle: Path, items: list[tuple[str, Any]], output_path: Any, backend: str, lava_models: str,
                    device: str, seed: int, cluster: str | None, workers: int, results: Path | None,
                    timesteps: int, fidelity: bool = True) -> Any:
    """Images as items (:func:`neurodeploy.cluster.run_items`), in this process or on Ray, each written as
    it finishes; the report over every item (those resumed from --results too)."""
    import time

    from neurodeploy.cluster import ImageWork, ItemProgress, run_items
    from neurodeploy.io import write_png
    from neurodeploy.simulation import SimulationReport

    def write(record: dict[str, Any], output: Any) -> None:
        write_png(output_path(record["id"]), output)
        console.print(f"{record['id']}: {record['seconds']['total']:.2f} s, {record['spikes']['total']:,} spikes "
                      f"-> {output_path(record['id'])}")

    started = time.perf_counter()
    with ItemProgress(err_console) as progress:
        records = run_items(ImageWork(bundle, backend, lava_models, device, seed, fidelity), items, cluster=cluster,
                            workers=workers, results=results, on_item=write, progress=progress)
    summaries = [{k: v for k, v in r.items() if k != "id"} for r in records]
    return SimulationReport(backend, timesteps, summaries,
                            {"compile": 0.0, "run": sum(r["seconds"]["total"] for r in summaries),
                             "total": time.perf_counter() - started})


def _simulate_graph(bundle: Path, input_path: Path, out: Path | None, json_out: Path | None, backend: str,
                    lava_models: str, device: str = "cpu", large: tuple[Any, ...] | None = None,
                    compare: Path | None = None, mode: str = "all", threads: dict[str, Any] | None = None) -> None:
    """``simulate --input``: a graph bundle on X; OUT.npz gets ``output``, the JSON timings and fidelity (of
    every sample, the first one or none: ``mode``; with ``--compare Y.npy``, the output against Y under
    ``fidelity["vs_compare"]``) and the threads."""
    import json
    import warnings

    import numpy as np

    from neurodeploy.bundle import Bundle
    from neurodeploy.graph_run import compare_scores, fidelity, read_compare, read_input, report, run_graph
    from neurodeploy.io import atomic_path, check_output_file

    target = out or input_path.with_name(f"{input_path.stem}-output.npz")
    check_output_file(target, "npz archive", ".npz")
    if json_out is not None:
        check_output_file(json_out, "JSON")
    loaded = Bundle.load(bundle).require("graph")
    x = read_input(input_path, loaded.deployment)
    y = None if compare is None else read_compare(compare, loaded.deployment, x)
    if large is not None:
        _simulate_samples(bundle, x, target, json_out, backend, lava_models, device, *large, compare=y,
                          check=mode == "all", threads=threads)
        return
    checked = {"all": len(x), "first": 1, "none": 0}[mode]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        run = run_graph(loaded.deployment, x, backend=backend, models=lava_models, device=device,
                        check=True if mode == "all" else checked)
        fid = fidelity(loaded.deployment, x[:checked], run.head(checked)) if checked else {}
    for warning in caught:  # host values clipped at a cut, a silent layer: one line each, on stderr
        err_console.print(f"warning: {warning.message}", highlight=False, soft_wrap=True)
    if y is not None:
        fid["vs_compare"] = compare_scores(run.output, y)
    with atomic_path(target) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, output=run.output)
    console.print(f"{plural(x.shape[0], 'sample')} of {x.shape[1]} steps on {backend} in "
                  f"{run.seconds['total']:.2f} s -> {target}", highlight=False, soft_wrap=True)
    if fid:
        _print_graph_fidelity(fid, checked, len(x))
    if y is not None:
        _print_compare(fid["vs_compare"])
    if json_out is not None:
        with atomic_path(json_out) as tmp:
            tmp.write_text(json.dumps({**report(loaded, x, run, fid), "fidelity_check": mode, "threads": threads},
                                      indent=2))
        console.print(f"JSON: {json_out}")


def _print_graph_fidelity(fid: dict[str, Any], checked: int, samples: int) -> None:
    """The graph fidelity line of ``simulate --input``: spike scores, output agreement, bit-exactness."""
    of = "" if checked == samples else f" (the first {plural(checked, 'sample')})"
    console.print(f"  vs the float graph{of}: spike F1 {_share(fid['spike_f1'])} (precision "
                  f"{_share(fid['spike_precision'])}, recall {_share(fid['spike_recall'])}), output argmax "
                  f"agreement {_share(fid['output_agreement_vs_float'])} of "
                  f"{fid['output_samples'] - fid['output_ties']} untied samples; bit-exact with the reference: "
                  f"{_yes(fid['exact_vs_reference'])}",
                  highlight=False, soft_wrap=True)


def _share(value: float | None) -> str:
    """A fraction as a percentage, or "n/a" where it is undefined (e.g. spike F1 with no spikes on either side)."""
    return "n/a" if value is None else f"{value:.2%}"


def _simulate_samples(bundle: Path, x: Any, target: Path, json_out: Path | None, backend: str, lava_models: str,
                      device: str, cluster: str | None, workers: int, results: Path | None,
                      compare: Any = None, check: bool = True, threads: dict[str, Any] | None = None) -> None:
    """``simulate --input`` sample by sample (:func:`neurodeploy.cluster.run_items`): OUT.npz gets ``output``
    in input order, the JSON each sample's record (and ``fidelity.vs_compare`` against ``compare``)."""
    import json

    import numpy as np

    from neurodeploy.cluster import ItemProgress, SampleWork, run_items, sample_items
    from neurodeploy.graph_run import compare_scores
    from neurodeploy.io import atomic_path

    with ItemProgress(err_console) as progress:
        records = run_items(SampleWork(bundle, backend, lava_models, device, check=check), sample_items(x),
                            cluster=cluster, workers=workers, results=results, progress=progress)
    output = np.stack([np.asarray(r["output"], dtype=np.float64) for r in records])
    with atomic_path(target) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, output=output)
    exact = all(r["exact_vs_reference"] for r in records)
    console.print(f"{plural(x.shape[0], 'sample')} of {x.shape[1]} steps on {backend} -> {target}; bit-exact "
                  f"with the reference: {_yes(exact)}", highlight=False, soft_wrap=True)
    vs_compare = None if compare is None else compare_scores(output, compare)
    if vs_compare is not None:
        _print_compare(vs_compare)
    if json_out is not None:
        with atomic_path(json_out) as tmp:
            tmp.write_text(json.dumps({"bundle": str(bundle), "backend": backend, "samples": int(x.shape[0]),
                                       "exact_vs_reference": exact,
                                       **({} if vs_compare is None else {"fidelity": {"vs_compare": vs_compare}}),
                                       "fidelity_check": "all" if check else "none", "threads": threads,
                                       "samples_run": [{k: v for k, v in r.items() if k != "output"}
                                                       for r in records]}, indent=2))
        console.print(f"JSON: {json_out}")


def _print_compare(scores: dict[str, Any]) -> None:
    """One line: the deployed output against --compare's Y."""
    spikes = "" if "spike_f1" not in scores else f"spike F1 {_share(scores['spike_f1'])}, "
    console.print(f"  against --compare: {spikes}output argmax agreement "
                  f"{_share(scores['output_agreement_vs_float'])} of "
                  f"{scores['output_samples'] - scores['output_ties']} untied samples", highlight=False,
                  soft_wrap=True)


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


@app.command()
def profile(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory written by neurodeploy convert.")],
    image: Annotated[Path | None, typer.Option(help="Inpainter bundle: an image, or a folder of images (counts "
                                                    "are averaged).")] = None,
    input_path: Annotated[Path | None, typer.Option("--input", help="Graph bundle: X (N, T, *input shape) as "
                                                                    ".npy or .npz (counts are averaged).")] = None,
    mask: Annotated[Path | None, typer.Option(help="Mask image (white = missing) or a folder of masks.")] = None,
    random_mask: Annotated[int | None, typer.Option(help="Seed of a random mask to draw instead of --mask: "
                                                         "rectangles or strokes over 10-30% of the image.")] = None,
    hw: Annotated[str | None, typer.Option(help="Profiles (names or .toml paths), comma-separated (default: all).")]
    = None,
    host: Annotated[str, typer.Option(help="Host profile that runs the CNN stage.")] = "gpu",
    backend: Annotated[str, typer.Option(help="lava, reference (fast, bit-exact) or loihi2.")] = "lava",
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the counts and energies as JSON.")] = None,
    report: Annotated[Path | None, typer.Option(help="Folder for PNG plots and report.html.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of Poisson inputs and of the raster's neuron sample.")] = 0,
    device: DeviceOption = "cpu",
    cluster: ClusterOption = None,
    workers: WorkersOption = 2,
    results: ResultsOption = None,
    sweep: Annotated[Path | None, typer.Option(help="A sweep.json (neurodeploy sweep) to add to the report.")]
    = None,
    threads: ThreadsOption = None,
) -> None:
    """Count spikes, synaptic ops, neuron updates, host MACs and bridge bits; price them per hardware profile."""
    import json

    from neurodeploy.bundle import Bundle
    from neurodeploy.hw import load_profile
    from neurodeploy.io import atomic_path, check_output_file, check_output_folder
    from neurodeploy.profiling import profile as run_profile
    from neurodeploy.profiling import select_profiles
    from neurodeploy.run_options import plan_threads, sized_threads

    graph = _graph_input(image, input_path, backend)
    _check_scale(backend, device, cluster, results)
    plan = plan_threads(backend, threads)
    large = cluster is not None or results is not None
    jobs = [] if graph else _plan_inputs(image, mask, random_mask)  # type: ignore[arg-type]
    if json_out is not None:
        check_output_file(json_out, "JSON")
    if report is not None:
        check_output_folder(report)
    if sweep is not None and report is None:
        raise UserError("--sweep adds a section to the report", "pass `report=FOLDER` too")
    sweep_document = None
    if sweep is not None:
        from neurodeploy.sweep import read_sweep

        sweep_document = read_sweep(sweep)
    names = [n.strip() for n in hw.split(",") if n.strip()] if hw else None
    select_profiles(names)  # a bad profile name fails before Lava starts
    load_profile(host)
    if large:
        with sized_threads(plan):
            summary, spikes = _profile_items(bundle, graph, input_path, jobs, random_mask, backend, device, seed,
                                             names, host, cluster, workers, results)
        summary["threads"] = plan.as_dict()
    elif graph:
        from neurodeploy.graph_run import read_input

        loaded = Bundle.load(bundle).require("graph")
        summary, spikes = run_profile(loaded, read_input(input_path, loaded.deployment),  # type: ignore[arg-type]
                                      backend=backend, hw=names, host=host, device=device,  # type: ignore[arg-type]
                                      threads=threads)
    else:
        loaded = Bundle.load(bundle).require("inpainter")
        summary, spikes = run_profile(loaded, _read_inputs(jobs, random_mask),  # type: ignore[arg-type]
                                      backend=backend, hw=names, host=host, seed=seed,  # type: ignore[arg-type]
                                      device=device, threads=threads)
    _print_profile(summary)
    if json_out:
        with atomic_path(json_out) as tmp:
            tmp.write_text(json.dumps(summary, indent=2))
    if report:
        from neurodeploy.report import write_report

        page = write_report(report, summary, spikes, seed=seed, sweep=sweep_document)
        console.print(f"report: {page}")


def _profile_items(bundle: Path, graph: bool, input_path: Path | None, jobs: list[_Job], random_mask: int | None,
                   backend: str, device: str, seed: int, names: list[str] | None, host: str, cluster: str | None,
                   workers: int, results: Path | None) -> tuple[dict[str, Any], Any]:
    """``profile`` item by item (:func:`neurodeploy.cluster.run_items`): each image's or sample's counts, then
    the summary over all of them; the raster's spikes are the last item run here (zeros if all resumed)."""
    import numpy as np

    from neurodeploy.bundle import Bundle
    from neurodeploy.cluster import ImageWork, ItemProgress, SampleWork, run_items, sample_items
    from neurodeploy.profiling import graph_view, inpainter_view, summarize, summarize_graph

    last: list[Any] = [np.zeros((1, 1, 1, 1), np.uint8)]
    work: Any
    if graph:
        from neurodeploy.graph_run import read_input

        loaded = Bundle.load(bundle).require("graph")
        x = read_input(input_path, loaded.deployment)  # type: ignore[arg-type]
        work, items = SampleWork(bundle, backend, "neurodeploy", device, profile=True), sample_items(x)
    else:
        Bundle.load(bundle).require("inpainter")
        work, items = ImageWork(bundle, backend, "neurodeploy", device, seed, profile=True), \
            _image_items(jobs, random_mask)
    with ItemProgress(err_console) as progress:
        records = run_items(work, items, cluster=cluster, workers=workers, results=results,
                            on_item=lambda record, spikes: last.__setitem__(0, spikes), progress=progress)
    counts = [{k: v for k, v in r.items() if k not in ("id", "exact_vs_reference")} for r in records]
    if graph:
        summary = summarize_graph(counts, backend, names, host, int(x.shape[1]),
                                  all(r["exact_vs_reference"] for r in records))
        return graph_view(loaded.deployment, summary, names, host), last[0]
    return inpainter_view(Bundle.load(bundle), counts, summarize(counts, backend, names, host), names, host), last[0]


def _print_profile(summary: dict[str, Any]) -> None:
    """The counts and the energies as two tables that fit 80 columns, numbers never cut."""
    layers = summary["layers"]
    graph = summary.get("kind") == "graph"
    what = plural(summary["samples"], "sample") if graph else plural(summary["images"], "image")
    counts = Table(title=f"per inference ({what}, T = {int(layers[0]['timesteps'])} steps)", box=box.SIMPLE_HEAD)
    for col in ("chip layer", "spikes", "firing rate", "synaptic ops", "neuron updates"):
        counts.add_column(col, justify="right", no_wrap=True)
    for layer in layers:
        name = layer["name"] if len(layer["name"]) <= 18 else layer["name"][:17] + "…"
        if graph:
            name = f"{name} ({layer['kind'].replace('dense_rec', 'rec')})"
        counts.add_row(name, f"{layer['spikes']:.4g}", f"{layer['firing_rate']:.4f}",
                       f"{layer['synops']:.4g}", f"{layer['neuron_updates']:.4g}")
    console.print(counts)
    for layer in layers:
        if layer.get("bias_axon_spikes"):
            console.print(f"  {layer['name']}: bias axons {layer['bias_axon_spikes']:.4g} spikes, "
                          f"{layer['bias_axon_synops']:.4g} synaptic ops (in its synaptic ops)", highlight=False)
    stage = "host graph" if graph else "host CNN"
    console.print(f"{stage}: {summary['host_macs']:.4g} MACs; bridge: {summary['bridge_bits']:.4g} bits")
    for cut in summary.get("cuts", []):
        line = (f"  cut {cut['src']} -> {cut['dst']} ({cut['direction']}, {cut['payload']}): "
                f"{cut['events']:.4g} events, {cut['bits']:.4g} bits")
        console.print(line if len(line) <= 80 else line[:79] + "…", highlight=False, soft_wrap=True)
    host = summary["host_profile"]
    energy = Table(title=f"energy per inference in joules, {stage} on {host}", box=box.SIMPLE_HEAD)
    for col in ("profile", "chip", stage, "bridge", "total", "/ all-host" if graph else "/ all-CNN"):
        energy.add_column(col, justify="right", no_wrap=True)
    for name, e in summary["energy_j"].items():
        energy.add_row(name, f"{e['snn']:.3e}", f"{e['host']:.3e}", f"{e['bridge']:.3e}", f"{e['total']:.3e}",
                       f"{e['ratio_to_baseline']:.3f}")
    console.print(energy)
    for name, joules in summary["baseline_j"].items():
        note = " (the ratio's reference)" if name == host else ""
        whole = "all-host graph" if graph else "all-CNN network"
        console.print(f"{whole} on {name}: {joules:.3e} J{note}")
    _print_deployment(summary)


def _print_deployment(summary: dict[str, Any]) -> None:
    """Cores, chips, latency and the chip's dynamic and static energy per profile."""
    mapping, timing = summary.get("mapping") or {}, summary.get("latency_s") or {}
    if not mapping and not timing:
        return
    table = Table(title="deployment per profile (latency: busiest core)", box=box.SIMPLE_HEAD)
    for col in ("profile", "cores", "chips", "1 chip", "s / step", "s / infer.", "static J"):
        table.add_column(col, justify="right", no_wrap=True)
    short = {"cores_per_chip": "no", "fan_in_per_core": "no: fan-in", "fan_out_per_core": "no: fan-out",
             "synapse_bits_per_core": "no: memory", "neurons_per_core": "no: neurons"}
    for name, e in summary["energy_j"].items():
        m, t = mapping.get(name) or {}, timing.get(name) or {}
        fits = "n/a" if not m else "yes" if m["fits"] else short.get(m["limiting"], "no")
        table.add_row(name, str(m.get("cores", "n/a")), str(m.get("chips") or "n/a"), fits,
                      f"{t['per_step']:.2e}" if t else "n/a", f"{t['per_inference']:.2e}" if t else "n/a",
                      f"{e.get('snn_static', 0.0):.2e}")
    console.print(table)
    nb = summary.get("neurobench")
    if nb:
        ops = nb["synaptic_operations"]
        console.print(f"NeuroBench synaptic ops: {ops['Effective_ACs']:.4g} ACs, {ops['Effective_MACs']:.4g} MACs, "
                      f"{ops['Dense']:.4g} dense", highlight=False, soft_wrap=True)
        console.print(f"NeuroBench sparsity: activation {nb['activation_sparsity']:.4f}, "
                      f"connection {nb['connection_sparsity']:.4f}", highlight=False, soft_wrap=True)


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for everything the demo writes.")] = Path("demo-out"),
    model: Annotated[Path | None, typer.Option(help="Checkpoint (default: examples/models/scnn_inpaint.pt).")]
    = None,
    train: Annotated[bool, typer.Option(help="Train a small model from scratch instead (minutes).")] = False,
    size: Annotated[int, typer.Option(help="Side of the centre crop of the demo photo (0: whole photo).")] = 0,
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


@app.command()
def sweep(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for sweep.json, sweep.png, report.html, "
                                                          "models/ and bundles/.")],
    epochs: Annotated[int | None, typer.Option(help="Epochs to train every model (default 10).")] = None,
    until_converged: Annotated[bool, typer.Option(
        "--until-converged", help="Train every model at a constant learning rate until its validation MSE has "
                                  "not improved by 1% over its last 20% of epochs (between --min-epochs and "
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
    backend: Annotated[str, typer.Option(help="Deployment backend: lava, reference or loihi2.")] = "lava",
    samples_per_epoch: Annotated[int, typer.Option(help="Random crops per epoch.")] = 256,
    crop: Annotated[int, typer.Option(help="Training crop size in pixels (evaluation: 128).")] = 128,
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = 8,
    config: Annotated[Path | None, typer.Option(help="ModelConfig JSON (its spiking_layers is ignored).")] = None,
    hw: Annotated[str | None, typer.Option(help="Chip profiles, comma-separated (default: all).")] = None,
    host: Annotated[str, typer.Option(help="Host profile for the host part and the twin.")] = "gpu",
    force: Annotated[bool, typer.Option(help="Replace the models of an earlier sweep in --out.")] = False,
    resume: Annotated[bool, typer.Option(help="Continue the models of an earlier sweep in --out (same settings); "
                                              "finished ones are not retrained.")] = False,
) -> None:
    """Train the all-CNN twin, the SC-NN and deeper spiking variants alike; compare quality and energy."""
    from neurodeploy.sweep import SweepConfig, run_sweep
    from neurodeploy.train import ConvergenceRule

    converge = None
    if until_converged:
        if epochs is not None:
            raise UserError("--epochs and --until-converged both given",
                            "pass one: a fixed number of epochs, or --min-epochs/--max-epochs for the rule")
        converge = ConvergenceRule(**{k: v for k, v in (("min_epochs", min_epochs), ("max_epochs", max_epochs))
                                      if v is not None})
    elif min_epochs is not None or max_epochs is not None:
        raise UserError("--min-epochs/--max-epochs bound a run to convergence", "pass --until-converged too")
    model = _model_config(config)
    try:
        counts = tuple(int(v) for v in variants.split(",") if v.strip())
    except ValueError:
        raise UserError(f"`variants={variants}` is not a list of integers", "pass e.g. `variants=0,1,2,3`") from None
    names = tuple(n.strip() for n in hw.split(",") if n.strip()) if hw else None
    document = run_sweep(SweepConfig(out=str(out), variants=counts, seeds=seeds, epochs=epochs or 10, data=data,
                                     device=device, backend=backend, hw=names, host=host, batch_size=batch_size,
                                     crop=crop, samples_per_epoch=samples_per_epoch, force=force, resume=resume,
                                     model=model, converge=converge),
                         log=lambda line: console.print(line, highlight=False, soft_wrap=True))
    _print_sweep(document)
    console.print(f"sweep.json, sweep.png and report.html in {out}/")


def _print_sweep(document: dict[str, Any]) -> None:
    """One row per variant: quality, fidelity, spikes, energy on the plot profile and against the twin."""
    from neurodeploy.sweep import training_budget

    profile = document["protocol"]["plot_profile"]
    table = Table(title=f"sweep ({training_budget(document)}, "
                        f"{plural(len(document['protocol']['seeds']), 'seed')}; energy: {profile} + "
                        f"{document['protocol']['host_profile']} host)", box=box.SIMPLE_HEAD)
    for col in ("variant", "hole PSNR dB", "SSIM", "spike F1", "energy J", "/ twin"):
        table.add_column(col, justify="right", no_wrap=True)
    for name, v in document["variants"].items():
        energy = v.get("energy_j", {}).get(profile)
        agreement = v["fidelity"].get("spike_f1")
        ratio = v.get("energy_vs_twin", {}).get(profile)
        table.add_row(name, f"{v['psnr_hole']:.2f} ± {v['psnr_hole_std']:.2f}", f"{v['ssim']:.4f}",
                      _share(agreement),
                      "not measured" if energy is None else f"{energy['total']:.3e}",
                      "" if ratio is None else f"{ratio:.3f}")
    fill = document.get("hole_fill_alone")
    if fill is not None:  # what every variant gets from the fill it starts from, with no network at all
        table.add_row("hole fill alone", f"{fill['psnr_hole']:.2f}", f"{fill['ssim']:.4f}", "", "", "")
    for name, s in document["classical"].items():
        table.add_row(name, f"{s['psnr_hole']:.2f}", f"{s['ssim']:.4f}", "", "", "")
    console.print(table)


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
    for section, figures in (("energy", p.energy), ("latency", p.latency), ("resources", p.resources)):
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
        err_console.print(f"[bold red]error:[/bold red] {escape(exc.cli_message)}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        err_console.print("interrupted", highlight=False)
        sys.exit(130)
