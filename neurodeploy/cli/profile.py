"""``neurodeploy profile``: counts and energy of a bundle's inference, and its deployment view."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich import box
from rich.table import Table

from neurodeploy.bundle.format import Bundle
from neurodeploy.cli.app import app, console, err_console
from neurodeploy.cli.inputs import (
    ClusterOption,
    DeviceOption,
    Job,
    ResultsOption,
    ThreadsOption,
    WorkersOption,
    check_scale,
    graph_input,
    image_items,
    plan_inputs,
    read_inputs,
)
from neurodeploy.cli.netx import profile_netx_file
from neurodeploy.cli.works import ImageWork, SampleWork
from neurodeploy.converters.netx_in import is_netx_file
from neurodeploy.cost.hw import load_profile
from neurodeploy.cost.profile import graph_view, select_profiles, summarize, summarize_graph
from neurodeploy.cost.report import write_report
from neurodeploy.errors import UserError
from neurodeploy.inpainter.evaluate import masked_input
from neurodeploy.inpainter.profile import inpainter_view
from neurodeploy.inpainter.profile import profile as run_profile
from neurodeploy.inpainter.simulator import ImageResult, SimulationInput
from neurodeploy.inpainter.sweep_results import read_sweep
from neurodeploy.io import atomic_path, check_output_file, check_output_folder
from neurodeploy.runtime.backends import backend_help
from neurodeploy.runtime.cluster import ItemProgress, run_items, sample_items
from neurodeploy.runtime.graph_run import read_input
from neurodeploy.runtime.run_options import plan_threads, sized_threads
from neurodeploy.text import plural


@app.command()
def profile(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory written by neurodeploy convert, or a Lava-DL "
                                                "netx file (.net).")],
    image: Annotated[Path | None, typer.Option(help="Inpainter bundle: an image, or a folder of images (counts "
                                                    "are averaged). netx file: the frame written into its input "
                                                    "layer's bias: a photo, a folder or a .npy.")] = None,
    input_path: Annotated[Path | None, typer.Option("--input", help="Graph bundle: X (N, T, *input shape) as "
                                                                    ".npy or .npz (counts are averaged).")] = None,
    mask: Annotated[Path | None, typer.Option(help="Mask image (white = missing) or a folder of masks.")] = None,
    random_mask: Annotated[int | None, typer.Option(help="Seed of a random mask to draw instead of --mask: "
                                                         "rectangles or strokes over 10-30% of the image.")] = None,
    hw: Annotated[str | None, typer.Option(help="Profiles (names or .toml paths), comma-separated (default: all).")]
    = None,
    host: Annotated[str, typer.Option(help="Host profile that runs the CNN stage.")] = "gpu",
    backend: Annotated[str, typer.Option(help=backend_help())] = "lava",
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the counts and energies as JSON.")] = None,
    report: Annotated[Path | None, typer.Option(help="Folder for PNG plots and report.html; also checks the run "
                                                     "against the float model and the reference backend and "
                                                     "shows the fidelity, the inpainted image and hole PSNR.")]
    = None,
    seed: Annotated[int, typer.Option(help="Seed of Poisson inputs and of the raster's neuron sample.")] = 0,
    device: DeviceOption = "cpu",
    cluster: ClusterOption = None,
    workers: WorkersOption = 2,
    results: ResultsOption = None,
    sweep: Annotated[Path | None, typer.Option(help="A sweep.json (neurodeploy sweep) to add to the report.")]
    = None,
    threads: ThreadsOption = None,
    steps: Annotated[int | None, typer.Option(help="netx file: Lava steps per frame (default: the file's "
                                                   "tSample, else 16).")] = None,
) -> None:
    """Count spikes, synaptic ops, neuron updates, host MACs and bridge bits; price them per hardware profile."""
    if is_netx_file(bundle):
        names = [n.strip() for n in hw.split(",") if n.strip()] if hw else None
        summary, spikes = profile_netx_file(bundle, image, input_path, names, host, backend, device, steps, threads,
                                            json_out, report, cluster is not None or results is not None)
        _finish(summary, spikes, json_out, report, seed, None)
        return
    graph = graph_input(image, input_path, backend)
    check_scale(backend, device, cluster, results)
    plan = plan_threads(backend, threads)
    large = cluster is not None or results is not None
    jobs = [] if graph else plan_inputs(image, mask, random_mask)  # type: ignore[arg-type]
    if json_out is not None:
        check_output_file(json_out, "JSON")
    if report is not None:
        check_output_folder(report)
    if sweep is not None and report is None:
        raise UserError("--sweep adds a section to the report", "pass `report=FOLDER` too")
    sweep_document = None
    if sweep is not None:
        sweep_document = read_sweep(sweep)
    names = [n.strip() for n in hw.split(",") if n.strip()] if hw else None
    select_profiles(names)  # a bad profile name fails before Lava starts
    load_profile(host)
    pictures: list[tuple[str, np.ndarray]] = []  # the report's images: the first photo's, when it is shown
    if large:
        with sized_threads(plan):
            summary, spikes = _profile_items(bundle, graph, input_path, jobs, random_mask, backend, device, seed,
                                             names, host, cluster, workers, results)
        summary["threads"] = plan.as_dict()
    elif graph:
        loaded = Bundle.load(bundle).require("graph")
        summary, spikes = run_profile(loaded, read_input(input_path, loaded.deployment),  # type: ignore[arg-type]
                                      backend=backend, hw=names, host=host, device=device,  # type: ignore[arg-type]
                                      threads=threads, fidelity=report is not None)
    else:
        loaded = Bundle.load(bundle).require("inpainter")
        shown = _FirstImage(read_inputs(jobs, random_mask))
        summary, spikes = run_profile(loaded, shown, backend=backend, hw=names, host=host,  # type: ignore[arg-type]
                                      seed=seed, device=device, threads=threads,  # type: ignore[arg-type]
                                      on_result=shown.keep, fidelity=report is not None)
        if report is not None:
            pictures = shown.pictures(backend, random_mask is not None, len(jobs))
    _finish(summary, spikes, json_out, report, seed, sweep_document, pictures)


def _finish(summary: dict[str, Any], spikes: Any, json_out: Path | None, report: Path | None, seed: int,
            sweep_document: Any, pictures: list[tuple[str, np.ndarray]] | None = None) -> None:
    """The tables, the JSON and the report of a profile."""
    _print_profile(summary)
    if json_out:
        with atomic_path(json_out) as tmp:
            tmp.write_text(json.dumps(summary, indent=2))
    if report:
        page = write_report(report, summary, spikes, seed=seed, sweep=sweep_document, pictures=pictures or [])
        console.print(f"report: {page}")


class _FirstImage:
    """The images to profile, passed through, keeping the first one and its inpainted output for the report."""

    def __init__(self, items: Iterator[SimulationInput]) -> None:
        self.items, self.first, self.output = items, None, None

    def __iter__(self) -> Iterator[SimulationInput]:
        for item in self.items:
            if self.first is None:
                self.first = item
            yield item

    def keep(self, result: ImageResult) -> None:
        if self.output is None:
            self.output = result.output

    def pictures(self, backend: str, drawn: bool, images: int) -> list[tuple[str, np.ndarray]]:
        """(caption, uint8 image): the masked input, the deployed network's output and the photo."""
        if self.first is None or self.output is None:
            return []
        which = f"{self.first.name}" + ("" if images == 1 else f", the first of {images} images")
        return [(f"masked input ({which})", masked_input(self.first.image, self.first.mask)),
                (f"inpainted: the deployment on {backend}", self.output),
                ("truth: the photo under the drawn hole" if drawn else
                 "the photo under the given mask (the truth where it is intact)", self.first.image)]


def _profile_items(bundle: Path, graph: bool, input_path: Path | None, jobs: list[Job], random_mask: int | None,
                   backend: str, device: str, seed: int, names: list[str] | None, host: str, cluster: str | None,
                   workers: int, results: Path | None) -> tuple[dict[str, Any], Any]:
    """``profile`` item by item (:func:`neurodeploy.runtime.cluster.run_items`): each image's or sample's counts, then
    the summary over all of them; the raster's spikes are the last item run here (zeros if all resumed)."""
    last: list[Any] = [np.zeros((1, 1, 1, 1), np.uint8)]
    work: Any
    if graph:
        loaded = Bundle.load(bundle).require("graph")
        x = read_input(input_path, loaded.deployment)  # type: ignore[arg-type]
        work, items = SampleWork(bundle, backend, "neurodeploy", device, profile=True), sample_items(x)
    else:
        Bundle.load(bundle).require("inpainter")
        work, items = ImageWork(bundle, backend, "neurodeploy", device, seed, profile=True), \
            image_items(jobs, random_mask)
    with ItemProgress(err_console) as progress:
        records = run_items(work, items, cluster=cluster, workers=workers, results=results,
                            on_item=lambda record, spikes: last.__setitem__(0, spikes), progress=progress)
    counts = [{k: v for k, v in r.items() if k not in ("id", "exact_vs_reference")} for r in records]
    if graph:
        summary = summarize_graph(counts, backend, names, host, int(x.shape[1]),
                                  all(r["exact_vs_reference"] for r in records))
        return graph_view(loaded.deployment, summary, names, host), last[0]
    return inpainter_view(Bundle.load(bundle), counts, summarize(counts, backend, names, host), names, host), last[0]


def _print_profile(summary: dict[str, Any]) -> None:
    """The counts and the energies as two tables that fit 80 columns, numbers never cut."""
    layers = summary["layers"]
    graph = summary.get("kind") == "graph"
    what = plural(summary["samples"], "sample") if graph else plural(summary["images"], "image")
    counts = Table(title=f"per inference ({what}, T = {int(layers[0]['timesteps'])} steps)", box=box.SIMPLE_HEAD)
    for col in ("chip layer", "spikes", "firing rate", "synaptic ops", "neuron updates"):
        counts.add_column(col, justify="right", no_wrap=True)
    for layer in layers:
        name = layer["name"] if len(layer["name"]) <= 18 else layer["name"][:17] + "…"
        if graph:
            name = f"{name} ({layer['kind'].replace('dense_rec', 'rec')})"
        counts.add_row(name, f"{layer['spikes']:.4g}", f"{layer['firing_rate']:.4f}",
                       f"{layer['synops']:.4g}", f"{layer['neuron_updates']:.4g}")
    console.print(counts)
    for layer in layers:
        if layer.get("bias_axon_spikes"):
            console.print(f"  {layer['name']}: bias axons {layer['bias_axon_spikes']:.4g} spikes, "
                          f"{layer['bias_axon_synops']:.4g} synaptic ops (in its synaptic ops)", highlight=False)
    stage = "host graph" if graph else "host CNN"
    console.print(f"{stage}: {summary['host_macs']:.4g} MACs; bridge: {summary['bridge_bits']:.4g} bits")
    for cut in summary.get("cuts", []):
        line = (f"  cut {cut['src']} -> {cut['dst']} ({cut['direction']}, {cut['payload']}): "
                f"{cut['events']:.4g} events, {cut['bits']:.4g} bits")
        console.print(line if len(line) <= 80 else line[:79] + "…", highlight=False, soft_wrap=True)
    host = summary["host_profile"]
    energy = Table(title=f"energy per inference in joules, {stage} on {host}", box=box.SIMPLE_HEAD)
    for col in ("profile", "chip", stage, "bridge", "total", "/ all-host" if graph else "/ all-CNN"):
        energy.add_column(col, justify="right", no_wrap=True)
    for name, e in summary["energy_j"].items():
        energy.add_row(name, f"{e['snn']:.3e}", f"{e['host']:.3e}", f"{e['bridge']:.3e}", f"{e['total']:.3e}",
                       f"{e['ratio_to_baseline']:.3f}")
    console.print(energy)
    for name, joules in summary["baseline_j"].items():
        note = " (the ratio's reference)" if name == host else ""
        whole = "all-host graph" if graph else "all-CNN network"
        console.print(f"{whole} on {name}: {joules:.3e} J{note}")
    _print_deployment(summary)


def _print_deployment(summary: dict[str, Any]) -> None:
    """Cores, chips, latency and the chip's dynamic and static energy per profile."""
    mapping, timing = summary.get("mapping") or {}, summary.get("latency_s") or {}
    if not mapping and not timing:
        return
    table = Table(title="deployment per profile (latency: busiest core)", box=box.SIMPLE_HEAD)
    for col in ("profile", "cores", "chips", "1 chip", "s / step", "s / infer.", "static J"):
        table.add_column(col, justify="right", no_wrap=True)
    short = {"cores_per_chip": "no", "fan_in_per_core": "no: fan-in", "fan_out_per_core": "no: fan-out",
             "synapse_bits_per_core": "no: memory", "neurons_per_core": "no: neurons",
             "synmem_words_per_core": "no: synapse memory", "memory_words_per_core": "no: memory"}
    for name, e in summary["energy_j"].items():
        m, t = mapping.get(name) or {}, timing.get(name) or {}
        fits = "n/a" if not m else "yes" if m["fits"] else short.get(m["limiting"], "no")
        table.add_row(name, str(m.get("cores", "n/a")), str(m.get("chips") or "n/a"), fits,
                      f"{t['per_step']:.2e}" if t else "n/a", f"{t['per_inference']:.2e}" if t else "n/a",
                      f"{e.get('snn_static', 0.0):.2e}")
    console.print(table)
    for name, e in summary["energy_j"].items():  # the ranges the measurements support (profile bands)
        t = timing.get(name) or {}
        parts = [f"{label} {lo:.2e}-{hi:.2e}" for label, band in
                 (("s / step (back to back)", t.get("streaming_per_step_band")),
                  ("dynamic J", e.get("snn_dynamic_band")), ("static J", e.get("snn_static_band"))) if band
                 for lo, hi in [band]]
        if parts:  # wrapped at the terminal's width
            console.print(f"{name}, as far as its measured bands reach: {'; '.join(parts)}", highlight=False)
    nb = summary.get("neurobench")
    if nb:
        ops = nb["synaptic_operations"]
        console.print(f"NeuroBench synaptic ops: {ops['Effective_ACs']:.4g} ACs, {ops['Effective_MACs']:.4g} MACs, "
                      f"{ops['Dense']:.4g} dense", highlight=False, soft_wrap=True)
        console.print(f"NeuroBench sparsity: activation {nb['activation_sparsity']:.4f}, "
                      f"connection {nb['connection_sparsity']:.4f}", highlight=False, soft_wrap=True)
