"""A bias into a filtered synaptic current on the chip: the always-on bias axon (``bias_site = "current"``).

Through a current filter (CubaLIF with dt < tau_syn) a bias B is a constant
input into the current, ``i_t = (1 - b)·i_{t-1} + b·w_in·(W x_t + B)``. On
Loihi it is an always-on input axon whose weights are ``bias_mant = round(s·P·B)``:
``u_t = trunc(u_{t-1}·(4096 - iDecay)/4096) + ((a_in_t + bias_mant) << 6)``
(:class:`neurodeploy.chip.neuron_mapping.CubaMapping`). Checked here: by hand on one
neuron against the float NIR equations; on a trained snnTorch recurrent CubaLIF
classifier whose every layer has a bias (all on the chip, reference == torch
== Lava's ChipSegment bit for bit, argmax agreement with the float graph);
the stock-netx refusal; the profile's count of the axons.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
import torch

from neurodeploy.bundle.deployment import ChipPart
from neurodeploy.chip.cuba import CubaParams, CubaState, cuba_step
from neurodeploy.chip.partition import CHIP, ChipSegment, plan
from neurodeploy.chip.quantize import fixed_point, quantize_chip_layer, quantize_segment
from neurodeploy.chip.reference import run_segment_batch
from neurodeploy.converters.netx_in import read_segment
from neurodeploy.converters.netx_io import FixedPointLayer, write_segment
from neurodeploy.cost.counting import bias_axons, chip_layer_counts
from neurodeploy.cost.profile import profile_graph
from neurodeploy.errors import UserError
from neurodeploy.inpainter.conversion import convert
from neurodeploy.ir.float_run import run_float
from neurodeploy.runtime.graph_run import run_graph
from neurodeploy.runtime.torch_backend import run_segment_batch as run_torch
from neurodeploy.spike_metrics import output_scores, spike_scores

from .conftest import run_cli
from .test_chip_segments import (
    CLASSES,
    HELD_OUT,
    STEPS,
    TRAIN_SAMPLES,
    _accuracy,
    _patterns,
    _snntorch_forward,
    _train,
)

DT = 1e-4  # the time step snnTorch's export assumes (it writes tau = dt / (1 - alpha) for dt = 1e-4)


def _one(value: float) -> np.ndarray:
    return np.array([value], np.float64)


def _one_neuron_graph(weight: float = 0.25, bias: float = 0.25) -> nir.NIRGraph:
    """Input(1) -> Affine(w, B) -> CubaLIF -> Output at dt = 1 ms: b = dt/tau_syn = 0.5, a = dt/tau_mem = 0.25,
    w_in = 1/b and r = 1/a, so ``i_t = i/2 + w·x_t + B`` and ``v_t = 3v/4 + i_t``, threshold 1."""
    return nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([1])}),
        "syn": nir.Affine(weight=np.array([[weight]]), bias=_one(bias)),
        "lif": nir.CubaLIF(tau_syn=_one(2e-3), tau_mem=_one(4e-3), r=_one(4.0), v_leak=_one(0.0),
                           v_threshold=_one(1.0), v_reset=_one(0.0), w_in=_one(2.0)),
        "output": nir.Output(output_type={"output": np.array([1])})},
        edges=[("input", "syn"), ("syn", "lif"), ("lif", "output")])


def test_one_neuron_bias_into_a_filtered_current_by_hand() -> None:
    """B = 0.25 and no input: the float current climbs 0.25, 0.375, 0.4375, 0.46875, ... (to 0.5) and
    the voltage 0.25, 0.5625, 0.859, 1.113 -> a spike at t = 3, then every third step (t = 6, 9).

    At scale s = 256 (W_q = 64, bias_mant = 64, vThMant = 256) Loihi's state is the float state times
    λ = μ = 64·s = 16384 up to the current's truncation, step by step; the spikes are the same. Loihi's
    voltage bias would instead add B to v each step (v -> B / a = 1 from below): never a spike.
    """
    p = plan(_one_neuron_graph(), dt=1e-3)
    assert [row.place for row in p.placement] == ["host", CHIP, CHIP, "host"]
    (layer,) = p.layers
    q = quantize_chip_layer(layer, payload_max=1, scale=256.0).layer
    assert (q.bias_site, q.bias.tolist(), q.vth_mant, q.i_decay, q.v_decay) == ("current", [64], 256, 2048, 1024)
    steps = 12
    hand = np.zeros(steps, np.uint8)
    hand[[3, 6, 9]] = 1
    x = np.zeros((2, steps, 1))
    x[1, [1, 7], 0] = 1  # a second sample with input spikes: the bias joins them at the same step
    chip = run_segment_batch([q], x.astype(np.uint8))[0][..., 0]
    flt = run_float(p.graph, torch.from_numpy(x))["lif"].numpy()[..., 0]
    assert np.array_equal(chip[0], hand) and np.array_equal(flt[0], hand)
    assert np.array_equal(chip, flt)
    # the state, step by step: the NIR equations in float against the fixed-point CUBA step
    i = v = 0.0
    state, params = CubaState.zeros((1,)), CubaParams.of(q)
    for t in range(steps):
        i = i + 0.5 * (-i + 2.0 * 0.25)
        v = v + 0.25 * (-v + 4.0 * i)
        fired = cuba_step(state, np.zeros(1) + q.bias, params)[0]
        assert abs(state.u[0] / 16384 - i) < 2 ** -13, t  # trunc of u/2 loses at most one unit a step
        assert fired == (v > 1.0) == bool(hand[t]), t
        v = 0.0 if v > 1.0 else v
        assert abs(state.v[0] / 16384 - v) < 1e-3, t
    voltage = run_segment_batch([dataclasses.replace(q, bias_site="voltage")], x[:1].astype(np.uint8))[0]
    assert not voltage.any()


# -- a trained snnTorch recurrent CubaLIF classifier, biases everywhere ----------------------------

def _filtered_classifier(seed: int = 0) -> tuple[torch.nn.Sequential, nir.NIRGraph, float]:
    """Linear(20, 16) -> RSynaptic (alpha 0.5: a current filter, dt = tau_syn / 2; its recurrence has a bias)
    -> Linear(16, CLASSES) -> Synaptic (alpha 0.5), every Linear with a bias, reset to zero; trained
    (BPTT through snnTorch's forward, one thread, seeded) on :func:`_patterns` for a few seconds."""
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(seed)
    n = 16
    net = torch.nn.Sequential(
        torch.nn.Linear(20, n),
        snn.RSynaptic(alpha=torch.full((n,), 0.5), beta=torch.full((n,), 0.9), threshold=torch.ones(n),
                      linear_features=n, all_to_all=True, init_hidden=True, reset_mechanism="zero"),
        torch.nn.Linear(n, CLASSES),
        snn.Synaptic(alpha=torch.full((CLASSES,), 0.5), beta=torch.full((CLASSES,), 0.8),
                     threshold=torch.ones(CLASSES), init_hidden=True, reset_mechanism="zero", output=True))
    with torch.no_grad():
        net[0].weight.mul_(2.0)
        net[2].weight.mul_(3.0)

    def outputs(batch: torch.Tensor) -> torch.Tensor:
        for m in net:
            for attr in ("mem", "syn", "spk"):
                if hasattr(m, attr):
                    setattr(m, attr, torch.zeros(0))  # a fresh state for the batch
        return torch.stack([net(batch[:, t])[0] for t in range(batch.shape[1])], 1)

    x, labels = _patterns(TRAIN_SAMPLES, (20,), seed=40)
    accuracy = _train(net, outputs, x, labels, epochs=15, lr=1e-2, seed=seed)
    return net, export_to_nir(net, torch.rand(20)), accuracy


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory):
    net, graph, train_accuracy = _filtered_classifier()
    path = tmp_path_factory.mktemp("current_bias") / "classifier.nir"
    nir.write(path, graph)
    x, labels = _patterns(HELD_OUT, (20,), seed=41)
    return net, path, x, labels, train_accuracy


def test_a_recurrent_cubalif_classifier_with_filtered_biases_goes_wholly_on_the_chip(classifier) -> None:
    _, path, _, _, _ = classifier
    p = plan(path, dt=DT)
    assert all(row.place == CHIP for row in p.placement if row.kind not in ("Input", "Output")), p.placement
    (segment,) = [s for s in p.segments if isinstance(s, ChipSegment)]
    assert [layer.name for layer in segment.layers] == ["1.lif", "3"]
    assert all(layer.neuron.filters_current and layer.bias is not None for layer in segment.layers)
    quantized = fixed_point(quantize_segment(segment.layers, payload_max=1))
    assert [q.kind for q in quantized] == ["dense_rec", "dense"]
    assert all(q.bias_site == "current" and np.any(q.bias) for q in quantized)
    out = run_cli("convert", str(path), "--plan", "--dt", str(DT)).stdout
    assert "2 chip layers in 1 chip segment, 2 host nodes, 2 cuts" in out and "bias" not in out


def test_the_deployed_classifier_follows_the_float_graph_and_torch_is_bit_exact(classifier) -> None:
    """Deployed (reference) vs the float graph of the export: every chip layer's spike F1 and the output
    argmax (>= 95 % of the samples whose float argmax is unique). snnTorch's own forward resets one step
    late (``reset_delay``: the step after a spike has mem = 0, its input lost) and is not what its export
    says. Measured on these 128 held-out samples (seeded): deployed vs float spike F1 0.989 (1.lif) and
    0.994 (3), output argmax 128 / 128; snnTorch fires about half as often as its export (1.lif: 4700
    spikes against the deployed 9264; spike F1 0.63, 0.97 within ±1 step), yet its output argmax equals
    the deployed network's on all 128: the late reset thins the spikes, not the decision."""
    net, path, x, labels, train_accuracy = classifier
    p = plan(path, dt=DT)
    (segment,) = [s for s in p.segments if isinstance(s, ChipSegment)]
    quantized = fixed_point(quantize_segment(segment.layers, payload_max=1))
    names = [layer.name for layer in segment.layers]
    chip = dict(zip(names, run_segment_batch(quantized, x), strict=True))
    assert all(np.array_equal(a, chip[n]) for a, n in zip(run_torch(quantized, x), names, strict=True))
    constant = np.repeat(x[:, :1], STEPS, axis=1)  # the torch backend's constant-input path
    assert all(np.array_equal(a, b) for a, b in zip(run_torch(quantized, constant),
                                                    run_segment_batch(quantized, constant), strict=True))
    flt = {k: v.numpy() for k, v in run_float(p.graph, torch.from_numpy(x.astype(np.float64))).items()}
    assert train_accuracy >= 0.9 and _accuracy(flt[names[-1]], labels) >= 0.9, train_accuracy  # chance: 1/4
    for name in names:
        scores = spike_scores(chip[name], flt[name])
        assert scores["spike_f1"] >= 0.97 and scores["rate_correlation"] >= 0.99, (name, scores)
    agreement = output_scores(chip[names[-1]], flt[names[-1]])
    assert agreement["output_agreement_vs_float"] >= 0.95 and agreement["output_samples"] >= 0.9 * HELD_OUT
    assert float(chip[names[-1]].mean()) > 0.02
    library = _snntorch_forward(net, x, {1: names[0], 3: names[1]})
    assert output_scores(chip[names[-1]], library[names[-1]])["output_agreement_vs_float"] >= 0.95
    assert not np.array_equal(library[names[0]], flt[names[0]])  # the late reset: snnTorch is not its export


def test_the_bundle_runs_in_lavas_chip_segment_bit_exact_and_stock_netx_is_refused(classifier,
                                                                                    tmp_path: Path) -> None:
    """The netx file stores the current bias as ``bias_current``, which stock netx would ignore: the manifest
    marks the segment, the stock runner refuses it in one line; neurodeploy's ChipSegment runs it exactly."""
    _, path, x, _, _ = classifier
    bundle = convert(path, tmp_path / "bundle", dt=DT)
    (chip,) = [s for s in bundle.manifest["segments"] if s["place"] == "chip"]
    assert chip["lava"]["stock_netx"] is False
    assert [e["quantization"]["bias_site"] for e in chip["layers"]] == ["current", "current"]
    with h5py.File(bundle.file(chip["file"]), "r") as f:
        assert all("bias_current" in f[f"layer/{i}"] and "bias" not in f[f"layer/{i}"] for i in (1, 2))
    deployment = bundle.deployment
    busy = run_graph(deployment, x, backend="reference").spikes["1.lif"].reshape(len(x), -1).sum(1)
    few = x[np.argsort(-busy, kind="stable")[:3]]  # the three busiest samples
    lava = run_graph(deployment, few, backend="lava")
    assert lava.exact_vs_reference and sum(int(s.sum()) for s in lava.spikes.values()) > 0
    reference = run_graph(deployment, few, backend="reference")
    assert all(np.array_equal(lava.spikes[n], reference.spikes[n]) for n in reference.spikes)
    with pytest.raises(UserError, match="stock lava-dl netx does not read"):
        run_graph(deployment, few, backend="lava", models="stock")
    run = run_cli("simulate", str(bundle.path), "--input", str(_saved(tmp_path, few)), "--lava-models", "stock")
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr


def _saved(folder: Path, x: np.ndarray) -> Path:
    path = folder / "x.npy"
    np.save(path, x.astype(np.float32))
    return path


def test_netx_files_keep_the_voltage_bias_and_read_the_current_bias_back(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    weight = rng.integers(-30, 31, (5, 6)).astype(np.int8)
    bias = rng.integers(-200, 200, 5).astype(np.int32)
    layer = FixedPointLayer("dense", (6,), (5,), weight, None, bias, (1, 1), (0, 0), 1024, 512, 90)
    for site in ("voltage", "current"):
        path = tmp_path / f"{site}.net"
        write_segment(path, [dataclasses.replace(layer, bias_site=site)])
        with h5py.File(path, "r") as f:
            assert sorted(k for k in f["layer/1"] if "bias" in k) == ["bias" if site == "voltage" else "bias_current"]
        (back,) = read_segment(path)
        assert back.bias_site == site and np.array_equal(back.bias, bias)


@pytest.mark.parametrize("i_decay", [4096, 1024])
@pytest.mark.parametrize("kind", ["conv", "dense"])
def test_torch_backend_fast_paths_add_the_current_bias_exactly(kind: str, i_decay: int) -> None:
    """Constant and changing input, a current that persists (iDecay 1024) or not (4096, the drive-table
    path): torch == reference with the bias into the current, and the bias site changes the spikes."""
    rng = np.random.default_rng(5)
    if kind == "conv":
        shape, out, weight = (2, 6, 6), (3, 6, 6), rng.integers(-40, 41, (3, 2, 3, 3))
    else:
        shape, out, weight = (12,), (7,), rng.integers(-40, 41, (7, 12))
    bias = rng.integers(-60, 120, out[0]).astype(np.int32)
    layer = FixedPointLayer(kind, shape, out, weight.astype(np.int8), None, bias, (1, 1),
                            (1, 1) if kind == "conv" else (0, 0), i_decay, 700, 300, bias_site="current")
    changing = (rng.random((4, 10, *shape)) < 0.3).astype(np.uint8)
    constant = np.repeat(changing[:, :1], 10, axis=1)
    for x in (changing, constant):
        (want,) = run_segment_batch([layer], x)
        (got,) = run_torch([layer], x)
        assert np.array_equal(got, want) and 0 < want.mean() < 1
        if i_decay < 4096:  # with iDecay 4096 a current bias and a voltage bias are the same arithmetic
            (voltage,) = run_segment_batch([dataclasses.replace(layer, bias_site="voltage")], x)
            assert not np.array_equal(voltage, want)


# -- the cost: the bias axons' spikes and synaptic operations ------------------------------------------

def test_bias_axon_counts_by_hand() -> None:
    """bias_mant [300, 0, -5]: ceil(300 / 127) = 3 axons, each spiking every step and reaching the 2 neurons
    with a nonzero bias: per step 3 spikes and 6 synaptic operations, on top of the input's."""
    assert [bias_axons(np.array(b)) for b in ([0, 0], [127, -3], [-128], [300, 0, -5])] == [0, 1, 2, 3]
    events = np.array([[1, 0], [0, 0], [1, 1], [0, 1]])
    spikes = np.zeros((4, 3), np.uint8)
    plain = chip_layer_counts("l", "dense", events, spikes, (3, 2), 0)
    biased = chip_layer_counts("l", "dense", events, spikes, (3, 2), 0, current_bias=np.array([300, 0, -5]))
    assert plain.synops_per_step == [3, 0, 6, 3] and biased.synops_per_step == [9, 6, 12, 9]
    assert (biased.bias_axon_spikes, biased.bias_axon_synops, biased.synops) == (12, 24, 36)
    assert biased.spikes == 0 and biased.input_events == plain.input_events == 4
    # wide weights: the bias on wide axons (up to 16319 each), two synaptic operations a connection
    assert [bias_axons(np.array(b), 2) for b in ([0], [16319], [16320, -3], [300 * 128])] == [0, 1, 2, 3]
    wide = chip_layer_counts("l", "dense", events, spikes, (3, 2), 0, current_bias=np.array([300 * 128, 0, -5]),
                             synapses_per_connection=2)
    assert wide.bias_axon_spikes == 4 * 3 and wide.bias_axon_synops == 4 * 3 * 2 * 2
    assert wide.synops == 2 * 12 + wide.bias_axon_synops


def test_profile_prices_the_bias_axons(tmp_path: Path) -> None:
    """Input(2) -> Affine (biases 0.25, 0, -0.5) -> CubaLIF(3) -> Output: the profile counts, per sample
    step, ceil(max|bias_mant| / 127) axon spikes and that many synaptic operations per nonzero bias (2),
    and the chip's dynamic energy includes them."""
    weight = np.array([[0.5, 0.0], [0.0, 0.5], [0.25, 0.25]])
    three = np.ones(3)
    graph = nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([2])}),
        "syn": nir.Affine(weight=weight, bias=np.array([0.25, 0.0, -0.5])),
        "lif": nir.CubaLIF(tau_syn=2e-3 * three, tau_mem=4e-3 * three, r=4.0 * three, v_leak=0 * three,
                           v_threshold=three, v_reset=0 * three, w_in=2.0 * three),
        "output": nir.Output(output_type={"output": np.array([3])})},
        edges=[("input", "syn"), ("syn", "lif"), ("lif", "output")])
    bundle = convert(graph, tmp_path / "bundle", dt=1e-3, weights="8")
    (part,) = [p for p in bundle.deployment.parts if isinstance(p, ChipPart)]
    (layer,) = part.layers
    assert layer.bias_site == "current" and np.count_nonzero(layer.bias) == 2
    axons = -(-int(np.abs(layer.bias).max()) // 127)
    x = np.zeros((1, 5, 2))
    x[0, [0, 2], 0] = 1  # 2 input events, each reaching the 3 neurons
    summary, _ = profile_graph(bundle, x, backend="reference", hw=["loihi"])
    (counts,) = summary["layers"]
    assert counts["bias_axon_spikes"] == 5 * axons and counts["bias_axon_synops"] == 5 * axons * 2
    assert counts["synops"] == 2 * 3 + 5 * axons * 2 and counts["input_events"] == 2
    expected = counts["synops"] * (23.6e-12 + 3.5e-12) + 3 * 5 * 81e-12
    assert summary["energy_j"]["loihi"]["snn_dynamic"] == pytest.approx(expected, rel=1e-9)
