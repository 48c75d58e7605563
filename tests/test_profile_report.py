"""``profile --report`` shows what the deployment computed: the inpainted image beside the masked input and
the photo, hole PSNR, and the fidelity check (spike precision, recall and F1 overall and per chip layer,
bit-exactness with the reference backend), for inpainter and graph bundles (issue 33, item 8)."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import nir
import numpy as np
import pytest
from PIL import Image

from neurodeploy.bundle.format import Bundle
from neurodeploy.cli.inputs import plan_inputs, read_inputs
from neurodeploy.inpainter.conversion import convert
from neurodeploy.inpainter.data import builtin_paths
from neurodeploy.io import read_image
from neurodeploy.spike_metrics import SpikeTally, pooled_scores

from .conftest import run_cli
from .test_graph_profile import X, _dense_graph


def _embedded(html: str, alt_start: str) -> np.ndarray:
    found = re.search(rf'<img alt="{re.escape(alt_start)}[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert found, f"no picture {alt_start!r} in the report"
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(found.group(1)))).convert("RGB"))


def test_the_inpainter_report_shows_the_output_its_hole_psnr_and_the_fidelity(tmp_path: Path,
                                                                               tiny_bundle: Path) -> None:
    image = tmp_path / "photo.png"
    Image.fromarray(read_image(builtin_paths("val")[1])[:48, :56]).save(image)
    report, out, simulated = tmp_path / "report", tmp_path / "profile.json", tmp_path / "simulate.json"
    result = run_cli("profile", str(tiny_bundle), "--image", str(image), "--random-mask", "3",
                     "--backend", "reference", "--json", str(out), "--report", str(report))
    assert result.returncode == 0, result.stderr
    summary, html = json.loads(out.read_text()), (report / "report.html").read_text()
    # the pictures: the masked input, the deployed output (also written full size), the photo
    item = next(read_inputs(plan_inputs(image, None, 3), 3))  # the same drawn hole as the run's
    output = np.asarray(Image.open(report / "inpainted.png").convert("RGB"))
    assert output.shape == item.image.shape and np.array_equal(output[~item.mask], item.image[~item.mask])
    assert np.array_equal(_embedded(html, "inpainted"), output)
    assert np.array_equal(_embedded(html, "truth"), item.image)
    masked = _embedded(html, "masked input")
    assert np.all(masked[item.mask] == 0) and np.array_equal(masked[~item.mask], item.image[~item.mask])
    # hole PSNR, recomputed here from the written output and the photo
    mse = np.mean(((output[item.mask].astype(float) - item.image[item.mask].astype(float)) / 255) ** 2)
    psnr = 10 * np.log10(1 / mse)
    assert summary["psnr_hole"]["mean"] == pytest.approx(psnr, abs=1e-9)
    assert f"<b>Hole PSNR</b> of the deployed output: {psnr:.2f} dB" in html
    # the fidelity: the same figures simulate measures on the same image, overall and per chip layer
    assert run_cli("simulate", str(tiny_bundle), "--image", str(image), "--random-mask", "3", "--backend",
                   "reference", "-o", str(tmp_path / "sim.png"), "--json", str(simulated)).returncode == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "sim.png").convert("RGB")), output)
    checked = json.loads(simulated.read_text())["results"][0]["fidelity"]
    fid = summary["fidelity"]
    for key in ("spike_precision", "spike_recall", "spike_f1", "spikes_deployed", "spikes_reference"):
        assert fid[key] == pytest.approx(checked[key]) and fid["layers"][0][key] == pytest.approx(checked[key])
    assert 0.9 < fid["spike_f1"] <= 1 and fid["exact_vs_reference"] is True
    for name, s in (("all chip layers", fid), ("lif0", fid["layers"][0])):
        assert re.search(rf"<td>{name}</td><td>{s['spikes_deployed']:,}</td><td>{s['spikes_reference']:,}</td>"
                         rf"<td>{s['spike_precision']:.2%}</td><td>{s['spike_recall']:.2%}</td>"
                         rf"<td>{s['spike_f1']:.2%}</td>", html), name
    assert "spikes bit-exact with the reference backend: yes" in html


def test_a_graph_report_shows_the_fidelity_per_chip_layer(tmp_path: Path) -> None:
    graph = _dense_graph()
    graph.infer_types()
    nir.write(tmp_path / "dense.nir", graph)
    convert(tmp_path / "dense.nir", tmp_path / "dense.bundle")
    assert Bundle.load(tmp_path / "dense.bundle").kind == "graph"
    np.save(tmp_path / "x.npy", np.stack([X, X[::-1]]))
    out, report = tmp_path / "profile.json", tmp_path / "report"
    result = run_cli("profile", str(tmp_path / "dense.bundle"), "--input", str(tmp_path / "x.npy"), "--backend",
                     "reference", "--json", str(out), "--report", str(report))
    assert result.returncode == 0, result.stderr
    fid, html = json.loads(out.read_text())["fidelity"], (report / "report.html").read_text()
    # the hand-built graph fires exactly where its inputs do: 6 + 6 spikes of a, 4 + 4 of b, all matched
    assert [layer["name"] for layer in fid["layers"]] == ["a_if", "b_if"]
    assert fid["spike_f1"] == 1.0 and fid["exact_vs_reference"] is True
    assert [layer["spikes_deployed"] for layer in fid["layers"]] == [12, 8]
    assert "<td>a_if</td><td>12</td><td>12</td><td>100.00%</td>" in html and "<td>b_if</td><td>8</td>" in html
    assert "output argmax agreement with the float graph" in html and "Hole PSNR" not in html


def test_pooled_scores_are_those_of_one_tally_over_every_image() -> None:
    rng = np.random.default_rng(0)
    pairs = [((rng.random((1, 6, 30)) < p), (rng.random((1, 6, 30)) < p)) for p in (0.02, 0.5)]
    whole = SpikeTally()
    for d, r in pairs:
        whole.add(d, r)
    pooled = pooled_scores([SpikeTally().add(d, r).scores() for d, r in pairs])
    for key, value in pooled.items():
        assert value == pytest.approx(whole.scores()[key]), key
    mean_of_f1 = np.mean([SpikeTally().add(d, r).scores()["spike_f1"] for d, r in pairs])
    assert abs(pooled["spike_f1"] - mean_of_f1) > 1e-3  # not a mean of the images' ratios
