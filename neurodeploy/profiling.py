"""``neurodeploy profile``: where the spikes and joules of an inference go.

Runs the spiking stage on a backend (Lava by default) through the spike
bridge, counts every event exactly (:mod:`neurodeploy.counting`), and prices
the counts on hardware profiles (:mod:`neurodeploy.energy`). With several
images every count is averaged: the figures are per inference.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from neurodeploy.bridge import Backend, LavaModels
from neurodeploy.bundle import Bundle
from neurodeploy.counting import InferenceCounts, count_tally
from neurodeploy.energy import all_cnn, estimate
from neurodeploy.errors import UserError
from neurodeploy.hw import EnergyProfile, list_profiles, load_profile
from neurodeploy.model import host_conv_shapes
from neurodeploy.simulation import ImageResult, SimulationInput, Simulator

DEFAULT_HOST = "gpu"


def _mean(values: list[Any]) -> Any:
    """Element-wise mean of equally shaped JSON values (numbers, lists, dicts)."""
    first = values[0]
    if isinstance(first, dict):
        return {k: _mean([v[k] for v in values]) for k in first}
    if isinstance(first, list):
        if len({len(v) for v in values}) != 1:
            return first
        return [_mean([v[i] for v in values]) for i in range(len(first))]
    if isinstance(first, (int, float)) and not isinstance(first, bool):
        return float(np.mean(values))
    return first


def select_profiles(names: Iterable[str] | None) -> list[EnergyProfile]:
    """Profiles by name or path; ``None`` means every shipped one."""
    if names is None:
        return list_profiles()
    return [load_profile(name) for name in names]


def price(counts: InferenceCounts, profiles: list[EnergyProfile], host: EnergyProfile) -> dict[str, Any]:
    """Energy per inference on every neuromorphic profile (CNN on ``host``) and the all-CNN baselines."""
    hosts = [p for p in profiles if p.kind == "host"] or [host]
    return {
        "energy_j": {p.name: estimate(counts, p, host).as_dict() for p in profiles if p.kind == "neuromorphic"},
        "baseline_j": {h.name: all_cnn(counts, h)[0] for h in hosts},
    }


def count_result(bundle: Bundle, result: ImageResult) -> dict[str, Any]:
    """The exact counts of one simulated image, summed tile by tile as it streamed (see
    :func:`neurodeploy.counting.count_tally`)."""
    return count_tally(result.tally, int(bundle.manifest["input"]["payload_bits"]),
                       host_conv_shapes(bundle.model_config)).as_dict()


def summarize(per_image: list[dict[str, Any]], backend: str, hw: Iterable[str] | None = None,
              host: str = DEFAULT_HOST) -> dict[str, Any]:
    """Counts of simulated images averaged per inference and priced on the profiles."""
    profiles = select_profiles(hw)
    host_profile = load_profile(host)
    if host_profile.kind != "host":
        raise UserError(f"`host={host_profile.name}` is a {host_profile.kind} profile",
                        "pass a host profile such as gpu or cpu")
    if not per_image:
        raise UserError("no images to profile", "pass at least one image")
    summary = _mean(per_image)
    summary.update(price(InferenceCounts.from_dict(summary), profiles, host_profile))
    summary.update({"backend": backend, "images": len(per_image), "host_profile": host_profile.name,
                    "profiles": {p.name: {"kind": p.kind, "description": p.description, "file": p.path}
                                 for p in profiles}})
    return summary


def profile(bundle: Bundle, items: Iterable[SimulationInput], backend: Backend = "lava",
            models: LavaModels = "neurodeploy", hw: Iterable[str] | None = None, host: str = DEFAULT_HOST,
            seed: int = 0, on_result: Callable[[ImageResult], None] | None = None) -> tuple[dict[str, Any], np.ndarray]:
    """Profile every item; returns (summary JSON, output spikes for the raster: those of the last
    image's centre tile).

    Each image is counted tile by tile as it is simulated; only its counts are kept.
    """
    hw = None if hw is None else list(hw)
    select_profiles(hw)  # a bad profile fails before Lava starts
    load_profile(host)
    per_image: list[dict[str, Any]] = []
    last = np.zeros((1, 1, 1, 1), np.uint8)
    with Simulator(bundle, backend, models, seed, fidelity=False) as sim:
        for item in items:
            result = sim.run(item)
            per_image.append(count_result(bundle, result))
            last = result.raster
            if on_result is not None:
                on_result(result)
    return summarize(per_image, backend, hw, host), last
