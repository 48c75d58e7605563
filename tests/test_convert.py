"""neurodeploy convert: the bundle, the quantization, the NIR side, and bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import nir
import numpy as np
import pytest
import torch

from neurodeploy.bundle.format import Bundle
from neurodeploy.bundle.manifest import DIGEST_FIELD, manifest_digest
from neurodeploy.chip.quantize import VTH_MAX, quantize_chip_layer
from neurodeploy.errors import UserError
from neurodeploy.inpainter.checkpoint import bundle_host_cnn, save_checkpoint
from neurodeploy.inpainter.conversion import convert
from neurodeploy.inpainter.model import HybridInpainter, LIFConfig, ModelConfig
from neurodeploy.inpainter.nir_stack import stack_graph, stack_weights

from .conftest import TINY, run_cli, tiny_model


def test_bundle_has_every_file_and_a_manifest_that_verifies(tiny_bundle: Path) -> None:
    bundle = Bundle.load(tiny_bundle)
    assert set(os.listdir(tiny_bundle)) == {"segment_0.net", "graph.nir", "host.pt", "manifest.json"}
    m = bundle.manifest
    assert bundle.kind == "inpainter" and m["format_version"] == 3
    assert m["timesteps"] == TINY.timesteps and m["input"]["encoding"] == "constant"
    assert [s["place"] for s in m["segments"]] == ["chip", "host"]
    assert m["segments"][0]["lava"] == {"input_message_bits": 8, "depth": 1, "reset_interval": 5, "reset_offset": 1,
                                        "steps_per_tile": 5, "output_delay_steps": 0}
    assert [c["direction"] for c in m["cuts"]] == ["host->chip", "chip->host"]
    assert set(m["versions"]) >= {"torch", "norse", "lava-nc", "lava-dl"}
    assert m["source"]["kind"] == "checkpoint" and len(m["source"]["sha256"]) == 64
    (layer,) = bundle.segment_layers
    assert layer.input_shape == (4, 26, 26)  # tile 24 plus a halo of 1 each side
    host = bundle_host_cnn(bundle)
    assert sum(p.numel() for p in host.parameters()) > 0


def test_the_segment_file_loads_in_netx(tiny_bundle: Path) -> None:
    from lava.lib.dl.netx.hdf5 import Network

    net = Network(str(tiny_bundle / "segment_0.net"), input_message_bits=8, reset_interval=5, reset_offset=1)
    assert net.inp.shape == (26, 26, 4) and net.out.shape == (26, 26, TINY.snn_channels)


def test_a_bundle_of_format_1_is_refused_with_re_convert(tiny_bundle: Path) -> None:
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    manifest["format_version"] = 1  # what neurodeploy wrote before the inpainter became a partition
    manifest[DIGEST_FIELD] = manifest_digest(manifest)
    (tiny_bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="bundle format 1") as caught:
        Bundle.load(tiny_bundle)
    assert "re-convert" in str(caught.value)


def _conv_layer(weight: np.ndarray, lif: LIFConfig):
    """A conv + LIF chip layer as the inpainter's conversion builds it (a NIR graph, partitioned)."""
    from neurodeploy.chip.partition import partition
    from neurodeploy.inpainter.model import SNNConv2d
    from neurodeploy.ir.nir_reader import read_graph

    c_out, c_in, kernel, _ = weight.shape
    layer = SNNConv2d(c_in, c_out, kernel, lif)
    with torch.no_grad():
        layer.conv.weight.copy_(torch.from_numpy(weight))
    graph = read_graph(stack_graph([layer], lif.dt, (c_in, 8, 8)), dt=lif.dt, tau_convention="seconds")
    (layer,) = partition(graph).layers
    return layer


def test_quantization_follows_the_lif_mapping() -> None:
    lif = LIFConfig(tau_syn_inv=200.0, tau_mem_inv=100.0, v_th=1.0)
    weight = np.random.default_rng(0).normal(0, 0.3, size=(4, 2, 3, 3))
    layer = _conv_layer(weight, lif)
    q = quantize_chip_layer(layer, payload_max=255)
    a, b = lif.dt * lif.tau_mem_inv, lif.dt * lif.tau_syn_inv
    s = q.weight_scale
    fixed = q.layer
    assert fixed.i_decay == round(b * 4096) and fixed.v_decay == round(a * 4096)
    assert fixed.vth_mant == round(1.0 * s * 255 / a) <= VTH_MAX  # Norse's v_th / a, times s·P
    assert np.array_equal(fixed.weight, np.clip(np.rint(weight.astype(np.float32) * s), -127, 127))
    # no input in [0, 255] can wrap the state: the largest conv output, found by brute force
    # over the extreme inputs (all 255 where a weight is positive or all where it is negative)
    w = fixed.weight.astype(np.int64).reshape(4, -1)
    worst = max(int((w * (w > 0) * 255).sum(1).max()), int((-w * (w < 0) * 255).sum(1).max()))
    assert worst == q.max_input and (worst << 6) * 4096 / fixed.i_decay < 2**23
    # the refinement beyond powers of two never loses to the best power of two that fits
    powers = [quantize_chip_layer(layer, payload_max=255, scale=2.0**e) for e in range(-8, 25)]
    fitting = [p.weight_error for p in powers if not p.warnings]
    assert fitting and q.weight_error <= min(fitting) and not q.warnings
    # a step further up the scale would break the state bound, the threshold's 17 bits or saturate
    up = quantize_chip_layer(layer, payload_max=255, scale=s * 2 ** (1 / 32))
    assert up.warnings or up.weight_error >= q.weight_error


def test_saturation_and_zero_threshold_are_warnings_naming_the_layer() -> None:
    weight = np.zeros((2, 1, 3, 3))
    weight[0, 0, 1, 1] = 50.0  # an outlier that saturates at any useful exponent
    weight[1, 0, 0, 0] = 0.01
    q = quantize_chip_layer(_conv_layer(weight, LIFConfig(v_th=1.0)), payload_max=1, scale=64.0)
    assert any("lif0" in w and "saturate" in w for w in q.warnings)
    tiny_threshold = quantize_chip_layer(_conv_layer(weight, LIFConfig(v_th=1e-9)), payload_max=1, scale=1.0)
    assert any("threshold mantissa 0" in w for w in tiny_threshold.warnings)


def test_graph_nir_holds_the_float_stack(tiny_bundle: Path) -> None:
    import nir

    graph = nir.read(tiny_bundle / "graph.nir")
    assert {type(n).__name__ for n in graph.nodes.values()} == {"Input", "Conv2d", "CubaLIF", "Output"}
    (weight,) = stack_weights(tiny_bundle / "graph.nir")
    model = tiny_model()
    assert np.allclose(weight, model.snn.layers[0].conv.weight.detach().numpy(), atol=1e-6)
    lif = graph.nodes["lif0"]
    assert np.allclose(lif.tau_mem, 1 / TINY.lif.tau_mem_inv) and np.allclose(lif.v_threshold, TINY.lif.v_th)


def test_a_stack_of_lif_convs_converts_to_one_chip_segment(tmp_path: Path) -> None:
    config = ModelConfig(**{**TINY.to_dict(), "cnn_strides": (1, 1, 1, 1, 1), "cnn_dilations": (1, 1, 1, 1, 1),
                            "spiking_layers": 3})
    torch.manual_seed(0)
    bundle = convert(HybridInpainter(config), tmp_path / "stack.bundle", tile=16)
    chip = bundle.manifest["segments"][0]
    assert [layer["name"] for layer in chip["layers"]] == ["lif0", "lif1", "lif2"]
    assert chip["input"]["payload"] == "graded" and chip["lava"]["depth"] == 3
    assert bundle.manifest["tile"]["halo"] == 3  # three 3x3 kernels
    assert [layer.input_shape for layer in bundle.segment_layers] == [(4, 22, 22), (6, 22, 22), (8, 22, 22)]
    assert [q["quantization"]["payload_max"] for q in chip["layers"]] == [255, 1, 1]


def test_the_twin_or_a_tile_off_the_stride_is_refused_in_one_line(tmp_path: Path) -> None:
    strided = ModelConfig(**{**TINY.to_dict(), "cnn_dilations": (1, 1, 1, 1, 1), "spiking_layers": 3})
    with pytest.raises(UserError, match="not a multiple of the spiking stage's stride 4"):
        convert(HybridInpainter(strided), tmp_path / "a", tile=18)
    twin = ModelConfig(**{**TINY.to_dict(), "spiking_layers": 0})
    with pytest.raises(UserError, match="all-CNN twin"):
        convert(HybridInpainter(twin), tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    bundle = convert(HybridInpainter(strided), tmp_path / "c", tile=16)
    assert bundle.manifest["tile"]["halo"] == 4  # radius 1 + 1 + 2 (a 3x3 kernel at stride 2), a multiple of 4
    assert [layer.output_shape for layer in bundle.segment_layers] == [(6, 24, 24), (8, 12, 12), (8, 6, 6)]


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
    assert Bundle.load(out).segment_layers[0].input_shape == (4, 18, 18)  # still the tile-16 bundle
    result = run_cli("convert", str(tiny_checkpoint), "-o", str(out), "--tile", "20", "--force")
    assert result.returncode == 0, result.stderr
    assert Bundle.load(out).segment_layers[0].input_shape == (4, 22, 22)
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
    with open(tiny_bundle / "segment_0.net", "r+b") as handle:
        handle.seek(-8, os.SEEK_END)
        handle.write(b"tampered")
    with pytest.raises(UserError, match=r"segment_0\.net does not match the sha256"):
        Bundle.load(tiny_bundle)


def test_a_manifest_pointing_outside_the_bundle_is_refused(tiny_bundle: Path) -> None:
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    manifest["files"]["../../etc/passwd"] = "0" * 64
    manifest[DIGEST_FIELD] = manifest_digest(manifest)  # as someone who knows the format would
    (tiny_bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="outside the bundle"):
        Bundle.load(tiny_bundle)


def write_nir_graph(graph: Any, path: str | os.PathLike[str]) -> None:
    """``nir.write`` a Conv2d -> CubaLIF graph from Norse 1.1's ``to_nir``, after repairs.

    Norse 1.1 gives the Input a batch axis, leaves the conv's ``input_shape``
    unset and gives the neuron 0-d parameters; ``nir.write`` and ``nir.read``
    need (C, H, W) types throughout, so those are filled in from the graph.
    """
    def array(value: Any) -> Any:
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        return value

    shape = None
    for node in graph.nodes.values():
        for key, value in list(vars(node).items()):
            setattr(node, key, array(value))
        if isinstance(node, nir.Input):
            dims = np.asarray(node.input_type["input"]).reshape(-1)
            if dims.size == 4 and dims[0] == 1:
                dims = dims[1:]
            node.input_type = {"input": dims}
            node.output_type = {"output": dims}
            shape = dims
    for node in graph.nodes.values():
        if isinstance(node, nir.Conv2d) and shape is not None:
            if node.input_shape is None:
                node.input_shape = np.asarray(shape[-2:])
            out = (np.asarray(node.weight).shape[0], *[int(x) for x in shape[-2:]])
            for other in graph.nodes.values():
                if isinstance(other, nir.CubaLIF):
                    for key in ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in"):
                        value = getattr(other, key)
                        if value is not None:
                            setattr(other, key, np.broadcast_to(np.asarray(value, np.float64).reshape(-1)[0]
                                                                if np.size(value) == 1 else value, out).copy())
                    other.input_type = {"input": np.array(out)}
                    other.output_type = {"output": np.array(out)}
                if isinstance(other, nir.Output):
                    other.input_type = {"input": np.array(out)}
                    other.output_type = {"output": np.array(out)}
    nir.write(path, graph)
