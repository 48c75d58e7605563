"""The hardware figures against every published Loihi 2 measurement the toolkit can rebuild.

    .venv/bin/python benchmarks/validate_hw.py PILOTNET_SNN PILOTNET_SDNN [--oxford NET] [--photo NAME] [--json OUT]

PILOTNET_SNN and PILOTNET_SDNN are Lava-DL's two PilotNet netx files
(lava-nc/lava-dl ``tutorials/lava/lib/dl/netx/pilotnet_snn/network.net`` and
``pilotnet_sdnn/network.net``); ``--oxford`` the Oxford tutorial's
``oxford/Trained/network.net`` (optional: a third compiler table). What Intel
published for them (the printed outputs of each folder's ``benchmark.ipynb``
and of ``oxford/run.ipynb``, runs of 2022-10-12 to 2023-01-10) is in
``PUBLISHED`` below. The frame: a scikit-image photo (``--photo``, default
astronaut) resized to 200 x 66, written into the input layer's bias as the
notebook's dataset does (bias = 2·w·pixel - w + b with the input layer's
``weight`` w and ``bias`` b, pixel in [0, 1]); the spike counts of its 16
steps come from the toolkit's reference backend (``chip/reference.py``, the
chip's CUBA arithmetic in NumPy). Every figure comes from the shipped
profiles ``loihi2`` (Oheo Gulch) and ``loihi2_kapoho`` through the
toolkit's own mapping, latency and energy model; the table gives predicted,
measured and their ratio, and which of issue 34's bars hold.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import h5py
import numpy as np
import skimage.data
import skimage.transform

from neurodeploy.chip.cuba import CubaParams, CubaState, cuba_step
from neurodeploy.chip.reference import run_segment
from neurodeploy.converters.netx_io import FixedPointLayer
from neurodeploy.cost.counting import InferenceCounts, LayerCounts, chip_layer_counts
from neurodeploy.cost.energy import estimate
from neurodeploy.cost.hw import load_profile
from neurodeploy.cost.latency import latency
from neurodeploy.cost.mapping import ChipLayerInfo, map_network, weight_bits

STEPS = 16  # the notebooks' reset_interval: steps per inference
PUBLISHED = {  # lava-dl tutorials/lava/lib/dl/netx/*/benchmark.ipynb and oxford/run.ipynb, printed outputs
    "pilotnet_snn_cores": [13, 25, 13, 3, 3, 2, 12, 1, 1, 1],  # input; conv x5; dense x4 ("Per core distribution")
    "pilotnet_sdnn_cores": [25, 13, 3, 3, 2, 12, 1, 1, 1],  # no input layer (skip_layers=1): 61
    "oxford_cores": [3, 2],  # dense 200 -> 256, 256 -> 200: 5
    "oheo": {"fps": (408.9, 415.5), "static_w": (0.18, 0.31), "dynamic_j": (0.56e-3, 1.09e-3)},
    "kapoho": {"fps": (342.3, 343.3), "static_w": (0.35, 0.36), "dynamic_j": (1.20e-3, 1.39e-3)},
}


# ---- the netx file as the toolkit's records. TEMPORARY: t34a's netx reader (issue 34) replaces this function. ----
def read_netx(path: Path) -> tuple[dict | None, list[ChipLayerInfo], list[FixedPointLayer] | None]:
    """A Lava-DL netx file: its input layer (shape, neuron, transform) or None, every layer's ChipLayerInfo
    (shapes, weight bits; the input layer first where there is one) and, for CUBA networks, the
    FixedPointLayer records the reference backend runs (None for sigma-delta ones)."""
    infos: list[ChipLayerInfo] = []
    records: list[FixedPointLayer] | None = []
    inp, shape = None, None
    with h5py.File(path, "r") as f:
        for i in range(len(f["layer"])):
            g = f[f"layer/{i}"]
            kind = bytes(np.asarray(g["type"][()]).reshape(-1)[0]).decode()
            out = tuple(int(x) for x in np.asarray(g["shape"][()]).reshape(-1))
            neuron = {k: g["neuron"][k][()] for k in g["neuron"]} if "neuron" in g else {}
            if kind == "input":
                inp = {"shape": out, "neuron": neuron, "weight": int(g["weight"][()]) if "weight" in g else 64,
                       "bias": int(g["bias"][()]) if "bias" in g else 0}  # netx's defaults
                infos.append(ChipLayerInfo("input", "input", out, out, ()))
                shape = out
                continue
            if kind == "flatten":
                shape = (math.prod(shape),)
                continue
            weight = np.asarray(g["weight"][()])
            if shape is None:  # a netx file without an input layer starts with a dense block
                shape = (int(g["inFeatures"][()]),)
            if kind == "dense":
                out = (int(g["outFeatures"][()]),)
                weight = weight.reshape(out[0], -1)
            stride = tuple(int(x) for x in g["stride"][()]) if kind == "conv" else (1, 1)
            padding = tuple(int(x) for x in g["padding"][()]) if kind == "conv" else (0, 0)
            infos.append(ChipLayerInfo(f"{kind}{i}", kind, shape, out, weight.shape, stride, padding,
                                       weight_bits=weight_bits([weight.astype(np.int64)])))
            if bytes(neuron["type"]) in (b"LOIHI", b"CUBA") and records is not None and np.abs(weight).max() < 128:
                bias = np.asarray(g["bias"][()]).astype(np.int32).reshape(-1) if "bias" in g else None
                records.append(FixedPointLayer(kind, shape, out, weight.astype(np.int8), None, bias, stride,
                                               padding, int(neuron["iDecay"]), int(neuron["vDecay"]),
                                               int(neuron["vThMant"])))
            else:
                records = None
            shape = out
    return inp, infos, records
# ---- end of the temporary reader ----


def photo_bias(inp: dict, photo: str) -> np.ndarray:
    """The input layer's bias for a scikit-image photo resized to the layer's (C, H, W)."""
    c, h, w = inp["shape"]
    image = skimage.transform.resize(getattr(skimage.data, photo)(), (h, w), anti_aliasing=True)[..., :c]
    return np.rint(2 * inp["weight"] * image - inp["weight"] + inp["bias"]).transpose(2, 0, 1)


def count(inp: dict, infos: list[ChipLayerInfo], records: list[FixedPointLayer], bias: np.ndarray
          ) -> tuple[list[ChipLayerInfo], InferenceCounts]:
    """One inference of STEPS steps on the reference backend: the layers with their per-step counts."""
    neuron = inp["neuron"]
    params = CubaParams(du=int(neuron["iDecay"]) - 1, dv=int(neuron["vDecay"]), vth=int(neuron["vThMant"]))
    state = CubaState.zeros(bias.shape)
    frames = np.stack([cuba_step(state, np.zeros(bias.shape), params, bias * 64) for _ in range(STEPS)])
    spikes = run_segment(records, frames)
    fired = frames.reshape(STEPS, -1).sum(1).astype(int).tolist()
    counts = [LayerCounts("input", STEPS, bias.size, 0, [0] * STEPS, 0, 0, [0] * STEPS, 0, sum(fired), fired,
                          [], bias.size * STEPS, sum(fired) / (bias.size * STEPS), [], 0.0, "input")]
    events = frames
    for info, layer, out in zip(infos[1:], records, spikes, strict=True):
        counts.append(chip_layer_counts(info.name, layer.kind, events, out, layer.weight.shape, 0, layer.stride,
                                        layer.padding))
        events = out
    layers = [ChipLayerInfo(i.name, i.kind, i.input_shape, i.output_shape, i.weight_shape, i.stride, i.padding,
                            tuple(c.synops_per_step), tuple(c.spikes_per_step), tuple(c.input_events_per_step),
                            i.synapse_bits, i.weight_bits) for i, c in zip(infos, counts, strict=True)]
    return layers, InferenceCounts(counts, 0, 0, {}, {})


def row(figure: str, predicted: float, low: float, high: float, bar: str, holds: bool, unit: str = "") -> dict:
    mid = (low + high) / 2
    return {"figure": figure, "predicted": predicted, "measured": [low, high], "ratio": predicted / mid,
            "bar": bar, "holds": bool(holds), "unit": unit}


def cores_rows(name: str, infos: list[ChipLayerInfo], published: list[int]) -> list[dict]:
    mapped = map_network(infos, load_profile("loihi2"))
    per_layer = [m["cores"] for m in mapped["layers"]]
    total = sum(published)
    every = all(abs(p - q) <= max(1, 0.2 * q) for p, q in zip(per_layer, published, strict=True))
    return [row(f"{name}: cores", mapped["cores"], total, total, "within 10%",
                abs(mapped["cores"] - total) <= 0.1 * total),
            row(f"{name}: cores per layer {per_layer} vs {published}", sum(per_layer), total, total,
                "every layer within 1 core or 20%", every)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("snn", type=Path, help="pilotnet_snn/network.net")
    ap.add_argument("sdnn", type=Path, help="pilotnet_sdnn/network.net")
    ap.add_argument("--oxford", type=Path, help="oxford/Trained/network.net (optional)")
    ap.add_argument("--photo", default="astronaut", help="scikit-image photo for the frame (default astronaut)")
    ap.add_argument("--json", type=Path, help="write the rows here")
    args = ap.parse_args(argv)
    for p in [args.snn, args.sdnn] + ([args.oxford] if args.oxford else []):
        if not p.is_file():
            print(f"error: {p} is not a file; pass the downloaded netx files' paths", file=sys.stderr)
            return 2
    inp, infos, records = read_netx(args.snn)
    rows = cores_rows("PilotNet LIF", infos, PUBLISHED["pilotnet_snn_cores"])
    sdnn = read_netx(args.sdnn)[1]  # its notebook runs it with skip_layers=1: the input layer on the host
    rows += cores_rows("PilotNet SDNN", [i for i in sdnn if i.kind != "input"], PUBLISHED["pilotnet_sdnn_cores"])
    if args.oxford:
        rows += cores_rows("Oxford (dense)", read_netx(args.oxford)[1], PUBLISHED["oxford_cores"])
    layers, counts = count(inp, infos, records, photo_bias(inp, args.photo))
    for board, profile_name in (("oheo", "loihi2"), ("kapoho", "loihi2_kapoho")):
        profile, pub = load_profile(profile_name), PUBLISHED[board]
        mapping = map_network(layers, profile)
        timing = latency(layers, mapping, profile)
        step = timing["streaming_per_step"]
        low, high = (1 / (STEPS * f) for f in reversed(pub["fps"]))
        rows.append(row(f"{board}: time per step ({timing['bottleneck'] or 'busiest core'})", step, low, high,
                        "within 35%", abs(step / ((low + high) / 2) - 1) <= 0.35, "s"))
        rows[-1]["band"] = timing.get("streaming_per_step_band")
        static = profile.energy["static_w"]
        rows.append(row(f"{board}: static power per chip", static.value, *pub["static_w"],
                        "within the measured range", pub["static_w"][0] <= static.value <= pub["static_w"][1], "W"))
        e = estimate(counts, profile, load_profile("cpu"), STEPS * step, mapping["chips"] or 1)
        lo, hi = pub["dynamic_j"]
        rows.append(row(f"{board}: dynamic energy per inference", e.snn_dynamic, lo, hi, "within 2x of the range",
                        lo / 2 <= e.snn_dynamic <= 2 * hi, "J"))
        rows[-1]["band"] = e.snn_dynamic_band
    print(f"frame: skimage.data.{args.photo} resized to 200 x 66; {STEPS} steps per inference")
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
