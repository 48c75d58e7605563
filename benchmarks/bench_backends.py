"""Images per second of ``simulate`` on each backend, side by side on the same images: Lava, torch CPU,
torch CUDA (where torch sees a GPU), and Ray with 2 workers (torch CPU backend, one thread each).

The shipped checkpoint converted to a bundle; --images seeded 256x256 crops of the builtin photos with
seeded masks (benchmarks/bench_simulate.py's ``folder_images``); fidelity checks off (they rerun the
float model and the reference backend). Each in-process contender runs one warm-up image, then the
timed images through one Simulator (compiled once, compile time apart). The Ray figure is the wall time
of the whole :func:`neurodeploy.runtime.cluster.run_items` call on a local cluster started just before (its start
time reported apart), the two workers' set-up (bundle load, one Simulator each) included; also the
time to the first image and the rate after it. Every
contender's output images are checked equal to Lava's, byte for byte. Per in-process contender also the
milliseconds per image of each phase (encode: input frames and event tallies; snn: the spiking stage on
the backend; host: the host CNN) and the spiking stage's speed-up over Lava's, the one phase the backends
do not share.

    python benchmarks/bench_backends.py [--images 16] [--threads 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_simulate import folder_images

from neurodeploy.cli.works import ImageWork
from neurodeploy.inpainter.conversion import convert
from neurodeploy.inpainter.simulator import Simulator
from neurodeploy.runtime.cluster import run_items

ROOT = Path(__file__).resolve().parents[1]


def in_process(bundle, items, backend: str, device: str = "cpu") -> tuple[float, list[np.ndarray], dict]:
    """Images/s of one Simulator over ``items`` (after one warm-up image), its outputs, mean seconds per phase."""
    with Simulator(bundle, backend, fidelity=False, device=device) as sim:  # type: ignore[arg-type]
        sim.run(items[0])
        started = time.perf_counter()
        results = [sim.run(item) for item in items]
        ips = len(items) / (time.perf_counter() - started)
    phases = {k: float(np.mean([r.seconds[k] for r in results])) for k in results[0].seconds}
    return ips, [r.output for r in results], phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "examples/models/scnn_inpaint.pt")
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads in this process (0: torch's default)")
    parser.add_argument("--skip-lava", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    items = folder_images(args.images, args.size, args.seed)
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        bundle = convert(args.model, Path(tmp) / "bundle")
        contenders = [("lava", "lava", "cpu")] * (not args.skip_lava) + [("torch cpu", "torch", "cpu")]
        if torch.cuda.is_available():
            contenders.append(("torch cuda", "torch", "cuda"))
        outputs: dict[str, list[np.ndarray]] = {}
        for name, backend, device in contenders:
            ips, outputs[name], phases = in_process(bundle, items, backend, device)
            rows[name] = {"images_per_second": ips, "seconds_per_image": phases}
        import ray

        ray_outputs: dict[str, np.ndarray] = {}
        started = time.perf_counter()
        ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
                 log_to_driver=False)
        ray_start = time.perf_counter() - started
        started = time.perf_counter()
        arrivals: list[float] = []

        def arrived(record: dict, out: np.ndarray) -> None:
            ray_outputs[record["id"]] = out
            arrivals.append(time.perf_counter())

        run_items(ImageWork(bundle.path, "torch", fidelity=False), [(i.name, (lambda i=i: i)) for i in items],
                  cluster="ray", workers=2, on_item=arrived)
        rows["ray 2 workers (torch cpu)"] = {
            "images_per_second": len(items) / (time.perf_counter() - started), "ray_start_seconds": ray_start,
            "first_image_seconds": arrivals[0] - started,  # the workers' set-up and their first images
            "images_per_second_after_first": (len(items) - 1) / (arrivals[-1] - arrivals[0]),
        }
        ray.shutdown()
        outputs["ray 2 workers (torch cpu)"] = [ray_outputs[i.name] for i in items]
    first = next(iter(outputs))
    base = rows[first]["images_per_second"]
    print(f"{len(items)} images of {args.size}x{args.size}, T = {bundle.timesteps}, torch threads in this process "
          f"{torch.get_num_threads()}, CUDA: {torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'}")
    for name, row in rows.items():
        same = sum(np.array_equal(a, b) for a, b in zip(outputs[first], outputs[name], strict=True))
        row["outputs_equal_to_" + first.replace(" ", "_")] = f"{same}/{len(items)}"
        row["ratio_to_" + first.replace(" ", "_")] = row["images_per_second"] / base
        phases = row.get("seconds_per_image", {})
        extra = ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in phases.items())
        if phases and "seconds_per_image" in rows[first]:  # the stage the backends differ in, side by side
            stage = rows[first]["seconds_per_image"]["snn"] / phases["snn"]
            row["spiking_stage_ratio_to_" + first.replace(" ", "_")] = stage
            extra += f"; spiking stage {stage:.2f}x {first}'s"
        if "ray_start_seconds" in row:
            extra = (f"Ray start {row['ray_start_seconds']:.1f} s apart; first image after "
                     f"{row['first_image_seconds']:.1f} s, then {row['images_per_second_after_first']:.3f} images/s")
        print(f"  {name:28s} {row['images_per_second']:7.3f} images/s  {row['images_per_second'] / base:5.2f}x "
              f"{first}   outputs equal to {first}'s: {same}/{len(items)}   {extra}")
    if args.json:
        args.json.write_text(json.dumps({"images": len(items), "size": args.size, "threads": torch.get_num_threads(),
                                         "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
