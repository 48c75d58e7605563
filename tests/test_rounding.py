"""Rounding chosen for a layer's outputs (neurodeploy.chip.calibration.choose_rounding), on real exported networks.

The objective is recomputed here independently of the module (the synaptic
input by torch's conv2d / a matrix product, in threshold units), so a wrong
objective, a descent that moves uphill, or one that never moves, fails.
"""

from __future__ import annotations

import json

import nir
import numpy as np
import pytest
import torch

from benchmarks import fidelity_nets as nets
from neurodeploy.bundle.convert import convert_graph
from neurodeploy.chip.calibration import ROUNDINGS, choose_rounding
from neurodeploy.chip.layers import ChipLayer
from neurodeploy.chip.neuron_mapping import map_neuron
from neurodeploy.chip.partition import ChipSegment, plan
from neurodeploy.chip.quantize import QuantizedChipLayer, quantize_segment, with_mantissas
from neurodeploy.chip.reference import run_segment_batch
from neurodeploy.converters.netx_io import FixedPointLayer
from neurodeploy.runtime.graph_run import run_graph

from .conftest import run_cli
from .test_chip_segments import _binary, _mlp_net, _sinabs_net

CALIBRATION_SAMPLES = 400  # enough held-out samples (200) for the paired rule to see the rounding's gain


def _synaptic_input(weight: np.ndarray, q: FixedPointLayer, frames: np.ndarray) -> np.ndarray:
    """What ``weight`` (the layer's weight shape, float) makes of ``frames`` (N, T, *input) per neuron and step."""
    x = torch.from_numpy(frames.reshape(-1, *q.input_shape).astype(np.float64))
    w = torch.from_numpy(np.asarray(weight, np.float64))
    if q.kind == "conv":
        return torch.nn.functional.conv2d(x, w, stride=q.stride, padding=q.padding).numpy()
    return (x.reshape(len(x), -1) @ w.reshape(w.shape[0], -1).T).numpy()


def _objective(layer: ChipLayer, q: QuantizedChipLayer, frames: np.ndarray, weight: np.ndarray,
               bias: np.ndarray | None, vth: int) -> float:
    """E = Σ ((W_q x + b_q)/vth - (W x + P·B)/(θ·P))² over samples, steps and neurons (calibration's docstring)."""
    mapping = map_neuron(layer.neuron)
    p = q.payload_max
    shape = (1, -1) + (1,) * (len(q.layer.output_shape) - 1)  # the bias per output channel
    deployed = _synaptic_input(weight, q.layer, frames) + (0 if bias is None else np.reshape(bias, shape))
    exact = _synaptic_input(layer.weight, q.layer, frames) + (
        0 if layer.bias is None else np.reshape(np.asarray(layer.bias) * mapping.bias_per_unit * p, shape))
    return float(np.sum((deployed / vth - exact / (mapping.threshold_per_unit * p)) ** 2))


@pytest.mark.parametrize("build", [_sinabs_net, _mlp_net], ids=["sinabs_conv_pool_dense", "snntorch_mlp_biases"])
def test_rounding_never_raises_its_objective_above_nearest_rounding(build) -> None:
    _, graph = build()
    result = plan(graph, dt=1e-4)
    (segment,) = [s for s in result.segments if isinstance(s, ChipSegment)]
    layers = segment.layers
    static = quantize_segment(layers, payload_max=1)
    frames = _binary((32, 12, *layers[0].input_shape), 0.4, seed=5)
    lowered = 0
    for layer, q in zip(layers, static, strict=True):
        chosen = choose_rounding(layer, q, frames, frames)
        nearest = _objective(layer, q, frames, q.layer.weight, q.layer.bias, q.layer.vth_mant)
        after = _objective(layer, q, frames, chosen.weight, chosen.bias, chosen.vth_mant)
        assert chosen.objective_nearest == pytest.approx(nearest, rel=1e-9)
        assert chosen.objective == pytest.approx(after, rel=1e-9)
        assert after <= nearest
        lowered += after < 0.9 * nearest
        # every mantissa is the floor or the ceiling of its target at the chosen threshold, or the nearest one
        target = np.asarray(layer.weight) * chosen.vth_mant / (map_neuron(layer.neuron).threshold_per_unit * 1)
        near = np.abs(chosen.weight.reshape(target.shape) - target) < 1
        assert np.all(near | (chosen.weight.reshape(target.shape) == q.layer.weight.reshape(target.shape)))
        assert np.abs(chosen.weight).max() <= 127
        rounded = with_mantissas(q, layer, chosen.weight, chosen.bias, chosen.vth_mant)
        assert rounded.layer.weight.dtype == np.int8 and rounded.layer.weight.shape == q.layer.weight.shape
        frames = run_segment_batch([q.layer], frames)[0]  # the next layer reads the deployed spikes
    assert lowered >= 1, "the descent never lowered the objective by 10 %"


@pytest.fixture(scope="module")
def mlp(tmp_path_factory: pytest.TempPathFactory):
    """snnTorch's LIF MLP of the fidelity benchmark, trained; calibration and test samples."""
    d = nets.digits_events()
    trained = nets.snntorch_mlp(d)
    root = tmp_path_factory.mktemp("rounding")
    cal = root / "calibration.npy"
    np.save(cal, trained.inputs(d.x_train[:CALIBRATION_SAMPLES]).astype(np.float64))
    return trained, cal, trained.inputs(d.x_test[:8]).astype(np.float64), root


def test_calibrated_rounding_is_recorded_deterministic_and_bit_exact_in_lava(mlp) -> None:
    trained, cal, x, root = mlp
    bundles = [convert_graph(trained.graph, root / f"local{i}", dt=trained.dt, calibrate=cal, rounding="local")
               for i in range(2)]
    nearest = convert_graph(trained.graph, root / "nearest", dt=trained.dt, calibrate=cal, rounding="nearest")
    record = bundles[0].manifest["calibration"]
    assert record["rounding"] == "local" and nearest.manifest["calibration"]["rounding"] == "nearest"
    kept = [r["rounding"] for r in record["layers"]]
    assert set(kept) <= {"nearest", "local"} and "local" in kept, record["layers"]
    assert all(r["rounding"] == "nearest" for r in nearest.manifest["calibration"]["layers"])
    for r in record["layers"]:
        assert r["rounding_tried"] == "local" and r["rounding_objective"] <= r["rounding_objective_nearest"]
        assert (r["rounding"] == "local") == (r["rounding_gain_z"] >= 3.0)
    # deterministic: the same input gives the same bytes in every file, the manifest included
    names = sorted(p.name for p in bundles[0].path.iterdir())
    assert names == sorted(p.name for p in bundles[1].path.iterdir())
    for name in names:
        assert (bundles[0].path / name).read_bytes() == (bundles[1].path / name).read_bytes(), name
    manifests = [json.loads((b.path / "manifest.json").read_text()) for b in bundles]
    chip_files = [s["file"] for s in manifests[0]["segments"] if s["place"] == "chip"]
    # the rounding is in the file: the kept rounding's segment differs from nearest rounding at the same scales
    assert any((bundles[0].path / name).read_bytes() != (nearest.path / name).read_bytes() for name in chip_files)
    lava = run_graph(bundles[0].deployment, x, "lava")
    reference = run_graph(bundles[0].deployment, x, "reference")
    assert lava.exact_vs_reference and np.array_equal(lava.output, reference.output)
    assert reference.output.sum() > 0


def test_cli_takes_the_rounding_and_refuses_an_unknown_one_in_one_line(mlp) -> None:
    trained, cal, _, root = mlp
    graph = root / "mlp.nir"
    nir.write(graph, trained.graph)
    bad = run_cli("convert", str(graph), "--dt", str(trained.dt), "--calibrate", str(cal), "--rounding",
                  "stochastic", "-o", str(root / "bad"))
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "Traceback" not in bad.stderr
    assert "unknown rounding 'stochastic'" in bad.stderr and "end_to_end" in bad.stderr, bad.stderr
    assert not (root / "bad").exists() and "stochastic" not in ROUNDINGS
    run = run_cli("convert", str(graph), "--dt", str(trained.dt), "--calibrate", str(cal), "--rounding",
                  "end_to_end", "-o", str(root / "cli"))
    assert run.returncode == 0, run.stderr
    assert "rounding" in run.stdout
    record = json.loads((root / "cli" / "manifest.json").read_text())["calibration"]
    assert record["rounding"] == "end_to_end" and {r["rounding_tried"] for r in record["layers"]} == {"end_to_end"}
