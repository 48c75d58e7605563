"""Masked-image data: image folders, the builtin photos, and seeded hole masks.

* :class:`ImageFolder` reads every image Pillow opens below a folder
  (recursively; LSDIR's ``<split>/<shard>/<id>.png`` layout works). Files that
  cannot be decoded are skipped and counted, with one warning.
* ``--data builtin`` is the natural photos shipped inside scikit-image's wheel
  (no download). The split is by image and fixed: :data:`BUILTIN_VAL` are the
  validation photos, :data:`BUILTIN_TRAIN` the training ones. A folder is
  split by image too: every tenth file in sorted order validates.
* Masks (1 = missing pixel) are rectangles or free-form brush strokes, drawn
  until the hole ratio falls in a range. Every random choice comes from
  ``numpy.random.default_rng([seed, epoch, index])``, so a sample depends only
  on (seed, epoch, index), whatever the worker or process count.
* Training draws holes of 1-30% of the crop (:data:`TRAIN_MASKS`), the sizes
  users draw; :data:`PHOTO_MASKS` (10-30% of the image) are the holes of the
  whole-photo protocol and of ``--random-mask``.
* Validation samples (:class:`EvalSet`) use fixed crop positions and masks
  from ``default_rng([seed, index])``: the 128-crop protocol of ``neurodeploy
  evaluate`` (holes of 5-25% of the crop, unchanged so that its figures stay
  comparable). :class:`WholePhotoSet` is its whole-photo protocol: every
  validation photo at full resolution, once with rectangles and once with
  brush strokes covering 10-30% of it.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from neurodeploy.errors import UserError
from neurodeploy.io import image_size, list_images, read_image

# Natural photos in skimage/data (synthetic ones, documents and stereo twins of
# a validation photo are left out). Validation: 4 photos, training: 13.
BUILTIN_VAL: tuple[str, ...] = ("astronaut.png", "coffee.png", "camera.png", "grass.png")
BUILTIN_TRAIN: tuple[str, ...] = (
    "brick.png", "cell.png", "chelsea.png", "coins.png", "gravel.png", "hubble_deep_field.jpg",
    "ihc.png", "microaneurysms.png", "moon.png", "motorcycle_left.png", "motorcycle_right.png",
    "retina.jpg", "rocket.jpg",
)


def builtin_dir() -> Path:
    import skimage

    return Path(skimage.__file__).parent / "data"


def builtin_paths(split: str) -> list[Path]:
    names = {"train": BUILTIN_TRAIN, "val": BUILTIN_VAL}[split]
    root = builtin_dir()
    return [root / name for name in names]


@dataclass(frozen=True)
class MaskSpec:
    """How holes are drawn: the kinds allowed and the hole-ratio range."""

    min_ratio: float = 0.05
    max_ratio: float = 0.25
    kinds: tuple[str, ...] = ("rectangles", "strokes")

    def __post_init__(self) -> None:
        if not 0 < self.min_ratio <= self.max_ratio < 1:
            raise ValueError("need 0 < min_ratio <= max_ratio < 1")
        if not self.kinds or any(k not in ("rectangles", "strokes") for k in self.kinds):
            raise ValueError("kinds must be a non-empty subset of ('rectangles', 'strokes')")


TRAIN_MASKS = MaskSpec(0.01, 0.30)  # the holes training draws, in proportion to the crop
PHOTO_MASKS = MaskSpec(0.10, 0.30)  # large holes, in proportion to the whole image


def random_mask(rng: np.random.Generator, height: int, width: int, spec: MaskSpec = MaskSpec()) -> np.ndarray:
    """A bool (H, W) mask, True = missing, with a hole ratio in [min, max] of ``spec``."""
    target = rng.uniform(spec.min_ratio, spec.max_ratio)
    kind = spec.kinds[int(rng.integers(len(spec.kinds)))]
    mask = np.zeros((height, width), dtype=bool)
    for _ in range(200):
        if mask.mean() >= target:
            break
        if kind == "rectangles":
            _draw_rectangle(rng, mask)
        else:
            _draw_stroke(rng, mask)
    if mask.mean() > spec.max_ratio:  # trim the last shape's overshoot row by row
        rows = np.flatnonzero(mask.any(axis=1))
        for row in rows[::-1]:
            if mask.mean() <= spec.max_ratio:
                break
            mask[row] = False
    return mask


def _draw_rectangle(rng: np.random.Generator, mask: np.ndarray) -> None:
    h, w = mask.shape
    rh = int(rng.integers(max(2, h // 10), max(3, h // 3)))
    rw = int(rng.integers(max(2, w // 10), max(3, w // 3)))
    top = int(rng.integers(0, h - rh + 1))
    left = int(rng.integers(0, w - rw + 1))
    mask[top:top + rh, left:left + rw] = True


def _draw_stroke(rng: np.random.Generator, mask: np.ndarray) -> None:
    import cv2

    h, w = mask.shape
    thickness = int(rng.integers(max(2, min(h, w) // 32), max(3, min(h, w) // 10)))
    y, x = rng.uniform(0, h), rng.uniform(0, w)
    angle = rng.uniform(0, 2 * math.pi)
    canvas = mask.view(np.uint8)
    for _ in range(int(rng.integers(4, 10))):
        angle += rng.uniform(-math.pi / 3, math.pi / 3)
        length = rng.uniform(min(h, w) / 12, min(h, w) / 4)
        ny = float(np.clip(y + math.sin(angle) * length, 0, h - 1))
        nx = float(np.clip(x + math.cos(angle) * length, 0, w - 1))
        cv2.line(canvas, (round(x), round(y)), (round(nx), round(ny)), 1, thickness)
        y, x = ny, nx


def _fit_to_crop(image: np.ndarray, crop: int) -> np.ndarray:
    """Upscale so both sides are at least ``crop`` (bicubic), else return as is."""
    h, w = image.shape[:2]
    if min(h, w) >= crop:
        return image
    scale = crop / min(h, w)
    size = (max(crop, round(w * scale)), max(crop, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.BICUBIC))


def resolve_paths(data: str, split: str) -> list[Path]:
    """``builtin`` or a folder -> the image paths of ``split`` ("train" or "val").

    A folder's images are sorted by path and every tenth one (the 10th, 20th,
    ...) is held out for validation; a folder of fewer than 10 images
    validates on its training images.
    """
    if data == "builtin":
        return builtin_paths(split)
    root = Path(data)
    if not root.is_dir():
        raise UserError(f"data folder {root} does not exist", "pass `data=builtin` or a folder of images")
    paths = list_images(root)
    if not paths:
        raise UserError(f"data folder {root} holds no images",
                        "point `data` at a folder with PNG or JPEG files (searched recursively)")
    if len(paths) < 10:
        return paths
    held_out = [p for i, p in enumerate(paths) if i % 10 == 9]
    return held_out if split == "val" else [p for i, p in enumerate(paths) if i % 10 != 9]


def load_readable(paths: list[Path]) -> tuple[list[Path], int]:
    """Check every file before the work (:func:`neurodeploy.io.image_size`: its header, a PNG's checksums, a
    JPEG decoded at 1/8 scale, so that a truncated one is not found mid-epoch); return (readable paths,
    how many were skipped)."""
    readable: list[Path] = []
    skipped = 0
    for path in paths:
        try:
            image_size(path)
            readable.append(path)
        except UserError:
            skipped += 1
    if skipped:
        warnings.warn(f"skipped {skipped} unreadable image file(s) of {len(paths)}", stacklevel=2)
    if not readable:
        raise UserError(f"none of the {len(paths)} image files could be read",
                        "check the data folder holds valid images")
    return readable, skipped


class ImageFolder(torch.utils.data.Dataset):
    """Random crops, flips and masks from a list of images; each item is (image, mask).

    ``image``: float32 (3, crop, crop) in [0, 1] (8-bit steps); ``mask``:
    float32 (1, crop, crop), 1 = missing. Set ``epoch`` before each epoch.
    """

    def __init__(self, paths: list[Path], crop: int = 128, seed: int = 0,
                 samples_per_epoch: int | None = None, masks: MaskSpec = TRAIN_MASKS,
                 cache: bool = True) -> None:
        self.paths, self.skipped = load_readable(list(paths))
        self.crop = crop
        self.seed = seed
        self.masks = masks
        self.epoch = 0
        self.samples_per_epoch = samples_per_epoch or len(self.paths)
        self._cache: dict[int, np.ndarray] | None = {} if cache else None

    def __len__(self) -> int:
        return self.samples_per_epoch

    def _image(self, index: int) -> np.ndarray:
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        image = _fit_to_crop(read_image(self.paths[index]), self.crop)
        if self._cache is not None:
            self._cache[index] = image
        return image

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        image = self._image(index % len(self.paths))
        h, w = image.shape[:2]
        top = int(rng.integers(0, h - self.crop + 1))
        left = int(rng.integers(0, w - self.crop + 1))
        patch = image[top:top + self.crop, left:left + self.crop]
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        if rng.random() < 0.5:
            patch = patch[::-1]
        mask = random_mask(rng, self.crop, self.crop, self.masks)
        return to_tensors(np.ascontiguousarray(patch), mask)


def to_tensors(image: np.ndarray, mask: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (H, W, 3) and bool (H, W) -> float tensors (3, H, W) and (1, H, W)."""
    img = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).float() / 255.0
    return img, torch.from_numpy(mask.astype(np.float32))[None]


def stack_pairs(pairs: list[tuple[torch.Tensor, torch.Tensor]],
                device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """(image, mask) pairs -> a batch (B, 3, H, W) and (B, 1, H, W) on ``device``."""
    return (torch.stack([p[0] for p in pairs]).to(device), torch.stack([p[1] for p in pairs]).to(device))


@dataclass(frozen=True)
class EvalSample:
    """One evaluation case: a uint8 (H, W, 3) image and a bool (H, W) mask, with its origin."""

    image: np.ndarray
    mask: np.ndarray
    name: str


class EvalSet:
    """The fixed evaluation protocol: ``crops_per_image`` seeded crops, each with a seeded mask."""

    def __init__(self, paths: list[Path], crop: int = 128, crops_per_image: int = 4, seed: int = 0,
                 masks: MaskSpec = MaskSpec()) -> None:
        self.paths, self.skipped = load_readable(list(paths))
        self.crop, self.crops_per_image, self.seed, self.masks = crop, crops_per_image, seed, masks

    def __len__(self) -> int:
        return len(self.paths) * self.crops_per_image

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, index: int) -> EvalSample:
        path = self.paths[index // self.crops_per_image]
        image = _fit_to_crop(read_image(path), self.crop)
        rng = np.random.default_rng([self.seed, index])
        h, w = image.shape[:2]
        top = int(rng.integers(0, h - self.crop + 1))
        left = int(rng.integers(0, w - self.crop + 1))
        patch = np.ascontiguousarray(image[top:top + self.crop, left:left + self.crop])
        mask = random_mask(rng, self.crop, self.crop, self.masks)
        return EvalSample(patch, mask, f"{path.stem}#{index % self.crops_per_image}")


class WholePhotoSet:
    """The whole-photo protocol: each photo at full resolution (upscaled only below ``min_side``), with
    a seeded hole of each kind in ``kinds``: mask ``random_mask(default_rng([seed, photo, kind]), ...)``
    drawing only that kind, covering ``masks.min_ratio`` to ``masks.max_ratio`` of the image."""

    def __init__(self, paths: list[Path], seed: int = 0, masks: MaskSpec = PHOTO_MASKS,
                 min_side: int = 128) -> None:
        self.paths, self.skipped = load_readable(list(paths))
        self.seed, self.masks, self.min_side = seed, masks, min_side

    def __len__(self) -> int:
        return len(self.paths) * len(self.masks.kinds)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, index: int) -> EvalSample:
        photo, kind = divmod(index, len(self.masks.kinds))
        path = self.paths[photo]
        image = _fit_to_crop(read_image(path), self.min_side)
        spec = MaskSpec(self.masks.min_ratio, self.masks.max_ratio, (self.masks.kinds[kind],))
        mask = random_mask(np.random.default_rng([self.seed, photo, kind]), *image.shape[:2], spec)
        return EvalSample(image, mask, f"{path.stem}/{self.masks.kinds[kind]}")
