"""The profile of the shipped checkpoint on the builtin validation protocol (16 crops, seeded holes).

Spikes, synaptic operations, neuron updates, host MACs and bridge bits per
inference (averaged over the crops, counted from the Lava run), and the
energy per inference on every shipped neuromorphic profile with the CNN on
the GPU profile, against the all-CNN baseline on every host profile.

    python benchmarks/bench_profile.py [--model examples/models/scnn_inpaint.pt] [--json out.json] [--report DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from neurodeploy.inpainter.conversion import convert
from neurodeploy.inpainter.data import EvalSet, builtin_paths
from neurodeploy.inpainter.profile import profile
from neurodeploy.inpainter.simulator import SimulationInput

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "examples/models/scnn_inpaint.pt")
    parser.add_argument("--host", default="gpu")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--report", type=Path)
    args = parser.parse_args()
    items = [SimulationInput(s.name, s.image, s.mask) for s in EvalSet(builtin_paths("val"))]
    with tempfile.TemporaryDirectory() as tmp:
        bundle = convert(args.model, Path(tmp) / "bundle")
        summary, spikes = profile(bundle, items, backend="lava", host=args.host)
    layer = summary["layers"][0]
    print(f"per inference over {summary['images']} validation crops of 128x128 (T={int(layer['timesteps'])}):")
    print(f"  spikes {layer['spikes']:.4g} (firing rate {layer['firing_rate']:.4f}), input events "
          f"{layer['input_events']:.4g}, synaptic ops {layer['synops']:.4g}, neuron updates "
          f"{layer['neuron_updates']:.4g}")
    print(f"  host CNN MACs {summary['host_macs']:.4g}; spiking layer as a dense conv {summary['dense_snn_macs']:.4g} "
          f"MACs; bridge {summary['bridge_bits']:.4g} bits")
    print(f"{'profile':>14} | {'SNN J':>10} {'host J':>10} {'bridge J':>10} {'total J':>10} | "
          f"{'all-CNN J':>10} {'ratio':>7}")
    for name, e in summary["energy_j"].items():
        print(f"{name:>14} | {e['snn']:10.3e} {e['host']:10.3e} {e['bridge']:10.3e} {e['total']:10.3e} | "
              f"{e['all_cnn_baseline']:10.3e} {e['ratio_to_baseline']:7.3f}")
    for name, joules in summary["baseline_j"].items():
        print(f"{'all-CNN ' + name:>14} | {'':10} {'':10} {'':10} {joules:10.3e} |")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    if args.report:
        from neurodeploy.cost.report import write_report

        print(f"report: {write_report(args.report, summary, spikes)}")


if __name__ == "__main__":
    main()
