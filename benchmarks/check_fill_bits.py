"""The lean smooth fill gives the bits of the whole-plane computation it replaced.

The reference is the code before the change, kept in ``tests/test_smooth_fill.py``.
Cases: every builtin photo, whole, with the hole ``neurodeploy simulate
--random-mask 0`` draws for it; odd-sided crops of two of them; a seeded
synthetic image of ``--side`` x ``--side`` (default 4000) with such a hole.
Compared, bit for bit: ``SnnInput``'s uint8 payloads for the shipped
configuration (``examples/configs/smooth_residual.json``), and ``smooth_fill``'s
float32 output over the three colours at once, as the harmonic baseline of
``neurodeploy evaluate`` runs it.

    python benchmarks/check_fill_bits.py [--side 4000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from neurodeploy.inpainter.data import PHOTO_MASKS, builtin_paths, random_mask, to_tensors
from neurodeploy.inpainter.holes import smooth_fill
from neurodeploy.inpainter.model import ModelConfig
from neurodeploy.inpainter.simulator import SnnInput
from neurodeploy.io import read_image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the reference lives with the test that pins it
from tests.test_smooth_fill import reference_payload, reference_smooth_fill  # noqa: E402


def cases(side: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, uint8 (H, W, 3) image, bool (H, W) hole) of every case."""
    photos = [p for split in ("train", "val") for p in builtin_paths(split)]
    out = []
    for path in photos:
        image = read_image(path)
        out.append((path.name, image, random_mask(np.random.default_rng([0, 0]), *image.shape[:2], PHOTO_MASKS)))
    for name, rows, cols in (("astronaut.png", 333, 511), ("retina.jpg", 1001, 777), ("coffee.png", 255, 257)):
        image = read_image(next(p for p in photos if p.name == name))[:rows, :cols]
        out.append((f"{name}[:{rows}, :{cols}]", image,
                    random_mask(np.random.default_rng([rows, cols]), rows, cols, PHOTO_MASKS)))
    rng = np.random.default_rng(side)
    ramp = np.linspace(0, 120, side)[None, :, None]
    synthetic = (rng.integers(0, 136, (side, side, 3)) + ramp).astype(np.uint8)
    out.append((f"synthetic {side}x{side}", synthetic, random_mask(rng, side, side, PHOTO_MASKS)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=4000)
    args = parser.parse_args()
    config = ModelConfig(**json.loads((ROOT / "examples/configs/smooth_residual.json").read_text()))
    failures = 0
    for name, image, hole in cases(args.side):
        started = time.perf_counter()
        payload_same = np.array_equal(SnnInput(image, hole, config).payload, reference_payload(image, hole, config))
        img, msk = to_tensors(image, hole)
        masked, known = img[None] * (1.0 - msk[None]), 1.0 - msk[None]
        fill_same = torch.equal(smooth_fill(masked, known), reference_smooth_fill(masked, known))
        failures += not (payload_same and fill_same)
        print(f"{name:<32} {image.shape[0]:>5} x {image.shape[1]:<5} hole {hole.mean():.3f}  payloads "
              f"{'identical' if payload_same else 'DIFFER'}, fill {'identical' if fill_same else 'DIFFERS'} "
              f"({time.perf_counter() - started:.1f} s)")
    if failures:
        raise SystemExit(f"{failures} case(s) differ")


if __name__ == "__main__":
    main()
