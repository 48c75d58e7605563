"""Seconds per Lava time step: stock netx models vs neurodeploy's, beside the bare NumPy step.

One run, the same netx layer and the same input for every contender: a conv
(4 input channels, 3x3, 'same') feeding CUBA neurons, at 64x64x32 and
128x128x64 outputs, with 8-bit graded input (constant current, the bundle's
default) and with 30% random binary spikes. Spikes stream out through the
SpikeBridge (FrameSource -> netx Network -> SpikeSink); compile time is
measured apart.

    python benchmarks/bench_lava_step.py [--steps 8] [--repeats 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from neurodeploy.bridge import SpikeBridge
from neurodeploy.converters.netx_io import NetxConvLayer, write_netx
from neurodeploy.cuba import run_sequence

SIZES = ((64, 32), (128, 64))  # (height = width, output channels)
C_IN = 4


def make_layer(size: int, c_out: int, graded: bool, rng: np.random.Generator) -> NetxConvLayer:
    """Random weights in the range neurodeploy's quantizer allows: the 24-bit current cannot wrap."""
    low, high = (-10, 14) if graded else (-60, 90)
    weight = rng.integers(low, high, size=(c_out, C_IN, 3, 3)).astype(np.int8)
    scale = 255 if graded else 1
    return NetxConvLayer((C_IN, size, size), weight, 1, i_decay=4096, v_decay=1024, vth_mant=60 * scale)


def make_frames(size: int, steps: int, graded: bool, rng: np.random.Generator) -> np.ndarray:
    if graded:
        return np.broadcast_to(rng.integers(0, 256, size=(1, C_IN, size, size)), (steps, C_IN, size, size)).copy()
    return (rng.random((steps, C_IN, size, size)) < 0.3).astype(np.int32)


def numpy_floor(layer: NetxConvLayer, frames: np.ndarray, repeats: int) -> tuple[float, np.ndarray]:
    """The bare NumPy step, no Lava (neurodeploy.cuba.run_sequence): seconds per step, spikes."""
    best = float("inf")
    out = np.empty(0)
    for _ in range(repeats):
        started = time.perf_counter()
        out = run_sequence(layer, frames)
        best = min(best, (time.perf_counter() - started) / len(frames))
    return best, out


def lava_run(path: Path, layer: NetxConvLayer, frames: np.ndarray, graded: bool, models: str,
             repeats: int) -> tuple[float, float, np.ndarray]:
    """Seconds per Lava step (T+1 steps per image, compile excluded), compile seconds, spikes."""
    bridge = SpikeBridge(path, frames.shape[0], 8 if graded else 0, halo=0, backend="lava", models=models)
    best = float("inf")
    with bridge:
        for _ in range(repeats):
            started = time.perf_counter()
            spikes = bridge.run_tile(frames)
            best = min(best, (time.perf_counter() - started) / (frames.shape[0] + 1))
    return best, bridge.compile_seconds, spikes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = []
    header = (f"{'layer':>11} {'input':>7} | {'stock s/step':>12} {'ours s/step':>11} {'speed-up':>8} "
              f"| {'numpy s/step':>12} {'ours/numpy':>10} | {'compile s (stock/ours)':>22} | identical")
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for size, c_out in SIZES:
            for graded in (True, False):
                rng = np.random.default_rng([args.seed, size, int(graded)])
                layer = make_layer(size, c_out, graded, rng)
                frames = make_frames(size, args.steps, graded, rng)
                path = Path(tmp) / f"layer{size}{int(graded)}.net"
                write_netx(path, layer)
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
    if args.json:
        args.json.write_text(json.dumps({"steps": args.steps, "repeats": args.repeats, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
