"""The hardware figures against every published Loihi 2 measurement the toolkit can rebuild.

    .venv/bin/python benchmarks/validate_hw.py PILOTNET_SNN PILOTNET_SDNN [--oxford NET] [--photo NAME] [--json OUT]

PILOTNET_SNN and PILOTNET_SDNN are Lava-DL's two PilotNet netx files
(lava-nc/lava-dl ``tutorials/lava/lib/dl/netx/pilotnet_snn/network.net`` and
``pilotnet_sdnn/network.net``); ``--oxford`` the Oxford tutorial's
``oxford/Trained/network.net`` (optional: a third compiler table). What Intel
published for them (the printed outputs of each folder's ``benchmark.ipynb``
and of ``oxford/run.ipynb``, runs of 2022-10-12 to 2023-01-10) is in
``PUBLISHED`` below.

The LIF figures are what a user gets from

    neurodeploy profile PILOTNET_SNN --image PHOTO.png --hw loihi2,loihi2_kapoho --backend reference

computed by the same API (:func:`neurodeploy.cost.netx_profile.profile_netx` on
:func:`neurodeploy.converters.netx_in.read_network`'s network, the frame made by
``image_bias`` as ``--image`` makes it: a scikit-image photo, ``--photo``,
default astronaut, resized to 200 x 66 and written into the input layer's bias
as lava-dl's PilotNet dataset does). Its counts are one inference as the
notebook runs them back to back (``reset_interval=16``, each block reset at its
own offset; :func:`neurodeploy.runtime.netx_run.run_netx_pipelined`). The
shipped profiles ``loihi2`` (Oheo Gulch) and ``loihi2_kapoho`` price them.
With ``--cli`` the script also runs that command (``--backend lava``, the
CLI's default, stock netx in Lava) and checks that its JSON gives the same
cores, time per step and energy. The SDNN and Oxford networks' cores come from
their layout (:func:`neurodeploy.converters.netx_in.read_layout`) through the
same mapping.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import skimage.data
from PIL import Image

from neurodeploy.converters.netx_in import read_layout, read_network
from neurodeploy.cost.hw import load_profile
from neurodeploy.cost.mapping import map_network
from neurodeploy.cost.netx_profile import layout_chip_layers, profile_netx
from neurodeploy.runtime.netx_run import image_bias

STEPS = 16  # the notebooks' reset_interval: steps per inference
BOARDS = (("oheo", "loihi2"), ("kapoho", "loihi2_kapoho"))
PUBLISHED = {  # lava-dl tutorials/lava/lib/dl/netx/*/benchmark.ipynb and oxford/run.ipynb, printed outputs
    "pilotnet_snn_cores": [13, 25, 13, 3, 3, 2, 12, 1, 1, 1],  # input; conv x5; dense x4 ("Per core distribution")
    "pilotnet_sdnn_cores": [25, 13, 3, 3, 2, 12, 1, 1, 1],  # no input layer (skip_layers=1): 61
    "oxford_cores": [3, 2],  # dense 200 -> 256, 256 -> 200: 5
    "oheo": {"fps": (408.9, 415.5), "static_w": (0.18, 0.31), "dynamic_j": (0.56e-3, 1.09e-3)},
    "kapoho": {"fps": (342.3, 343.3), "static_w": (0.35, 0.36), "dynamic_j": (1.20e-3, 1.39e-3)},
}


def figures(summary: dict) -> dict:
    """The compared figures of a profile summary (the API's or the CLI's JSON): cores per layer, time per
    step (pipelined) with its band, dynamic energy per inference with its band, static power, per board."""
    out = {}
    for board, name in BOARDS:
        timing, energy = summary["latency_s"][name], summary["energy_j"][name]
        out[board] = {"cores": [layer["cores"] for layer in summary["mapping"][name]["layers"]],
                      "step": timing["streaming_per_step"], "step_band": _listed(timing.get("streaming_per_step_band")),
                      "bottleneck": timing["bottleneck"], "dynamic": energy["snn_dynamic"],
                      "dynamic_band": _listed(energy.get("snn_dynamic_band")),
                      "static_w": load_profile(name).energy["static_w"].value}
    return out


def _listed(band: tuple | list | None) -> list | None:
    """A band as the JSON holds it (a list), so the API's and the CLI's figures compare equal."""
    return None if band is None else [float(x) for x in band]


def cli_figures(snn: Path, photo_png: Path) -> dict:
    """``neurodeploy profile`` as a user types it (default backend: stock netx in Lava), its JSON's figures."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "profile.json"
        subprocess.run([sys.executable, "-m", "neurodeploy", "profile", str(snn), "--image", str(photo_png),
                        "--hw", ",".join(name for _, name in BOARDS), "--json", str(out)], check=True,
                       stdout=subprocess.DEVNULL)
        summary = json.loads(out.read_text())
    print(f"neurodeploy profile's run (stock netx in Lava) equals the reference backend spike for spike: "
          f"{'yes' if summary['exact_vs_reference'] else 'NO'}")
    return figures(summary)


def row(figure: str, predicted: float, low: float, high: float, bar: str, holds: bool, unit: str = "") -> dict:
    mid = (low + high) / 2
    return {"figure": figure, "predicted": predicted, "measured": [low, high], "ratio": predicted / mid,
            "bar": bar, "holds": bool(holds), "unit": unit}


def cores_rows(name: str, per_layer: list[int], published: list[int]) -> list[dict]:
    total, cores = sum(published), sum(per_layer)
    every = all(abs(p - q) <= max(1, 0.2 * q) for p, q in zip(per_layer, published, strict=True))
    return [row(f"{name}: cores", cores, total, total, "within 10%", abs(cores - total) <= 0.1 * total),
            row(f"{name}: cores per layer {per_layer} vs {published}", sum(per_layer), total, total,
                "every layer within 1 core or 20%", every)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("snn", type=Path, help="pilotnet_snn/network.net")
    ap.add_argument("sdnn", type=Path, help="pilotnet_sdnn/network.net")
    ap.add_argument("--oxford", type=Path, help="oxford/Trained/network.net (optional)")
    ap.add_argument("--photo", default="astronaut", help="scikit-image photo for the frame (default astronaut)")
    ap.add_argument("--json", type=Path, help="write the rows here")
    ap.add_argument("--cli", action="store_true",
                    help="also run neurodeploy profile (stock netx in Lava, ~1 min) and check its JSON's figures")
    args = ap.parse_args(argv)
    for p in [args.snn, args.sdnn] + ([args.oxford] if args.oxford else []):
        if not p.is_file():
            print(f"error: {p} is not a file; pass the downloaded netx files' paths", file=sys.stderr)
            return 2
    rgb = getattr(skimage.data, args.photo)()
    network = read_network(args.snn)
    summary, _ = profile_netx(network, image_bias(network.input, rgb)[None], STEPS, "reference",
                              hw=[name for _, name in BOARDS])
    got = figures(summary)
    rows = cores_rows("PilotNet LIF", got["oheo"]["cores"], PUBLISHED["pilotnet_snn_cores"])
    loihi2 = load_profile("loihi2")
    sdnn = [block for block in read_layout(args.sdnn) if block.kind != "input"]  # skip_layers=1: input on host
    rows += cores_rows("PilotNet SDNN", [m["cores"] for m in map_network(layout_chip_layers(sdnn), loihi2)["layers"]],
                       PUBLISHED["pilotnet_sdnn_cores"])
    if args.oxford:
        oxford = map_network(layout_chip_layers(read_layout(args.oxford)), loihi2)["layers"]
        rows += cores_rows("Oxford (dense)", [m["cores"] for m in oxford], PUBLISHED["oxford_cores"])
    for board, _ in BOARDS:
        pub, fig = PUBLISHED[board], got[board]
        low, high = (1 / (STEPS * f) for f in reversed(pub["fps"]))
        rows.append(row(f"{board}: time per step ({fig['bottleneck'] or 'busiest core'})", fig["step"], low, high,
                        "within 35%", abs(fig["step"] / ((low + high) / 2) - 1) <= 0.35, "s"))
        rows[-1]["band"] = fig["step_band"]
        rows.append(row(f"{board}: static power per chip", fig["static_w"], *pub["static_w"],
                        "within the measured range", pub["static_w"][0] <= fig["static_w"] <= pub["static_w"][1],
                        "W"))
        lo, hi = pub["dynamic_j"]
        rows.append(row(f"{board}: dynamic energy per inference", fig["dynamic"], lo, hi, "within 2x of the range",
                        lo / 2 <= fig["dynamic"] <= 2 * hi, "J"))
        rows[-1]["band"] = fig["dynamic_band"]
    print(f"frame: skimage.data.{args.photo} resized to 200 x 66; {STEPS} steps per inference, pipelined")
    print("| figure | predicted | measured | ratio | bar | holds |\n|---|---|---|---|---|---|")
    for r in rows:
        scale = {"s": 1e6, "J": 1e3}.get(r["unit"], 1)
        unit = {"s": " us", "J": " mJ", "W": " W"}.get(r["unit"], "")
        lo, hi = (x * scale for x in r["measured"])
        measured = f"{lo:.4g}" if lo == hi else f"{lo:.4g}-{hi:.4g}"
        band = f" ({r['band'][0] * scale:.3g}-{r['band'][1] * scale:.3g})" if r.get("band") else ""
        print(f"| {r['figure']} | {r['predicted'] * scale:.4g}{unit}{band} | {measured}{unit} | {r['ratio']:.2f} | "
              f"{r['bar']} | {'yes' if r['holds'] else 'NO'} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=float))
    if args.cli:
        with tempfile.TemporaryDirectory() as tmp:
            photo_png = Path(tmp) / f"{args.photo}.png"
            Image.fromarray(rgb).save(photo_png)
            cli = cli_figures(args.snn, photo_png)
        print("\n| figure | this script (API) | neurodeploy profile (CLI, lava) |\n|---|---|---|")
        for board, _ in BOARDS:
            for key in ("cores", "step", "dynamic", "static_w"):
                print(f"| {board}: {key} | {got[board][key]} | {cli[board][key]} |")
        if cli != got:
            print("error: the CLI's figures differ from this script's", file=sys.stderr)
            return 1
        print("the CLI's JSON gives the same figures")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
