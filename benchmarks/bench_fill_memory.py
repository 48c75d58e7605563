"""Peak memory of the smooth fill of one image: ``SnnInput`` of the shipped configuration, in this process.

The builtin astronaut photo resized to S x S (bicubic, as in bench_memory.py)
with the hole ``neurodeploy simulate --random-mask 0`` draws for it. The
process's peak resident set (``VmHWM``, reset through ``/proc/self/clear_refs``
just before the fill) less its resident set before the fill: what the fill
adds at its peak, the uint8 payloads it keeps included. Linux only.

    OMP_NUM_THREADS=1 python benchmarks/bench_fill_memory.py [--side 4000]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

from neurodeploy.inpainter.data import PHOTO_MASKS, builtin_paths, random_mask
from neurodeploy.inpainter.model import ModelConfig
from neurodeploy.inpainter.simulator import SnnInput
from neurodeploy.io import read_image

ROOT = Path(__file__).resolve().parents[1]


def status_kib(field: str) -> int:
    """A field of /proc/self/status (VmRSS, VmHWM), in KiB."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=4000)
    args = parser.parse_args()
    config = ModelConfig(**json.loads((ROOT / "examples/configs/smooth_residual.json").read_text()))
    photo = read_image(next(p for p in builtin_paths("val") if "astronaut" in p.name))
    image = np.asarray(Image.fromarray(photo).resize((args.side, args.side), Image.BICUBIC))
    hole = random_mask(np.random.default_rng([0, 0]), args.side, args.side, PHOTO_MASKS)
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # resets VmHWM to the present resident set
    before = status_kib("VmRSS")
    started = time.perf_counter()
    SnnInput(image, hole, config)
    seconds, added = time.perf_counter() - started, status_kib("VmHWM") - before
    print(f"{args.side} x {args.side}, hole {hole.mean():.3f}: the fill adds {added / 1024:.0f} MiB at its peak "
          f"(resident before: {before / 1024:.0f} MiB), {seconds:.1f} s")


if __name__ == "__main__":
    main()
