"""``neurodeploy profile`` for the inpainter (format 3), and the one ``profile`` entry for either kind.

Each image is simulated (:class:`~neurodeploy.inpainter.simulator.Simulator`)
and counted tile by tile as it streams (:func:`count_result`); the counts are
averaged and priced by :mod:`neurodeploy.cost.profile`, whose
:func:`~neurodeploy.cost.profile.add_deployment` adds the deployment view of the
stack (:func:`inpainter_view`). A format-2 bundle goes to
:func:`neurodeploy.cost.profile.profile_graph`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import numpy as np

from neurodeploy.bundle.format import Bundle
from neurodeploy.cost.counting import count_tallies
from neurodeploy.cost.hw import load_profile
from neurodeploy.cost.mapping import ChipLayerInfo
from neurodeploy.cost.neurobench_metrics import inpainter_operations, metrics
from neurodeploy.cost.profile import DEFAULT_HOST, add_deployment, profile_graph, select_profiles, summarize
from neurodeploy.inpainter.checkpoint import bundle_config
from neurodeploy.inpainter.evaluate import psnr_from_mse
from neurodeploy.inpainter.model import host_conv_shapes
from neurodeploy.inpainter.sd_profile import add_sigma_delta_counts, sigma_delta_infos, sigma_delta_operations
from neurodeploy.inpainter.simulator import ImageResult, SimulationInput, Simulator
from neurodeploy.runtime.backends import Backend, LavaModels
from neurodeploy.runtime.run_options import plan_threads, sized_threads
from neurodeploy.spike_metrics import pooled_scores


def count_result(bundle: Bundle, result: ImageResult) -> dict[str, Any]:
    """The exact counts of one simulated image, summed tile by tile as it streamed (see
    :func:`neurodeploy.cost.counting.count_tallies`)."""
    names = list(bundle.chip_segment.layer_names)
    config, on_chip = bundle_config(bundle), len(bundle.sigma_delta_layers)  # placement "all": the CNN's on the chip
    counts = count_tallies(result.tallies, names, bundle.payload_bits,
                           host_conv_shapes(config)[on_chip:]).as_dict()
    height, width = result.tallies[0].height, result.tallies[0].width
    if on_chip:
        counts = add_sigma_delta_counts(counts, result.sigma_delta, config, height, width)
    return {**counts, "input_hw": [height, width]}


def profile(bundle: Bundle, items: Iterable[SimulationInput] | np.ndarray, backend: Backend = "lava",
            models: LavaModels = "neurodeploy", hw: Iterable[str] | None = None, host: str = DEFAULT_HOST,
            seed: int = 0, on_result: Callable[[ImageResult], None] | None = None,
            device: str = "cpu", threads: int | None = None, fidelity: bool = False
            ) -> tuple[dict[str, Any], np.ndarray]:
    """Profile every item; returns (summary JSON, output spikes for the raster: those of the last
    image's centre tile).

    Each image is counted tile by tile as it is simulated; only its counts are kept.
    For a graph bundle ``items`` is X (N, T, *input_shape) and this is :func:`profile_graph`.
    ``threads``: torch's and BLAS's threads during the run, by default sized for the backend
    (:mod:`neurodeploy.runtime.run_options`); the summary's ``threads`` records them.
    ``fidelity``: also run the simulator's fidelity check (the float model, the reference backend) and
    score the output: the summary's ``fidelity`` and ``psnr_hole`` (:func:`image_quality`).
    """
    plan = plan_threads(backend, threads)
    with sized_threads(plan):
        summary, raster = _profile(bundle, items, backend, models, hw, host, seed, on_result, device, fidelity)
    return {**summary, "threads": plan.as_dict()}, raster


def _profile(bundle: Bundle, items: Iterable[SimulationInput] | np.ndarray, backend: Backend, models: LavaModels,
             hw: Iterable[str] | None, host: str, seed: int, on_result: Callable[[ImageResult], None] | None,
             device: str, fidelity: bool) -> tuple[dict[str, Any], np.ndarray]:
    """:func:`profile` in the threads it sized."""
    if bundle.kind == "graph":
        return profile_graph(bundle, np.asarray(items), backend=backend, models=models, hw=hw, host=host,
                             device=device, fidelity=fidelity)
    hw = None if hw is None else list(hw)
    select_profiles(hw)  # a bad profile fails before Lava starts
    load_profile(host)
    per_image: list[dict[str, Any]] = []
    checked: list[dict[str, Any]] = []
    last = np.zeros((1, 1, 1, 1), np.uint8)
    with Simulator(bundle, backend, models, seed, fidelity=fidelity, device=device) as sim:
        for item in items:
            result = sim.run(item)
            per_image.append(count_result(bundle, result))
            if fidelity:
                checked.append({"name": item.name, "psnr_hole": hole_psnr(item.image, result.output, item.mask),
                                **result.fidelity})
            last = result.raster
            if on_result is not None:
                on_result(result)
    summary = inpainter_view(bundle, per_image, summarize(per_image, backend, hw, host), hw, host)
    return ({**summary, **image_quality(checked)} if fidelity else summary), last


def hole_psnr(truth: np.ndarray, output: np.ndarray, mask: np.ndarray) -> float | None:
    """PSNR in dB of ``output`` against ``truth`` (uint8 (H, W, 3)) over the hole (``mask`` True); None
    for an image without a hole."""
    if not mask.any():
        return None
    error = (truth[mask].astype(np.float64) - output[mask].astype(np.float64)) / 255.0
    return psnr_from_mse(float(np.mean(error ** 2)))


def image_quality(checked: list[dict[str, Any]]) -> dict[str, Any]:
    """The output's quality and the fidelity over the profiled images: ``psnr_hole`` (mean over the images
    with a hole, and each image's) and ``fidelity``: spike precision, recall and F1 of every chip layer
    together and of each (pooled over the images, :func:`neurodeploy.spike_metrics.pooled_scores`), the
    output's PSNR against the float model (mean), and bit-exactness with the reference backend (every image)."""
    holes = [c["psnr_hole"] for c in checked if c["psnr_hole"] is not None]
    layers = [{"name": layer["name"], **pooled_scores([c["layers"][k] for c in checked])}
              for k, layer in enumerate(checked[0]["layers"])] if checked else []
    return {
        "psnr_hole": {"mean": float(np.mean(holes)) if holes else None,
                      "per_image": {c["name"]: c["psnr_hole"] for c in checked}},
        "fidelity": {**pooled_scores(checked), "layers": layers, "images": len(checked),
                     "psnr_vs_float": float(np.mean([c["psnr_vs_float"] for c in checked])) if checked else None,
                     "exact_vs_reference": all(bool(c["exact_vs_reference"]) for c in checked),
                     "exact_vs_reference_tiles": sum(int(c.get("exact_vs_reference_tiles", 0)) for c in checked),
                     "warnings": [note for c in checked for note in c.get("warnings", [])]},
    }


def inpainter_view(bundle: Bundle, per_image: list[dict[str, Any]], summary: dict[str, Any],
                   hw: Iterable[str] | None, host: str) -> dict[str, Any]:
    """Add the deployment view (:func:`add_deployment`) to an inpainter's summary: every chip layer of its
    stack on the largest image profiled (``input_hw`` of :func:`count_result`, the image padded to the
    stack's stride), with its averaged counts."""
    height = max(int(c["input_hw"][0]) for c in per_image)
    width = max(int(c["input_hw"][1]) for c in per_image)
    summary.pop("input_hw", None)
    graded = bundle.payload_bits > 1
    infos, ops = [], []
    spikes = outputs = 0.0
    weights = []
    lif = len(bundle.segment_layers)
    for k, (conv, layer) in enumerate(zip(bundle.segment_layers, summary["layers"][:lif], strict=True)):
        (sh, sw), ph = conv.stride, conv.padding[0]
        out_hw = (-(-height // sh), -(-width // sw))
        infos.append(replace(ChipLayerInfo.of(layer["name"], conv, layer),  # sized for the largest image
                             input_shape=(conv.input_shape[0], height, width),
                             output_shape=(conv.output_shape[0], *out_hw)))
        ops.append(inpainter_operations(layer["synops"], conv.weight, graded and k == 0, layer["timesteps"],
                                        (height, width), ph, sh))
        spikes += layer["spikes"]
        outputs += layer["neurons"] * layer["timesteps"]
        weights.append(conv.weight)
        height, width = out_hw
    if bundle.sigma_delta_layers:  # placement "all"
        counted = summary["layers"][lif:]
        infos += sigma_delta_infos(bundle.sigma_delta_layers, counted, height, width)
        ops += sigma_delta_operations(bundle.sigma_delta_layers, counted, height, width)
        spikes += sum(layer["spikes"] for layer in counted)
        outputs += sum(layer["neurons"] * layer["timesteps"] for layer in counted)
        weights += [layer.weight for layer in bundle.sigma_delta_layers]
    add_deployment(summary, infos, metrics(ops, spikes, outputs, weights, [None] * len(weights)), hw, host)
    return summary
