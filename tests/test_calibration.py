"""``convert net.nir --calibrate X.npy``: per-layer scales chosen on samples to reproduce the float spikes.

Networks from tests/test_chip_segments.py, exported by snnTorch (recurrent
CubaLIF classifier, LIF MLP on graded input) and Sinabs (conv net, with a
neuron kept on the host: two chip segments). Calibration runs on seeded
samples; it is judged on other seeded samples (held out) against the static
quantization, layer by layer, with the project's spike F1.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nir
import numpy as np
import pytest
import torch

from neurodeploy.bundle.deployment import ChipPart
from neurodeploy.bundle.format import Bundle
from neurodeploy.chip.calibration import (
    COARSE_OCTAVES,
    COARSE_STEPS_PER_OCTAVE,
    SIGNIFICANCE_Z,
    coarse_scales,
    fine_scales,
    float_layer,
)
from neurodeploy.chip.layers import ChipLayer
from neurodeploy.chip.partition import partition, plan
from neurodeploy.chip.quantize import SCALE_STEPS_PER_OCTAVE, candidate_scales, quantize_chip_layer
from neurodeploy.chip.reference import run_segment_batch
from neurodeploy.inpainter.conversion import convert
from neurodeploy.io import sha256_file
from neurodeploy.ir.float_run import run_float
from neurodeploy.runtime.graph_run import run_graph
from neurodeploy.spike_metrics import spike_scores

from .conftest import run_cli
from .test_chip_segments import _binary, _mlp_net, _recurrent_net, _sinabs_net

CASES = {  # builder, dt, host nodes, payload, input shape, spike rate (None: graded)
    "recurrent": (_recurrent_net, 1e-4, (), "spikes", (8,), 0.3),
    "sinabs_host_cut": (_sinabs_net, None, ("4",), "spikes", (2, 16, 16), 0.5),
    "mlp_graded": (_mlp_net, 1e-4, (), "graded", (20,), None),
}
CALIBRATION_SAMPLES, HELD_OUT, STEPS = 64, 64, 16


def _samples(shape: tuple[int, ...], rate: float | None, n: int, seed: int) -> np.ndarray:
    if rate is None:  # exact 8-bit values, so the payload carries them without rounding
        return np.random.default_rng(seed).integers(0, 256, (n, STEPS, *shape)) / 255.0
    return _binary((n, STEPS, *shape), rate, seed).astype(np.float64)


def _held_out_f1(bundle: Bundle, x: np.ndarray) -> dict[str, tuple[float | None, float | None]]:
    """Per chip layer of a calibrated bundle run on ``x``: (spike F1 at the static scale, at the bundle's scale).

    Both read the bundle's own upstream (its input payloads, or its previous
    chip layer's spikes), as calibration compared them, against the float layer on it.
    """
    dep = bundle.deployment
    run = run_graph(dep, x, "reference")
    layers = {layer.name: layer for layer in bundle_layers(bundle)}
    out = {}
    for part in dep.parts:
        if not isinstance(part, ChipPart):
            continue
        frames, source, payload_max = run.payloads[part.index], part.source, part.payload_max
        for name in part.names:
            upstream = (frames / payload_max).reshape(*frames.shape[:2], *dep.float_graph.nodes[source].output_shape)
            target = float_layer(dep.float_graph, layers[name], source, upstream)
            static = run_segment_batch([quantize_chip_layer(layers[name], payload_max).layer], frames)[0]
            out[name] = (spike_scores(static, target)["spike_f1"], spike_scores(run.spikes[name], target)["spike_f1"])
            frames, source, payload_max = run.spikes[name], name, 1
    return out


def bundle_layers(bundle: Bundle) -> tuple[ChipLayer, ...]:
    """The bundle's chip layers before quantization, re-planned from its graph."""
    return partition(bundle.deployment.float_graph, host=bundle.manifest["host_requested"]).layers


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Bundle, Bundle, np.ndarray, Path]]:
    """Each case converted statically and with --calibrate (API), and its held-out samples."""
    root = tmp_path_factory.mktemp("calibration")
    out = {}
    for i, (name, (build, dt, host, payload, shape, rate)) in enumerate(CASES.items()):
        _, graph = build()
        graph.infer_types()
        nir.write(root / f"{name}.nir", graph)
        x_path = root / f"{name}.npy"
        np.save(x_path, _samples(shape, rate, CALIBRATION_SAMPLES, seed=100 + i))
        # one width for both (8 bits): the calibration against the static scales, not the width's choice
        static = convert(root / f"{name}.nir", root / f"{name}.bundle", dt=dt, host=host, payload=payload,
                         weights="8")
        tuned = convert(root / f"{name}.nir", root / f"{name}.cal.bundle", dt=dt, host=host, payload=payload,
                        calibrate=x_path, weights="8")
        out[name] = (static, tuned, _samples(shape, rate, HELD_OUT, seed=200 + i), x_path)
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_calibration_never_loses_to_the_static_scales_and_the_manifest_records_it(calibrated, case: str) -> None:
    static, tuned, held_out, x_path = calibrated[case]
    record = tuned.manifest["calibration"]
    assert "calibration" not in static.manifest
    assert record["samples"] == {"file": x_path.name, "sha256": sha256_file(x_path),
                                 "shape": [CALIBRATION_SAMPLES, STEPS, *CASES[case][4]]}
    chip = [layer for s in tuned.manifest["segments"] if s["place"] == "chip" for layer in s["layers"]]
    static_chip = [layer for s in static.manifest["segments"] if s["place"] == "chip" for layer in s["layers"]]
    assert [r["name"] for r in record["layers"]] == [layer["name"] for layer in chip]
    for r, layer, before in zip(record["layers"], chip, static_chip, strict=True):
        assert r["scale"] == layer["quantization"]["weight_scale"]  # the file holds the chosen scale
        assert r["static_scale"] == before["quantization"]["weight_scale"]
        assert r["spike_f1"] >= r["spike_f1_static"]
        assert abs(np.log2(r["scale"] / r["static_scale"])) <= COARSE_OCTAVES + 1 / COARSE_STEPS_PER_OCTAVE + 1e-9
        assert (r["scale"] == r["static_scale"]) == (r["gain_z"] == 0)
        assert r["gain_z"] == 0 or (r["gain_z"] >= SIGNIFICANCE_Z and r["spike_f1"] > r["spike_f1_static"])
    # held out: each layer's chosen scale against the static one, on the same upstream spikes
    held = _held_out_f1(tuned, held_out)
    print(case, {name: (round(a, 4), round(b, 4)) for name, (a, b) in held.items()})
    for name, (before, after) in held.items():
        assert after >= before, (name, held)
    if case == "sinabs_host_cut":  # static rounding loses spikes there, and the samples show it
        assert any(after > before for before, after in held.values()), held


def test_the_float_layer_is_the_float_graphs_layer(calibrated) -> None:
    """The calibration target of a first chip layer fed the graph's spike input is the float graph's layer."""
    static, _, held_out, _ = calibrated["recurrent"]
    graph = static.deployment.float_graph
    first = bundle_layers(static)[0]
    whole = run_float(graph, torch.from_numpy(held_out))[first.name].numpy()
    assert whole.sum() > 0
    assert np.array_equal(float_layer(graph, first, static.deployment.input_node, held_out), whole)


def test_candidates_are_coarse_around_the_static_scale_then_the_static_searchs_own_near_the_best() -> None:
    _, graph = _mlp_net()
    layer = plan(graph, dt=1e-4).layers[0]
    s0 = quantize_chip_layer(layer, 1).weight_scale
    coarse = coarse_scales(s0)
    octaves = np.log2(np.array(coarse) / s0)
    assert len(coarse) == 2 * COARSE_OCTAVES * COARSE_STEPS_PER_OCTAVE and abs(octaves).max() == COARSE_OCTAVES
    assert np.all(np.diff(abs(octaves)) > -1e-9) and np.all(abs(octaves) > 0.2)  # nearest first, s0 left out
    fine = fine_scales(coarse[0], layer.weight)
    every = candidate_scales(layer.weight)
    near = every[np.abs(np.log2(every / coarse[0])) <= 1 / COARSE_STEPS_PER_OCTAVE + 1e-12]
    assert sorted(fine) == sorted(v for v in set(near.tolist()) if not np.isclose(v, coarse[0], rtol=1e-12, atol=0))
    assert len(fine) > SCALE_STEPS_PER_OCTAVE / COARSE_STEPS_PER_OCTAVE  # the grid's steps and k / max|W|


def test_the_calibrated_bundle_runs_bit_exact_in_lava(calibrated) -> None:
    _, tuned, held_out, _ = calibrated["recurrent"]
    run = run_graph(tuned.deployment, held_out[:2], "lava")
    assert run.exact_vs_reference and sum(s.sum() for s in run.spikes.values()) > 0


def test_cli_calibrates_and_prints_the_scores(calibrated, tmp_path: Path) -> None:
    static, _, _, x_path = calibrated["recurrent"]
    nir_path = x_path.with_suffix(".nir")
    run = run_cli("convert", str(nir_path), "--dt", "1e-4", "--calibrate", str(x_path), "-o", str(tmp_path / "b"))
    assert run.returncode == 0, run.stderr
    assert "calibrated on recurrent.npy" in run.stdout and "F1 static" in run.stdout
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert len(manifest["calibration"]["layers"]) == len(bundle_layers(static))


# -- refusals: one line, exit 2, nothing written ---------------------------------------------------------

BAD = {  # file name, array (None: no file / not numpy), words in the message
    "text": ("x.csv", None, "not a .npy or .npz"),
    "missing": ("absent.npy", None, "does not exist"),
    "no_samples": ("x.npy", np.zeros((0, STEPS, 8)), "no samples"),
    "no_steps": ("x.npy", np.zeros((2, 0, 8)), "no samples or no time steps"),
    "shape": ("x.npy", np.zeros((2, STEPS, 9)), "has shape (2, 16, 9)"),
    "nan": ("x.npy", np.full((2, STEPS, 8), np.nan), "not finite"),
    "inf": ("x.npy", np.full((2, STEPS, 8), np.inf), "not finite"),
    "not_spikes": ("x.npy", np.full((2, STEPS, 8), 0.5), "other than 0 and 1"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_calibration_input_is_one_line_and_exit_2(calibrated, case: str, tmp_path: Path) -> None:
    _, _, _, x_path = calibrated["recurrent"]
    name, x, words = BAD[case]
    bad = tmp_path / name
    if x is not None:
        np.save(bad, x)
    elif case == "text":
        bad.write_text("1,2\n")
    out = tmp_path / "out.bundle"
    run = run_cli("convert", str(x_path.with_suffix(".nir")), "--dt", "1e-4", "--calibrate", str(bad), "-o", str(out))
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert run.stderr.strip().count("\n") == 0 and "Traceback" not in run.stderr and not run.stdout
    assert "--calibrate" in run.stderr and words in run.stderr, run.stderr
    assert not out.exists() and sorted(os.listdir(tmp_path)) == sorted({bad.name} - {"absent.npy"})


def test_graded_calibration_input_beyond_one_is_refused(calibrated, tmp_path: Path) -> None:
    _, _, _, x_path = calibrated["mlp_graded"]
    np.save(tmp_path / "x.npy", np.full((2, STEPS, 20), 1.5))
    run = run_cli("convert", str(x_path.with_suffix(".nir")), "--dt", "1e-4", "--payload", "graded",
                  "--calibrate", str(tmp_path / "x.npy"), "-o", str(tmp_path / "out.bundle"))
    assert run.returncode == 2 and "outside [0, 1]" in run.stderr and run.stderr.strip().count("\n") == 0
    assert not (tmp_path / "out.bundle").exists()
