"""Seconds per Lava time step: stock netx models vs neurodeploy's, beside the bare NumPy step.

One run, the same netx layer and the same input for every contender: a conv
(4 input channels, 3x3, 'same') feeding CUBA neurons, at 64x64x32 and
128x128x64 outputs, with 8-bit graded input (constant current, the bundle's
default) and with 30% random binary spikes. Spikes stream out through the
SpikeBridge (FrameSource -> netx Network -> SpikeSink); compile time is
measured apart.

Then two chip segments (converters.netx_io.write_segment, run by
neurodeploy.runtime.lava.segment_run.LavaSegment, every layer's spikes read back): a
3-layer conv segment (4 -> 16 -> 32 -> 32 channels, 3x3 'same', 64x64) and a
3-layer dense segment (1024 -> 1024 -> 1024 -> 256), and a tiny dense one
(16 -> 16 -> 16 -> 16, Lava's fixed cost per step), all fed 30% random
binary spikes. Stock: lava-dl's netx Network with Lava's models, a frame in
and every block's spikes out per step; ours: the segment as one Lava process
(lava_processes.segment.ChipSegment), the sample in and its spikes out once.
A Lava step is the wall time of ``LavaSegment.run`` over one sample divided
by its T + depth steps; the NumPy floor is ``reference.run_segment`` (the
same neurodeploy.chip.cuba arithmetic, no Lava) over the sample divided by its T
steps; each figure is the best of --repeats rounds, a round averaging whole
samples over at least a quarter second (timed_rounds); compile apart.

    python benchmarks/bench_lava_step.py [--steps 8] [--repeats 2] [--segments-only] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from neurodeploy.chip.reference import run_segment
from neurodeploy.converters.netx_in import read_segment
from neurodeploy.converters.netx_io import FixedPointLayer, write_segment
from neurodeploy.inpainter.tiling import SpikeBridge

SIZES = ((64, 32), (128, 64))  # (height = width, output channels)
C_IN = 4


def make_layer(size: int, c_out: int, graded: bool, rng: np.random.Generator) -> FixedPointLayer:
    """Random weights in the range neurodeploy's quantizer allows: the 24-bit current cannot wrap."""
    low, high = (-10, 14) if graded else (-60, 90)
    weight = rng.integers(low, high, size=(c_out, C_IN, 3, 3)).astype(np.int8)
    scale = 255 if graded else 1
    return FixedPointLayer("conv", (C_IN, size, size), (c_out, size, size), weight, None, None, (1, 1), (1, 1),
                           i_decay=4096, v_decay=1024, vth_mant=60 * scale)


def make_frames(size: int, steps: int, graded: bool, rng: np.random.Generator) -> np.ndarray:
    if graded:
        return np.broadcast_to(rng.integers(0, 256, size=(1, C_IN, size, size)), (steps, C_IN, size, size)).copy()
    return (rng.random((steps, C_IN, size, size)) < 0.3).astype(np.int32)


def numpy_floor(layer: FixedPointLayer, frames: np.ndarray, repeats: int) -> tuple[float, np.ndarray]:
    """The bare NumPy step, no Lava (neurodeploy.chip.reference.run_segment): seconds per step, spikes."""
    best = float("inf")
    out = np.empty(0)
    for _ in range(repeats):
        started = time.perf_counter()
        out = run_segment([layer], frames)[0]
        best = min(best, (time.perf_counter() - started) / len(frames))
    return best, out


def lava_run(path: Path, layer: FixedPointLayer, frames: np.ndarray, graded: bool, models: str,
             repeats: int) -> tuple[float, float, np.ndarray]:
    """Seconds per Lava step (T+1 steps per image, compile excluded), compile seconds, spikes."""
    bridge = SpikeBridge(path, frames.shape[0], 8 if graded else 0, halo=0, backend="lava", models=models)
    best = float("inf")
    with bridge:
        for _ in range(repeats):
            started = time.perf_counter()
            spikes = bridge.run_tile(frames)[0]  # the one layer
            best = min(best, (time.perf_counter() - started) / (frames.shape[0] + 1))
    return best, bridge.compile_seconds, spikes


def _chip_layer(kind: str, inp: tuple[int, ...], out: tuple[int, ...], fan_in: int,
                rng: np.random.Generator) -> FixedPointLayer:
    shape = (out[0], inp[0], 3, 3) if kind == "conv" else (out[0], int(np.prod(inp)))
    weight = rng.integers(-75, 76, size=shape).astype(np.int8)  # zero mean: no layer saturates
    return FixedPointLayer(kind, inp, out, weight, None, None, (1, 1), (1, 1) if kind == "conv" else (0, 0),
                           i_decay=4096, v_decay=1024, vth_mant=fan_in // 2)


SEGMENTS = ("conv", "dense", "tiny")


def make_segment(kind: str, rng: np.random.Generator) -> list[FixedPointLayer]:
    """A 3-layer conv segment (64x64, 4 -> 16 -> 32 -> 32), a 3-layer dense one (1024 -> 1024 -> 1024 -> 256),
    or a tiny dense one (16 -> 16 -> 16 -> 16: next to no arithmetic, so its step is Lava's fixed cost)."""
    if kind == "conv":
        chans = (4, 16, 32, 32)
        return [_chip_layer("conv", (chans[i], 64, 64), (chans[i + 1], 64, 64), 9 * chans[i], rng)
                for i in range(3)]
    sizes = (1024, 1024, 1024, 256) if kind == "dense" else (16, 16, 16, 16)
    return [_chip_layer("dense", (sizes[i],), (sizes[i + 1],), sizes[i], rng) for i in range(3)]


ROUND_SECONDS = 0.25  # a segment contender's round: whole samples, until this long has passed


def timed_rounds(run: Callable[[], Any], steps: int, repeats: int) -> tuple[float, Any]:
    """Best of ``repeats`` rounds of seconds per step; a round runs ``run`` (one sample of ``steps`` steps)
    until ROUND_SECONDS have passed and averages over them, so a 3 ms sample and a 3 s one are both
    measured over at least a quarter second (one stall on the shared cores does not decide the figure)."""
    best, out = float("inf"), None
    for _ in range(repeats):
        calls, started = 0, time.perf_counter()
        while True:
            out = run()
            calls += 1
            elapsed = time.perf_counter() - started
            if elapsed >= ROUND_SECONDS:
                break
        best = min(best, elapsed / (calls * steps))
    return best, out


def segment_row(path: Path, kind: str, steps: int, repeats: int, seed: int) -> dict:
    """Stock vs neurodeploy models vs the NumPy floor on one chip segment, identical spikes checked per layer."""
    from neurodeploy.runtime.lava.segment_run import LavaSegment

    rng = np.random.default_rng([seed, 7, {"dense": 0, "conv": 1, "tiny": 2}[kind]])
    write_segment(path, make_segment(kind, rng))
    layers = read_segment(path)
    frames = (rng.random((steps, *layers[0].input_shape)) < 0.3).astype(np.uint8)
    floor, want = timed_rounds(lambda: run_segment(layers, frames), steps, repeats)
    per_step, compile_s, identical = {}, {}, True
    for models in ("stock", "neurodeploy"):
        with LavaSegment(path, timesteps=steps, models=models) as seg:  # type: ignore[arg-type]
            best, got = timed_rounds(lambda: seg.run(frames), seg.steps, repeats)
            identical &= all(np.array_equal(g, w) for g, w in zip(got, want, strict=True))
        per_step[models], compile_s[models] = best, seg.compile_seconds
    stock, ours = per_step["stock"], per_step["neurodeploy"]
    shapes = "->".join("x".join(map(str, layer.output_shape)) for layer in layers)
    return {"layer": f"{kind} segment {shapes}", "input": "binary", "stock_s_per_step": stock,
            "ours_s_per_step": ours, "speedup": stock / ours, "numpy_s_per_step": floor,
            "ours_over_numpy": ours / floor,
            "compile_s": {"stock": compile_s["stock"], "ours": compile_s["neurodeploy"]},
            "identical_spikes": bool(identical), "spikes": [int(w.sum()) for w in want]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--segments-only", action="store_true", help="skip the one-layer rows")
    args = parser.parse_args()
    rows = []
    header = (f"{'layer':>11} {'input':>7} | {'stock s/step':>12} {'ours s/step':>11} {'speed-up':>8} "
              f"| {'numpy s/step':>12} {'ours/numpy':>10} | {'compile s (stock/ours)':>22} | identical")
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for size, c_out in () if args.segments_only else SIZES:
            for graded in (True, False):
                rng = np.random.default_rng([args.seed, size, int(graded)])
                layer = make_layer(size, c_out, graded, rng)
                frames = make_frames(size, args.steps, graded, rng)
                path = Path(tmp) / f"layer{size}{int(graded)}.net"
                write_segment(path, [layer])
                floor, floor_spikes = numpy_floor(layer, frames, args.repeats)
                stock, stock_compile, stock_spikes = lava_run(path, layer, frames, graded, "stock", args.repeats)
                ours, ours_compile, ours_spikes = lava_run(path, layer, frames, graded, "neurodeploy", args.repeats)
                identical = bool(np.array_equal(stock_spikes, ours_spikes)
                                 and np.array_equal(ours_spikes, floor_spikes))
                row = {"layer": f"{size}x{size}x{c_out}", "input": "graded" if graded else "binary",
                       "stock_s_per_step": stock, "ours_s_per_step": ours, "speedup": stock / ours,
                       "numpy_s_per_step": floor, "ours_over_numpy": ours / floor,
                       "compile_s": {"stock": stock_compile, "ours": ours_compile},
                       "identical_spikes": identical, "spikes": int(ours_spikes.sum())}
                rows.append(row)
                print(f"{row['layer']:>11} {row['input']:>7} | {stock:12.4f} {ours:11.4f} {stock / ours:7.1f}x "
                      f"| {floor:12.4f} {ours / floor:9.2f}x | {stock_compile:10.2f} / {ours_compile:9.2f} "
                      f"| {identical}")
        for kind in SEGMENTS:
            row = segment_row(Path(tmp) / f"{kind}.net", kind, args.steps, args.repeats, args.seed)
            rows.append(row)
            print(f"{row['layer']}: stock {row['stock_s_per_step']:.4f} ours {row['ours_s_per_step']:.4f} "
                  f"({row['speedup']:.1f}x) | numpy {row['numpy_s_per_step']:.4f} "
                  f"(ours/numpy {row['ours_over_numpy']:.2f}x) | compile {row['compile_s']['stock']:.2f} / "
                  f"{row['compile_s']['ours']:.2f} | identical {row['identical_spikes']} | spikes {row['spikes']}")
    if args.json:
        args.json.write_text(json.dumps({"steps": args.steps, "repeats": args.repeats, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
