"""``neurodeploy convert``: a model or a NIR graph to a bundle, or its plan."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from neurodeploy.chip.partition import HOST, plan
from neurodeploy.cli.app import app, console, err_console
from neurodeploy.inpainter.conversion import convert as run_convert


@app.command()
def convert(
    model: Annotated[Path, typer.Argument(help="Checkpoint (.pt) or NIR graph (.nir).")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Bundle directory (default: MODEL with .bundle).")]
    = None,
    force: Annotated[bool, typer.Option(help="Replace an existing bundle (never a file or another folder).")] = False,
    tile: Annotated[int, typer.Option(help="Checkpoint only: tile size (pixels) the netx network is built for.")]
    = 128,
    dt: Annotated[float | None, typer.Option(help="NIR input only: the time step in seconds (default: the "
                                                  "graph's metadata).")] = None,
    payload: Annotated[str, typer.Option(help="NIR input only: the graph's input is spikes (0/1 events) or "
                                              "graded (frames in [0, 1], 8-bit payloads).")] = "spikes",
    plan: Annotated[bool, typer.Option(help="NIR input only: print where each node would run; write nothing.")]
    = False,
    host: Annotated[str | None, typer.Option(help="NIR input only: nodes to keep on the host, comma-separated.")]
    = None,
    tau_convention: Annotated[str, typer.Option(help="NIR input only: how tau is stored: auto, seconds (NIR), "
                                                     "norse-1.1 (dt times seconds) or rockpool-3.1.")] = "auto",
    calibrate: Annotated[Path | None, typer.Option(help="NIR input: samples X (N, T, *input) as .npy, the "
                                                        "format simulate --input reads; checkpoint: a folder of "
                                                        "photos (or one), cut into at most 64 seeded tiles with "
                                                        "seeded holes. Each chip layer's scale is chosen on them "
                                                        "to reproduce the float spikes.")]
    = None,
) -> None:
    """Turn a trained model or a NIR graph into a bundle (netx files in Loihi fixed point + host parameters)."""

    if plan:
        _print_plan(model, host, dt, tau_convention)
        return
    target = out or model.with_suffix(".bundle")
    names = [n.strip() for n in (host or "").split(",") if n.strip()]
    bundle = run_convert(model, target, force=force, tile=tile, dt=dt, host=names, payload=payload,
                         tau_convention=tau_convention, calibrate=calibrate)  # type: ignore[arg-type]
    _print_bundle(bundle)


def _print_bundle(bundle: Any) -> None:
    """``convert``'s report: one row per chip layer, the warnings, where the bundle is."""
    table = Table(title=f"chip layers in Loihi fixed point ({bundle.manifest['summary']})", box=box.SIMPLE_HEAD)
    for col in ("segment", "layer", "kind", "input", "weight scale", "weight rel. sq. error", "vThMant",
                "threshold error"):
        table.add_column(col, justify="right")
    for k, segment in enumerate(bundle.manifest["segments"]):
        for layer in segment.get("layers", []):
            q = layer["quantization"]
            table.add_row(str(k), escape(layer["name"]), layer["kind"], segment["input"]["payload"],
                          f"{q['weight_scale']:.4g}", f"{q['weight_error']:.2e}", str(q["vth_mant"]),
                          f"{q.get('threshold_error', 0.0):.3%}")
            for warning in q["warnings"]:
                err_console.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False)
    console.print(table)
    calibration = bundle.manifest.get("calibration")
    if calibration:
        shape = "x".join(map(str, calibration["samples"]["shape"]))
        table = Table(title=f"calibrated on {escape(calibration['samples']['file'])} ({shape}): spike F1 vs the "
                            "float layer", box=box.SIMPLE_HEAD)
        for col in ("layer", "static scale", "F1 static", "scale", "F1"):
            table.add_column(col, justify="right")
        for row in calibration["layers"]:
            table.add_row(escape(row["name"]), f"{row['static_scale']:.4g}", _score(row["spike_f1_static"]),
                          f"{row['scale']:.4g}", _score(row["spike_f1"]))
        console.print(table)
    console.print(f"bundle written to {bundle.path} ({', '.join(sorted(bundle.manifest['files']))}, manifest.json)")


def _score(value: float | None) -> str:
    """A score to 4 places; None (no spikes on either side) as a dash."""
    return "-" if value is None else f"{value:.4f}"


def _print_plan(graph: Path, host: str | None, dt: float | None, tau_convention: str = "auto") -> None:
    """``convert --plan``: the placement table and a one-line summary."""

    names = [n.strip() for n in (host or "").split(",") if n.strip()]
    result = plan(graph, host=names, dt=dt, tau_convention=tau_convention)  # type: ignore[arg-type]
    table = Table(title=f"placement of {graph.name}", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("node", "type", "shape", "place", "reason"):
        table.add_column(col, overflow="fold")
    for row in result.placement:
        place = f"[yellow]{row.place}[/yellow]" if row.place == HOST else f"[green]{row.place}[/green]"
        shape = "x".join(str(d) for d in row.shape)
        table.add_row(escape(row.node), row.kind, shape, place, escape(row.reason))
    console.print(table)
    console.print(f"{result.summary()}; nothing written", highlight=False)
