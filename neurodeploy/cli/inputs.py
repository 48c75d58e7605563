"""What ``simulate`` and ``profile`` read: images and masks (jobs), or a graph's samples, and the checks of
``--backend``, ``--device`` and ``--cluster`` made before any work starts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from neurodeploy.errors import UserError
from neurodeploy.inpainter.data import PHOTO_MASKS
from neurodeploy.inpainter.data import random_mask as draw_mask
from neurodeploy.inpainter.model import ModelConfig
from neurodeploy.inpainter.simulator import SimulationInput
from neurodeploy.io import image_size, list_images, read_image, read_mask
from neurodeploy.runtime.backends import BACKENDS, check_backend_device
from neurodeploy.runtime.cluster import ResultsLog, parse_cluster
from neurodeploy.runtime.torch_backend import DEVICES
from neurodeploy.text import plural


@dataclass(frozen=True)
class Job:
    """One image to run: its output name, its file, and its mask file (None: a drawn mask)."""

    name: str
    image: Path
    mask: Path | None
    index: int  # position in the whole folder: the random mask's seed is (--random-mask, index)


def plan_inputs(image: Path, mask: Path | None, random_mask: int | None) -> list[Job]:
    """--image (file or folder) with --mask (file, or folder of same-named masks) or --random-mask SEED.

    Everything that can be checked without decoding pixels is checked here,
    before any work: exactly one mask source, a seed >= 0, existing paths,
    no two images with the same output name, a mask for every image, every
    image and mask readable and every mask its image's size
    (:func:`check_readable`).
    """

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
    jobs = [Job(path.stem, path, masks.get(path.stem, mask) if mask is not None else None, index)
            for index, path in enumerate(paths)]
    check_readable(jobs)
    return jobs


def check_readable(jobs: list[Job]) -> None:
    """Every image and mask decodes its header and verifies, and every mask is its image's size: a bad file
    in a folder is refused, naming it, before the first image runs rather than when the run reaches it."""
    sizes: dict[Path, tuple[int, int]] = {}
    for job in jobs:
        for path in (job.image, job.mask):
            if path is not None and path not in sizes:
                sizes[path] = image_size(path)
        if job.mask is not None and sizes[job.mask] != sizes[job.image]:
            (mh, mw), (ih, iw) = sizes[job.mask], sizes[job.image]
            raise UserError(f"mask {job.mask} is {mw}x{mh} but the image {job.image} is {iw}x{ih}",
                            "pass a mask of the same width and height as the image")


def read_inputs(jobs: list[Job], random_mask: int | None) -> Iterator[Any]:
    """The planned images, read one at a time as the simulation reaches them."""
    for job in jobs:
        rgb = read_image(job.image)
        if job.mask is None:
            hole = draw_mask(np.random.default_rng([random_mask or 0, job.index]), rgb.shape[0], rgb.shape[1],
                             PHOTO_MASKS)
        else:
            hole = read_mask(job.mask, rgb.shape[:2])
        yield SimulationInput(job.name, rgb, hole)


def graph_input(image: Path | None, input_path: Path | None, backend: str, lava_models: str = "neurodeploy") -> bool:
    """Exactly one of --image (an inpainter bundle) and --input (a graph bundle), and a backend that runs it.

    True for a graph's --input.
    """
    if image is not None and input_path is not None:
        raise UserError("both --image and --input given", "pass --image for an inpainter bundle, --input for "
                                                          "a graph bundle")
    if image is None and input_path is None:
        raise UserError("--image or --input is needed", "pass --image PHOTO for an inpainter bundle, "
                                                        "--input X.npy for a graph bundle")
    if input_path is not None and backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r} for a graph bundle", f"pass one of {', '.join(BACKENDS)}")
    check_backend(backend, lava_models)
    return input_path is not None


def check_backend(backend: str, lava_models: str = "neurodeploy") -> None:
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}", f"pass one of {', '.join(BACKENDS)}")
    if lava_models not in ("neurodeploy", "stock"):
        raise UserError(f"unknown --lava-models {lava_models!r}", "pass neurodeploy or stock")


# The scale options simulate and profile share (neurodeploy.runtime.cluster, neurodeploy.runtime.torch_backend)
DeviceOption = Annotated[str, typer.Option(help="torch backend: cpu or cuda.")]
ClusterOption = Annotated[str | None, typer.Option(help="ray (a local Ray cluster) or ray:ADDRESS: spread a folder "
                                                       "or an input set over Ray workers.")]
WorkersOption = Annotated[int, typer.Option(help="Workers of a local Ray cluster (--cluster ray).")]
ResultsOption = Annotated[Path | None, typer.Option(help="Per-item results as JSON lines, written as items finish; "
                                                        "a rerun resumes.")]
# The run options simulate and profile share (neurodeploy.runtime.run_options)
ThreadsOption = Annotated[int | None, typer.Option(help="torch and BLAS threads of this process (default: the cores "
                                                        "less one, less one more beside Lava).")]
FidelityOption = Annotated[str, typer.Option(help="Check against the float model and the reference backend: all "
                                                  "images or samples, the first only, or none.")]

def check_scale(backend: str, device: str, cluster: str | None, results: Path | None) -> None:
    """--device, --cluster and --results, checked before any work (:mod:`neurodeploy.runtime.cluster`)."""

    if device not in DEVICES:
        raise UserError(f"unknown --device {device!r}", f"pass one of {', '.join(DEVICES)}")
    check_backend_device(backend, device)
    parse_cluster(cluster)
    if results is not None:
        ResultsLog(results)


def image_items(jobs: list[Job], random_mask: int | None) -> list[tuple[str, Any]]:
    """The planned images as (name, loader) items of :func:`neurodeploy.runtime.cluster.run_items`."""
    return [(job.name, (lambda job=job: next(read_inputs([job], random_mask)))) for job in jobs]


def read_model_config(path: Path | None) -> Any:
    """The ModelConfig of ``--config`` (the defaults without one); a file that is none is a UserError."""

    if path is None:
        return ModelConfig()
    try:
        return ModelConfig.from_json(path.read_text())
    except (OSError, ValueError, TypeError) as exc:
        raise UserError(f"--config {path} is not a valid ModelConfig JSON ({exc})",
                        "write it with ModelConfig.to_json()") from None


def share(value: float | None) -> str:
    """A fraction as a percentage, or "n/a" where it is undefined (e.g. spike F1 with no spikes on either side)."""
    return "n/a" if value is None else f"{value:.2%}"
