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
from neurodeploy.inpainter.model import host_conv_shapes
from neurodeploy.inpainter.sd_profile import add_sigma_delta_counts, sigma_delta_infos, sigma_delta_operations
from neurodeploy.inpainter.simulator import ImageResult, SimulationInput, Simulator
from neurodeploy.runtime.backends import Backend, LavaModels
from neurodeploy.runtime.run_options import plan_threads, sized_threads


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
            device: str = "cpu", threads: int | None = None) -> tuple[dict[str, Any], np.ndarray]:
    """Profile every item; returns (summary JSON, output spikes for the raster: those of the last
    image's centre tile).

    Each image is counted tile by tile as it is simulated; only its counts are kept.
    For a graph bundle ``items`` is X (N, T, *input_shape) and this is :func:`profile_graph`.
    ``threads``: torch's and BLAS's threads during the run, by default sized for the backend
    (:mod:`neurodeploy.runtime.run_options`); the summary's ``threads`` records them.
    """
    plan = plan_threads(backend, threads)
    with sized_threads(plan):
        summary, raster = _profile(bundle, items, backend, models, hw, host, seed, on_result, device)
    return {**summary, "threads": plan.as_dict()}, raster


def _profile(bundle: Bundle, items: Iterable[SimulationInput] | np.ndarray, backend: Backend, models: LavaModels,
             hw: Iterable[str] | None, host: str, seed: int, on_result: Callable[[ImageResult], None] | None,
             device: str) -> tuple[dict[str, Any], np.ndarray]:
    """:func:`profile` in the threads it sized."""
    if bundle.kind == "graph":
        return profile_graph(bundle, np.asarray(items), backend=backend, models=models, hw=hw, host=host,
                             device=device)
    hw = None if hw is None else list(hw)
    select_profiles(hw)  # a bad profile fails before Lava starts
    load_profile(host)
    per_image: list[dict[str, Any]] = []
    last = np.zeros((1, 1, 1, 1), np.uint8)
    with Simulator(bundle, backend, models, seed, fidelity=False, device=device) as sim:
        for item in items:
            result = sim.run(item)
            per_image.append(count_result(bundle, result))
            last = result.raster
            if on_result is not None:
                on_result(result)
    return inpainter_view(bundle, per_image, summarize(per_image, backend, hw, host), hw, host), last


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
