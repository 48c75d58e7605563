"""PNG plots of a profile and one self-contained ``report.html`` that embeds them.

Plots: spikes per time step, firing rate per channel, a raster of sampled
neurons (a seeded sample), the energy per inference of every profile,
split into spiking stage, host CNN and bridge, beside the all-CNN baseline,
and (where the profile maps the network, :mod:`neurodeploy.mapping`) the
chip layers mapped to cores with their utilisation; a table puts latency and
energy (dynamic and static) side by side per profile.
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

from neurodeploy.io import atomic_path
from neurodeploy.text import plural

PLOTS = ("spikes_per_step", "firing_rate_per_channel", "raster", "energy")


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
                 seed: int = 0) -> Path:
    """Write the four PNGs and ``report.html`` into ``directory``; returns the HTML's path."""
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
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>neurodeploy profile</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #bbb;padding:4px 8px;text-align:right}} figure{{display:inline-block;margin:1em}}</style>
</head><body>
<h1>neurodeploy profile</h1>
<p>{html.escape(plural(int(summary.get("images", 1)), "image"))}, T = {int(layer["timesteps"])} steps, backend
{html.escape(str(summary.get("backend", "")))}. Per inference: {layer["spikes"]:.4g} spikes,
{layer["synops"]:.4g} synaptic operations, {layer["neuron_updates"]:.4g} neuron updates,
{summary["host_macs"]:.4g} host MACs, {summary["bridge_bits"]:.4g} bridge bits.</p>
<table><tr><th>profile</th><th>SNN J</th><th>host J</th><th>bridge J</th><th>total J</th>
<th>all-CNN J</th><th>ratio</th></tr>{rows}</table>
<h2>Deployment: cores, latency and chip energy per profile</h2>
<table><tr><th>profile</th><th>cores</th><th>chips</th><th>fits one chip</th><th>s per step</th>
<th>s per inference</th><th>chip dynamic J</th><th>chip static J</th><th>chip J</th></tr>{side}</table>
<p>Latency: the busiest core per time step (neurodeploy.latency); static energy = static power x chips x
latency. Sources of every figure: <code>neurodeploy hw show PROFILE</code>.</p>
{images}
<script>
window.addEventListener("load", function () {{
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) {{ if (imgs[i].complete && imgs[i].naturalWidth > 0) ok++; }}
  document.title = "plots loaded: " + ok + "/" + imgs.length;
}});
</script>
</body></html>
"""
    target = out / "report.html"
    with atomic_path(target) as tmp:
        tmp.write_text(page)
    return target
