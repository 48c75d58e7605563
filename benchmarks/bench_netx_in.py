"""A Lava-DL netx network (e.g. lava-dl's PilotNet LIF, ``tutorials/lava/lib/dl/netx/pilotnet_snn/network.net``)
run by stock netx in Lava and by the toolkit's CPU backends, side by side in one run: spikes and speed.

    OMP_NUM_THREADS=1 python benchmarks/bench_netx_in.py PATH/pilotnet_snn.net [--image PHOTO] [--steps N]

The frame (default: scikit-image's astronaut photo) is written into the input layer's bias as lava-dl's
PilotNet dataset makes it (:func:`neurodeploy.runtime.netx_run.image_bias`). Stock: ``netx.hdf5.Network(PATH)``
with Lava's fixed-point models, every block's spikes through a sink; its steps per second exclude the
compile, start-up and first step (timed apart). The toolkit: :func:`neurodeploy.runtime.netx_run.run_netx` on
``torch`` and ``reference``, the whole call (input layer included), best of ``--repeats``. Every layer's
spikes, every step, must equal stock's; the exit status is 1 if any differs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from neurodeploy.converters.netx_in import read_network
from neurodeploy.io import read_image
from neurodeploy.runtime.lava.netx_stock import run_stock
from neurodeploy.runtime.netx_run import image_bias, run_netx


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("net", type=Path, help="a Lava-DL netx file with a bias-driven input layer")
    parser.add_argument("--image", type=Path, help="the frame (default: scikit-image's astronaut photo)")
    parser.add_argument("--steps", type=int, help="Lava steps (default: the file's tSample + its depth)")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each toolkit backend (best taken)")
    parser.add_argument("--json", type=Path, help="write the figures as JSON")
    args = parser.parse_args()
    network = read_network(args.net)
    assert network.input is not None, "the benchmark drives a bias-driven input layer"
    steps = args.steps or network.steps + len(network.layers)
    if args.image is None:
        from skimage import data
        rgb, frame = data.astronaut(), "scikit-image astronaut"
    else:
        rgb, frame = read_image(args.image), str(args.image)
    bias = image_bias(network.input, rgb)[None]

    seconds: dict[str, float] = {}
    stock = run_stock(args.net, network, bias[0], steps, seconds)
    stock_rate = (steps - 1) / seconds["steps"]
    print(f"{args.net.name}: {len(network.layers) + 1} layers, {steps} steps, frame {frame}")
    print(f"stock netx in Lava: first step (compile, start) {seconds['first_step']:.2f} s, then "
          f"{steps - 1} steps in {seconds['steps']:.2f} s = {stock_rate:.2f} steps/s")
    result = {"net": args.net.name, "frame": frame, "steps": steps, "stock": {**seconds, "steps_per_s": stock_rate},
              "layers": ["layer0_input", *network.names], "spikes": [int(s.sum()) for s in stock]}
    exact = True
    for backend in ("torch", "reference"):
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            ours = run_netx(network, bias, steps, backend)
            times.append(time.perf_counter() - started)
        equal = [bool(np.array_equal(want, got[0])) for want, got in zip(stock, ours, strict=True)]
        exact &= all(equal)
        rate = steps / min(times)
        result[backend] = {"seconds": min(times), "steps_per_s": rate, "ratio_to_stock": rate / stock_rate,
                           "layers_equal": equal}
        print(f"{backend}: {steps} steps in {min(times):.3f} s = {rate:.1f} steps/s, {rate / stock_rate:.0f}x "
              f"stock; spikes equal stock's in {sum(equal)} of {len(equal)} layers")
    print("spikes per layer: " + ", ".join(f"{n} {s:,}" for n, s in zip(result["layers"], result["spikes"],
                                                                         strict=True)))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
