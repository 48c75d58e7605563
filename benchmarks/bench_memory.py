"""Peak memory of ``neurodeploy simulate`` against the image side: it must be bounded by the tile.

For each side S, a builtin photo resized to S x S with a seeded random hole
goes through ``neurodeploy simulate`` (the shipped checkpoint converted once,
Lava backend, fidelity checks on, as a user runs it) in a fresh process. Its
memory is that of the whole process tree: the simulate process and the Lava
processes it forks. Method: every 20 ms the tree is listed (psutil) and each
process's peak resident set so far is read from ``/proc/PID/status``
(``VmHWM``, kept by the kernel, so no peak between two polls is missed); a
process's last value before it ends is its peak (one reached in its last
20 ms would be missed). The table's "peak tree RSS"
is the sum of those per-process peaks (an upper bound of the tree's peak at
any one instant; pages the forked Lava processes share with their parent
count once per process). "sampled RSS" is the largest sum of the current
resident sets seen at one poll, for comparison. Linux only (``/proc``).

    python benchmarks/bench_memory.py [--sizes 256 1024 4000] [--backend lava] [--json out.json]

``--against-evaluate SIDE`` instead runs ``neurodeploy simulate`` and ``neurodeploy evaluate`` side by side on
the same SIDE x SIDE photo and the same mask file (a seeded random hole of 10-30%), each with its defaults
(simulate: Lava; evaluate: the float SC-NN, the deployed one on the reference backend and the classical
methods), and prints their peak tree RSS and the ratio evaluate / simulate (issue 33: at most 2).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
from PIL import Image

from neurodeploy.inpainter.conversion import convert
from neurodeploy.inpainter.data import builtin_paths
from neurodeploy.io import read_image, write_png

ROOT = Path(__file__).resolve().parents[1]
MIB = 1 << 20


def peak_kib(pid: int) -> int | None:
    """The kernel's high-water mark of a process's resident set (VmHWM), in KiB."""
    with contextlib.suppress(OSError, ValueError), open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def measure(command: list[str], interval: float = 0.02) -> dict[str, float]:
    """Run ``command``; the sum of its tree's per-process peak RSS and the largest sampled sum, in bytes."""
    started = time.perf_counter()
    root = psutil.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peaks: dict[int, int] = {}  # pid -> last VmHWM seen (KiB)
    sampled = 0
    while root.poll() is None:
        with contextlib.suppress(psutil.NoSuchProcess):
            tree = [root, *root.children(recursive=True)]
            now = 0
            for proc in tree:
                with contextlib.suppress(psutil.NoSuchProcess):
                    now += proc.memory_info().rss
                    hwm = peak_kib(proc.pid)
                    if hwm is not None:
                        peaks[proc.pid] = hwm
            sampled = max(sampled, now)
        time.sleep(interval)
    seconds = time.perf_counter() - started
    if root.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{root.stderr.read().decode()[-3000:]}")
    return {"peak_tree_rss": sum(peaks.values()) * 1024, "sampled_rss": sampled, "processes": len(peaks),
            "parent_peak_rss": peaks.get(root.pid, 0) * 1024, "seconds": seconds}


def photo(side: int, path: Path) -> None:
    """The builtin astronaut photo resized to side x side (bicubic), as PNG."""
    image = read_image(next(p for p in builtin_paths("val") if "astronaut" in p.name))
    write_png(path, np.asarray(Image.fromarray(image).resize((side, side), Image.BICUBIC)))


def against_evaluate(model: Path, side: int) -> dict[str, float]:
    """Peak tree RSS of ``simulate`` and ``evaluate`` on one SIDE x SIDE photo and mask, and their ratio."""
    from neurodeploy.inpainter.data import PHOTO_MASKS, random_mask

    with tempfile.TemporaryDirectory() as tmp:
        bundle = convert(model, Path(tmp) / "bundle")
        image, mask = Path(tmp) / "photo.png", Path(tmp) / "mask.png"
        photo(side, image)
        write_png(mask, random_mask(np.random.default_rng(0), side, side, PHOTO_MASKS).astype(np.uint8) * 255)
        runs = {
            "simulate": [sys.executable, "-m", "neurodeploy", "simulate", str(bundle.path), "--image", str(image),
                         "--mask", str(mask), "-o", str(Path(tmp) / "out.png")],
            "evaluate": [sys.executable, "-m", "neurodeploy", "evaluate", str(model), "--image", str(image),
                         "--mask", str(mask)],
        }
        found = {}
        for name, command in runs.items():
            found[name] = measure(command)
            print(f"{name}: {found[name]['peak_tree_rss'] / MIB:.0f} MiB in {found[name]['seconds']:.1f} s",
                  file=sys.stderr)
    ratio = found["evaluate"]["peak_tree_rss"] / found["simulate"]["peak_tree_rss"]
    print(f"\n{side} x {side} photo ({side * side / 1e6:.2f} MP), same mask, each command with its defaults\n")
    print("| command | wall (s) | processes | peak tree RSS (MiB) | sampled RSS (MiB) |")
    print("|---|---|---|---|---|")
    for name, r in found.items():
        print(f"| {name} | {r['seconds']:.1f} | {r['processes']} | {r['peak_tree_rss'] / MIB:.0f} | "
              f"{r['sampled_rss'] / MIB:.0f} |")
    print(f"\nevaluate / simulate peak: {ratio:.2f}")
    return {"side": side, "simulate": found["simulate"], "evaluate": found["evaluate"], "ratio": ratio}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "examples/models/scnn_inpaint.pt")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024, 4000])
    parser.add_argument("--backend", default="lava")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--against-evaluate", type=int, metavar="SIDE")
    args = parser.parse_args()
    if args.against_evaluate:
        found = against_evaluate(args.model, args.against_evaluate)
        if args.json:
            args.json.write_text(json.dumps(found, indent=2))
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        bundle = convert(args.model, Path(tmp) / "bundle")
        tile = bundle.manifest["tile"]["height"]
        for side in args.sizes:
            image = Path(tmp) / f"photo{side}.png"
            photo(side, image)
            command = [sys.executable, "-m", "neurodeploy", "simulate", str(bundle.path), "--image", str(image),
                       "--random-mask", "0", "--backend", args.backend, "-o", str(Path(tmp) / f"out{side}.png")]
            result = measure(command)
            rows.append({"side": side, "tiles": (-(-side // tile)) ** 2, **result})
            print(f"{side}: {result['peak_tree_rss'] / MIB:.0f} MiB in {result['seconds']:.1f} s", file=sys.stderr)
    base = rows[0]["peak_tree_rss"]
    print(f"\nneurodeploy simulate, --backend {args.backend}, fidelity on, shipped checkpoint\n")
    print("| side | tiles | wall (s) | processes | peak tree RSS (MiB) | ratio | sampled RSS (MiB) | "
          "simulate process alone (MiB) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['side']} | {r['tiles']} | {r['seconds']:.1f} | {r['processes']} | "
              f"{r['peak_tree_rss'] / MIB:.0f} | {r['peak_tree_rss'] / base:.2f} | {r['sampled_rss'] / MIB:.0f} | "
              f"{r['parent_peak_rss'] / MIB:.0f} |")
    if args.json:
        args.json.write_text(json.dumps({"backend": args.backend, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
