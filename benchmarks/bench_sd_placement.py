"""The shipped inpainter in three placements, and a sweep of delta thresholds (issue 26).

Placements, on the evaluation protocol's 16 validation crops (128x128, seeded holes; docs/BENCHMARKS.md
section 2), every figure averaged per inference:

* ``gpu``: the same six conv layers all on the GPU profile (the all-CNN twin's cost of this network:
  the profile's ``all_cnn_baseline`` and ``all_cnn_latency_s``); its image is the float model's;
* ``hybrid``: today's bundle (``convert``): the LIF layer on the chip, the CNN on the GPU;
* ``all``: ``convert --chip all``: the CNN's five convs as sigma-delta layers on the chip too.

Per placement: hole PSNR against the photo, PSNR of the deployed image against the float model's
(uint8 images), energy per inference and latency on each neuromorphic profile (the CNN on the ``gpu``
host profile), cores and chips (and cores with shared conv weights). For ``all``, per delta threshold
(a fraction of each layer's activation scale): PSNR vs float, the readout's relative activation error,
the mean of the five layers', graded messages per Lava step, Loihi 2 energy::

    OMP_NUM_THREADS=1 python benchmarks/bench_sd_placement.py --json docs/bench_sd_placement.json
    OMP_NUM_THREADS=1 python benchmarks/bench_sd_placement.py --model other.pt --thresholds 0,0.00390625
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from neurodeploy.cost.profile import summarize
from neurodeploy.inpainter.conversion import convert
from neurodeploy.inpainter.data import EvalSet, builtin_paths
from neurodeploy.inpainter.demo import SHIPPED_MODEL
from neurodeploy.inpainter.evaluate import score
from neurodeploy.inpainter.profile import count_result, inpainter_view
from neurodeploy.inpainter.sd_placement import DEFAULT_DELTA_THRESHOLD
from neurodeploy.inpainter.simulator import SimulationInput, Simulator

THRESHOLDS = (0.0, 1 / 1024, 1 / 256, 1 / 64, 1 / 16, 1 / 4)
PROFILES = ("loihi", "loihi2", "spinnaker2", "gpu")
HOST = "gpu"


def run(bundle: Any, backend: str) -> dict[str, Any]:
    """Simulate and count the 16 crops; hole PSNR, PSNR vs float, the profile's summary."""
    per_image, hole, vs_float, float_hole, sd = [], [], [], [], []
    with Simulator(bundle, backend) as sim:
        for s in EvalSet(builtin_paths("val")):
            result = sim.run(SimulationInput(s.name, s.image, s.mask))
            per_image.append(count_result(bundle, result))
            hole.append(score(s.image, result.output, s.mask).psnr_hole)
            vs_float.append(result.fidelity["psnr_vs_float"])
            float_hole.append(_float_hole(sim, s))
            sd.append(result.fidelity.get("sigma_delta", []))
    summary = inpainter_view(bundle, per_image, summarize(per_image, backend, PROFILES, HOST), PROFILES, HOST)
    steps = [len(layer["spikes_per_step"]) for layer in summary["layers"] if layer["kind"] == "sigma_delta"]
    messages = sum(layer["spikes"] for layer in summary["layers"] if layer["kind"] == "sigma_delta")
    errors = [np.mean([img[k]["relative_activation_error"] for img in sd]) for k in range(len(sd[0]))] if sd[0] \
        else []
    return {"hole_psnr": float(np.mean(hole)), "psnr_vs_float": float(np.mean(vs_float)),
            "float_hole_psnr": float(np.mean(float_hole)), "summary": summary,
            "sd_messages_per_step": messages / steps[0] if steps else None,
            "sd_relative_errors": [float(e) for e in errors]}


def _float_hole(sim: Simulator, sample: Any) -> float:
    import torch

    from neurodeploy.inpainter.data import to_tensors
    from neurodeploy.inpainter.evaluate import to_uint8
    from neurodeploy.inpainter.holes import composite

    image, mask = to_tensors(sample.image, sample.mask)
    with torch.no_grad():
        pred = sim.reference_model(image[None], mask[None], torch.Generator().manual_seed(0))[0]
    return score(sample.image, to_uint8(composite(image, pred, mask)), sample.mask).psnr_hole


def placement_row(name: str, measured: dict[str, Any]) -> dict[str, Any]:
    s = measured["summary"]
    row: dict[str, Any] = {"placement": name}
    for p in ("loihi", "loihi2", "spinnaker2"):
        e = s["energy_j"][p]
        mapping = s["mapping"].get(p) or {}
        shared = mapping.get("shared_conv_weights") or {}
        row[p] = {"energy_j": e["total"], "chip_j": e["snn"], "host_j": e["host"], "latency_s": e["latency_s"],
                  "cores": mapping.get("cores"), "chips": mapping.get("chips"),
                  "cores_shared_weights": shared.get("cores"), "chips_shared_weights": shared.get("chips")}
    return {**row, "hole_psnr": measured["hole_psnr"], "psnr_vs_float": measured["psnr_vs_float"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", help="write the tables as JSON here")
    parser.add_argument("--backend", default="torch", help="reference, torch or lava (bit-exact with each other)")
    parser.add_argument("--model", default=str(SHIPPED_MODEL), help="checkpoint (default: the shipped one)")
    parser.add_argument("--thresholds", default=",".join(map(str, THRESHOLDS)),
                        help="delta thresholds of the sweep, comma-separated")
    args = parser.parse_args()
    model, thresholds = args.model, [float(v) for v in args.thresholds.split(",")]
    out: dict[str, Any] = {"protocol": "16 validation crops 128x128 (EvalSet(builtin_paths('val')))",
                           "backend": args.backend, "host_profile": HOST, "model": model}
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        hybrid = run(convert(model, Path(tmp) / "hybrid"), args.backend)
        s = hybrid["summary"]["energy_j"]["loihi2"]
        gpu = {"placement": "gpu", "hole_psnr": hybrid["float_hole_psnr"], "psnr_vs_float": None,
               "energy_j": s["all_cnn_baseline"], "latency_s": s["all_cnn_latency_s"]}
        rows = [gpu, placement_row("hybrid", hybrid)]
        sweep = []
        for threshold in thresholds:
            bundle = convert(model, Path(tmp) / f"all{threshold}", chip="all", delta_threshold=threshold)
            measured = run(bundle, args.backend)
            e = measured["summary"]["energy_j"]["loihi2"]
            sweep.append({"delta_threshold": threshold, "psnr_vs_float": measured["psnr_vs_float"],
                          "hole_psnr": measured["hole_psnr"],
                          "readout_relative_error": measured["sd_relative_errors"][-1],
                          "mean_relative_error": float(np.mean(measured["sd_relative_errors"])),
                          "relative_errors": measured["sd_relative_errors"],
                          "messages_per_step": measured["sd_messages_per_step"],
                          "loihi2_energy_j": e["total"], "loihi2_latency_s": e["latency_s"]})
            print(json.dumps(sweep[-1]), flush=True)
            if threshold == DEFAULT_DELTA_THRESHOLD:
                rows.append(placement_row("all", measured))
        out["seconds"] = time.perf_counter() - started
    out["placements"], out["sweep"] = rows, sweep
    for row in rows:
        print(json.dumps(row))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
