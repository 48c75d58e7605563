"""``neurodeploy convert``: a model, a NIR graph or a Norse module (FILE.py:FUNCTION) to a bundle, or its plan."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from neurodeploy.bundle.convert import plan_precision
from neurodeploy.chip.partition import HOST
from neurodeploy.chip.precision import DEFAULT_FIDELITY_TARGET, WEIGHT_MODES
from neurodeploy.cli.app import app, console, err_console
from neurodeploy.cli.netx import print_netx
from neurodeploy.converters.netx_in import is_netx_file
from neurodeploy.errors import UserError
from neurodeploy.inpainter.checkpoint import load_model
from neurodeploy.inpainter.conversion import convert as run_convert
from neurodeploy.inpainter.conversion import input_kind, refuse_options_for_other_inputs
from neurodeploy.inpainter.sd_placement import DEFAULT_DELTA_THRESHOLD, PLACEMENTS, plan_layers
from neurodeploy.ir.nir_reader import DOUBTFUL
from neurodeploy.ir.norse_reader import load_built, norse_graph


@app.command()
def convert(
    model: Annotated[Path, typer.Argument(help="Checkpoint (.pt), NIR graph (.nir), a Norse model as FILE.py:FUNCTION "
                                               "(a function that builds the module), or a Lava-DL netx file (.net: "
                                               "read, checked and shown; simulate and profile take it as is).")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Bundle directory (default: MODEL with .bundle).")]
    = None,
    force: Annotated[bool, typer.Option(help="Replace an existing bundle (never a file or another folder).")] = False,
    tile: Annotated[int, typer.Option(help="Checkpoint only: tile size (pixels) the netx network is built for.")]
    = 128,
    dt: Annotated[float | None, typer.Option(help="NIR or Norse input: the time step in seconds (default: the "
                                                  "graph's metadata, the Norse cells' dt).")] = None,
    state: Annotated[Path | None, typer.Option(help="Norse input: the state dict to load into the built "
                                                    "module (torch.save(model.state_dict()); read with "
                                                    "weights_only=True).")] = None,
    input_shape: Annotated[str | None, typer.Option(help="Norse input: one sample's input shape, e.g. 1,8,8 "
                                                         "(needed when the first layer is a Conv2d).")] = None,
    payload: Annotated[str, typer.Option(help="NIR input only: the graph's input is spikes (0/1 events) or "
                                              "graded (frames in [0, 1], 8-bit payloads).")] = "spikes",
    plan: Annotated[bool, typer.Option(help="Print where each node (layer) would run and why; write nothing.")]
    = False,
    chip: Annotated[str, typer.Option(help="Checkpoint only: what goes on the chip: 'spiking' (the LIF layers; "
                                           "the CNN on the host) or 'all' (every layer the chip runs: the CNN's "
                                           "ReLU convs as sigma-delta layers).")] = "spiking",
    delta_threshold: Annotated[float, typer.Option(help="Checkpoint with --chip all: a sigma-delta layer sends a "
                                                        "change of its activation only from this fraction of its "
                                                        "activation scale on (fidelity against traffic; default "
                                                        "measured in docs/BENCHMARKS.md).")]
    = DEFAULT_DELTA_THRESHOLD,
    host: Annotated[str | None, typer.Option(help="NIR input only: nodes to keep on the host, comma-separated.")]
    = None,
    tau_convention: Annotated[str, typer.Option(help="NIR input only: how tau is stored: auto, seconds (NIR), "
                                                     "norse-1.1 (dt times seconds) or rockpool-3.1.")] = "auto",
    calibrate: Annotated[Path | None, typer.Option(help="NIR input: samples X (N, T, *input) as .npy, the "
                                                        "format simulate --input reads; checkpoint: a folder of "
                                                        "photos (or one), cut into at most 64 seeded tiles with "
                                                        "seeded holes. Each chip layer's scale is chosen on them "
                                                        "to reproduce the float spikes (a checkpoint without it: "
                                                        "the builtin training photos probe each layer, searched "
                                                        "if below --fidelity-target).")]
    = None,
    rounding: Annotated[str | None, typer.Option(help="NIR input with --calibrate: after the scale, round each "
                                                      "weight to floor or ceil for the layer's outputs: local "
                                                      "(default), end_to_end, or nearest (the scale only).")]
    = None,
    weights: Annotated[str | None, typer.Option(help="NIR input: each chip layer's weight width: 'auto' (the cheapest "
                                              "of 8 bits and wide weights whose spike F1 on a probe reaches "
                                              "--fidelity-target), '8' or 'wide' (~15 bits, two synapses per "
                                              "connection: twice the synaptic operations; not for stock netx) "
                                              "everywhere. Default: auto.")] = None,
    fidelity_target: Annotated[float | None, typer.Option(help="The local spike F1 (the layer against its "
                                                        "float self, fed the deployed upstream, on the probe: "
                                                        "--calibrate samples, else seeded inputs; a checkpoint's: "
                                                        "the builtin training photos) each chip layer should "
                                                        "reach; below it, a NIR graph warns and a checkpoint's "
                                                        "layer scale is searched (0: static scales). Default: "
                                                        f"{DEFAULT_FIDELITY_TARGET}.")] = None,
    stock_netx: Annotated[bool, typer.Option(help="NIR input: files stock lava.lib.dl.netx loads: 8-bit weights "
                                                  "everywhere (prints their fidelity estimate).")] = False,
    wide_weights: Annotated[bool, typer.Option(help="NIR input: the same as --weights wide.")] = False,
) -> None:
    """Turn a trained model, a NIR graph or a Norse module into a bundle (netx files in Loihi fixed point + host
    parameters)."""

    if is_netx_file(model):
        print_netx(model)
        return
    if chip not in PLACEMENTS:
        raise UserError(f"unknown placement --chip {chip}", "pass --chip spiking (default) or --chip all")
    if weights is not None and weights not in WEIGHT_MODES:
        raise UserError(f"unknown --weights {weights}", f"pass --weights {' or '.join(WEIGHT_MODES)}")
    if wide_weights:
        weights = "wide"
    shape = _shape(input_shape)
    kind = input_kind(model)
    if chip != "spiking" and kind != "checkpoint":  # --plan too; convert() refuses it for the API
        raise UserError(f"--chip {chip} places a checkpoint's CNN layers; a graph (NIR or Norse) puts every node "
                        "the chip runs on the chip already",
                        "leave --chip out for a graph (--host keeps nodes on the host)")
    names = [n.strip() for n in (host or "").split(",") if n.strip()]
    refuse_options_for_other_inputs(model, tile=tile, delta_threshold=delta_threshold, tau_convention=tau_convention,
                                    input_shape=shape, dt=dt, host=names, payload=payload)  # --plan too
    widths = (payload, calibrate, weights, fidelity_target, stock_netx)
    if plan:
        if kind == "norse":
            _print_plan(model, host, dt, "seconds", *widths,
                        built=norse_graph(load_built(str(model), state), dt, shape))
        elif kind == "nir":
            _print_plan(model, host, dt, tau_convention, *widths)
        else:
            _print_inpainter_plan(model, chip)
        return
    target = out or model.with_suffix(".bundle")
    bundle = run_convert(model, target, force=force, tile=tile, dt=dt, host=names, payload=payload,
                         tau_convention=tau_convention, calibrate=calibrate, chip=chip,  # type: ignore[arg-type]
                         delta_threshold=delta_threshold, rounding=rounding, weights=weights,
                         fidelity_target=fidelity_target, stock_netx=stock_netx, state=state, input_shape=shape)
    _print_bundle(bundle)


def _shape(text: str | None) -> tuple[int, ...] | None:
    """``--input-shape 1,8,8`` as a tuple; anything else a UserError."""
    if text is None:
        return None
    try:
        shape = tuple(int(n) for n in text.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise UserError(f"--input-shape {text} is not a shape", "pass sizes separated by commas, e.g. 1,8,8")
    return shape


def _print_bundle(bundle: Any) -> None:
    """``convert``'s report: one row per chip layer, the warnings, where the bundle is."""
    manifest = bundle.typed_manifest
    table = Table(title=f"chip layers in Loihi fixed point ({manifest.summary})", box=box.SIMPLE_HEAD,
                  pad_edge=False)
    measured = manifest.fidelity is not None
    for col in ("seg", "layer", "kind", "input", "weights", "scale", "weight err²", "vThMant",
                "vth err") + (("local F1", "e2e F1") if measured else ()):
        table.add_column(col, justify="right")
    for segment in manifest.segments:
        if segment.neurons == "sigma_delta" or segment.input is None:  # host segments have neither input nor layers
            continue
        for layer in segment.layers:
            q = layer["quantization"]
            f = layer.get("fidelity") or {}
            table.add_row(str(segment.index), escape(layer["name"]), layer["kind"], segment.input.payload,
                          "wide" if q.get("synapses_per_connection", 1) == 2 else "8",
                          _scale(q["weight_scale"]), f"{q['weight_error']:.2e}", str(q["vth_mant"]),
                          f"{q.get('threshold_error', 0.0):.2%}",
                          *((_f1(f.get("local_spike_f1"), f.get("meets_target", True), 3),
                             _score(f.get("end_to_end_spike_f1"), 3)) if measured else ()))
            for warning in q["warnings"]:
                err_console.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False, soft_wrap=True)
    console.print(table)
    if measured:
        _print_fidelity_notes(manifest.fidelity)
    # sigma-delta layers have no "quantization" record (their own table below): only CUBA layers can be wide
    if any(layer.get("quantization", {}).get("synapses_per_connection", 1) == 2
           for segment in manifest.segments for layer in segment.layers or ()):
        console.print("wide weights: two synapses per connection (weights up to ±16319), twice the synaptic "
                      "operations; the toolkit's Lava process runs them, stock netx does not", highlight=False)
    sd = bundle.sigma_delta_segment
    if sd is not None:
        table = Table(title=f"sigma-delta layers (delta threshold {sd['delta_threshold']:.4g} of each activation "
                            f"scale; {'stock netx loads them' if sd['stock_netx'] else 'neurodeploy process only'})",
                      box=box.SIMPLE_HEAD)
        for col in ("layer", "runs as", "output", "weight exp", "vth", "activation scale", "why"):
            table.add_column(col, justify="right")
        for layer in sd["layers"]:
            table.add_row(layer["name"], layer["runs_as"], "x".join(map(str, layer["output_shape"])),
                          str(layer["weight_exp"]), str(layer["vth"]), f"{layer['act_scale']:.4g}",
                          escape(layer["reason"]))
        console.print(table)
    calibration = manifest.calibration
    if calibration:
        shape = "x".join(map(str, calibration["samples"]["shape"]))
        searched = calibration["samples"].get("searched")
        table = Table(title=f"calibrated on {escape(calibration['samples']['file'])} ({shape}"
                            f"{'' if searched is None else '; searched: ' + escape(searched)}): spike F1 vs the "
                            "float layer", box=box.SIMPLE_HEAD)
        for col in ("layer", "static scale", "F1 static", "scale", "F1", "rounding"):
            table.add_column(col, justify="right")
        for row in calibration["layers"]:
            table.add_row(escape(row["name"]), f"{row['static_scale']:.4g}", _score(row["spike_f1_static"]),
                          f"{row['scale']:.4g}", _score(row["spike_f1"]), row.get("rounding", "nearest"))
        console.print(table)
    if manifest.kind == "graph":
        _print_time_convention(manifest.tau_convention, manifest.tau_convention_reason, manifest.dt)
    console.print(f"bundle written to {bundle.path} ({', '.join(sorted(manifest.files))}, manifest.json)")


def _print_fidelity_notes(fidelity: Any) -> None:
    """Under the table: what the F1 was measured on; with --stock-netx, the 8-bit estimate; on stderr one
    warning line per layer below the target."""
    probe = fidelity["probe"]
    console.print(f"spike F1 on {escape(probe['source'])} ({'x'.join(map(str, probe['shape']))}): local = the "
                  "layer against its float self fed the deployed upstream, end-to-end = against the float graph; "
                  f"weights {fidelity['weights']}, target local F1 >= {fidelity['target_local_spike_f1']:g}",
                  highlight=False)
    if fidelity["stock_netx"]:
        console.print("--stock-netx: 8-bit weights on every layer (stock lava.lib.dl.netx loads the files); the "
                      "local F1 column is their estimate", highlight=False)
    for warning in fidelity["warnings"]:
        err_console.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False, soft_wrap=True)


def _f1(value: float | None, met: bool, places: int = 4) -> str:
    """A layer's local F1, in red below the target."""
    return _score(value, places) if met else f"[red]{_score(value, places)}[/red]"


def _scale(value: float) -> str:
    """A weight scale in at most 9 characters: 4 significant digits, whole numbers from 10,000 on."""
    return f"{value:.4g}" if value < 1e4 else f"{value:.0f}"


def _score(value: float | None, places: int = 4) -> str:
    """A score to ``places`` places; None (no spikes on either side) as a dash."""
    return "-" if value is None else f"{value:.{places}f}"


def _print_time_convention(convention: str | None, reason: str | None, dt: float | None) -> None:
    """Which convention the graph's time constants were read in, and why; a guess of Norse 1.1's is a warning,
    since a graph of another library converted with a wrong --dt is read that way and then never fires."""
    step = "no time step" if dt is None else f"dt = {dt:g} s"
    console.print(f"time constants read as {convention} ({step}; {reason or 'given'})", highlight=False)
    if convention == "norse-1.1" and DOUBTFUL in (reason or ""):
        err_console.print("[yellow]warning:[/yellow] the graph was read as Norse 1.1's export because some dt/tau "
                          "exceeds 1, but its neurons are not written as Norse's: --dt is likely wrong, and its "
                          "neurons would barely fire (snnTorch's time constants are for --dt 1e-4); convert "
                          "again with the dt it was exported with, or pass --tau-convention seconds",
                          highlight=False, soft_wrap=True)


def _print_plan(graph: Path, host: str | None, dt: float | None, tau_convention: str, payload: str,
                calibrate: Path | None, weights: str | None, fidelity_target: float | None, stock_netx: bool,
                built: Any = None) -> None:
    """``convert --plan``: the placement table, each chip layer's weight width and spike F1 on the probe (what
    convert would write), and a one-line summary (``built``: the NIR graph a front end made of ``graph``)."""

    names = [n.strip() for n in (host or "").split(",") if n.strip()]
    result, probe, chosen = plan_precision(
        graph if built is None else built, host=names, dt=dt if built is None else built.metadata["dt"],
        tau_convention=tau_convention, payload=payload, calibrate=calibrate,  # type: ignore[arg-type]
        weights=weights or "auto", stock_netx=stock_netx,
        fidelity_target=DEFAULT_FIDELITY_TARGET if fidelity_target is None else fidelity_target)
    table = Table(title=f"placement of {graph.name}", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("node", "type", "shape", "place", "reason"):
        table.add_column(col, overflow="fold")
    for row in result.placement:
        place = f"[yellow]{row.place}[/yellow]" if row.place == HOST else f"[green]{row.place}[/green]"
        shape = "x".join(str(d) for d in row.shape)
        table.add_row(escape(row.node), row.kind, shape, place, escape(row.reason))
    console.print(table)
    _print_time_convention(result.graph.tau_convention, result.graph.tau_convention_reason, result.graph.dt)
    if chosen.layers:
        table = Table(title=f"chip layers' weights (--weights {chosen.mode}): spike F1 on the probe",
                      box=box.SIMPLE_HEAD)
        for col in ("layer", "weights", "local F1", "local F1 8-bit", "local F1 wide", "end-to-end F1"):
            table.add_column(col, justify="right")
        for r in chosen.layers:
            table.add_row(escape(r.name), "wide" if r.width == "wide" else "8-bit", _f1(r.local_f1, r.meets_target),
                          _score(r.local_f1_8) if "8" in r.tried else "not run",
                          _score(r.local_f1_wide) if "wide" in r.tried else "not run", _score(r.end_to_end_f1))
        console.print(table)
        where = f"calibration samples {calibrate.name}" if calibrate is not None else "seeded probe inputs"
        console.print(f"probe: {where} ({'x'.join(map(str, probe.shape))}); target local F1 >= {chosen.target:g}",
                      highlight=False)
        for warning in chosen.warnings:
            err_console.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False, soft_wrap=True)
    console.print(f"{result.summary()}; nothing written", highlight=False)


def _print_inpainter_plan(checkpoint: Path, chip: str) -> None:
    """``convert --plan`` of a checkpoint: each layer's place under ``--chip`` and why."""
    model, _ = load_model(checkpoint)
    table = Table(title=f"placement of {checkpoint.name} (--chip {chip})", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("layer", "computes", "place", "runs as", "reason"):
        table.add_column(col, overflow="fold")
    rows = plan_layers(model.config, chip)  # type: ignore[arg-type]
    for row in rows:
        place = f"[yellow]{row.place}[/yellow]" if row.place == HOST else f"[green]{row.place}[/green]"
        table.add_row(row.name, escape(row.what), place, row.runs_as, escape(row.reason))
    console.print(table)
    on_chip = sum(row.place != HOST for row in rows)
    console.print(f"{on_chip} of {len(rows)} layers on the chip; nothing written", highlight=False)
