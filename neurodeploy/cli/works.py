"""The two works a large run hands its workers (:func:`neurodeploy.runtime.cluster.run_items`).

:class:`ImageWork` inpaints an image per item, :class:`SampleWork` runs a graph
bundle's sample per item; either counts its item instead when profiling. They
sit with the commands, above the inpainter and the cost layer they call, so that
the cluster itself (:mod:`neurodeploy.runtime.cluster`) stays a runtime that
knows only the :class:`~neurodeploy.runtime.cluster.Work` protocol.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from neurodeploy.bundle.format import Bundle
from neurodeploy.cost.profile import count_graph_sample
from neurodeploy.inpainter.profile import count_result
from neurodeploy.inpainter.simulator import Simulator
from neurodeploy.runtime.backends import LAVA_BACKENDS
from neurodeploy.runtime.graph_run import LavaSegments, run_graph


class ImageWork:
    """Inpaint one image per item (:class:`~neurodeploy.inpainter.simulator.Simulator`): record = the image's summary
    (``profile=True``: its counts, :func:`neurodeploy.cost.profile.count_result`), array = the inpainted image
    (``profile=True``: its centre tile's spikes, for the raster)."""

    def __init__(self, bundle: str | os.PathLike[str], backend: str = "lava", models: str = "neurodeploy",
                 device: str = "cpu", seed: int = 0, fidelity: bool = True, profile: bool = False) -> None:
        self.bundle_path, self.backend, self.models, self.device = str(bundle), backend, models, device
        self.seed, self.fidelity, self.profile = seed, fidelity and not profile, profile
        self.sim: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "sim": None}

    def setup(self) -> None:
        self.loaded = Bundle.load(self.bundle_path).require("inpainter")
        self.sim = Simulator(self.loaded, self.backend, self.models, self.seed,  # type: ignore[arg-type]
                             self.fidelity, device=self.device).__enter__()

    def close(self) -> None:
        if self.sim is not None:
            self.sim.__exit__(None, None, None)
            self.sim = None

    def run(self, item_id: str, item: Any) -> tuple[dict[str, Any], np.ndarray]:
        result = self.sim.run(item)
        if self.profile:
            return {"id": item_id, **count_result(self.loaded, result)}, result.raster
        return {"id": item_id, **result.summary(self.backend)}, result.output


class SampleWork:
    """One sample of a graph bundle per item (:func:`neurodeploy.runtime.graph_run.run_graph` on a batch of one):
    record = its spike counts per chip layer and its output (``profile=True``: its counts,
    :func:`neurodeploy.cost.profile.count_graph_sample`), array = the output (T, *output_shape)
    (``profile=True``: the first chip layer's spikes, for the raster). ``check``: compare each sample with
    the reference backend (``exact_vs_reference``; False: not measured, True)."""

    def __init__(self, bundle: str | os.PathLike[str], backend: str = "reference", models: str = "stock",
                 device: str = "cpu", profile: bool = False, check: bool = True) -> None:
        self.bundle_path, self.backend, self.models, self.device = str(bundle), backend, models, device
        self.profile, self.check = profile, check
        self.deployment: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "deployment": None, "lava": None}

    def setup(self) -> None:
        loaded = Bundle.load(self.bundle_path).require("graph")
        self.deployment, self.cuts = loaded.deployment, loaded.typed_manifest.cuts
        # compiled on the first sample, kept for the others
        self.lava = LavaSegments(self.models, self.backend) if self.backend in LAVA_BACKENDS else None

    def close(self) -> None:
        if getattr(self, "lava", None) is not None:
            self.lava.close()

    def run(self, item_id: str, item: Any) -> tuple[dict[str, Any], np.ndarray]:
        run = run_graph(self.deployment, np.asarray(item)[None], self.backend, self.models, self.device,
                        check=self.check, lava=self.lava)
        if self.profile:
            counts = count_graph_sample(self.deployment, run, self.cuts, 0).as_dict()
            return ({"id": item_id, **counts, "exact_vs_reference": bool(run.exact_vs_reference)},
                    run.spikes[self.deployment.chip_layers[0]][0])
        record = {"id": item_id, "spikes": {name: int(s.sum()) for name, s in run.spikes.items()},
                  "exact_vs_reference": bool(run.exact_vs_reference), "output": run.output[0].tolist()}
        return record, run.output[0]
