"""Core mapping, latency and NeuroBench metrics of deployed networks (issue 16).

The shipped inpainter (``neurodeploy convert`` of examples/models/scnn_inpaint.pt,
profiled on the builtin validation crops, reference backend: bit-exact with
Lava) at the crops' 128x128 and at 512x512 (the mapping of a bigger image),
and the multi-layer graphs of ``benchmarks/bench_graphs.py`` (converted, run
on their seeded inputs). Per network and neuromorphic profile: cores, chips,
whether it fits one chip and else the limiting resource, the latency per step
and per inference from the busiest core, the chip's dynamic and static
energy; and the NeuroBench metrics of the deployed layers::

    python benchmarks/bench_mapping.py [--json mapping.json] [--images 4]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_graphs import _networks  # noqa: E402  (the same networks as section 11)
from neurodeploy import convert  # noqa: E402
from neurodeploy.cost.hw import load_profile  # noqa: E402
from neurodeploy.cost.mapping import ChipLayerInfo, map_network, resize_conv_chain  # noqa: E402
from neurodeploy.cost.profile import profile_graph  # noqa: E402
from neurodeploy.inpainter.data import EvalSet, builtin_paths  # noqa: E402
from neurodeploy.inpainter.profile import profile  # noqa: E402
from neurodeploy.inpainter.simulator import SimulationInput  # noqa: E402

PROFILES = ["loihi", "loihi2", "spinnaker2"]


def rows(name: str, summary: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in PROFILES:
        m, t, e = summary["mapping"].get(p, {}), summary["latency_s"].get(p) or {}, summary["energy_j"][p]
        shared = m.get("shared_conv_weights") or {}
        out.append({"network": name, "profile": p, "cores": m.get("cores"), "chips": m.get("chips"),
                    "shared": shared,
                    "fits": m.get("fits"), "limiting": m.get("limiting"), "largest_input": m.get("largest_input"),
                    "per_step_s": t.get("per_step"), "per_inference_s": t.get("per_inference"),
                    "bottleneck": t.get("bottleneck"), "dynamic_j": e["snn_dynamic"], "static_j": e["snn_static"]})
    return out


def print_table(table: list[dict[str, Any]]) -> None:
    print("| network | profile | cores | chips | fits (limiting) | largest square input | shared conv weights: "
          "cores, chips, largest input | s / step | s / inference | busiest core | chip dynamic J | chip static J |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")

    def num(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    for r in table:
        fits = "yes" if r["fits"] else f"no ({r['limiting']})"
        s = r.get("shared") or {}
        shared = f"{s['cores']}, {s['chips']}, {s['largest_input'] or '-'}" if s else "-"
        print(f"| {r['network']} | {r['profile']} | {r['cores']} | {r['chips']} | {fits} | "
              f"{r['largest_input'] or '-'} | {shared} | {num(r['per_step_s'], '.3g')} | "
              f"{num(r['per_inference_s'], '.3g')} | {r['bottleneck'] or '-'} | {num(r['dynamic_j'], '.3e')} | "
              f"{num(r['static_j'], '.3e')} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write the rows and NeuroBench blocks as JSON")
    parser.add_argument("--images", type=int, default=4, help="validation crops for the inpainter")
    args = parser.parse_args()
    table: list[dict[str, Any]] = []
    neurobench: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bundle = convert(ROOT / "examples/models/scnn_inpaint.pt", root / "scnn.bundle")
        crops = list(EvalSet(builtin_paths("val")))[:args.images]
        summary, _ = profile(bundle, [SimulationInput(s.name, s.image, s.mask) for s in crops],
                             backend="reference", hw=PROFILES)
        name = f"inpainter 128x128 ({len(crops)} crops)"
        table += rows(name, summary)
        neurobench[name] = summary["neurobench"]
        # the same layer on a 512x512 image: mapping only (the counts scale, the cores are what matter)
        layer = summary["layers"][0]
        (conv,) = bundle.segment_layers
        info = ChipLayerInfo(layer["name"], "conv", (conv.weight.shape[1], 128, 128), (conv.weight.shape[0], 128, 128),
                             tuple(conv.weight.shape), conv.stride, conv.padding)
        for p in PROFILES:
            big = resize_conv_chain([info])(512)  # type: ignore[misc]
            m = map_network([replace(big[0])], load_profile(p))
            table.append({"network": "inpainter 512x512 (mapping only)", "profile": p, "cores": m["cores"],
                          "chips": m["chips"], "fits": m["fits"], "limiting": m["limiting"], "largest_input": None,
                          "shared": m.get("shared_conv_weights"), "per_step_s": None, "per_inference_s": None,
                          "bottleneck": "", "dynamic_j": None, "static_j": None})
        for i, (name, (_, _, graph, x, _, dt)) in enumerate(_networks().items()):
            gbundle = convert(graph, root / f"{i}.bundle", dt=dt)
            summary, _ = profile_graph(gbundle, x, backend="reference", hw=PROFILES)
            table += rows(name, summary)
            neurobench[name] = summary["neurobench"]
    print_table(table)
    print()
    print("| network | Effective ACs | Effective MACs | Dense | activation sparsity | connection sparsity "
          "| footprint bytes (int8) |")
    print("|---|---|---|---|---|---|---|")
    for name, nb in neurobench.items():
        ops = nb["synaptic_operations"]
        print(f"| {name} | {ops['Effective_ACs']:.4g} | {ops['Effective_MACs']:.4g} | {ops['Dense']:.4g} | "
              f"{nb['activation_sparsity']:.4f} | {nb['connection_sparsity']:.4f} | {nb['footprint_bytes']} |")
    if args.json:
        args.json.write_text(json.dumps({"rows": table, "neurobench": neurobench}, indent=2))


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
