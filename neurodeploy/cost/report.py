"""PNG plots of a profile and one self-contained ``report.html`` that embeds them.

Plots: spikes per time step, firing rate per channel, a raster of sampled
neurons (a seeded sample), the energy per inference of every profile,
split into spiking stage, host CNN and bridge, beside the all-CNN baseline,
and (where the profile maps the network, :mod:`neurodeploy.cost.mapping`) the
chip layers mapped to cores with their utilisation; a table puts latency and
energy (dynamic and static) side by side per profile.
Under the report's first paragraph, the output and its fidelity
(:mod:`neurodeploy.cost.report_output`): the inpainted image beside the masked
input and the photo, hole PSNR, spike precision, recall and F1 per chip layer,
bit-exactness with the reference backend.
The HTML carries the plots as base64 data URIs: one file, no network. A
small inline script counts the plots that decoded and writes the count into
the page title, which the test of the report reads back from headless Chromium.
"""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from neurodeploy.cost.report_output import picture_png, quality_section
from neurodeploy.io import atomic_path
from neurodeploy.text import plural


def _figure() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    _figure().close(fig)
    return buffer.getvalue()


def plot_spikes_per_step(per_step: list[float]) -> bytes:
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(np.arange(1, len(per_step) + 1), per_step, color="#3b6ea5")
    ax.set(xlabel="time step", ylabel="spikes", title="Spikes per time step (spiking layer)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    return _png(fig)


def plot_rate_per_channel(rates: list[float]) -> bytes:
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(np.arange(len(rates)), rates, color="#d1762b")
    ax.set(xlabel="channel", ylabel="spikes / neuron / step", title="Firing rate per channel")
    return _png(fig)


def plot_raster(spikes: np.ndarray, neurons: int = 120, seed: int = 0) -> bytes:
    """Spike times of ``neurons`` neurons drawn (seeded) among those that fire at least once."""
    plt = _figure()
    flat = np.asarray(spikes).reshape(spikes.shape[0], -1)
    active = np.flatnonzero(flat.any(axis=0))
    pool = active if active.size else np.arange(flat.shape[1])
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(pool, size=min(neurons, pool.size), replace=False))
    times, rows = np.nonzero(flat[:, chosen])
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.scatter(times + 1, rows, marker="|", s=40, color="black")
    ax.set(xlabel="time step", ylabel="sampled neuron", xlim=(0.5, flat.shape[0] + 0.5),
           title=f"Raster of {len(chosen)} sampled firing neurons")
    ax.xaxis.get_major_locator().set_params(integer=True)
    return _png(fig)


ENERGY_PARTS = {"snn": ("chip", "#3b6ea5"), "host": ("host CNN", "#d1762b"), "bridge": ("bridge", "#6a9f58"),
                "total": ("total", "#555555")}


def energy_figure(energy: dict[str, dict[str, float]], baselines: dict[str, float], host: str) -> Any:
    """Per neuromorphic profile, one bar per part (chip, host CNN, bridge) and the total, side by side.

    Side by side, not stacked: on a log axis a stacked bridge slice, a
    thousandth of the total, would be a line no one sees. Every profile's
    host CNN runs on ``host``, so the all-CNN network on ``host`` is the
    reference line; all-CNN networks on other hosts are drawn dotted and
    labelled as such, since the bars do not use those hosts.
    """
    plt = _figure()
    names = list(energy)
    fig, ax = plt.subplots(figsize=(8, 3.8))
    width = 0.8 / len(ENERGY_PARTS)
    for k, (part, (label, color)) in enumerate(ENERGY_PARTS.items()):
        xs = np.arange(len(names)) + (k - (len(ENERGY_PARTS) - 1) / 2) * width
        ax.bar(xs, [energy[n][part] for n in names], width, label=label, color=color)
    for i, (name, joules) in enumerate(baselines.items()):
        same = name == host
        ax.axhline(joules, linestyle="--" if same else ":", color=f"C{i + 3}",
                   label=f"all-CNN on {name}" + ("" if same else f" (bars use {host})"))
    ax.set_xticks(np.arange(len(names)), names)
    ax.set_yscale("log")
    smallest = min((v for n in names for v in (energy[n][part] for part in ENERGY_PARTS) if v > 0), default=1.0)
    ax.set_ylim(bottom=smallest / 10)  # the smallest bar a decade tall, not a sliver at the axis
    ax.set(ylabel="J per inference", title=f"Energy per inference: chip profiles, host CNN on {host}")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def plot_mapping(mapping: dict[str, dict[str, Any]]) -> bytes:
    """Per profile, one horizontal bar per chip layer: its cores, coloured by the neurons it uses of them."""
    plt = _figure()
    names = list(mapping)
    fig, axes = plt.subplots(len(names), 1, figsize=(7, 1.2 + 1.1 * len(names) * max(
        (len(m["layers"]) for m in mapping.values()), default=1) ** 0.5), squeeze=False)
    cmap = plt.get_cmap("viridis")
    for ax, name in zip(axes[:, 0], names, strict=True):
        m = mapping[name]
        layers = m["layers"]
        ys = np.arange(len(layers))
        cores = [max(layer["cores"], 0) for layer in layers]
        ax.barh(ys, cores, color=[cmap(layer["neuron_utilisation"]) for layer in layers])
        for y, layer in zip(ys, layers, strict=True):
            text = (f" {layer['cores']} cores, {100 * layer['neuron_utilisation']:.0f}% neurons, "
                    f"{100 * layer['synapse_utilisation']:.0f}% synapse memory" if not layer["limiting"]
                    else f" does not map: {layer['limiting']}")
            ax.text(0, y, text, va="center", fontsize=7, color="black")
        ax.set_yticks(ys, [layer["name"] for layer in layers], fontsize=7)
        verdict = "fits one chip" if m["fits"] else f"does NOT fit: {m['limiting']} ({m['why']})"
        ax.set_title(f"{name}: {m['cores']} cores, {m['chips']} chip(s); {verdict}", fontsize=8)
        ax.axvline(m["cores_per_chip"], linestyle="--", color="#b22222", linewidth=1)
        ax.text(m["cores_per_chip"], len(layers) - 0.5, " one chip", color="#b22222", fontsize=7, va="top")
        ax.set_xlim(0, max(max(cores, default=1), m["cores_per_chip"], 1) * 1.6)
        ax.set_xlabel("cores", fontsize=7)
    fig.tight_layout()
    return _png(fig)


def plot_energy(energy: dict[str, dict[str, float]], baselines: dict[str, float], host: str) -> bytes:
    return _png(energy_figure(energy, baselines, host))


def write_report(directory: str | os.PathLike[str], summary: dict[str, Any], spikes: np.ndarray,
                 seed: int = 0, sweep: dict[str, Any] | None = None,
                 pictures: list[tuple[str, np.ndarray]] | None = None) -> Path:
    """Write the four PNGs and ``report.html`` into ``directory``; returns the HTML's path.

    ``sweep``: a ``sweep.json`` document (:func:`neurodeploy.inpainter.sweep_results.read_sweep`), shown as a section of
    its own. ``pictures``: (caption, uint8 (H, W, 3) image), shown side by side at the top (the masked
    input, the inpainted output, the truth: :func:`quality_section`, with the summary's ``psnr_hole`` and
    ``fidelity`` where it has them); the output is also written full size as ``inpainted.png``.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    layer = summary["layers"][0]
    pngs = {
        "spikes_per_step": plot_spikes_per_step(layer["spikes_per_step"]),
        "firing_rate_per_channel": plot_rate_per_channel(layer["firing_rate_per_channel"]),
        "raster": plot_raster(spikes, seed=seed),
        "energy": plot_energy(summary["energy_j"], summary["baseline_j"], summary["host_profile"]),
    }
    if summary.get("mapping"):
        pngs["mapping"] = plot_mapping(summary["mapping"])
    for name, data in pngs.items():
        with atomic_path(out / f"{name}.png") as tmp:
            tmp.write_bytes(data)
    if pictures and len(pictures) > 1:
        with atomic_path(out / "inpainted.png") as tmp:
            tmp.write_bytes(picture_png(pictures[1][1], max_side=None))
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{e['snn']:.3e}</td><td>{e['host']:.3e}</td>"
        f"<td>{e['bridge']:.3e}</td><td>{e['total']:.3e}</td><td>{e['all_cnn_baseline']:.3e}</td>"
        f"<td>{e['ratio_to_baseline']:.3f}</td></tr>"
        for name, e in summary["energy_j"].items())
    latency = summary.get("latency_s") or {}
    mapping = summary.get("mapping") or {}

    def cell(value: Any, fmt: str = ".3e") -> str:
        return "n/a" if value is None else format(value, fmt)

    side = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{cell((mapping.get(name) or {}).get('cores'), 'd')}</td>"
        f"<td>{cell((mapping.get(name) or {}).get('chips'), 'd')}</td>"
        f"<td>{html.escape(str((mapping.get(name) or {}).get('fits', 'n/a')))}</td>"
        f"<td>{cell((latency.get(name) or {}).get('per_step'))}</td>"
        f"<td>{cell((latency.get(name) or {}).get('per_inference'))}</td>"
        f"<td>{cell(e.get('snn_dynamic'))}</td><td>{cell(e.get('snn_static'))}</td><td>{cell(e['snn'])}</td></tr>"
        for name, e in summary["energy_j"].items())
    images = "".join(
        f'<figure><img alt="{name}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'
        f"<figcaption>{name.replace('_', ' ')}</figcaption></figure>" for name, data in pngs.items())
    body = f"""<h1>neurodeploy profile</h1>
<p>{html.escape(plural(int(summary.get("images", 1)), "image"))}, T = {int(layer["timesteps"])} steps, backend
{html.escape(str(summary.get("backend", "")))}. Per inference: {layer["spikes"]:.4g} spikes,
{layer["synops"]:.4g} synaptic operations, {layer["neuron_updates"]:.4g} neuron updates,
{summary["host_macs"]:.4g} host MACs, {summary["bridge_bits"]:.4g} bridge bits.</p>
{quality_section(summary, pictures or [])}
<h2>Energy per inference</h2>
<table><tr><th>profile</th><th>SNN J</th><th>host J</th><th>bridge J</th><th>total J</th>
<th>all-CNN J</th><th>ratio</th></tr>{rows}</table>
<h2>Deployment: cores, latency and chip energy per profile</h2>
<table><tr><th>profile</th><th>cores</th><th>chips</th><th>fits one chip</th><th>s per step</th>
<th>s per inference</th><th>chip dynamic J</th><th>chip static J</th><th>chip J</th></tr>{side}</table>
<p>Latency: the busiest core per time step (neurodeploy.cost.latency); static energy = static power x chips x
latency. Sources of every figure: <code>neurodeploy hw show PROFILE</code>.</p>
{images}
"""

    if sweep is not None:
        body += sweep_section(sweep, plot_sweep(sweep))
    page = _page("neurodeploy profile", body)
    target = out / "report.html"
    with atomic_path(target) as tmp:
        tmp.write_text(page)
    return target


def _page(title: str, body: str) -> str:
    """A self-contained HTML page; a small script writes how many of its plots decoded into the title."""
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #bbb;padding:4px 8px;text-align:right}} figure{{display:inline-block;margin:1em}}
tr.collapsed td:first-child{{color:#b22222}}</style>
</head><body>
{body}
<script>
window.addEventListener("load", function () {{
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) {{ if (imgs[i].complete && imgs[i].naturalWidth > 0) ok++; }}
  document.title = "plots loaded: " + ok + "/" + imgs.length;
}});
</script>
</body></html>
"""


# -- the sweep of `neurodeploy sweep`: energy against hole PSNR, one point per variant -----------------

def sweep_energy(variant: dict[str, Any], profile: str) -> tuple[float, float] | None:
    """(mean, spread) of a variant's total energy on ``profile`` (chip part + host part + bridge), or None."""
    energy = variant.get("energy_j", {}).get(profile)
    return None if energy is None else (energy["total"], energy.get("total_std", 0.0))


def sweep_figure(sweep: dict[str, Any]) -> Any:
    """Energy per inference (the plot profile's chip + the host profile) against hole PSNR: one point per
    variant with its spread over the seeds as error bars, the classical methods as vertical lines."""
    plt = _figure()
    protocol = sweep["protocol"]
    profile, host = protocol.get("plot_profile", "loihi2"), protocol.get("host_profile", "gpu")
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    missing = []
    for i, (name, v) in enumerate(sweep["variants"].items()):
        for run in _collapsed_runs(v):  # drawn apart, a cross each, outside the variant's mean
            joules = _run_energy(run, profile)
            if joules is not None:
                ax.plot(run["psnr_hole"], joules, "x", color=f"C{i}", markersize=9,
                        label=f"{v.get('label', name)} seed {run['seed']}: COLLAPSED, not in the mean")
        energy = sweep_energy(v, profile)
        if energy is None or v["psnr_hole"] is None:
            missing.append(v.get("label", name) + (" (every seed collapsed)" if v["psnr_hole"] is None else ""))
            continue
        ax.errorbar(v["psnr_hole"], energy[0], xerr=v["psnr_hole_std"], yerr=energy[1], fmt="o", capsize=4,
                    color=f"C{i}", label=f"{v.get('label', name)} ({seeds_in_means(v)})")
    fill = sweep.get("hole_fill_alone", {}).get("method")
    for j, (name, scores) in enumerate(sweep["classical"].items()):
        kind = "the variants' hole fill alone, no network" if name == fill else "classical"
        ax.axvline(scores["psnr_hole"], linestyle=["--", ":", "-.", (0, (5, 1, 1, 1, 1, 1))][j % 4],
                   color=f"C{j + 5}", linewidth=1.2, label=f"{name} {scores['psnr_hole']:.2f} dB ({kind})")
    if missing:
        ax.text(0.0, -0.2, "energy not measured: " + ", ".join(missing), transform=ax.transAxes, fontsize=7)
    ax.margins(x=0.05, y=0.2)
    ax.set(xlabel="hole PSNR (dB), evaluation protocol, float model",
           ylabel="J per inference",
           title=f"Energy ({profile} chip + {host} host; twin: all on {host}) vs quality\n"
                 f"{training_budget(sweep)} x {protocol['samples_per_epoch']} crops of {protocol['crop']} px, "
                 f"seeds {', '.join(map(str, protocol['seeds']))}")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def plot_sweep(sweep: dict[str, Any]) -> bytes:
    return _png(sweep_figure(sweep))


def seeds_in_means(variant: dict[str, Any]) -> str:
    """``2 seeds``, or ``1 of 2 seeds`` where collapsed seeds are left out of the means."""
    seeds = variant.get("seeds", [])
    kept = variant.get("seeds_in_means", seeds)
    return plural(len(seeds), "seed") if len(kept) == len(seeds) else f"{len(kept)} of {plural(len(seeds), 'seed')}"


def sweep_notes(variant: dict[str, Any]) -> list[str]:
    """What a reader of a variant's means must know: seeds left out (collapsed) and figures over fewer seeds."""
    notes = [variant.get("means_note"), variant.get("fidelity", {}).get("note") if variant["spiking_layers"] else None]
    if variant["spiking_layers"]:
        notes.append(variant.get("energy_note"))
    return [note for note in notes if note]


def _collapsed_runs(variant: dict[str, Any]) -> list[dict[str, Any]]:
    collapsed = {c["seed"] for c in variant.get("collapsed", [])}
    return [run for run in variant.get("per_seed", []) if run["seed"] in collapsed]


def _run_energy(run: dict[str, Any], profile: str) -> float | None:
    """One run's total energy on ``profile``: its deployment's, or the twin's host energy."""
    energy = run.get("deployment", {}).get("energy_j", run.get("energy_j", {})).get(profile)
    return None if energy is None else float(energy["total"])


def _number(value: Any, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def sweep_section(sweep: dict[str, Any], png: bytes, curves_png: bytes | None = None) -> str:
    """The sweep's table (one row per variant, then the classical methods) and its plot, as HTML."""
    protocol = sweep["protocol"]
    profile = protocol.get("plot_profile", "loihi2")
    rows = []
    for name, v in sweep["variants"].items():
        energy = sweep_energy(v, profile)
        fid = v.get("fidelity", {}).get("spike_f1")
        f1_seeds = v.get("fidelity", {}).get("spike_f1_seeds")
        f1_over = "" if f1_seeds is None or fid is None or len(f1_seeds) == len(v.get("seeds_in_means", f1_seeds)) \
            else f" (seed {', '.join(map(str, f1_seeds))} only)"
        psnr = "every seed collapsed" if v["psnr_hole"] is None else f"{v['psnr_hole']:.2f} ± {v['psnr_hole_std']:.2f}"
        flag = ' class="collapsed"' if v.get("collapsed") else ""
        rows.append(
            f"<tr{flag}><td>{html.escape(v.get('label', name))}</td><td>{v['spiking_layers']}</td>"
            f"<td>{html.escape(seeds_in_means(v))}</td>"
            f"<td>{psnr}</td><td>{_number(v['ssim'], '.4f')}</td>"
            f"<td>{_number(fid, '.4%')}{f1_over}</td><td>{_number(v.get('spikes'), '.4g')}</td>"
            f"<td>{'not measured' if energy is None else f'{energy[0]:.3e} ± {energy[1]:.1e}'}</td>"
            f"<td>{_number(v.get('energy_vs_twin', {}).get(profile), '.3f')}</td>"
            f"<td>{_number(v.get('energy_all_on_chip_j', {}).get(profile, {}).get('total'), '.3e')}</td>"
            f"<td>{_number(v.get('energy_all_on_chip_vs_twin', {}).get(profile), '.3f')}</td></tr>")
    baselines = dict(sweep["classical"])
    if "hole_fill_alone" in sweep:
        baselines = {"hole fill alone (no network)": sweep["hole_fill_alone"], **baselines}
    rows += [f"<tr><td>{html.escape(name)}</td><td></td><td></td><td>{s['psnr_hole']:.2f}</td><td>{s['ssim']:.4f}</td>"
             f"<td></td><td></td><td></td><td></td><td></td><td></td></tr>" for name, s in baselines.items()]
    notes = "".join(f"<li><b>{html.escape(v.get('label', name))}</b>: {html.escape(note)}</li>"
                    for name, v in sweep["variants"].items() for note in sweep_notes(v))
    notes = f'<ul class="notes">{notes}</ul>' if notes else ""
    image = base64.b64encode(png).decode()
    curves = ""
    if curves_png is not None:
        encoded = base64.b64encode(curves_png).decode()
        curves = (f'<figure><img alt="learning curves" src="data:image/png;base64,{encoded}">'
                  "<figcaption>learning curves: train and validation MSE per epoch</figcaption></figure>")
    return f"""<h2>Sweep: the SC-NN against its all-CNN twin and deeper spiking variants</h2>
<p>{html.escape(training_budget(sweep))}, seeds {html.escape(str(protocol['seeds']))}, data
{html.escape(str(protocol['data']))}, trained on {html.escape(str(protocol['device']))}; hole PSNR and SSIM of the
float model on {int(protocol['evaluation']['images'])} evaluation images (mean ± spread over the seeds); spike
F1 of the deployed network ({html.escape(str(protocol['backend']))}) with the float model; energy per
inference on {html.escape(profile)} with the host part on {html.escape(str(protocol['host_profile']))}, and
with every conv the chip runs on it (<code>convert --chip all</code>: the CNN as sigma-delta layers).</p>
<p>A collapsed run (its output constant in the holes, its validation MSE unchanged by training, or its chip
silent: <code>neurodeploy.inpainter.sweep_results.collapse_of</code>) is left out of the means and named below.</p>
<table><tr><th>variant</th><th>spiking layers</th><th>seeds in the means</th><th>hole PSNR dB</th><th>SSIM</th>
<th>spike F1</th><th>spikes</th><th>energy J</th><th>/ twin</th><th>all on chip J</th><th>/ twin</th></tr>
{''.join(rows)}</table>
{notes}
<figure><img alt="sweep" src="data:image/png;base64,{image}"><figcaption>sweep</figcaption></figure>
{curves}
"""


def write_sweep_report(directory: str | os.PathLike[str], sweep: dict[str, Any]) -> Path:
    """Write ``sweep.png`` and ``report.html`` (the sweep's section alone) into ``directory``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    png, curves = plot_sweep(sweep), plot_learning_curves(sweep)
    with atomic_path(out / "sweep.png") as tmp:
        tmp.write_bytes(png)
    with atomic_path(out / "learning_curves.png") as tmp:
        tmp.write_bytes(curves)
    target = out / "report.html"
    with atomic_path(target) as tmp:
        tmp.write_text(_page("neurodeploy sweep", sweep_section(sweep, png, curves)))
    return target


def plot_learning_curves(sweep: dict[str, Any]) -> bytes:
    """One panel per variant: train (dashed) and validation (solid) MSE per epoch, one colour per seed, log
    scale; a cross marks where each model stopped (by the convergence rule, or at its last epoch)."""
    plt = _figure()
    variants = list(sweep["variants"].items())
    columns = min(2, len(variants))
    rows = -(-len(variants) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 3.2 * rows), squeeze=False, sharey=True)
    for ax, (name, v) in zip(axes.flat, variants, strict=False):  # spare panels stay empty
        collapsed = {c["seed"] for c in v.get("collapsed", [])}
        for run in v.get("per_seed", []):
            val, train = run.get("val_mse_curve", []), run.get("train_mse_curve", [])
            epochs = np.arange(1, len(val) + 1)
            colour = f"C{run['seed']}"
            flag = " (COLLAPSED)" if run["seed"] in collapsed else ""
            ax.plot(epochs, val, color=colour, label=f"seed {run['seed']} validation{flag}")
            ax.plot(epochs, train, color=colour, linestyle="--", linewidth=0.9, label=f"seed {run['seed']} train")
            if val:
                stop = "converged" if run.get("converged") else "stopped"
                ax.plot(epochs[-1], val[-1], "x", color=colour, markersize=8, label=f"seed {run['seed']} {stop}")
        ax.set_yscale("log")
        ax.set(title=v.get("label", name), xlabel="epoch", ylabel="MSE (whole image)")
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(variants):]:
        ax.set_visible(False)
    rule = sweep["protocol"].get("convergence")
    fig.suptitle("learning curves" + (f" (rule: {rule['rule']})" if rule else ""), fontsize=7, wrap=True)
    fig.tight_layout()
    return _png(fig)


def training_budget(sweep: dict[str, Any]) -> str:
    """How long the sweep's models trained, in words: ``10 epochs``, or ``converged in 12-40 epochs``."""
    epochs = sweep["protocol"]["epochs"]
    if isinstance(epochs, int):
        return f"{epochs} epochs"
    trained = [run["epochs_trained"] for v in sweep["variants"].values() for run in v.get("per_seed", [])]
    if not trained:
        return "until converged"
    span = f"{min(trained)}" if min(trained) == max(trained) else f"{min(trained)}-{max(trained)}"
    return f"{'converged' if all(_all_converged(sweep)) else 'trained'} in {span} epochs"


def _all_converged(sweep: dict[str, Any]) -> list[bool]:
    return [bool(run.get("converged")) for v in sweep["variants"].values() for run in v.get("per_seed", [])]
