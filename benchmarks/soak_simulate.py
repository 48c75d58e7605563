"""Soak: 500 images through one compiled Lava network; memory must stay flat, throughput steady.

Resident memory is the sum over this process and every Lava child process,
sampled every 50 images; growth is measured from the first sample (after
warm-up) to the last. Target: under 5%.

    python benchmarks/soak_simulate.py [--model examples/models/scnn_inpaint.pt] [--images 500] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psutil

from neurodeploy.inpainter.conversion import convert
from neurodeploy.inpainter.data import MaskSpec, builtin_paths, random_mask
from neurodeploy.inpainter.simulator import SimulationInput, Simulator
from neurodeploy.io import read_image

ROOT = Path(__file__).resolve().parents[1]


def tree_rss() -> int:
    """Resident bytes of this process and all its descendants (the Lava processes)."""
    me = psutil.Process()
    total = me.memory_info().rss
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += child.memory_info().rss
    return total


def images(count: int, size: int, seed: int) -> Iterator[SimulationInput]:
    photos = [read_image(p) for p in builtin_paths("train") + builtin_paths("val")]
    photos = [p for p in photos if min(p.shape[:2]) >= size]
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        photo = photos[i % len(photos)]
        top = int(rng.integers(0, photo.shape[0] - size + 1))
        left = int(rng.integers(0, photo.shape[1] - size + 1))
        crop = np.ascontiguousarray(photo[top:top + size, left:left + size])
        yield SimulationInput(f"img{i}", crop, random_mask(rng, size, size, MaskSpec()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "examples/models/scnn_inpaint.pt")
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    samples = []
    with tempfile.TemporaryDirectory() as tmp:
        bundle = convert(args.model, Path(tmp) / "bundle")
        with Simulator(bundle, "lava", fidelity=False) as sim:
            window = time.perf_counter()
            for i, item in enumerate(images(args.images, args.size, args.seed), start=1):
                sim.run(item)
                if i % args.every == 0:
                    now = time.perf_counter()
                    samples.append({"images": i, "rss_mb": tree_rss() / 2**20,
                                    "images_per_s": args.every / (now - window)})
                    window = now
                    print(f"{i:5d} images  RSS {samples[-1]['rss_mb']:8.1f} MB  "
                          f"{samples[-1]['images_per_s']:6.2f} images/s", flush=True)
            compile_s = sim.compile_seconds
    first, last = samples[0], samples[-1]
    growth = (last["rss_mb"] - first["rss_mb"]) / first["rss_mb"]
    rates = [s["images_per_s"] for s in samples]
    print(f"compiled once in {compile_s:.2f} s; RSS growth from image {first['images']} to {last['images']}: "
          f"{growth:+.2%} (target < 5%); throughput min/median/max {min(rates):.2f}/{np.median(rates):.2f}/"
          f"{max(rates):.2f} images/s")
    if args.json:
        args.json.write_text(json.dumps({"samples": samples, "rss_growth": growth, "compile_s": compile_s}, indent=2))


if __name__ == "__main__":
    main()
