"""``neurodeploy simulate``: an inpainter bundle over images, or a graph bundle over samples."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from neurodeploy.bundle.format import Bundle
from neurodeploy.cli.app import app, console, err_console
from neurodeploy.cli.inputs import (
    ClusterOption,
    DeviceOption,
    FidelityOption,
    ResultsOption,
    ThreadsOption,
    WorkersOption,
    check_scale,
    graph_input,
    image_items,
    plan_inputs,
    read_inputs,
    share,
)
from neurodeploy.cli.netx import simulate_netx
from neurodeploy.cli.works import ImageWork, SampleWork
from neurodeploy.converters.netx_in import is_netx_file
from neurodeploy.errors import UserError
from neurodeploy.inpainter.simulation import SimulationReport, TileProgress
from neurodeploy.inpainter.simulation import simulate as run_simulation
from neurodeploy.io import PngWriter, atomic_path, check_output_file, check_output_folder, write_png
from neurodeploy.runtime.backends import backend_help
from neurodeploy.runtime.cluster import ItemProgress, run_items, sample_items
from neurodeploy.runtime.graph_run import compare_scores, fidelity, read_compare, read_input, report, run_graph
from neurodeploy.runtime.run_options import fidelity_mode, plan_threads, sized_threads
from neurodeploy.text import plural


@app.command()
def simulate(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory written by neurodeploy convert, or a Lava-DL "
                                                "netx file (.net).")],
    image: Annotated[Path | None, typer.Option(help="Inpainter bundle: an image, or a folder of images (the "
                                                    "network compiles once). netx file: the frame written into "
                                                    "its input layer's bias: a photo, a folder or a .npy.")]
    = None,
    input_path: Annotated[Path | None, typer.Option("--input", help="Graph bundle: X (N, T, *input shape) as "
                                                                    ".npy, or .npz with key 'input'.")] = None,
    compare: Annotated[Path | None, typer.Option(help="Graph bundle: the library's own output Y (N, T, *output "
                                                      "shape) on --input, .npy; scored in fidelity.vs_compare.")]
    = None,
    mask: Annotated[Path | None, typer.Option(help="Mask image (white = missing) or a folder of same-named masks.")]
    = None,
    random_mask: Annotated[int | None, typer.Option(help="Seed of a random mask to draw instead of --mask: "
                                                         "rectangles or strokes over 10-30% of the image.")] = None,
    backend: Annotated[str, typer.Option(help=backend_help())] = "lava",
    lava_models: Annotated[str, typer.Option(help="neurodeploy (fast, bit-exact) or stock lava-dl models.")]
    = "neurodeploy",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output PNG (a folder for a folder of images).")]
    = None,
    spikes: Annotated[Path | None, typer.Option(help="Save input frames and output spikes as .npz.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write timings, spikes and fidelity as JSON.")]
    = None,
    skip_existing: Annotated[bool, typer.Option(help="Skip images whose output PNG already exists.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of Poisson input spikes.")] = 0,
    device: DeviceOption = "cpu",
    cluster: ClusterOption = None,
    workers: WorkersOption = 2,
    results: ResultsOption = None,
    threads: ThreadsOption = None,
    fidelity: FidelityOption = "all",
    steps: Annotated[int | None, typer.Option(help="netx file: Lava steps per frame (default: the file's "
                                                   "tSample, else 16).")] = None,
) -> None:
    """Run a bundle: inpaint images (--image), or run a graph on X (--input), chip part in Lava, rest on the host."""
    if is_netx_file(bundle):
        fidelity_mode(fidelity)
        extra = [name for name, value in (("--mask", mask), ("--random-mask", random_mask), ("--compare", compare),
                                          ("--spikes", spikes)) if value is not None]
        if extra:
            raise UserError(f"{extra[0]} is not an option of a netx network's simulation",
                            "drop it: -o OUT.npz holds every layer's spikes")
        simulate_netx(bundle, image, input_path, out, json_out, backend, device, steps, threads, fidelity,
                      cluster is not None or results is not None)
        return
    graph = graph_input(image, input_path, backend, lava_models)
    check_scale(backend, device, cluster, results)
    large = cluster is not None or results is not None
    if workers < 1:
        raise UserError(f"--workers {workers}: a cluster needs at least one worker", "pass --workers 2")
    mode, plan = fidelity_mode(fidelity), plan_threads(backend, threads)
    if mode == "first" and large:
        raise UserError("--fidelity first checks the first item of one process; it does not combine with "
                        "--cluster or --results", "pass --fidelity all or --fidelity none")
    scale = (cluster, workers, results) if large else None
    if graph:
        assert input_path is not None
        with sized_threads(plan):
            _simulate_graph(bundle, input_path, out, json_out, backend, lava_models, device, scale, compare, mode,
                            plan.as_dict())
        return
    if compare is not None:
        raise UserError("--compare scores a graph bundle's output", "pass it with --input, not --image")
    assert image is not None
    report = _simulate_images(bundle, image, mask, random_mask, out, spikes, json_out, skip_existing, seed, backend,
                              lava_models, device, scale, threads, mode, plan)
    _print_image_report(report, json_out)


def _simulate_images(bundle: Path, image: Path, mask: Path | None, random_mask: int | None, out: Path | None,
                     spikes: Path | None, json_out: Path | None, skip_existing: bool, seed: int, backend: str,
                     lava_models: str, device: str, scale: tuple[str | None, int, Path | None] | None,
                     threads: int | None, mode: str, plan: Any) -> SimulationReport:
    """``simulate --image``: every planned image inpainted and written, in this process or over the cluster."""
    large = scale is not None
    jobs = plan_inputs(image, mask, random_mask)
    folder = image.is_dir()
    target = out or (Path(f"{image.name}-inpainted") if folder else image.with_name(f"{image.stem}-inpainted.png"))

    def output_path(name: str) -> Path:
        return target / f"{name}.png" if folder else target

    if folder:
        check_output_folder(target)
    for job in jobs:
        check_output_file(output_path(job.name), "PNG image", ".png")
    if spikes is not None:
        if large:
            raise UserError("--spikes keeps every image's spikes in this process; it does not combine with "
                            "--cluster or --results", "simulate the images you want spikes of without them")
        check_output_file(spikes, "npz archive", ".npz")
    if json_out is not None:
        check_output_file(json_out, "JSON")
    loaded = Bundle.load(bundle).require("inpainter")
    skipped = [job.name for job in jobs if skip_existing and output_path(job.name).exists()]
    skipped_names = set(skipped)
    pending = [job for job in jobs if job.name not in skipped_names]
    if skipped:
        console.print(f"--skip-existing: {plural(len(skipped), 'image')} skipped (output exists), "
                      f"{len(pending)} to simulate")
    saved: dict[str, np.ndarray] = {}

    def write(result: Any, png: PngWriter) -> None:
        png.write(output_path(result.name), result.output)
        if spikes is not None:
            saved[f"{result.name}/frames"] = result.frames
            saved[f"{result.name}/spikes"] = result.spikes.numpy()
        console.print(f"{result.name}: {result.seconds['total']:.2f} s, "
                      f"{result.total_spikes:,} spikes -> {output_path(result.name)}")
        for note in result.fidelity.get("warnings", []):
            err_console.print(f"warning: {result.name}: {note}", highlight=False, soft_wrap=True)

    if pending and scale is not None:
        cluster, workers, results = scale
        with sized_threads(plan):
            report = _simulate_items(bundle, image_items(pending, random_mask), output_path, backend, lava_models,
                                     device, seed, cluster, workers, results, loaded.timesteps, mode == "all")
    elif pending:
        # --spikes keeps whole-image arrays, as asked
        with TileProgress(err_console) as progress, PngWriter() as png:
            report = run_simulation(loaded, read_inputs(pending, random_mask), backend=backend,  # type: ignore
                                    models=lava_models, seed=seed,  # type: ignore[arg-type]
                                    on_result=lambda result: write(result, png),
                                    keep_outputs=False, keep_spikes=spikes is not None, progress=progress,
                                    device=device, fidelity=mode, threads=threads)
    else:
        report = SimulationReport(backend, loaded.timesteps, [], {"compile": 0.0, "run": 0.0, "total": 0.0})
        console.print("nothing to simulate: every output exists")
    report.skipped, report.fidelity, report.threads = skipped, mode, plan.as_dict()
    if spikes is not None:
        with atomic_path(spikes) as tmp, open(tmp, "wb") as handle:
            np.savez_compressed(handle, **saved)
    return report


def _print_image_report(report: SimulationReport, json_out: Path | None) -> None:
    """The fidelity of one image, or the throughput of many; the report as JSON if asked."""
    if report.images == 1 and report.results[0]["fidelity"]:
        f = report.results[0]["fidelity"]
        console.print("fidelity of the run against the float model:")
        console.print(f"  output image PSNR {f['psnr_vs_float']:.2f} dB, spike F1 {share(f['spike_f1'])} "
                      f"(precision {share(f['spike_precision'])}, recall {share(f['spike_recall'])})")
        where = " (the tile at the image's centre, re-run)" if f.get("exact_vs_reference_tiles") else ""
        console.print(f"  spikes bit-exact with the reference backend: {_yes(f['exact_vs_reference'])}{where}")
        for layer in f.get("sigma_delta", []):  # placement "all": the CNN's sigma-delta layers
            console.print(f"  {layer['name']} (sigma-delta): {layer['messages']:,} graded messages, "
                          f"{share(layer['fraction_sent'])} of neurons x steps; activation error "
                          f"{share(layer['relative_activation_error'])} vs the float layer")
    elif report.images_per_second:
        console.print(f"{plural(report.images, 'image')}, compiled once in {report.seconds['compile']:.2f} s, "
                      f"{report.images_per_second:.2f} images/s")
    if json_out:
        with atomic_path(json_out) as tmp:
            tmp.write_text(json.dumps(report.to_dict(), indent=2))
        console.print(f"JSON ({report.to_dict()['covers']}): {json_out}")


def _simulate_items(bundle: Path, items: list[tuple[str, Any]], output_path: Any, backend: str, lava_models: str,
                    device: str, seed: int, cluster: str | None, workers: int, results: Path | None,
                    timesteps: int, fidelity: bool = True) -> Any:
    """Images as items (:func:`neurodeploy.runtime.cluster.run_items`), in this process or on Ray, each written as
    it finishes; the report over every item (those resumed from --results too)."""

    def write(record: dict[str, Any], output: Any) -> None:
        write_png(output_path(record["id"]), output)
        console.print(f"{record['id']}: {record['seconds']['total']:.2f} s, {record['spikes']['total']:,} spikes "
                      f"-> {output_path(record['id'])}")

    started = time.perf_counter()
    with ItemProgress(err_console) as progress:
        records = run_items(ImageWork(bundle, backend, lava_models, device, seed, fidelity), items, cluster=cluster,
                            workers=workers, results=results, on_item=write, progress=progress)
    summaries = [{k: v for k, v in r.items() if k != "id"} for r in records]
    return SimulationReport(backend, timesteps, summaries,
                            {"compile": 0.0, "run": sum(r["seconds"]["total"] for r in summaries),
                             "total": time.perf_counter() - started})


def _simulate_graph(bundle: Path, input_path: Path, out: Path | None, json_out: Path | None, backend: str,
                    lava_models: str, device: str = "cpu", large: tuple[Any, ...] | None = None,
                    compare: Path | None = None, mode: str = "all", threads: dict[str, Any] | None = None) -> None:
    """``simulate --input``: a graph bundle on X; OUT.npz gets ``output``, the JSON timings and fidelity (of
    every sample, the first one or none: ``mode``; with ``--compare Y.npy``, the output against Y under
    ``fidelity["vs_compare"]``) and the threads."""
    import warnings
    target = out or input_path.with_name(f"{input_path.stem}-output.npz")
    check_output_file(target, "npz archive", ".npz")
    if json_out is not None:
        check_output_file(json_out, "JSON")
    loaded = Bundle.load(bundle).require("graph")
    x = read_input(input_path, loaded.deployment)
    y = None if compare is None else read_compare(compare, loaded.deployment, x)
    if large is not None:
        _simulate_samples(bundle, x, target, json_out, backend, lava_models, device, *large, compare=y,
                          check=mode == "all", threads=threads)
        return
    checked = {"all": len(x), "first": 1, "none": 0}[mode]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        run = run_graph(loaded.deployment, x, backend=backend, models=lava_models, device=device,
                        check=True if mode == "all" else checked)
        fid = fidelity(loaded.deployment, x[:checked], run.head(checked)) if checked else {}
    for warning in caught:  # host values clipped at a cut, a silent layer: one line each, on stderr
        err_console.print(f"warning: {warning.message}", highlight=False, soft_wrap=True)
    if y is not None:
        fid["vs_compare"] = compare_scores(run.output, y)
    with atomic_path(target) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, output=run.output)
    console.print(f"{plural(x.shape[0], 'sample')} of {x.shape[1]} steps on {backend} in "
                  f"{run.seconds['total']:.2f} s -> {target}", highlight=False, soft_wrap=True)
    if fid:
        _print_graph_fidelity(fid, checked, len(x))
    if y is not None:
        _print_compare(fid["vs_compare"])
    if json_out is not None:
        with atomic_path(json_out) as tmp:
            tmp.write_text(json.dumps({**report(loaded, x, run, fid), "fidelity_check": mode, "threads": threads},
                                      indent=2))
        console.print(f"JSON: {json_out}")


def _print_graph_fidelity(fid: dict[str, Any], checked: int, samples: int) -> None:
    """The graph fidelity line of ``simulate --input``: spike scores, output agreement, bit-exactness."""
    of = "" if checked == samples else f" (the first {plural(checked, 'sample')})"
    console.print(f"  vs the float graph{of}: spike F1 {share(fid['spike_f1'])} (precision "
                  f"{share(fid['spike_precision'])}, recall {share(fid['spike_recall'])}), output argmax "
                  f"agreement {share(fid['output_agreement_vs_float'])} of "
                  f"{fid['output_samples'] - fid['output_ties']} untied samples; bit-exact with the reference: "
                  f"{_yes(fid['exact_vs_reference'])}",
                  highlight=False, soft_wrap=True)


def _simulate_samples(bundle: Path, x: Any, target: Path, json_out: Path | None, backend: str, lava_models: str,
                      device: str, cluster: str | None, workers: int, results: Path | None,
                      compare: Any = None, check: bool = True, threads: dict[str, Any] | None = None) -> None:
    """``simulate --input`` sample by sample (:func:`neurodeploy.runtime.cluster.run_items`): OUT.npz gets ``output``
    in input order, the JSON each sample's record (and ``fidelity.vs_compare`` against ``compare``)."""
    with ItemProgress(err_console) as progress:
        records = run_items(SampleWork(bundle, backend, lava_models, device, check=check), sample_items(x),
                            cluster=cluster, workers=workers, results=results, progress=progress)
    output = np.stack([np.asarray(r["output"], dtype=np.float64) for r in records])
    with atomic_path(target) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, output=output)
    exact = all(r["exact_vs_reference"] for r in records)
    console.print(f"{plural(x.shape[0], 'sample')} of {x.shape[1]} steps on {backend} -> {target}; bit-exact "
                  f"with the reference: {_yes(exact)}", highlight=False, soft_wrap=True)
    vs_compare = None if compare is None else compare_scores(output, compare)
    if vs_compare is not None:
        _print_compare(vs_compare)
    if json_out is not None:
        with atomic_path(json_out) as tmp:
            tmp.write_text(json.dumps({"bundle": str(bundle), "backend": backend, "samples": int(x.shape[0]),
                                       "exact_vs_reference": exact,
                                       **({} if vs_compare is None else {"fidelity": {"vs_compare": vs_compare}}),
                                       "fidelity_check": "all" if check else "none", "threads": threads,
                                       "samples_run": [{k: v for k, v in r.items() if k != "output"}
                                                       for r in records]}, indent=2))
        console.print(f"JSON: {json_out}")


def _print_compare(scores: dict[str, Any]) -> None:
    """One line: the deployed output against --compare's Y."""
    spikes = "" if "spike_f1" not in scores else f"spike F1 {share(scores['spike_f1'])}, "
    console.print(f"  against --compare: {spikes}output argmax agreement "
                  f"{share(scores['output_agreement_vs_float'])} of "
                  f"{scores['output_samples'] - scores['output_ties']} untied samples", highlight=False,
                  soft_wrap=True)


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"
