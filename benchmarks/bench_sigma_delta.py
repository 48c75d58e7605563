"""Sigma-delta delta threshold: activation error against float and graded-message traffic (issue 26, phase 1).

The shipped inpainter's first two host convs (3x3, stride 2, ReLU: 32 -> 64 -> 64
channels) become sigma-delta layers (:func:`neurodeploy.chip.sigma_delta.quantize_relu_stack`)
on a 32x32 window of a real photo with a seeded hole. Their input is what the
chip's LIF layer sends: its spikes, one payload of 1 per spike, step by step
(the delta encoding of the running spike count, so after the T steps the first
conv has read exactly T x the rate the float host conv reads; input step 1/T).
The segment runs T + 2 steps (the pipeline drains), on the NumPy reference.

Per delta threshold (a fraction of each layer's activation scale, the layer's
largest float activation on the whole photo: the calibration), per layer:

* ``relative_error``: ||a_sd - a_float|| / ||a_float||, where a_sd is the
  activation the next layer holds at the end (Σ payloads x message_step) and
  a_float the float layer on the float input (the rate);
* ``messages_per_neuron_step``: graded messages sent (nonzero payloads) over
  neurons x steps; 1.0 would be a message from every neuron at every step.

With ``--check-lava`` every configuration also runs in Lava (CPU, fixed point) and must equal
the reference bit for bit: stock netx where every weight exponent is 0, neurodeploy's
``SigmaDeltaSegment`` otherwise (``lava_equal`` in the JSON)::

    OMP_NUM_THREADS=1 python benchmarks/bench_sigma_delta.py [--json out.json] [--check-lava]
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from neurodeploy.chip.sigma_delta import calibrate_relu_stack, messages_sent, quantize_relu_stack, run_segment
from neurodeploy.converters.netx_sdnn import write_sdnn_segment
from neurodeploy.inpainter.checkpoint import load_model
from neurodeploy.inpainter.data import PHOTO_MASKS, builtin_paths, random_mask, to_tensors
from neurodeploy.inpainter.demo import SHIPPED_MODEL
from neurodeploy.io import read_image
from neurodeploy.runtime.lava.sigma_delta_run import run_segment_process, run_stock_netx

THRESHOLDS = (0.0, 1 / 256, 1 / 64, 1 / 16)
# per layer; 0 is what stock netx runs (Lava's conv model ignores a weight exponent), the others need
# a segment process (or Loihi 2) that applies it
WEIGHT_EXPS = ((0, 0), (3, 0), (6, 0), (6, -3), (6, -6))
WINDOW = 32
SEED = 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", help="write the table as JSON here")
    parser.add_argument("--check-lava", action="store_true",
                        help="also run every configuration in Lava (stock netx for weight exponents 0, "
                             "neurodeploy's SigmaDeltaSegment otherwise) and check it equals the reference")
    args = parser.parse_args()
    torch.manual_seed(SEED)
    model, _ = load_model(SHIPPED_MODEL)
    path = builtin_paths("val")[0]
    image = read_image(path)
    mask = random_mask(np.random.default_rng(SEED), *image.shape[:2], PHOTO_MASKS)
    img, hole = to_tensors(image, mask)
    generator = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        spikes = model.spikes(img[None], hole[None], generator)[:, 0]  # (T, C, H, W), 0/1
    steps = spikes.shape[0]
    modules = [m for block in list(model.cnn.layers)[:2] for m in block]
    # calibration on the whole photo: each layer's largest activation and largest Σ|w|·|x|
    scales, sums = calibrate_relu_stack(modules, spikes.mean(0)[None])
    top, left = (s // 2 - WINDOW // 2 for s in spikes.shape[-2:])
    window = spikes[..., top:top + WINDOW, left:left + WINDOW]
    with torch.no_grad():
        floats, h = [], window.mean(0)[None]
        for k in range(0, len(modules), 2):
            h = modules[k + 1](modules[k](h))
            floats.append(h[0].numpy())
    zeros = np.zeros((2, *window.shape[1:]), np.int64)
    # "spikes": the LIF layer's spikes, one payload 1 per spike per step (input step 1/T);
    # "rate": the spike count as one graded payload x 32 at step 0 (input step 1/(32 T), exact)
    inputs = {"spikes": (np.concatenate([window.numpy().astype(np.int64), zeros]), 1 / steps),
              "rate": (np.concatenate([32 * window.numpy().astype(np.int64).sum(0)[None], zeros,
                                       np.zeros((steps - 1, *window.shape[1:]), np.int64)]), 1 / (32 * steps))}
    rows = []
    for (mode, (payloads, input_step)), bound, weight_exp, threshold in itertools.product(
            inputs.items(), ("worst case", "calibrated"), WEIGHT_EXPS, THRESHOLDS):
        layers = quantize_relu_stack(modules, tuple(window.shape[1:]), input_step, 1.0, scales, threshold,
                                     weight_exp=weight_exp, sum_scales=sums if bound == "calibrated" else None)
        outs = run_segment(layers, payloads[:, None])
        lava_equal = None
        if args.check_lava:
            if any(layer.weight_exp for layer in layers):
                lava = run_segment_process(layers, payloads)
            else:
                with tempfile.TemporaryDirectory() as tmp:
                    write_sdnn_segment(Path(tmp) / "sdnn.net", layers)
                    lava = run_stock_netx(Path(tmp) / "sdnn.net", payloads)
            lava_equal = all(np.array_equal(o[:, 0], lv) for o, lv in zip(outs, lava, strict=True))
            if not lava_equal:
                raise SystemExit(f"Lava differs from the reference: {mode}, {bound}, {weight_exp}, {threshold}")
        for k, (layer, out, ref) in enumerate(zip(layers, outs, floats, strict=True)):
            rebuilt = out[:, 0].sum(axis=0) * layer.message_step
            rows.append({
                "input": mode, "sum_bound": bound, "weight_exp": list(weight_exp), "lava_equal": lava_equal,
                "delta_threshold": threshold, "layer": k, "vth_mantissa": layer.vth,
                "relative_error": float(np.linalg.norm(rebuilt - ref) / np.linalg.norm(ref)),
                "messages": messages_sent(out), "neurons": int(np.prod(layer.output_shape)),
                "steps": int(out.shape[0]),
                "messages_per_neuron_step": messages_sent(out) / (np.prod(layer.output_shape) * out.shape[0]),
                "max_weight_mantissa": int(np.abs(layer.weight).max()),
                "message_step_over_scale": layer.message_step / scales[k]})
    print(f"{path.name}, window {WINDOW}x{WINDOW} at ({top}, {left}), T = {steps}, "
          f"input spikes {int(window.sum())} of {window.numel()} neuron-steps")
    print("| input | sum bound | weight_exp | threshold | layer | vth | rel. error | messages "
          "| msgs/(neuron·step) | max|W| |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['input']} | {r['sum_bound']} | {tuple(r['weight_exp'])} | {r['delta_threshold']:.4g} "
              f"| {r['layer']} | {r['vth_mantissa']} | {r['relative_error']:.4%} | {r['messages']} "
              f"| {r['messages_per_neuron_step']:.4f} | {r['max_weight_mantissa']} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
