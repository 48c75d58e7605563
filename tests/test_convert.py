"""neurodeploy convert: the bundle, the quantization, the NIR side, and bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from neurodeploy.bundle import DIGEST_FIELD, Bundle, manifest_digest
from neurodeploy.checkpoint import save_checkpoint
from neurodeploy.conversion import convert
from neurodeploy.converters.nir_io import read_nir, write_nir_graph
from neurodeploy.errors import UserError
from neurodeploy.lif_mapping import map_lif
from neurodeploy.model import LIFConfig, ModelConfig
from neurodeploy.quantize import VTH_MAX, quantize_layer

from .conftest import TINY, run_cli, tiny_model


def test_bundle_has_every_file_and_a_manifest_that_verifies(tiny_bundle: Path) -> None:
    bundle = Bundle.load(tiny_bundle)
    assert set(os.listdir(tiny_bundle)) == {"snn.net", "snn.nir", "host.pt", "manifest.json"}
    m = bundle.manifest
    assert m["timesteps"] == TINY.timesteps and m["input"]["encoding"] == "constant"
    assert m["lava"] == {"input_message_bits": 8, "reset_interval": 5, "reset_offset": 1,
                         "steps_per_image": 5, "output_delay_steps": 1}
    assert set(m["versions"]) >= {"torch", "norse", "lava-nc", "lava-dl"}
    assert m["source"]["kind"] == "checkpoint" and len(m["source"]["sha256"]) == 64
    assert bundle.layer.input_shape == (4, 26, 26)  # tile 24 plus a halo of 1 each side
    host = bundle.host_model()
    assert sum(p.numel() for p in host.parameters()) > 0


def test_snn_net_loads_in_netx(tiny_bundle: Path) -> None:
    from lava.lib.dl.netx.hdf5 import Network

    net = Network(str(tiny_bundle / "snn.net"), input_message_bits=8, reset_interval=5, reset_offset=1)
    assert net.inp.shape == (26, 26, 4) and net.out.shape == (26, 26, TINY.snn_channels)


def test_quantization_follows_the_lif_mapping() -> None:
    lif = LIFConfig(tau_syn_inv=200.0, tau_mem_inv=100.0, v_th=1.0)
    weight = np.random.default_rng(0).normal(0, 0.3, size=(4, 2, 3, 3))
    q = quantize_layer("layer", weight, lif, payload_max=255)
    a, b = map_lif(lif).voltage_decay, map_lif(lif).current_decay
    s = q.weight_scale
    assert q.i_decay == round(b * 4096) and q.v_decay == round(a * 4096)
    assert q.vth_mant == round(1.0 * s * 255 / a) <= VTH_MAX
    assert np.array_equal(q.weight, np.clip(np.rint(weight * s), -128, 127))
    # no input in [0, 255] can wrap the state: the largest conv output, found by brute force
    # over the extreme inputs (all 255 where a weight is positive or all where it is negative)
    w = q.weight.astype(np.int64).reshape(4, -1)
    worst = max(int((w * (w > 0) * 255).sum(1).max()), int((-w * (w < 0) * 255).sum(1).max()))
    assert worst == q.max_current and (worst << 6) * 4096 / q.i_decay < 2**23
    # the refinement beyond powers of two never loses to the best power of two that fits
    powers = [quantize_layer("layer", weight, lif, payload_max=255, scale=2.0**e) for e in range(-8, 25)]
    fitting = [p.weight_error for p in powers if not p.warnings]
    assert fitting and q.weight_error <= min(fitting) and not q.warnings
    # a step further up the scale would break the state bound, the threshold's 17 bits or saturate
    up = quantize_layer("layer", weight, lif, payload_max=255, scale=s * 2 ** (1 / 32))
    assert up.warnings or up.weight_error >= q.weight_error


def test_saturation_and_zero_threshold_are_warnings_naming_the_layer() -> None:
    weight = np.zeros((2, 1, 3, 3))
    weight[0, 0, 1, 1] = 50.0  # an outlier that saturates at any useful exponent
    weight[1, 0, 0, 0] = 0.01
    q = quantize_layer("snn.conv", weight, LIFConfig(v_th=1.0), payload_max=1, scale=64.0)
    assert any("snn.conv" in w and "saturate" in w for w in q.warnings)
    tiny_threshold = quantize_layer("snn.conv", weight, LIFConfig(v_th=1e-9), payload_max=1, scale=1.0)
    assert any("threshold rounds to zero" in w for w in tiny_threshold.warnings)


def test_snn_nir_round_trips_through_nir_read(tiny_bundle: Path) -> None:
    import nir

    graph = nir.read(tiny_bundle / "snn.nir")
    assert {type(n).__name__ for n in graph.nodes.values()} == {"Input", "Conv2d", "CubaLIF", "Output"}
    stage = read_nir(tiny_bundle / "snn.nir")
    model = tiny_model()
    assert np.allclose(stage.weight, model.snn.layers[0].conv.weight.detach().numpy(), atol=1e-6)
    assert stage.lif == TINY.lif and stage.tau_convention == "seconds"


def test_a_norse_lif_nir_file_converts_with_its_tau_convention_recognised(tmp_path: Path) -> None:
    import norse.torch as norse
    from norse.torch.utils.export_nir import to_nir

    torch.manual_seed(0)
    lif = LIFConfig(tau_syn_inv=200.0, tau_mem_inv=100.0)
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 5, 3, padding=1), norse.LIFCell(p=lif.norse_parameters()))
    with torch.no_grad():
        net[0].bias.zero_()
    graph = to_nir(net, torch.zeros(1, 2, 12, 10))
    path = tmp_path / "norse.nir"
    write_nir_graph(graph, path)  # Norse 1.1 leaves fields nir.write needs unset
    stage = read_nir(path)
    assert stage.tau_convention == "norse-1.1"  # Norse 1.1 stores dt / tau_inv
    assert stage.lif.tau_mem_inv == pytest.approx(100.0) and stage.lif.tau_syn_inv == pytest.approx(200.0)
    # a .nir converts to a graph bundle (format 2); the graph reader recognises the same convention
    bundle = convert(path, tmp_path / "nir.bundle", dt=1e-3)
    assert bundle.manifest["tau_convention"] == "norse-1.1"
    (lif_layer,) = [layer for s in bundle.manifest["segments"] if s["place"] == "chip" for layer in s["layers"]]
    assert "neuron" in lif_layer
    with pytest.raises(UserError, match="tau_mem"):  # told it is seconds, it is no Euler step
        convert(path, tmp_path / "s.bundle", dt=1e-3, tau_convention="seconds")
    assert not (tmp_path / "s.bundle").exists()


def test_nir_graph_with_an_unsupported_layer_is_a_one_line_error(tmp_path: Path) -> None:
    import nir

    graph = nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([3])}),
               "lin": nir.Linear(weight=np.ones((2, 3))),
               "output": nir.Output(output_type={"output": np.array([2])})},
        edges=[("input", "lin"), ("lin", "output")])
    path = tmp_path / "linear.nir"
    nir.write(path, graph)
    result = run_cli("convert", str(path), "-o", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "Linear" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


def _bad_inputs(tmp_path: Path) -> dict[str, Path]:
    class RunsCode:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    cases = {}
    cases["not a checkpoint"] = tmp_path / "text.pt"
    cases["not a checkpoint"].write_text("this is not a model\n")
    cases["runs code"] = tmp_path / "evil.pt"
    torch.save({"format": "neurodeploy-checkpoint", "payload": RunsCode()}, cases["runs code"])
    cases["other architecture"] = tmp_path / "other.pt"
    other = ModelConfig(snn_channels=6, cnn_channels=(8, 8, 8, 8), timesteps=4)
    model = tiny_model()
    save_checkpoint(cases["other architecture"], model)
    ckpt = torch.load(cases["other architecture"], weights_only=True)
    ckpt["model_config"] = other.to_dict() | {"snn_channels": 7}
    torch.save(ckpt, cases["other architecture"])
    cases["missing keys"] = tmp_path / "missing.pt"
    torch.save({"format": "neurodeploy-checkpoint", "version": 1}, cases["missing keys"])
    return cases


@pytest.mark.parametrize("case", ["not a checkpoint", "runs code", "other architecture", "missing keys"])
def test_bad_model_files_are_one_line_errors_and_leave_no_bundle(tmp_path: Path, case: str) -> None:
    path = _bad_inputs(tmp_path)[case]
    out = tmp_path / "bundle"
    result = run_cli("convert", str(path), "-o", str(out))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in result.stderr
    assert not out.exists() and not (tmp_path / "pwned").exists()
    assert not any(p.name.startswith(".bundle") for p in tmp_path.iterdir())


def test_an_existing_bundle_is_replaced_only_with_force_and_nothing_else_ever(tmp_path: Path,
                                                                             tiny_checkpoint: Path) -> None:
    out = tmp_path / "b.bundle"
    assert run_cli("convert", str(tiny_checkpoint), "-o", str(out), "--tile", "16").returncode == 0
    again = run_cli("convert", str(tiny_checkpoint), "-o", str(out), "--tile", "18")
    assert again.returncode == 2 and "--force" in again.stderr and "force=True" not in again.stderr
    assert Bundle.load(out).layer.input_shape == (4, 18, 18)  # still the tile-16 bundle
    result = run_cli("convert", str(tiny_checkpoint), "-o", str(out), "--tile", "20", "--force")
    assert result.returncode == 0, result.stderr
    assert Bundle.load(out).layer.input_shape == (4, 22, 22)
    # a folder of the user's, or a plain file, is never replaced, --force or not
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    notes = tmp_path / "notes.txt"
    notes.write_text("notes")
    for target in (mine, notes):
        refused = run_cli("convert", str(tiny_checkpoint), "-o", str(target), "--tile", "16", "--force")
        assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
        assert "Traceback" not in refused.stderr
    assert (mine / "keep.txt").read_text() == "mine" and notes.read_text() == "notes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.bundle", "mine", "notes.txt", "tiny.pt"]


def test_api_errors_name_python_arguments(tmp_path: Path, tiny_checkpoint: Path) -> None:
    out = tmp_path / "b.bundle"
    convert(tiny_checkpoint, out, tile=16)
    with pytest.raises(UserError) as caught:
        convert(tiny_checkpoint, out, tile=16)
    assert "force=True" in str(caught.value) and "--force" not in str(caught.value)
    assert "--force" in caught.value.cli_message


def test_a_tampered_bundle_is_refused(tiny_bundle: Path) -> None:
    with open(tiny_bundle / "snn.net", "r+b") as handle:
        handle.seek(-8, os.SEEK_END)
        handle.write(b"tampered")
    with pytest.raises(UserError, match=r"snn\.net does not match the sha256"):
        Bundle.load(tiny_bundle)


def test_a_manifest_pointing_outside_the_bundle_is_refused(tiny_bundle: Path) -> None:
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    manifest["files"]["../../etc/passwd"] = "0" * 64
    manifest[DIGEST_FIELD] = manifest_digest(manifest)  # as someone who knows the format would
    (tiny_bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="outside the bundle"):
        Bundle.load(tiny_bundle)
