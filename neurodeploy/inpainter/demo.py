"""``neurodeploy demo``: the whole journey on the embedded default.

1. the shipped checkpoint (``examples/models/scnn_inpaint.pt``; ``--train``
   trains a small one from scratch instead),
2. ``convert`` it to a bundle,
3. ``simulate`` one whole held-out builtin photo (512x512) with a seeded
   large hole (10-30% of the photo, :data:`~neurodeploy.inpainter.data.PHOTO_MASKS`):
   the spiking stage in Lava, through the spike bridge, the CNN on the host,
4. OpenCV Telea on the same image and hole, for comparison,
5. ``profile`` the same inference: counts, energy, report,
6. with ``chip="all"`` (``neurodeploy demo --chip all``), the same photo once more with the
   CNN on the chip too (``convert --chip all``: sigma-delta layers), and the three placements
   side by side: all on the GPU (the twin), hybrid, all on the chip.

The headline compares the deployment with its all-CNN twin (the same six
layers as a CNN, all on the GPU): the energy of both is measured here (the
twin's is ``profile``'s ``baseline_j``, the same network's MACs all on the
host); the quality cost comes from the shipped sweep
(``examples/sweep/sweep.json``, :mod:`neurodeploy.inpainter.sweep`), where the twin
was trained the same way, since training it here would take minutes; where
that sweep's network starts from a hole fill, the fill alone is quoted too,
so that the network is not credited with the fill's quality.

Everything lands in one folder: ``comparison.png`` (masked input, SC-NN,
Telea, ground truth), ``bundle/``, ``simulate.json``, ``profile.json`` and
``report/report.html`` with its plots.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neurodeploy.bundle.format import Bundle
from neurodeploy.cost.profile import DEFAULT_HOST, summarize
from neurodeploy.cost.report import write_report
from neurodeploy.errors import UserError
from neurodeploy.inpainter.checkpoint import bundle_config
from neurodeploy.inpainter.conversion import convert
from neurodeploy.inpainter.data import PHOTO_MASKS, builtin_dir, random_mask
from neurodeploy.inpainter.evaluate import inpaint_telea, masked_input, score
from neurodeploy.inpainter.model import ModelConfig
from neurodeploy.inpainter.profile import count_result, hole_psnr, image_quality, inpainter_view
from neurodeploy.inpainter.simulation import SimulationReport
from neurodeploy.inpainter.simulator import SimulationInput, Simulator
from neurodeploy.inpainter.sweep_results import read_sweep, twin_quality
from neurodeploy.inpainter.train import TrainConfig
from neurodeploy.inpainter.train import train as run_training
from neurodeploy.io import atomic_path, read_image, write_png

ROOT = Path(__file__).resolve().parents[2]  # the repository: neurodeploy/inpainter/demo.py
SHIPPED_MODEL = ROOT / "examples" / "models" / "scnn_inpaint.pt"
DEMO_IMAGE = "astronaut.png"  # a validation photo: never seen in training
DEMO_MASK_SEED = 7
SHIPPED_SWEEP = ROOT / "examples" / "sweep" / "sweep.json"


@dataclass(frozen=True)
class DemoSummary:
    """The lines printed at the end (each under 80 columns), and where everything is."""

    psnr_scnn: float
    psnr_telea: float
    fidelity: dict[str, Any]
    spikes: int
    energy_loihi2: float
    energy_gpu_cnn: float
    report: Path
    twin_quality: dict[str, Any] | None = None  # from a sweep: neurodeploy.inpainter.sweep_results.twin_quality
    all_on_chip: dict[str, Any] | None = None  # chip="all": energy_loihi2, latency_s, psnr_hole, psnr_vs_float, chips
    hybrid_latency_s: float | None = None
    gpu_latency_s: float | None = None

    def placement_lines(self) -> list[str]:
        """The three placements side by side (``chip="all"`` only)."""
        a = self.all_on_chip
        if a is None:
            return []

        def seconds(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.2e} s"

        return ["placements of this inference (energy: Loihi 2 chip + GPU host; latency):",
                f"  all on the GPU (twin) {self.energy_gpu_cnn:.3e} J  {seconds(self.gpu_latency_s)}",
                f"  hybrid (LIF on chip)  {self.energy_loihi2:.3e} J  {seconds(self.hybrid_latency_s)}  "
                f"hole {self.psnr_scnn:.2f} dB",
                f"  all on the chip       {a['energy_loihi2']:.3e} J  {seconds(a['latency_s'])}  "
                f"hole {a['psnr_hole']:.2f} dB, vs float {a['psnr_vs_float']:.1f} dB, {a['chips']} chips"]

    def twin_lines(self) -> list[str]:
        """The headline: what the deployment saves and costs against its all-CNN twin."""
        change = 1 - self.energy_loihi2 / self.energy_gpu_cnn
        saves = f"saves {change:.1%}" if change >= 0 else f"costs {-change:.1%} more"
        lines = ["against its all-CNN twin (the same six layers as a CNN, all on the GPU):",
                 f"  energy {self.energy_loihi2:.3e} J (Loihi 2 + GPU host) vs {self.energy_gpu_cnn:.3e} J: {saves}"]
        q = self.twin_quality
        if q is None:
            return [*lines, "  quality cost: not measured here (`neurodeploy sweep` measures it)"]
        fill = "" if q.get("fill_psnr_hole") is None else f"; hole fill alone {q['fill_psnr_hole']:.2f} dB"
        return [*lines,
                f"  quality, both trained alike ({q['budget']}, {q['seeds']} seeds):",
                f"  hole PSNR {q['psnr_hole']:.2f} vs twin {q['twin_psnr_hole']:.2f} dB "
                f"({q['psnr_vs_twin']:+.2f} dB){fill}",
                f"  (sweep: {q['source']})"]

    def lines(self) -> list[str]:
        f = self.fidelity
        exact = "yes" if f["exact_vs_reference"] else "NO"
        return [
            *self.twin_lines(),
            f"hole PSNR: SC-NN (Lava) {self.psnr_scnn:.2f} dB, OpenCV Telea {self.psnr_telea:.2f} dB",
            f"Lava vs float model: output PSNR {f['psnr_vs_float']:.2f} dB, spike F1 {f['spike_f1']:.4f}",
            f"  (spike precision {f['spike_precision']:.4f}, recall {f['spike_recall']:.4f})",
            f"bit-exact with the reference backend: {exact}",
            f"spikes: {self.spikes:,} in the spiking layer for this inference",
            *self.placement_lines(),
            f"report: {self.report}",
        ]


def demo_input(size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The held-out photo (whole, or a centre crop of ``size``) and its seeded hole, 10-30% of it."""

    image = read_image(builtin_dir() / DEMO_IMAGE)
    if size is not None:
        top, left = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
        image = np.ascontiguousarray(image[top:top + size, left:left + size])
    mask = random_mask(np.random.default_rng(DEMO_MASK_SEED), image.shape[0], image.shape[1], PHOTO_MASKS)
    return image, mask


def side_by_side(panels: list[tuple[str, np.ndarray]]) -> np.ndarray:
    """Images in a row, each under its caption."""
    from PIL import Image, ImageDraw

    h, w = panels[0][1].shape[:2]
    band, gap = 28, 8
    canvas = Image.new("RGB", (len(panels) * w + (len(panels) - 1) * gap, h + band), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (caption, image) in enumerate(panels):
        x = i * (w + gap)
        canvas.paste(Image.fromarray(image), (x, band))
        draw.text((x + 4, 8), caption, fill="black")
    return np.asarray(canvas)


def run_demo(out_dir: str | Path = "demo-out", model: str | Path | None = None, train: bool = False,
             size: int | None = None, backend: str = "lava",
             stage: Callable[[str], Any] | None = None, chip: str = "spiking") -> DemoSummary:
    """Run every step; ``stage(name)`` returns a context manager shown while a step runs. ``chip="all"``:
    also the CNN on the chip (step 6 of the module docstring)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    show = stage or (lambda name: contextlib.nullcontext())
    if train:
        model_path = out / "model.pt"
        with show("train a small SC-NN from scratch (builtin photos)"):
            run_training(TrainConfig(out=str(model_path), epochs=3, samples_per_epoch=64, device="cpu", force=True),
                         ModelConfig(), progress=False)
    else:
        model_path = Path(model) if model is not None else SHIPPED_MODEL
        if not model_path.is_file():
            raise UserError(f"checkpoint {model_path} not found", "pass `model` or `train=True`")
    with show("convert the checkpoint to a Lava-DL bundle"):
        bundle = convert(model_path, out / "bundle", force=True)
        bundle = Bundle.load(out / "bundle")
    image, mask = demo_input(size)
    with show(f"simulate {DEMO_IMAGE} in Lava ({backend}) + host CNN"):
        started = time.perf_counter()
        with Simulator(bundle, backend) as sim:  # type: ignore[arg-type]
            result = sim.run(SimulationInput(Path(DEMO_IMAGE).stem, image, mask))
            compile_s = sim.compile_seconds
        simulated_s = time.perf_counter() - started
    with show("OpenCV Telea on the same hole"):
        telea = inpaint_telea(image, mask)
    sweep = read_sweep(SHIPPED_SWEEP) if SHIPPED_SWEEP.is_file() else None
    with show("profile spikes, synaptic operations and energy"):
        counts = [count_result(bundle, result)]
        summary = inpainter_view(bundle, counts, summarize(counts, backend), None, DEFAULT_HOST)
        summary.update(image_quality([{"name": result.name, "psnr_hole": hole_psnr(image, result.output, mask),
                                       **result.fidelity}]))
        report = write_report(out / "report", summary, result.raster, sweep=sweep,
                              pictures=[("masked input", masked_input(image, mask)),
                                        (f"inpainted: the deployment on {backend}", result.output),
                                        ("truth: the photo under the drawn hole", image)])
    write_png(out / "comparison.png", side_by_side([("masked input", masked_input(image, mask)),
                                                    ("SC-NN (Lava + host CNN)", result.output),
                                                    ("OpenCV Telea", telea), ("ground truth", image)]))
    scnn_scores, telea_scores = score(image, result.output, mask), score(image, telea, mask)
    # the same schema as `neurodeploy simulate --json`, with the demo's hole PSNRs in its one result
    simulate_json = SimulationReport(
        backend, bundle.timesteps,
        [{**result.summary(backend), "hole_psnr": {"scnn": scnn_scores.psnr_hole, "telea": telea_scores.psnr_hole}}],
        {"compile": compile_s, "run": result.seconds["total"], "total": simulated_s}).to_dict()
    for name, document in (("simulate.json", simulate_json), ("profile.json", summary)):
        with atomic_path(out / name) as tmp:
            tmp.write_text(json.dumps(document, indent=2))
    loihi2 = summary["energy_j"]["loihi2"]
    on_chip = None
    if chip == "all":
        with show(f"the CNN on the chip too (convert --chip all), {DEMO_IMAGE} again"):
            everything = convert(model_path, out / "bundle-all", force=True, chip="all")
            with Simulator(everything, backend) as sim:  # type: ignore[arg-type]
                moved = sim.run(SimulationInput(Path(DEMO_IMAGE).stem, image, mask))
            counted = [count_result(everything, moved)]
            all_summary = inpainter_view(everything, counted, summarize(counted, backend), None, DEFAULT_HOST)
            write_png(out / "all-on-chip.png", moved.output)
            with atomic_path(out / "profile-all-on-chip.json") as tmp:
                tmp.write_text(json.dumps(all_summary, indent=2))
        on_chip = {"energy_loihi2": all_summary["energy_j"]["loihi2"]["total"],
                   "latency_s": all_summary["energy_j"]["loihi2"]["latency_s"],
                   "psnr_hole": score(image, moved.output, mask).psnr_hole,
                   "psnr_vs_float": moved.fidelity["psnr_vs_float"],
                   "chips": (all_summary["mapping"].get("loihi2") or {}).get("chips")}
    return DemoSummary(scnn_scores.psnr_hole, telea_scores.psnr_hole, result.fidelity,
                       result.total_spikes, loihi2["total"], summary["baseline_j"]["gpu"], report,
                       None if sweep is None else twin_quality(sweep, bundle_config(bundle).spiking_layers,
                                                               SHIPPED_SWEEP.relative_to(ROOT).as_posix()),
                       on_chip, loihi2["latency_s"], loihi2["all_cnn_latency_s"])


class StageProgress:
    """A progress bar over the demo's stages; each finished stage prints its wall time."""

    def __init__(self, console: Any, stages: int) -> None:
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.console = console
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 TextColumn("{task.completed}/{task.total} stages"), TimeElapsedColumn(),
                                 console=console, transient=True)
        self.task = self.progress.add_task("demo", total=stages)

    def __enter__(self) -> StageProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, name: str) -> Any:
        @contextlib.contextmanager
        def stage() -> Any:
            started = time.perf_counter()
            self.progress.update(self.task, description=name)
            yield
            self.progress.advance(self.task)
            self.console.print(f"[green]done[/green] {name} ({time.perf_counter() - started:.1f} s)")

        return stage()
