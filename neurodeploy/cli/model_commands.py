"""``neurodeploy train`` and ``neurodeploy evaluate``: the inpainter's model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from neurodeploy.cli.app import app, console, err_console
from neurodeploy.cli.inputs import check_backend, read_model_config
from neurodeploy.errors import UserError
from neurodeploy.inpainter.checkpoint import load_model
from neurodeploy.inpainter.conversion import convert as run_convert
from neurodeploy.inpainter.data import EvalSample, EvalSet, WholePhotoSet, resolve_paths
from neurodeploy.inpainter.evaluate import BIHARMONIC_LIMIT, METHODS
from neurodeploy.inpainter.evaluate import evaluate as run_evaluation
from neurodeploy.inpainter.model import SHIPPED_CONFIG, ModelConfig
from neurodeploy.inpainter.simulation import TileProgress, deployed_inpainter
from neurodeploy.inpainter.train import TrainConfig
from neurodeploy.inpainter.train import train as run_training
from neurodeploy.io import atomic_path, check_output_file, read_image, read_mask
from neurodeploy.runtime.backends import backend_help
from neurodeploy.text import plural


@app.command()
def train(
    out: Annotated[Path, typer.Option("--out", "-o", help="Checkpoint to write after every epoch.")] = Path("model.pt"),
    data: Annotated[str, typer.Option(help="'builtin' (photos in scikit-image) or a folder of images.")] = "builtin",
    val_data: Annotated[str | None, typer.Option(
        help="Validation photos: 'builtin' or a folder (default: every tenth image of --data).")] = None,
    loss: Annotated[str, typer.Option(
        help="hole (each crop's hole MSE, every crop alike), image (MSE over the crop, the paper's) or psnr "
             "(the log of each crop's hole MSE); docs/BENCHMARKS.md section 23.")] = "hole",
    epochs: Annotated[int, typer.Option(help="Epochs to train (in total, with --resume).")] = 40,
    batch_size: Annotated[int, typer.Option(help="Global batch size (split over torchrun ranks).")] = 8,
    lr: Annotated[float, typer.Option(help="Adam learning rate (at 2e-3 the residual network stops learning: "
                                           "docs/BENCHMARKS.md section 23).")] = 5e-4,
    timesteps: Annotated[int, typer.Option(help="Time steps T of the spiking layer.")] = 8,
    encoding: Annotated[str, typer.Option(help="Input encoding: constant or poisson.")] = "constant",
    crop: Annotated[int, typer.Option(help="Training crop size in pixels.")] = 128,
    samples_per_epoch: Annotated[int, typer.Option(help="Random crops per epoch.")] = 256,
    seed: Annotated[int, typer.Option(help="Seed for every random choice.")] = 0,
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:N or auto.")] = "auto",
    config: Annotated[Path | None, typer.Option(help="ModelConfig JSON; --timesteps/--encoding override it "
                                                     "(default: the shipped model's, "
                                                     "examples/configs/full_resolution_residual.json).")] = None,
    spiking_layers: Annotated[int | None, typer.Option(
        help="LIF conv layers, from the first (1: the paper's, 0: the all-CNN twin); default 1.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from --out if it exists.")] = False,
    force: Annotated[bool, typer.Option(help="Replace a model that exists at --out (without --resume).")] = False,
) -> None:
    """Train the hybrid SC-NN inpainter (Norse LIF + 5 conv layers) with MSE and Adam."""

    base = read_model_config(config, SHIPPED_CONFIG)
    try:
        chosen = {} if spiking_layers is None else {"spiking_layers": spiking_layers}
        model_config = ModelConfig.from_dict({**base.to_dict(), "timesteps": timesteps, "encoding": encoding,
                                              **chosen})
    except ValueError as exc:
        raise UserError(str(exc), "see neurodeploy train --help") from None
    result = run_training(
        TrainConfig(data=data, out=str(out), epochs=epochs, batch_size=batch_size, lr=lr, crop=crop,
                    samples_per_epoch=samples_per_epoch, seed=seed, device=device, resume=resume, force=force,
                    val_data=val_data, loss=loss),
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
    backend: Annotated[str, typer.Option(help="Chip backend of the deployed model: " + backend_help())] = "reference",
    biharmonic_limit: Annotated[int, typer.Option(
        help="Leave biharmonic out of an image whose largest hole has more pixels than this (its solve needs about "
             "1 GiB at the default and grows faster than the hole); 0: no limit.")] = BIHARMONIC_LIMIT,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON.")] = None,
) -> None:
    """Score the SC-NN, float and deployed, against Telea, Navier-Stokes, biharmonic and harmonic inpainting
    on the same holes: on 128-px crops and on whole photos."""
    import contextlib
    import tempfile


    if json_out:
        check_output_file(json_out, "JSON")
    if protocol not in ("crops", "photos", "both"):
        raise UserError(f"--protocol {protocol!r} is none of crops, photos, both", "pass --protocol both")
    if biharmonic_limit < 0:
        raise UserError(f"--biharmonic-limit {biharmonic_limit} is negative", "pass a pixel count, or 0 for no limit")
    check_backend(backend)
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
        tiles = stack.enter_context(TileProgress(err_console))  # a large photo: a bar with the time left
        inpaint = None
        if deployed:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="neurodeploy-evaluate-")))
            inpaint = stack.enter_context(deployed_inpainter(run_convert(model, folder / "bundle"), backend, seed,
                                                             progress=tiles))
        for name, samples in sets.items():
            reports[name] = report = run_evaluation(net, samples, seed=seed, deployed=inpaint, tiles=tiles,
                                                    biharmonic_limit=biharmonic_limit)
            table = Table(title=f"inpainting on {plural(report['images'], 'image')} ({titles[name]}; "
                                "hole = masked pixels)")
            for col in ("method", "MSE (whole image)", "MSE (hole)", "PSNR hole dB", "SSIM"):
                table.add_column(col, justify="right")
            for method in METHODS:
                if method in report["methods"]:
                    m = report["methods"][method]
                    left_out = len(report["skipped"].get(method, []))
                    label = f"{method} ({report['images'] - left_out} of {report['images']})" if left_out else method
                    table.add_row(label, f"{m['mse']:.5f}", f"{m['mse_hole']:.5f}", f"{m['psnr_hole']:.2f}",
                                  f"{m['ssim']:.4f}")
            console.print(table)
            for method, images in report["skipped"].items():
                names = ", ".join(i["name"] for i in images[:5]) + (", ..." if len(images) > 5 else "")
                console.print(f"{method} left out of {plural(len(images), 'image')} ({names}); "
                              f"{images[0]['name']}: {images[0]['reason']}")
    if json_out:
        with atomic_path(json_out) as tmp:
            tmp.write_text(json.dumps(reports, indent=2))
