"""Bundle format 2: a NIR graph -> convert -> Bundle.load -> stock netx -> simulate --input, reference and Lava.

The networks are the snnTorch LIF MLP and the Sinabs conv net of
tests/test_chip_segments.py, and that Sinabs net with a middle neuron kept on
the host (two chip segments with a host segment between them). Inputs are
seeded binary spikes.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import nir
import numpy as np
import pytest
import torch

from neurodeploy.bundle.format import Bundle
from neurodeploy.bundle.manifest import manifest_digest
from neurodeploy.errors import UserError
from neurodeploy.inpainter.conversion import convert
from neurodeploy.runtime.graph_run import fidelity, read_input, run_graph

from .conftest import run_cli
from .test_chip_segments import _mlp_net, _sinabs_net

SAMPLES, STEPS = 3, 8
CASES = {  # graph builder, dt, nodes kept on the host, input shape
    "mlp": (_mlp_net, 1e-4, (), (20,)),
    "sinabs": (_sinabs_net, None, (), (2, 16, 16)),
    "sinabs_host_cut": (_sinabs_net, None, ("4",), (2, 16, 16)),
}


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """Each case converted from a .nir file, with its input X (N, T, *shape) saved as .npy."""
    root = tmp_path_factory.mktemp("graph_bundles")
    out = {}
    for i, (name, (build, dt, host, shape)) in enumerate(CASES.items()):
        _, graph = build()
        graph.infer_types()
        nir.write(root / f"{name}.nir", graph)
        # stock netx files: these tests load them in stock netx and run its models (loihi2's too)
        convert(root / f"{name}.nir", root / f"{name}.bundle", dt=dt, host=host, stock_netx=True)
        x = (np.random.default_rng(i).random((SAMPLES, STEPS, *shape)) < 0.4).astype(np.float32)
        np.save(root / f"{name}.npy", x)
        out[name] = (root / f"{name}.bundle", root / f"{name}.npy")
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_convert_writes_format_2_and_every_segment_loads_in_stock_netx(converted, case: str) -> None:
    from neurodeploy.runtime.lava import compat as _lava_compat

    _lava_compat.import_lava()  # Lava's own Python 3.11 fix, nothing of netx
    from lava.lib.dl.netx.hdf5 import Network

    path, _ = converted[case]
    bundle = Bundle.load(path)
    m = bundle.manifest
    assert bundle.kind == "graph" and m["format_version"] == 2
    chips = [(k, s) for k, s in enumerate(m["segments"]) if s["place"] == "chip"]
    assert set(m["files"]) == {"graph.nir", "host.pt", *(f"segment_{k}.net" for k, _ in chips)}
    assert len(chips) == (2 if case == "sinabs_host_cut" else 1)
    for _, segment in chips:
        depth = len(segment["layers"])
        net = Network(str(path / segment["file"]), input_message_bits=segment["lava"]["input_message_bits"],
                      reset_interval=STEPS + depth, reset_offset=1)
        assert len(net.layers) == depth
        for layer in segment["layers"]:
            assert {"name", "kind", "input_shape", "output_shape", "quantization", "neuron", "mapping"} <= set(layer)
            assert layer["mapping"]["threshold_per_unit"] == pytest.approx(1.0, rel=1e-5)
    directions = [(c["direction"], c["payload"]) for c in m["cuts"]]
    assert directions[0] == ("host->chip", "spikes") and directions[-1] == ("chip->host", "spikes")
    if case == "sinabs_host_cut":  # IF 4 runs on the host: its spikes go back to the chip as spikes
        assert [s["place"] for s in m["segments"]] == ["host", "chip", "host", "chip", "host"]
        assert m["segments"][2]["nodes"] == ["2", "3", "4"] and len(directions) == 4
    host = torch.load(path / "host.pt", weights_only=True)
    assert set(host["nodes"]) == set(m["host_nodes"])


@pytest.mark.parametrize("backend", ["reference", "lava"])
@pytest.mark.parametrize("case", list(CASES))
def test_simulate_runs_the_graph_aligned_and_reports_fidelity(converted, case: str, backend: str,
                                                              tmp_path: Path) -> None:
    path, x_path = converted[case]
    out, doc = tmp_path / "out.npz", tmp_path / "sim.json"
    run = run_cli("simulate", str(path), "--input", str(x_path), "-o", str(out), "--json", str(doc),
                  "--backend", backend)
    assert run.returncode == 0, run.stderr
    output = np.load(out)["output"]
    assert output.shape == (SAMPLES, STEPS, 10 if case.startswith("sinabs") else 5)
    f = json.loads(doc.read_text())["fidelity"]
    assert {"exact_vs_reference", "spike_f1", "spike_precision", "spike_recall", "spike_f1_pm1", "rate_correlation",
            "count_error", "cell_agreement_vs_float", "layers", "output_agreement_vs_float", "output_ties",
            "cuts", "warnings"} <= set(f)
    assert all(c["clipped"] == 0 for c in f["cuts"]) and "clipped" not in run.stderr
    assert f["exact_vs_reference"] is True
    assert [layer["name"] for layer in f["layers"]] == list(Bundle.load(path).deployment.chip_layers)
    assert f["layers"][0]["spike_f1"] >= 0.9, f  # 3 samples of 8 steps: one spike is 6 %
    assert f["spike_f1"] >= 0.9 and 0 <= f["output_agreement_vs_float"] <= 1, f
    assert output.sum() > 0
    # aligned: the output is the reference run's, step for step (Lava's per-layer delays removed)
    bundle = Bundle.load(path)
    x = read_input(x_path, bundle.deployment)
    assert np.array_equal(output, run_graph(bundle.deployment, x, "reference").output)


def test_graded_input_goes_to_the_chip_as_8_bit_payloads(tmp_path: Path) -> None:
    _, graph = _mlp_net()
    bundle = convert(graph, tmp_path / "graded.bundle", dt=1e-4, payload="graded")
    chip = bundle.manifest["segments"][1]
    assert chip["input"]["payload"] == "graded" and chip["lava"]["input_message_bits"] == 8
    assert chip["layers"][0]["quantization"]["payload_max"] == 255
    x = np.random.default_rng(5).integers(0, 256, (16, STEPS, 20)) / 255.0  # exact 8-bit values
    run = run_graph(bundle.deployment, x, "reference")
    f = fidelity(bundle.deployment, x, run)
    assert f["layers"][0]["spike_f1"] >= 0.95 and run.spikes["1"].sum() > 0, f


# -- refusals -------------------------------------------------------------------------------------

def _redigest(path: Path, edit) -> None:
    manifest = json.loads((path / "manifest.json").read_text())
    edit(manifest)
    manifest["manifest_sha256"] = manifest_digest(manifest)
    (path / "manifest.json").write_text(json.dumps(manifest))


def test_unknown_versions_and_incomplete_manifests_are_refused_in_one_line(converted, tiny_bundle: Path,
                                                                            tmp_path: Path) -> None:
    import shutil

    graph_copy = tmp_path / "v3.bundle"
    shutil.copytree(converted["mlp"][0], graph_copy)
    _redigest(graph_copy, lambda m: m.update(format_version=4))
    with pytest.raises(UserError, match=r"format 4.*re-convert") as info:
        Bundle.load(graph_copy)
    assert "\n" not in str(info.value)
    _redigest(tiny_bundle, lambda m: m.pop("tile"))  # an inpainter manifest missing a field
    with pytest.raises(UserError, match="missing the field 'tile'") as info:
        Bundle.load(tiny_bundle)
    assert "\n" not in str(info.value)
    _redigest(graph_copy, lambda m: m.update(format_version=3))  # a graph manifest read as an inpainter's
    with pytest.raises(UserError, match="missing the field"):
        Bundle.load(graph_copy)
    segment = converted["sinabs"][0] / "segment_1.net"
    broken = tmp_path / "tampered.bundle"
    shutil.copytree(converted["sinabs"][0], broken)
    data = bytearray(segment.read_bytes())
    data[-1] ^= 1
    (broken / "segment_1.net").write_bytes(bytes(data))
    with pytest.raises(UserError, match=r"segment_1\.net does not match"):
        Bundle.load(broken)


def test_bad_inputs_exit_2_before_any_work_and_write_nothing(converted, tmp_path: Path) -> None:
    path, _ = converted["mlp"]
    deployment = Bundle.load(path).deployment
    with pytest.raises(UserError, match=r"--input X\.npy"):  # the inpainter's --image path refuses a graph
        Bundle.load(path).require("inpainter")
    cases = {
        "shape": (np.zeros((2, STEPS, 21)), "has shape"),
        "negative": (-np.ones((2, STEPS, 20)), "negative"),
    }
    for name, (x, words) in cases.items():
        np.save(tmp_path / f"{name}.npy", x)
        out = tmp_path / f"{name}-out.npz"
        run = run_cli("simulate", str(path), "--input", str(tmp_path / f"{name}.npy"), "-o", str(out),
                      "--json", str(tmp_path / f"{name}.json"))
        assert run.returncode == 2 and words in run.stderr, run.stderr
        assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr
        assert not out.exists() and not (tmp_path / f"{name}.json").exists()
    others = {"nan": np.full((1, STEPS, 20), np.nan), "graded": np.full((1, STEPS, 20), 0.5),
              "rank": np.zeros((STEPS, 20))}
    for name, x in others.items():
        np.save(tmp_path / f"{name}.npy", x)
        with pytest.raises(UserError):
            read_input(tmp_path / f"{name}.npy", deployment)
    np.savez(tmp_path / "keyed.npz", input=np.ones((1, 2, 20)))
    assert read_input(tmp_path / "keyed.npz", deployment).shape == (1, 2, 20)
    np.savez(tmp_path / "other.npz", x=np.ones((1, 2, 20)))
    (tmp_path / "text.csv").write_text("1,2\n")
    for bad in ("other.npz", "text.csv"):
        with pytest.raises(UserError):
            read_input(tmp_path / bad, deployment)
    (tmp_path / "notes.npz").write_text("mine")
    run = run_cli("simulate", str(path), "--input", str(tmp_path / "keyed.npz"), "-o", str(tmp_path / "notes.npz"))
    assert run.returncode == 2 and (tmp_path / "notes.npz").read_text() == "mine"
    # Loihi 2 is a backend for graphs too: without lava-loihi, one line naming it, nothing written
    run = run_cli("simulate", str(path), "--input", str(tmp_path / "keyed.npz"), "-o", str(tmp_path / "l2.npz"),
                  "--backend", "loihi2")
    assert run.returncode == 2 and "lava-loihi" in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "l2.npz").exists()


def test_an_in_memory_norse_graph_converts_and_runs(tmp_path: Path) -> None:
    """Norse 1.1's graph as its exporter returns it: torch tensors, 0-d neuron parameters (which nir.write
    cannot store), a batch axis on the Input, tau in Norse's units."""
    import norse.torch as norse

    torch.manual_seed(0)
    net = norse.SequentialState(torch.nn.Linear(6, 4), norse.LIFBoxCell())
    with torch.no_grad():
        net[0].weight.mul_(8.0)
    bundle = convert(norse.to_nir(net, torch.rand(1, 6), dt=1e-3), tmp_path / "norse.bundle", dt=1e-3)
    assert bundle.manifest["tau_convention"] == "norse-1.1"
    x = (np.random.default_rng(0).random((4, 12, 6)) < 0.5).astype(np.float32)
    run = run_graph(Bundle.load(tmp_path / "norse.bundle").deployment, x, "reference")
    f = fidelity(bundle.deployment, x, run)
    assert run.output.shape == (4, 12, 4) and run.output.sum() > 0
    assert f["spike_f1"] >= 0.95, f


# -- host -> chip cuts with graded values -----------------------------------------------------------

def _scaled_graph(gain: float) -> nir.NIRGraph:
    """Input (6 spikes) -> Scale(gain) on the host -> Linear -> IF -> Linear -> IF on the chip: the chip
    reads the Scale's values, 0 or ``gain``, as 8-bit graded payloads (values above 1 are clipped)."""
    rng = np.random.default_rng(3)
    return nir.NIRGraph(
        nodes={"input": nir.Input(np.array([6])), "scale": nir.Scale(np.full(6, gain)),
               "fc1": nir.Linear(rng.normal(0, 1, (8, 6))), "if1": nir.IF(np.ones(8), np.full(8, 0.5)),
               "fc2": nir.Linear(rng.normal(0, 1, (4, 8))), "if2": nir.IF(np.ones(4), np.full(4, 0.5)),
               "output": nir.Output(np.array([4]))},
        edges=[("input", "scale"), ("scale", "fc1"), ("fc1", "if1"), ("if1", "fc2"), ("fc2", "if2"),
               ("if2", "output")])


def test_values_clipped_at_a_graded_host_to_chip_cut_are_counted_and_warned_once(tmp_path: Path) -> None:
    x = (np.random.default_rng(4).random((SAMPLES, STEPS, 6)) < 0.5).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    path, doc = tmp_path / "gain3.bundle", tmp_path / "sim.json"
    bundle = convert(_scaled_graph(3.0), path)  # 3·x: every spike is above 1
    assert [c["payload"] for c in bundle.manifest["cuts"] if c["direction"] == "host->chip"] == ["graded"]
    run = run_cli("simulate", str(path), "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "o.npz"),
                  "--json", str(doc), "--backend", "reference")
    assert run.returncode == 0, run.stderr
    (entry,) = json.loads(doc.read_text())["fidelity"]["cuts"]
    assert entry["node"] == "scale" and entry["payload"] == "graded" and entry["values"] == x.size
    assert entry["clipped"] == int(x.sum()) and entry["clipped_fraction"] == x.sum() / x.size
    assert run.stderr.count(f"{int(x.sum())} at scale") == 1, run.stderr  # warned once
    with pytest.warns(UserWarning, match=f"{int(x.sum())} at scale"):
        run_graph(bundle.deployment, x.astype(np.float64), "reference")
    quiet = convert(_scaled_graph(0.5), tmp_path / "gain05.bundle")  # 0.5·x: nothing to clip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clean = run_graph(quiet.deployment, x.astype(np.float64), "reference")
    assert [c["clipped"] for c in fidelity(quiet.deployment, x.astype(np.float64), clean)["cuts"]] == [0]
