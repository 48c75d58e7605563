"""Faithful by default (issue 35): `convert` measures every chip layer's spike F1 on a probe and chooses its width.

What is checked, each able to fail: the default (``--weights auto``) mixes 8-bit
and wide layers within one segment, which the netx file, the reference, torch
and Lava backends and the cost model read per layer alike; a recurrent
snnTorch classifier with biases into a filtered current (as the NIR paper's
Braille net) deploys by default with every chip layer's local spike F1 >= 0.95
and the float graph's argmax, measured on inputs the probe never saw; a
layer whose weights span more than wide weights' 15 bits prints one warning
line naming the layer, its estimate and the remedy; ``--stock-netx`` writes
8-bit files that stock ``lava.lib.dl.netx`` loads and prints the 8-bit
estimate, and refuses a bias into the current in one line; ``--plan`` shows
the choice and writes nothing.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import nir
import numpy as np
import pytest
import torch

from neurodeploy.bundle.convert import convert_graph
from neurodeploy.bundle.deployment import ChipPart
from neurodeploy.chip.precision import probe_inputs
from neurodeploy.converters.netx_in import read_segment
from neurodeploy.cost.profile import graph_chip_layers, profile_graph
from neurodeploy.runtime.graph_run import fidelity, run_graph

from .conftest import run_cli
from .test_chip_segments import _binary, _sinabs_net


def _write(graph: nir.NIRGraph, path: Path) -> Path:
    graph.infer_types()
    nir.write(path, graph)
    return path


def _braille_like() -> nir.NIRGraph:
    """snnTorch: Linear with biases -> RSynaptic (a filtered current, alpha 0.6, all-to-all recurrence, reset to
    zero) -> Linear with biases -> Synaptic readout: the NIR paper's Braille classifier's form, exported by
    snnTorch (CubaLIF with biases into the current, as the paper's ``braille_noDelay_bias_zero.nir``)."""
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(1)
    n = 24
    net = torch.nn.Sequential(
        torch.nn.Linear(12, n),
        snn.RSynaptic(alpha=torch.full((n,), 0.6), beta=torch.full((n,), 0.9), threshold=torch.ones(n),
                      linear_features=n, all_to_all=True, init_hidden=True, reset_mechanism="zero"),
        torch.nn.Linear(n, 7),
        snn.Synaptic(alpha=torch.full((7,), 0.6), beta=torch.full((7,), 0.9), threshold=torch.ones(7),
                     init_hidden=True, reset_mechanism="zero", output=True))
    with torch.no_grad():
        net[0].weight.mul_(1.5)
        net[1].recurrent.weight.mul_(0.5)
        net[2].weight.mul_(2.0)
    return export_to_nir(net, torch.rand(12))


@pytest.fixture(scope="module")
def sinabs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("precision")
    path = _write(_sinabs_net()[1], root / "sinabs.nir")
    return path, root


def test_the_default_mixes_widths_in_one_segment_and_every_backend_and_the_cost_read_them(sinabs) -> None:
    """This small net reaches 0.98-0.998 at 8 bits on every layer: a target of 0.99 needs wide weights on some."""
    path, root = sinabs
    bundle = convert_graph(path, root / "auto.bundle", fidelity_target=0.99)
    (chip,) = [s for s in bundle.manifest["segments"] if s["place"] == "chip"]
    widths = [layer["fidelity"]["width"] for layer in chip["layers"]]
    assert set(widths) == {"8", "wide"}, widths  # 8 bits where they reach the target, wide where not
    for layer in chip["layers"]:
        f = layer["fidelity"]
        assert f["meets_target"] and f["local_spike_f1"] >= 0.99, f
        assert f["widths_tried"][0] == "8" and (f["width"] == "8") == (f["local_spike_f1_8bit"] >= 0.99), f
        assert layer["quantization"]["synapses_per_connection"] == (2 if f["width"] == "wide" else 1)
    assert bundle.manifest["fidelity"]["weights"] == "auto" and bundle.manifest["fidelity"]["warnings"] == []
    assert chip["lava"]["stock_netx"] is False
    back = read_segment(bundle.path / chip["file"])
    assert [layer.wide for layer in back] == [w == "wide" for w in widths]
    x = _binary((8, 12, 2, 16, 16), 0.3, seed=11).astype(np.float64)
    reference = run_graph(bundle.deployment, x, "reference", check=False)
    assert sum(int(s.sum()) for s in reference.spikes.values()) > 0
    for backend, n in (("torch", 8), ("lava", 2)):
        got = run_graph(bundle.deployment, x[:n], backend, check=False)
        for name, spikes in reference.spikes.items():
            assert np.array_equal(got.spikes[name], spikes[:n]), (backend, name)
    summary, _ = profile_graph(bundle, x[:2], backend="reference")
    infos, _, _ = graph_chip_layers(bundle.deployment, summary["layers"])
    assert [info.synapse_bits for info in infos] == [16 if w == "wide" else 8 for w in widths]
    eight = convert_graph(path, root / "eight.bundle", weights="8", fidelity_target=0.99)
    summary8, _ = profile_graph(eight, x[:2], backend="reference")
    # the first layer reads the same events in both: a wide connection is two synaptic operations
    first, first8 = summary["layers"][0], summary8["layers"][0]
    assert first["synops"] == (2 if widths[0] == "wide" else 1) * first8["synops"] > 0


def test_a_recurrent_snntorch_classifier_with_current_biases_deploys_faithfully_by_default(tmp_path: Path) -> None:
    """On random events the probe never saw (other seed, rates, length): every chip layer's local spike F1
    >= 0.95 and the deployed argmax is the float graph's on >= 95 % of the untied samples."""
    bundle = convert_graph(_braille_like(), tmp_path / "braille.bundle", dt=1e-4)
    rng = np.random.default_rng(5)
    x = (rng.random((40, 60, 12)) < rng.uniform(0.02, 0.3, (40, 1, 1))).astype(np.float64)
    run = run_graph(bundle.deployment, x, "reference", check=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fid = fidelity(bundle.deployment, x, run)
    assert [layer["name"] for layer in fid["layers"]] == list(bundle.deployment.chip_layers)
    for layer in fid["layers"]:
        assert layer["local"]["spike_f1"] >= 0.95, layer
    assert fid["output_ties"] < 0.25 * len(x), fid["output_ties"]
    assert fid["output_agreement_vs_float"] >= 0.95, fid["output_agreement_vs_float"]
    eight = convert_graph(_braille_like(), tmp_path / "eight.bundle", dt=1e-4, weights="8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fid8 = fidelity(eight.deployment, x, run_graph(eight.deployment, x, "reference", check=False))
    assert min(layer["local"]["spike_f1"] for layer in fid8["layers"]) < 0.95  # 8 bits alone would not do


def _unreachable() -> nir.NIRGraph:
    """One IF layer of 600 inputs: one weight 100 (never reached: it would need 100 steps), 599 of 0.002;
    the float neuron fires from the small ones (0.36 a step at rate 0.3, threshold 1), which round to 0 at
    every scale that keeps the largest weight (15 bits: 0.002·16319/100 = 0.33), so neither width reaches 0.95."""
    w = np.full((1, 600), 0.002)
    w[0, 0] = 100.0
    return nir.NIRGraph(
        nodes={"input": nir.Input(np.array([600])), "fc": nir.Linear(w),
               "if": nir.IF(r=np.ones(1), v_threshold=np.ones(1)), "output": nir.Output(np.array([1]))},
        edges=[("input", "fc"), ("fc", "if"), ("if", "output")])


def test_a_layer_that_misses_the_target_prints_one_warning_line(tmp_path: Path) -> None:
    path = _write(_unreachable(), tmp_path / "hard.nir")
    done = run_cli("convert", str(path), "-o", str(tmp_path / "hard.bundle"), "--dt", "1e-3")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if "below the target" in line]
    assert len(lines) == 1, done.stderr
    (line,) = lines
    assert line.startswith("warning: chip layer if: local spike F1 ") and "the other width: " in line, line
    assert "--calibrate" in line and "--host fc,if" in line, line
    estimate = float(line.split("local spike F1 ")[1].split()[0])
    manifest = (tmp_path / "hard.bundle" / "manifest.json").read_text()
    assert line.removeprefix("warning: ") in manifest
    assert estimate < 0.95


def test_stock_netx_writes_8_bit_files_stock_netx_loads_and_prints_the_estimate(sinabs) -> None:
    from lava.lib.dl.netx.hdf5 import Network

    path, root = sinabs
    out = root / "stock.bundle"
    done = run_cli("convert", str(path), "-o", str(out), "--stock-netx")
    assert done.returncode == 0, done.stderr
    assert "--stock-netx: 8-bit weights on every layer" in done.stdout
    import json

    manifest = json.loads((out / "manifest.json").read_text())
    (chip,) = [s for s in manifest["segments"] if s["place"] == "chip"]
    assert chip["lava"]["stock_netx"] is True
    assert all(layer["fidelity"]["width"] == "8" for layer in chip["layers"])
    for layer in chip["layers"]:  # the estimate printed is the one recorded
        assert f"{layer['fidelity']['local_spike_f1']:.3f}" in done.stdout
    missed = [layer for layer in chip["layers"] if not layer["fidelity"]["meets_target"]]
    assert len([line for line in done.stderr.splitlines() if "below the target" in line]) == len(missed)
    assert all("without --stock-netx" in w for w in manifest["fidelity"]["warnings"])
    net = Network(str(out / chip["file"]), input_message_bits=0, reset_interval=16, reset_offset=1)
    assert net.inp.shape == (16, 16, 2) and net.out.shape == (10,)


def test_stock_netx_refuses_a_bias_into_the_current_in_one_line(tmp_path: Path) -> None:
    path = _write(_braille_like(), tmp_path / "braille.nir")
    done = run_cli("convert", str(path), "-o", str(tmp_path / "b.bundle"), "--dt", "1e-4", "--stock-netx")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "bias enters the synaptic current" in done.stderr
    assert not (tmp_path / "b.bundle").exists()
    bad = run_cli("convert", str(path), "-o", str(tmp_path / "b.bundle"), "--dt", "1e-4", "--weights", "12")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "--weights" in bad.stderr


def test_plan_shows_each_layers_width_and_f1_and_writes_nothing(sinabs) -> None:
    path, root = sinabs
    before = sorted(p.name for p in root.iterdir())
    done = run_cli("convert", str(path), "--plan")
    assert done.returncode == 0, done.stderr
    assert "spike F1 on the probe" in done.stdout and "local F1 8-bit" in done.stdout
    assert "wide" in done.stdout and "nothing written" in done.stdout
    assert sorted(p.name for p in root.iterdir()) == before


def test_the_probe_is_seeded_and_of_the_inputs_type() -> None:
    spikes = probe_inputs((3, 4), "spikes")
    assert spikes.shape[2:] == (3, 4) and set(np.unique(spikes)) <= {0.0, 1.0}
    assert np.array_equal(spikes, probe_inputs((3, 4), "spikes"))
    graded = probe_inputs((5,), "graded")
    assert graded.min() >= 0 and graded.max() <= 1 and len(np.unique(graded)) > 100


def test_wide_weights_is_an_alias_of_weights_wide(sinabs) -> None:
    path, root = sinabs
    bundle = convert_graph(path, root / "alias.bundle", wide_weights=True)
    (part,) = [p for p in bundle.deployment.parts if isinstance(p, ChipPart)]
    assert all(layer.wide for layer in part.layers) and bundle.manifest["fidelity"]["weights"] == "wide"
    done = run_cli("convert", str(path), "-o", str(root / "cli.bundle"), "--weights", "wide")
    assert done.returncode == 0, done.stderr
    assert (root / "cli.bundle" / part.path.name).read_bytes() == part.path.read_bytes()
