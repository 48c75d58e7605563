"""Evaluation of the SC-NN against classical inpainting, on the same images and masks.

Methods: the trained SC-NN (float, PyTorch/Norse; ``deployed``: the same model
converted and run through :class:`~neurodeploy.inpainter.simulator.Simulator`, its
spiking stage in Loihi fixed point on a chip backend), OpenCV Telea and
Navier-Stokes (``cv2.inpaint``, radius 3), scikit-image biharmonic
(``inpaint_biharmonic``), and the harmonic fill the SC-NN can start from
(:func:`neurodeploy.inpainter.model.smooth_fill`, ``hole_fill="smooth"``). Each result
keeps the known pixels and fills only the hole (mask nonzero = missing).
Measures, all on [0, 1] intensities:

* ``mse``: over the whole image (the paper's measure),
* ``mse_hole`` and ``psnr_hole = 10 log10(1 / mse_hole)``: inside the hole only
  (capped at 100 dB),
* ``ssim``: structural similarity of the whole image (scikit-image, RGB).

Scores are averaged over images (PSNR from each image's hole MSE, then averaged).
Two protocols (:data:`PROTOCOLS`): ``crops``, seeded 128x128 crops of the
validation photos with holes of 5-25% (:class:`~neurodeploy.inpainter.data.EvalSet`),
and ``photos``, the whole validation photos with holes of 10-30% of the image
(:class:`~neurodeploy.inpainter.data.WholePhotoSet`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from neurodeploy.inpainter.data import EvalSample, to_tensors
from neurodeploy.inpainter.holes import composite, smooth_fill
from neurodeploy.inpainter.model import HybridInpainter, host_halo, spiking_halo

METHODS = ("scnn", "deployed", "telea", "ns", "biharmonic", "harmonic")
PROTOCOLS = ("crops", "photos")
PSNR_CAP = 100.0  # dB for identical images: JSON has no infinity
BIHARMONIC_LIMIT = 200_000  # pixels of the largest hole biharmonic solves (about 1 GiB); see inpaint_biharmonic
EVAL_BLOCK = 256  # the float SC-NN's tile side in pixels (as simulate's host blocks, inpainter.simulator.HOST_BLOCK)


def psnr_from_mse(mse: float) -> float:
    """10 log10(1 / mse) for intensities in [0, 1], capped at PSNR_CAP."""
    return min(10 * math.log10(1.0 / mse), PSNR_CAP) if mse > 0 else PSNR_CAP


@dataclass(frozen=True)
class Scores:
    """The four measures for one image or averaged over several."""

    mse: float
    mse_hole: float
    psnr_hole: float
    ssim: float

    def as_dict(self) -> dict[str, float]:
        return {"mse": self.mse, "mse_hole": self.mse_hole, "psnr_hole": self.psnr_hole, "ssim": self.ssim}


def score(truth: np.ndarray, result: np.ndarray, mask: np.ndarray) -> Scores:
    """Compare uint8 (H, W, 3) images; ``mask`` bool (H, W), True = missing."""
    from skimage.metrics import structural_similarity

    t = truth.astype(np.float64) / 255.0
    r = result.astype(np.float64) / 255.0
    err = (t - r) ** 2
    mse_hole = float(err[mask].mean()) if mask.any() else 0.0
    psnr = psnr_from_mse(mse_hole)
    ssim = float(structural_similarity(t, r, channel_axis=2, data_range=1.0))
    return Scores(float(err.mean()), mse_hole, psnr, ssim)


def mean_scores(items: list[Scores]) -> Scores:
    return Scores(*(float(np.mean([getattr(s, f) for s in items]))
                    for f in ("mse", "mse_hole", "psnr_hole", "ssim")))


def masked_input(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The image a user would have: missing pixels set to 0."""
    out = image.copy()
    out[mask] = 0
    return out


def inpaint_telea(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.inpaint(masked_input(image, mask), mask.astype(np.uint8), 3, cv2.INPAINT_TELEA)


def inpaint_ns(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.inpaint(masked_input(image, mask), mask.astype(np.uint8), 3, cv2.INPAINT_NS)


class MethodSkippedError(Exception):
    """A method that does not run on this image; the message says why (it goes into the report)."""


def inpaint_biharmonic(image: np.ndarray, mask: np.ndarray, limit: int = BIHARMONIC_LIMIT) -> np.ndarray:
    """scikit-image's biharmonic fill, one sparse solve per separate hole (its ``split_into_regions``).

    Raises :class:`MethodSkippedError` when a hole has more than ``limit`` pixels (0: no limit): the solve's
    memory grows faster than the hole (measured, one hole, above the interpreter: 0.26 GiB at 256 x 256 px,
    0.65 GiB at 384 x 384, 0.93 GiB at 448 x 448 = 200,704 px; 6.5 GiB for the largest hole of a 5 MP photo),
    so above the limit the baseline is left out, with the reason, rather than approximated or run out of
    memory (docs/BENCHMARKS.md section 21)."""
    from skimage.restoration import inpaint_biharmonic as biharmonic

    largest = largest_hole(mask)
    if limit and largest > limit:
        raise MethodSkippedError(f"a hole of {largest:,} px is over the limit of {limit:,} px "
                                 "(scikit-image's solve needs about 1 GiB at 200,000 px and grows faster than "
                                 "the hole); --biharmonic-limit 0 runs it whatever its size")
    # one solve per separate hole: the same pixels (measured: no difference on a 1024-px photo with 3 holes),
    # at the memory of the largest hole's box instead of all holes' at once
    filled = biharmonic(masked_input(image, mask).astype(np.float64) / 255.0, mask, channel_axis=-1,
                        split_into_regions=True)
    return np.clip(np.rint(filled * 255.0), 0, 255).astype(np.uint8)


def largest_hole(mask: np.ndarray) -> int:
    """Pixels of the largest hole, separated as scikit-image's ``split_into_regions`` separates them
    (holes at most one pixel apart are one)."""
    touching = ndimage.binary_dilation(mask, structure=ndimage.generate_binary_structure(2, 1))
    labels, _ = ndimage.label(touching, structure=np.ones((3, 3), bool))
    return int(np.bincount(labels[mask]).max(initial=0))


def inpaint_harmonic(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    img, msk = to_tensors(image, mask)
    return to_uint8(composite(img, smooth_fill(img[None] * (1.0 - msk[None]), 1.0 - msk[None])[0], msk))


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) in [0, 1] -> uint8 (H, W, 3)."""
    return np.clip(np.rint(image.detach().cpu().permute(1, 2, 0).numpy() * 255.0), 0, 255).astype(np.uint8)


def scnn_inpainter(model: HybridInpainter, seed: int = 0, block: int = EVAL_BLOCK,
                   progress: Callable[[int, int], None] | None = None
                   ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The float SC-NN as an inpainting function (seeded for Poisson encoding), run on ``block`` x ``block``
    tiles read with the halo of its receptive field, as ``simulate`` runs the deployed one: memory bounded by
    the tile, not the photo (whole-image arrays left: the image, the mask and the network's input, a few
    bytes a pixel). With the constant encoding every pixel equals the whole-image computation's; the Poisson
    encoding draws its spikes tile by tile. ``progress(done, tiles)`` after every tile."""

    @torch.no_grad()
    def run(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        img, msk = to_tensors(image, mask)
        generator = torch.Generator().manual_seed(seed)
        x = model.network_input(img[None], msk[None])
        return to_uint8(composite(img, tiled(model, x, generator, block, progress)[0], msk))

    return run


def tiled(model: HybridInpainter, x: torch.Tensor, generator: torch.Generator | None = None,
          block: int = EVAL_BLOCK, progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """``model.from_input(x)`` (x: (1, C, H, W)) computed on tiles of ``block`` pixels, each read with a halo of
    the receptive field (:func:`spiking_halo` + :func:`host_halo`), all rounded to the strided layers' grid so
    that each tile sees the whole image's sampling grid; an image of one tile runs whole."""
    config = model.config
    grid = math.lcm(config.size_multiple, config.spiking_stride)
    halo = _round_up(spiking_halo(config) + host_halo(config), grid)
    block = _round_up(block, grid)
    height, width = x.shape[-2:]
    if height <= block and width <= block:
        return model.from_input(x, generator)
    out = torch.empty(1, 3, height, width)
    corners = [(y, left) for y in range(0, height, block) for left in range(0, width, block)]
    for done, (y, left) in enumerate(corners, 1):
        top, start = max(0, y - halo), max(0, left - halo)
        part = x[..., top:min(height, y + block + halo), start:min(width, left + block + halo)]
        pred = model.from_input(part, generator)
        rows, cols = min(block, height - y), min(block, width - left)
        out[..., y:y + rows, left:left + cols] = pred[..., y - top:y - top + rows, left - start:left - start + cols]
        if progress is not None:
            progress(done, len(corners))
    return out


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def classical_methods(biharmonic_limit: int = BIHARMONIC_LIMIT
                      ) -> dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    return {"telea": inpaint_telea, "ns": inpaint_ns,
            "biharmonic": functools.partial(inpaint_biharmonic, limit=biharmonic_limit),
            "harmonic": inpaint_harmonic}


def evaluate(model: HybridInpainter, samples: Iterable[EvalSample], seed: int = 0,
             progress: Callable[[str], None] | None = None,
             deployed: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
             tiles: Callable[[int, int], None] | None = None,
             biharmonic_limit: int = BIHARMONIC_LIMIT) -> dict[str, object]:
    """Score every method on every sample (``deployed``, e.g. :func:`deployed_inpainter`, as the
    ``deployed`` method); returns the JSON-able report. ``tiles(done, total)``: the float SC-NN's progress
    over the tiles of each image. A method that skips an image (:class:`MethodSkippedError`) is averaged over
    the others, and ``skipped`` lists the image with the reason."""
    methods = {"scnn": scnn_inpainter(model, seed, progress=tiles), **({"deployed": deployed} if deployed else {}),
               **classical_methods(biharmonic_limit)}
    per_method: dict[str, list[Scores]] = {name: [] for name in methods}
    skipped: dict[str, list[dict[str, str]]] = {}
    per_image: list[dict[str, object]] = []
    for sample in samples:
        row: dict[str, object] = {"name": sample.name, "hole_ratio": float(sample.mask.mean())}
        for name, method in methods.items():
            try:
                scores = score(sample.image, method(sample.image, sample.mask), sample.mask)
            except MethodSkippedError as why:
                skipped.setdefault(name, []).append({"name": sample.name, "reason": str(why)})
                row[name] = {"skipped": str(why)}
                continue
            per_method[name].append(scores)
            row[name] = scores.as_dict()
        per_image.append(row)
        if progress:
            progress(sample.name)
    count = len(per_image)
    return {
        "images": count,
        "methods": {name: mean_scores(items).as_dict() for name, items in per_method.items() if items},
        "skipped": skipped,
        "per_image": per_image,
    }
