"""``neurodeploy simulate`` for the inpainter: :func:`simulate` over images, its report, and a tile progress bar.

The work is done by :class:`~neurodeploy.inpainter.simulator.Simulator`
(see there for the pipeline and its fidelity check); :func:`deployed_inpainter`
wraps it as an inpainting function for ``evaluate``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neurodeploy.bundle.format import Bundle
from neurodeploy.inpainter.simulator import ImageResult, ProgressHook, SimulationInput, Simulator
from neurodeploy.runtime.backends import Backend, LavaModels
from neurodeploy.runtime.run_options import checked, fidelity_mode, plan_threads, sized_threads
from neurodeploy.text import plural


class TileProgress:
    """A rich progress bar over the spiking tiles of each image, for the command line.

    Pass it as ``progress``; it shows only on a terminal and for images of
    more than ``min_tiles`` tiles (small images finish before a bar would
    help), and each bar is removed when its image is done. Use as a context
    manager.
    """

    def __init__(self, console: Any, min_tiles: int = 8) -> None:
        self.console = console
        self.min_tiles = min_tiles
        self.bar: Any = None

    def __enter__(self) -> TileProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __call__(self, done: int, total: int) -> None:
        if total <= self.min_tiles or not self.console.is_terminal:
            return
        if self.bar is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("tiles"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                console=self.console, transient=True)
            self.bar.start()
            self.task = self.bar.add_task("tiles", total=total)
        self.bar.update(self.task, completed=done)
        if done >= total:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


@dataclass
class SimulationReport:
    """What :func:`simulate` hands back: the inpainted images and the run's statistics.

    ``outputs`` maps each image's name to its inpainted uint8 (H, W, 3) image
    (empty when ``keep_outputs=False``); ``results`` holds one JSON-able
    summary per image (timings, spikes, fidelity). :meth:`to_dict` is the
    JSON document that ``neurodeploy simulate --json`` and the demo write.
    """

    backend: str
    timesteps: int
    results: list[dict[str, Any]]
    seconds: dict[str, float]
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    fidelity: str = "all"  # which images the fidelity check ran on (neurodeploy.runtime.run_options.FIDELITY_MODES)
    threads: dict[str, Any] | None = None  # the run's ThreadPlan (neurodeploy.runtime.run_options), when it sized them
    resumed: list[str] = field(default_factory=list)  # names of results taken from a --results log, not run here

    @property
    def images(self) -> int:
        return len(self.results)

    @property
    def images_per_second(self) -> float | None:
        """Images simulated in this run (the resumed ones left out) per second of this run."""
        run = self.seconds.get("run", 0.0)
        here = self.images - len(self.resumed)
        return here / run if run > 0 and here else None

    def to_dict(self) -> dict[str, Any]:
        covers = f"the {plural(self.images - len(self.resumed), 'image')} simulated in this run"
        if self.resumed:
            covers += (f"; {plural(len(self.resumed), 'image')} resumed from --results (listed in 'resumed'; "
                       "seconds and images_per_second are this run's)")
        if self.skipped:
            covers += f"; {plural(len(self.skipped), 'image')} skipped (listed in 'skipped'): their output existed"
        return {
            "backend": self.backend,
            "timesteps": self.timesteps,
            "images": self.images,
            "covers": covers,
            "skipped": list(self.skipped),
            "resumed": list(self.resumed),
            "seconds": dict(self.seconds),
            "images_per_second": self.images_per_second,
            "fidelity_check": self.fidelity,
            "threads": self.threads,
            "results": list(self.results),
        }


def simulate(bundle: Bundle, items: Iterable[SimulationInput], backend: Backend = "lava",
             models: LavaModels = "neurodeploy", seed: int = 0, fidelity: str | bool = "all",
             on_result: Callable[[ImageResult], None] | None = None, keep_outputs: bool = True, *,
             keep_spikes: bool = False, progress: ProgressHook | None = None,
             device: str = "cpu", threads: int | None = None) -> SimulationReport:
    """Simulate every item: the inpainted images (``report.outputs[name]``) and the statistics.

    ``on_result`` sees each :class:`ImageResult` (image, spike counts, timings,
    fidelity) as soon as it is done; with ``keep_outputs=False`` the report
    keeps no images, so a long run holds one image at a time. ``keep_spikes``
    and ``progress``: see :class:`Simulator`. ``fidelity``: ``all``, ``first``
    or ``none`` (True, False: all, none); ``threads``: torch's and BLAS's
    threads during the run, by default sized for the backend
    (:mod:`neurodeploy.runtime.run_options`).
    """
    mode = fidelity_mode(fidelity)
    plan = plan_threads(backend, threads)
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    outputs: dict[str, np.ndarray] = {}
    with sized_threads(plan), Simulator(bundle, backend, models, seed, mode != "none", keep_spikes, progress,
                                        device, check_thread=plan.check_thread) as sim:
        for index, item in enumerate(items):
            result = sim.run(item, check=checked(mode, index))
            if on_result is not None:
                on_result(result)
            if keep_outputs:
                outputs[item.name] = result.output
            results.append(result.summary(backend))
        compile_seconds = sim.compile_seconds
    run_seconds = sum(r["seconds"]["total"] for r in results)
    return SimulationReport(backend, bundle.timesteps, results,
                            {"compile": compile_seconds, "run": run_seconds,
                             "total": time.perf_counter() - started}, outputs, fidelity=mode,
                            threads=plan.as_dict())


@contextlib.contextmanager
def deployed_inpainter(bundle: Any, backend: str = "reference", seed: int = 0, progress: ProgressHook | None = None
                       ) -> Iterator[Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    """The deployed SC-NN as an inpainting function, while the context lasts: ``bundle``
    simulated on ``backend`` (no fidelity check), whole image, tiles and all (``progress``: see
    :class:`Simulator`)."""
    with Simulator(bundle, backend, seed=seed, fidelity=False,  # type: ignore[arg-type]
                   progress=progress) as simulator:
        yield lambda image, mask: simulator.run(SimulationInput("image", image, mask)).output
