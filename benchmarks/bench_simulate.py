"""Images per second: ``simulate`` with the Lava backend vs the float PyTorch model.

One run, the same folder of 256x256 images (crops of the builtin photos) and
the same seeded masks for both:

* Lava: the shipped checkpoint converted to a bundle, the spiking stage in
  Lava (the segment as one neurodeploy process, compiled once for the folder) through the
  SpikeBridge, the CNN on the host; fidelity checks off (they run the float
  model and the reference backend too, which is not the deployed work).
* PyTorch: the trained float model (Norse LIF + CNN) on the same images.

Also, on the builtin validation protocol (16 crops): the spike agreement
between the Norse float layer and the deployed fixed-point one (target 99%),
whether Lava's spikes equal the reference backend's, and the hole PSNR of the
Lava and float images against the ground truth (target: within 0.1 dB).

    python benchmarks/bench_simulate.py [--model examples/models/scnn_inpaint.pt] [--images 8] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from neurodeploy.inpainter.checkpoint import load_model
from neurodeploy.inpainter.conversion import convert
from neurodeploy.inpainter.data import EvalSet, MaskSpec, builtin_paths, random_mask, to_tensors
from neurodeploy.inpainter.evaluate import score, to_uint8
from neurodeploy.inpainter.holes import composite
from neurodeploy.inpainter.simulator import SimulationInput, Simulator
from neurodeploy.io import read_image

ROOT = Path(__file__).resolve().parents[1]


def folder_images(count: int, size: int, seed: int) -> list[SimulationInput]:
    """``count`` seeded size x size crops of the builtin photos, each with a seeded mask."""
    images = [read_image(p) for p in builtin_paths("train") + builtin_paths("val")]
    images = [image for image in images if min(image.shape[:2]) >= size]
    items = []
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        image = images[i % len(images)]
        top = int(rng.integers(0, image.shape[0] - size + 1))
        left = int(rng.integers(0, image.shape[1] - size + 1))
        crop = np.ascontiguousarray(image[top:top + size, left:left + size])
        items.append(SimulationInput(f"img{i}", crop, random_mask(rng, size, size, MaskSpec())))
    return items


@torch.no_grad()
def torch_images_per_second(model: torch.nn.Module, items: list[SimulationInput]) -> tuple[float, list[np.ndarray]]:
    outputs = []
    started = time.perf_counter()
    for item in items:
        image, mask = to_tensors(item.image, item.mask)
        pred = model(image[None], mask[None], torch.Generator().manual_seed(0))[0]
        outputs.append(to_uint8(composite(image, pred, mask)))
    return len(items) / (time.perf_counter() - started), outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "examples/models/scnn_inpaint.pt")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    model, _ = load_model(args.model)
    items = folder_images(args.images, args.size, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        bundle = convert(args.model, Path(tmp) / "bundle")
        with Simulator(bundle, "lava", fidelity=False) as sim:
            sim.run(items[0])  # warm-up: first-touch allocations, not compile (already done)
            started = time.perf_counter()
            lava_outputs = [sim.run(item).output for item in items]
            lava_ips = len(items) / (time.perf_counter() - started)
            compile_s = sim.compile_seconds
        torch_ips, torch_outputs = torch_images_per_second(model, items)

        # hole PSNR on the builtin validation protocol: Lava image vs float image vs truth
        evalset = list(EvalSet(builtin_paths("val")))
        val_items = [SimulationInput(s.name, s.image, s.mask) for s in evalset]
        with Simulator(bundle, "lava") as sim:  # with fidelity: float model and reference backend too
            val_results = [sim.run(item) for item in val_items]
        lava_val = [r.output for r in val_results]
        agreement = float(np.mean([r.fidelity["spike_f1"] for r in val_results]))
        exact = sum(bool(r.fidelity["exact_vs_reference"]) for r in val_results)
        quantization = bundle.manifest["segments"][0]["layers"][0]["quantization"]  # the first chip layer
        _, float_val = torch_images_per_second(model, val_items)
    def mean_hole_psnr(outputs: list[np.ndarray]) -> float:
        return float(np.mean([score(s.image, out, s.mask).psnr_hole for s, out in zip(evalset, outputs, strict=True)]))

    psnr_lava, psnr_float = mean_hole_psnr(lava_val), mean_hole_psnr(float_val)
    identical = sum(np.array_equal(a, b) for a, b in zip(lava_outputs, torch_outputs, strict=True))
    print(f"{len(items)} images of {args.size}x{args.size}, tiles of {bundle.manifest['tile']['height']}, "
          f"T={bundle.timesteps}")
    print(f"  Lava (compiled once in {compile_s:.2f} s): {lava_ips:.3f} images/s")
    print(f"  PyTorch float model:              {torch_ips:.3f} images/s")
    print(f"  ratio PyTorch / Lava:             {torch_ips / lava_ips:.2f}x (target: at most 5x)")
    print(f"  outputs identical to float:       {identical}/{len(items)}")
    print(f"spiking layer on {len(evalset)} builtin validation crops: Norse float vs Loihi fixed point spike "
          f"F1 {agreement:.4f}; Lava spikes bit-exact with the reference backend: "
          f"{exact}/{len(evalset)}; weight scale {quantization['weight_scale']:.4g}, weight relative squared "
          f"error {quantization['weight_error']:.2e}")
    print(f"hole PSNR on {len(evalset)} builtin validation crops: Lava {psnr_lava:.3f} dB, "
          f"float {psnr_float:.3f} dB, difference {psnr_lava - psnr_float:+.3f} dB (target: within 0.1 dB)")
    if args.json:
        args.json.write_text(json.dumps({
            "images": len(items), "size": args.size, "lava_images_per_second": lava_ips,
            "torch_images_per_second": torch_ips, "ratio": torch_ips / lava_ips, "compile_s": compile_s,
            "val_psnr_hole": {"lava": psnr_lava, "float": psnr_float, "difference": psnr_lava - psnr_float},
            "val_spike_f1": agreement, "val_exact_vs_reference": exact, "quantization": quantization,
        }, indent=2))


if __name__ == "__main__":
    main()
