"""Lava-DL's own netx networks in (issue 34): read as SLAYER writes them, run spike for spike as stock netx.

The files are written by :mod:`tests.netx_export` the way SLAYER's ``export_hdf5`` lays them out; stock
``lava.lib.dl.netx.hdf5.Network`` builds and runs each one in Lava (the execution the toolkit is checked
against), and the toolkit's reference and torch backends must give every layer's spikes, every step.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from neurodeploy.cli.main import app
from neurodeploy.converters.netx_in import read_layout, read_network, read_segment
from neurodeploy.converters.netx_io import FixedPointLayer, write_segment
from neurodeploy.errors import UserError
from neurodeploy.runtime.lava.netx_stock import run_stock
from neurodeploy.runtime.netx_run import read_frames, run_netx, run_netx_pipelined, run_netx_spikes
from tests.netx_export import edit, write_slayer_net

from .conftest import run_cli


def _frame(network, seed: int) -> np.ndarray:
    """A frame's bias mantissas through the file's input transform (weight·x + bias, x in [-1, 1])."""
    x = np.random.default_rng(seed).uniform(-1.0, 1.0, size=network.input.shape)
    return network.input.bias_mant(x)


@pytest.mark.parametrize("recurrent", [False, True], ids=["dense", "dense_rec"])
def test_slayer_export_runs_spike_for_spike_as_stock_netx(tmp_path: Path, recurrent: bool) -> None:
    path = write_slayer_net(tmp_path / "net.net", seed=3, recurrent=recurrent)
    network = read_network(path)
    assert [layer.kind for layer in network.layers] == ["conv", "dense_rec" if recurrent else "dense", "dense"]
    bias = np.stack([_frame(network, 0), _frame(network, 1)])
    stock = run_netx(network, bias[:1], network.steps, "lava", path=path)
    for backend in ("reference", "torch"):
        ours = run_netx(network, bias, network.steps, backend)
        for k, (want, got) in enumerate(zip(stock, ours, strict=True)):
            assert np.array_equal(want[0], got[0]), f"{backend}: layer {k} differs from stock netx"
    for k, spikes in enumerate(stock):  # the comparison can fail: every layer fires, none saturates
        assert 0 < spikes.mean() < 0.9, f"layer {k} firing rate {spikes.mean():.3f}"
    # frames are independent: the second frame run alone gives what it gave in the batch
    alone = run_netx(network, bias[1:], network.steps, "reference")
    assert all(np.array_equal(a[0], b[1]) for a, b in zip(alone, ours, strict=True))


def test_records_are_the_files_integers(tmp_path: Path) -> None:
    network = read_network(write_slayer_net(tmp_path / "net.net", seed=5))
    conv, dense, out = network.layers
    assert network.input is not None and network.input.shape == (3, 12, 16) and network.steps == 12
    assert (network.input.i_decay, network.input.v_decay, network.input.vth_mant) == (4096, 512, 40)
    assert conv.weight.dtype == np.int8 and conv.weight.shape == (6, 3, 3, 5)
    assert (conv.stride, conv.padding, conv.output_shape) == ((2, 2), (1, 2), (6, 6, 8))
    assert dense.input_shape == (288,) and dense.output_shape == (20,)
    assert (dense.i_decay, dense.v_decay, dense.vth_mant) == (2048, 256, 80) and out.bias is None
    assert network.names == ("layer1_conv", "layer3_dense", "layer4_dense")
    assert np.array_equal(network.input.bias_mant(np.array([1.0, -1.0, 0.3])), [58, -38, 24])


@pytest.mark.parametrize(("key", "value", "says"), [
    ("layer/1/type", np.array([b"pool"], dtype="S10"), "layer 1: a 'pool' block, which lava-dl 0.6's netx"),
    ("layer/3/neuron/type", np.bytes_("SDNN"), "layer 3: sigma-delta (SDNN) neurons"),
    ("layer/3/neuron/type", np.bytes_("RF_PHASE"), "layer 3: neuron type 'RF_PHASE'"),
    ("layer/1/groups", np.int64(2), "layer 1: a grouped conv"),
    ("layer/3/delay", np.zeros(20), "layer 3: synaptic delays"),
    ("layer/4/weight", np.full((5, 20), 0.5, np.float32), "layer 4: weight holds non-integer values"),
    ("layer/4/weight", np.full((5, 20), 200.0, np.float32), "layer 4: weight spans [200, 200]"),
    ("layer/2", None, "layer 2: a dense block reads a (6, 6, 8) output without a flatten block"),
    ("layer/4/neuron", None, "layer 4: no neuron group"),
    ("layer/1/shape", np.array([6, 5, 8]), "layer 1: conv shape (6, 5, 8), its weights give (6, 6, 8)"),
])
def test_what_it_cannot_run_is_one_line_naming_the_layer(tmp_path: Path, key: str, value, says: str) -> None:
    path = write_slayer_net(tmp_path / "net.net", seed=0)
    if key == "layer/3/delay":
        with h5py.File(path, "a") as f:
            f[key] = value
    elif key == "layer/2":  # no flatten block: renumber the blocks after it
        with h5py.File(path, "a") as f:
            del f["layer/2"]
            f.move("layer/3", "layer/2")
            f.move("layer/4", "layer/3")
    else:
        edit(path, key, value)
    with pytest.raises(UserError) as caught:
        read_network(path)
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_not_a_netx_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "x.net"
    path.write_bytes(b"not hdf5")
    with pytest.raises(UserError, match="is not a readable netx network"):
        read_network(path)


def _photo(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.random.default_rng(seed).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    return path


README_COMMANDS = re.search(r"## A Lava-DL netx network.*?```sh\n(.*?)```",
                            (Path(__file__).resolve().parents[1] / "README.md").read_text(), re.DOTALL)


def test_the_readmes_netx_commands_run(tmp_path: Path) -> None:
    """Every command of the README's netx section, as written, on a SLAYER-layout network.net."""
    write_slayer_net(tmp_path / "network.net", seed=3)
    _photo(tmp_path / "frame.png", 0)
    _photo(tmp_path / "frames" / "a.png", 1)
    _photo(tmp_path / "frames" / "b.png", 2)
    assert README_COMMANDS is not None
    commands = [line.split("#")[0].split() for line in README_COMMANDS.group(1).splitlines() if line.strip()]
    assert len(commands) == 4
    for words in commands:
        assert words[0] == "neurodeploy"
        result = _in_process(tmp_path, words[1:])
        assert result.exit_code == 0, f"{words}: {result.output} {result.exception!r}"
    network = read_network(tmp_path / "network.net")
    saved = np.load(tmp_path / "spikes.npz")
    want = run_netx(network, read_frames(network.input, tmp_path / "frame.png")[1], network.steps, "reference")
    for name, spikes in zip((network.input_name, *network.names), want, strict=True):
        assert np.array_equal(saved[name], spikes)
    sim = json.loads((tmp_path / "sim.json").read_text())
    assert sim["exact_vs_reference"] is True and sim["steps"] == 12
    profile = json.loads((tmp_path / "profile.json").read_text())
    assert [layer["kind"] for layer in profile["layers"]] == ["input", "conv", "dense", "dense"]
    assert profile["layers"][0]["spikes"] == int(want[0].sum()) and profile["mapping"]["loihi2"]["cores"] >= 3


def _in_process(cwd: Path, args: list[str]):
    """``neurodeploy ARGS`` in this interpreter (the commands' own code, without a fresh start-up each)."""
    previous = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(app, args)
    finally:
        os.chdir(previous)


@pytest.mark.parametrize(("args", "says"), [
    (["simulate", "network.net", "--image", "bad.npy"], "not frames of the input layer's shape (3, 12, 16)"),
    (["profile", "network.net", "--image", "frame.png", "--steps", "0"], "--steps 0"),
    (["simulate", "pool.net", "--image", "frame.png"], "layer 1: a 'pool' block"),
    (["convert", "pool.net"], "layer 1: a 'pool' block"),
    (["profile", "network.net", "--input", "bad.npy"], "pass --image PHOTO"),
    (["simulate", "network.net", "--image", "frame.png", "--random-mask", "3"], "--random-mask is not an option"),
])
def test_bad_netx_input_is_refused_before_the_run(tmp_path: Path, args: list[str], says: str) -> None:
    write_slayer_net(tmp_path / "network.net", seed=3)
    edit(write_slayer_net(tmp_path / "pool.net", seed=3), "layer/1/type", np.array([b"pool"], dtype="S10"))
    _photo(tmp_path / "frame.png", 0)
    np.save(tmp_path / "bad.npy", np.zeros((2, 12, 16)))
    out = ["-o", "out.npz"] if args[0] == "simulate" else ["--json", "out.json"] if args[0] == "profile" else []
    result = _in_process(tmp_path, [*args, *out])
    assert isinstance(result.exception, UserError), result.output
    assert says in str(result.exception) and "\n" not in str(result.exception)
    assert not (tmp_path / "out.npz").exists() and not (tmp_path / "out.json").exists()


def test_the_command_line_says_it_in_one_line_with_exit_2(tmp_path: Path) -> None:
    edit(write_slayer_net(tmp_path / "pool.net", seed=3), "layer/1/type", np.array([b"pool"], dtype="S10"))
    _photo(tmp_path / "frame.png", 0)
    run = run_cli("profile", "pool.net", "--image", "frame.png", cwd=tmp_path)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines() == [
        "error: pool.net: layer 1: a 'pool' block, which lava-dl 0.6's netx does not build either; re-export the "
        "network with only the blocks listed in neurodeploy's README (conv, dense, dense_rec, flatten; CUBA neurons)"]


def test_layout_reads_sigma_delta_networks_that_run_refuses(tmp_path: Path) -> None:
    """read_layout gives the cost model every block's shapes, whatever its neuron (an SDNN export here)."""
    path = write_slayer_net(tmp_path / "sdnn.net", seed=1)
    for block in ("0", "1", "3", "4"):
        edit(path, f"layer/{block}/neuron/type", np.bytes_("SDNN"))
    layout = read_layout(path)
    assert [(b.name, b.kind, b.neuron) for b in layout] == [
        ("layer0_input", "input", "SDNN"), ("layer1_conv", "conv", "SDNN"), ("layer3_dense", "dense", "SDNN"),
        ("layer4_dense", "dense", "SDNN")]
    assert layout[1].weight_shape == (6, 3, 3, 5) and layout[1].output_shape == (6, 6, 8)
    assert layout[2].input_shape == (288,) and layout[3].weight_shape == (5, 20)
    with pytest.raises(UserError, match="layer 0: sigma-delta"):
        read_network(path)


def test_frames_from_npy_photo_and_folder(tmp_path: Path) -> None:
    network = read_network(write_slayer_net(tmp_path / "net.net", seed=0))
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 12, 16))
    np.save(tmp_path / "x.npy", x)
    names, bias = read_frames(network.input, tmp_path / "x.npy")
    assert names == ["x_0", "x_1"] and np.array_equal(bias, (48.0 * x + 10.0).astype(np.int32))
    rgb = np.zeros((12, 16, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 0, 255, 51  # p = 0, 1, 0.2: 2·48·p - 48 + 10
    (tmp_path / "frames").mkdir()
    Image.fromarray(rgb).save(tmp_path / "frames" / "f.png")
    names, bias = read_frames(network.input, tmp_path / "frames")
    assert names == ["f"] and bias.shape == (1, 3, 12, 16)
    assert [int(bias[0, c, 0, 0]) for c in range(3)] == [-38, 58, int(2 * 48 * (51 / 255) - 48 + 10)]


def test_an_input_layer_without_neurons_reads_spikes_as_stock_netx(tmp_path: Path) -> None:
    """netx's other input: layer/0 gives only the shape, spikes go into the first block (a source in Lava)."""
    path = write_slayer_net(tmp_path / "spikes.net", seed=4, recurrent=True)
    edit(path, "layer/0/neuron")
    network = read_network(path)
    assert network.input is None and network.input_shape == (3, 12, 16)
    x = (np.random.default_rng(0).random((2, 10, 3, 12, 16)) < 0.3).astype(np.uint8)
    stock = run_netx_spikes(network, x[:1], "lava", path=path)
    for backend in ("reference", "torch"):
        ours = run_netx_spikes(network, x, backend)
        for k, (want, got) in enumerate(zip(stock, ours, strict=True)):
            assert np.array_equal(want[0], got[0]), f"{backend}: layer {k + 1} differs from stock netx"
    assert all(0 < s.mean() < 0.9 for s in stock[:2])


def test_simulate_takes_spikes_for_a_network_without_input_neurons(tmp_path: Path) -> None:
    path = edit(write_slayer_net(tmp_path / "spikes.net", seed=4), "layer/0/neuron")
    x = (np.random.default_rng(1).random((3, 6, 3, 12, 16)) < 0.3).astype(np.uint8)
    np.save(tmp_path / "x.npy", x)
    result = _in_process(tmp_path, ["simulate", "spikes.net", "--input", "x.npy", "--backend", "torch",
                                    "-o", "out.npz"])
    assert result.exit_code == 0, f"{result.output} {result.exception!r}"
    saved = np.load(tmp_path / "out.npz")
    network = read_network(path)
    for name, want in zip(network.names, run_netx_spikes(network, x, "reference"), strict=True):
        assert np.array_equal(saved[name], want)
    refused = _in_process(tmp_path, ["simulate", "spikes.net", "--image", "x.npy"])
    assert isinstance(refused.exception, UserError) and "pass --input X.npy" in str(refused.exception)


def test_the_toolkits_own_segments_read_alike_by_both_readers(tmp_path: Path) -> None:
    """A segment file of neurodeploy convert (netx_io.write_segment) read by netx_in gives the same records."""
    rng = np.random.default_rng(2)
    layers = [
        FixedPointLayer("conv", (2, 9, 11), (4, 5, 6), rng.integers(-127, 128, (4, 2, 3, 3)).astype(np.int8), None,
                        rng.integers(-9, 9, 4).astype(np.int32), (2, 2), (1, 1), 3000, 900, 70),
        FixedPointLayer("dense_rec", (120,), (7,), rng.integers(-127, 128, (7, 120)).astype(np.int8),
                        rng.integers(-127, 128, (7, 7)).astype(np.int8), None, (1, 1), (0, 0), 4096, 0, 300),
    ]
    write_segment(tmp_path / "segment_0.net", layers)
    ours, theirs = read_network(tmp_path / "segment_0.net").layers, read_segment(tmp_path / "segment_0.net")
    for a, b in zip(ours, theirs, strict=True):
        for field in ("kind", "input_shape", "output_shape", "stride", "padding", "i_decay", "v_decay", "vth_mant"):
            assert getattr(a, field) == getattr(b, field), field
        assert all(np.array_equal(x, y) for x, y in zip(a.weights, b.weights, strict=True))
        assert (a.bias is None and b.bias is None) or np.array_equal(a.bias, b.bias)


def test_pipelined_counts_are_stock_netx_with_its_reset(tmp_path: Path) -> None:
    """What profile counts (one inference as frames run back to back) is stock netx in Lava with
    ``reset_interval`` = the steps per frame, as lava-dl's PilotNet benchmark runs it: block k, reset at its
    step k, gives at steps k .. k + T - 1 the pipelined run's T steps, spike for spike."""
    path = write_slayer_net(tmp_path / "net.net", seed=3, steps=8)
    edit(path, "layer/3/neuron/vThMant", 5000)  # a dense layer that does not fire every step
    network = read_network(path)
    bias = _frame(network, 0)
    steps, depth = network.steps, len(network.layers)
    stock = run_stock(path, network, bias, steps + depth, reset_interval=steps)
    ours = run_netx_pipelined(network, bias[None], steps, "torch")
    lava_steps = run_netx(network, bias[None], steps, "reference")
    for k, (want, got) in enumerate(zip(stock, ours, strict=True)):
        assert np.array_equal(want[k:k + steps], got[0]), f"layer {k} differs from stock netx with reset"
        assert 0 < got.mean() < 0.9, f"layer {k} firing rate {got.mean():.3f}"
    # the comparison can fail: without the reset (simulate's Lava steps) the deep layers fire otherwise
    assert not all(np.array_equal(a, b) for a, b in zip(ours, lava_steps, strict=True))


def test_profile_maps_the_input_layer_as_frames_run_back_to_back(tmp_path: Path) -> None:
    """``profile NET.net``: the bias-driven input layer gets its mapping row (neurons on cores, no synapses),
    the counts are the pipelined run's, the table's time per step is the back-to-back one."""
    path = write_slayer_net(tmp_path / "network.net", seed=3)
    _photo(tmp_path / "frame.png", 0)
    result = _in_process(tmp_path, ["profile", "network.net", "--image", "frame.png", "--hw", "loihi2",
                                    "--backend", "torch", "--json", "p.json"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "p.json").read_text())
    mapping = summary["mapping"]["loihi2"]
    network = read_network(path)
    assert [m["name"] for m in mapping["layers"]] == [network.input_name, *network.names]
    first = mapping["layers"][0]
    assert first["kind"] == "input" and first["cores"] >= 1 and first["synapse_bits_per_core"] == 0
    assert mapping["cores"] == sum(m["cores"] for m in mapping["layers"])
    spikes = run_netx_pipelined(network, read_frames(network.input, tmp_path / "frame.png")[1], network.steps,
                                "reference")
    assert [layer["spikes"] for layer in summary["layers"]] == [int(s.sum()) for s in spikes]
    assert summary["exact_vs_reference"] is True
    printed = " ".join(result.output.split())  # the terminal wraps the lines
    step, energy = summary["latency_s"]["loihi2"], summary["energy_j"]["loihi2"]
    assert f"s / step (back to back) {step['streaming_per_step']:.2e} (" in printed
    assert f"dynamic J {energy['snn_dynamic']:.2e} ({energy['snn_dynamic_band'][0]:.2e}-" in printed
