"""Wide weights: two synapses per connection (a high byte at weight exponent 7, a low byte at 0), ~15 bits.

What is checked, each able to fail: the two bytes make the weight back; the
quantizer's wide scale keeps the state in range and rounds the weights 2^7
finer than 8 bits where the state allows; the netx file holds the bytes and
reads back the same layer, and stock netx refuses it in one line; the
reference, torch and Lava backends compute one integer arithmetic on a wide
bundle (feed-forward and recurrent); on Sinabs's four integrate-and-fire layers (where 8-bit weights move
spikes that every later layer carries on) the wide deployment follows the
float graph's spikes closer than the 8-bit one, layer by layer; the cost
counts two synaptic operations and 16 synapse bits a connection; the CLI
converts with ``--wide-weights`` and refuses it for a checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from neurodeploy.bundle.convert import convert_graph
from neurodeploy.bundle.deployment import ChipPart
from neurodeploy.chip.partition import ChipSegment, plan
from neurodeploy.chip.quantize import CHIP_WEIGHT_MAX, quantize_segment
from neurodeploy.converters.netx_in import read_segment
from neurodeploy.converters.netx_io import (
    WIDE_WEIGHT_MAX,
    FixedPointLayer,
    join_wide,
    runs_in_stock_netx,
    split_wide,
    write_segment,
)
from neurodeploy.cost.counting import chip_layer_counts
from neurodeploy.cost.mapping import ChipLayerInfo
from neurodeploy.errors import UserError
from neurodeploy.ir.float_run import run_float
from neurodeploy.ir.nir_reader import read_graph
from neurodeploy.runtime.graph_run import run_graph
from neurodeploy.runtime.lava.segment_run import check_stock_netx
from neurodeploy.spike_metrics import spike_scores

from .conftest import run_cli
from .test_chip_segments import _binary, _recurrent_net, _sinabs_net
from .test_shipped import SHIPPED


@pytest.fixture(scope="module")
def sinabs_graph():
    return _sinabs_net()[1]


def test_two_bytes_make_every_wide_weight_back() -> None:
    w = np.arange(-WIDE_WEIGHT_MAX, WIDE_WEIGHT_MAX + 1).astype(np.int16)
    high, low = split_wide(w)
    assert high.dtype == low.dtype == np.int8
    assert np.abs(high.astype(int)).max() <= CHIP_WEIGHT_MAX and np.abs(low.astype(int)).max() <= 64
    assert np.array_equal(join_wide(high, low), w)
    assert np.array_equal(high.astype(np.int32) * 128 + low, w)


def test_a_wide_record_out_of_range_is_refused() -> None:
    weight = np.full((2, 3), WIDE_WEIGHT_MAX + 1, dtype=np.int16)
    with pytest.raises(ValueError, match="wide weights"):
        FixedPointLayer("dense", (3,), (2,), weight, None, None, (1, 1), (0, 0), 4096, 0, 10)


def test_the_wide_scale_rounds_finer_and_keeps_the_state_in_range(sinabs_graph) -> None:
    (chip,) = [s for s in plan(sinabs_graph).segments if isinstance(s, ChipSegment)]
    narrow = quantize_segment(chip.layers, payload_max=1)
    wide = quantize_segment(chip.layers, payload_max=1, wide=True)
    for n, w, layer in zip(narrow, wide, chip.layers, strict=True):
        assert w.layer.wide and w.weight_max == WIDE_WEIGHT_MAX and not n.layer.wide
        assert w.weight_scale > 4 * n.weight_scale  # at least 2 more bits on every layer of this net (7 here)
        assert w.weight_error < n.weight_error / 16
        assert not w.warnings, w.warnings
        assert (w.max_input << 6) * 4096 / w.layer.i_decay < 1 << 23  # no input can wrap the current
        exact = np.clip(np.rint(np.asarray(layer.weight) * w.weight_scale), -WIDE_WEIGHT_MAX, WIDE_WEIGHT_MAX)
        assert np.array_equal(w.layer.weight.reshape(exact.shape), exact)


def test_the_file_holds_the_two_bytes_and_reads_back_the_layer(tmp_path: Path, sinabs_graph) -> None:
    import h5py

    (chip,) = [s for s in plan(sinabs_graph).segments if isinstance(s, ChipSegment)]
    layers = tuple(q.layer for q in quantize_segment(chip.layers, payload_max=1, wide=True))
    path = tmp_path / "wide.net"
    write_segment(path, layers)
    with h5py.File(path, "r") as f:
        assert f["layer/1/weight"].dtype == np.int8 and f["layer/1/weight_low"].dtype == np.int8
    back = read_segment(path)
    for a, b in zip(layers, back, strict=True):
        assert a.wide and b.wide and np.array_equal(a.weight, b.weight) and a.weight.dtype == b.weight.dtype
    assert not runs_in_stock_netx(back)
    with pytest.raises(UserError, match="wide weights"):
        check_stock_netx(path, back)


def test_backends_agree_and_wide_weights_follow_the_float_spikes(tmp_path: Path, sinabs_graph) -> None:
    x = _binary((24, 16, 2, 16, 16), 0.3, seed=3).astype(np.float64)
    flt = {k: v.numpy() for k, v in run_float(read_graph(sinabs_graph), torch.from_numpy(x)).items()}
    f1 = {}
    for wide in (False, True):
        bundle = convert_graph(sinabs_graph, tmp_path / f"b{wide}", wide_weights=wide)
        chip = [s for s in bundle.manifest["segments"] if s["place"] == "chip"]
        assert [s["lava"]["stock_netx"] for s in chip] == [not wide]
        assert {layer["quantization"]["synapses_per_connection"] for s in chip for layer in s["layers"]} == {
            2 if wide else 1}
        reference = run_graph(bundle.deployment, x, "reference", check=False)
        f1[wide] = [spike_scores(reference.spikes[n], flt[n])["spike_f1"] for n in reference.spikes]
        if wide:
            for backend in ("torch", "lava"):
                got = run_graph(bundle.deployment, x[:4] if backend == "lava" else x, backend, check=False)
                for name, spikes in reference.spikes.items():
                    assert np.array_equal(got.spikes[name], spikes[: len(got.spikes[name])]), (backend, name)
    assert len(f1[True]) == 4
    assert all(w >= n for w, n in zip(f1[True], f1[False], strict=True)), f1
    assert f1[True][-1] > f1[False][-1] + 0.1, f1  # the last of four IF layers: 8-bit rounding's drift
    assert min(f1[True]) >= 0.9, f1


def test_a_recurrent_classifier_with_biases_runs_wide_on_every_backend_alike(tmp_path: Path) -> None:
    """snnTorch's RSynaptic with biases (dense_rec: the recurrent weights share the wide scale and the file
    holds their two bytes too) and a Synaptic readout: reference = torch = Lava, spike for spike."""
    _, graph = _recurrent_net()
    bundle = convert_graph(graph, tmp_path / "rec", dt=1e-4, wide_weights=True)
    (layers,) = [part.layers for part in bundle.deployment.parts if isinstance(part, ChipPart)]
    assert [layer.kind for layer in layers] == ["dense_rec", "dense"] and all(layer.wide for layer in layers)
    assert layers[0].weight_rec is not None and layers[0].weight_rec.dtype == np.int16
    x = _binary((6, 16, 8), 0.3, seed=3).astype(np.float64)
    reference = run_graph(bundle.deployment, x, "reference", check=False)
    assert sum(int(s.sum()) for s in reference.spikes.values()) > 0
    for backend in ("torch", "lava"):
        got = run_graph(bundle.deployment, x, backend, check=False)
        assert all(np.array_equal(got.spikes[n], reference.spikes[n]) for n in reference.spikes), backend


def test_a_wide_connection_costs_two_synaptic_operations_and_16_bits() -> None:
    events = _binary((5, 3, 6, 6), 0.4, seed=1)
    spikes = _binary((5, 2, 6, 6), 0.2, seed=2)
    one = chip_layer_counts("c", "conv", events, spikes, (2, 3, 3, 3), 0, (1, 1), (1, 1))
    two = chip_layer_counts("c", "conv", events, spikes, (2, 3, 3, 3), 0, (1, 1), (1, 1),
                            synapses_per_connection=2)
    assert two.synops == 2 * one.synops > 0 and two.spikes == one.spikes
    layer = FixedPointLayer("dense", (4,), (3,), np.full((3, 4), 300, dtype=np.int16), None, None, (1, 1),
                            (0, 0), 4096, 0, 1000)
    counts = {"synops_per_step": [1.0], "spikes_per_step": [1.0], "input_events_per_step": [1.0]}
    assert ChipLayerInfo.of("d", layer, counts).synapse_bits == 16


def test_the_cli_converts_with_wide_weights_and_refuses_them_for_a_checkpoint(tmp_path: Path, sinabs_graph) -> None:
    import nir

    sinabs_graph.infer_types()
    path = tmp_path / "net.nir"
    nir.write(path, sinabs_graph)
    done = run_cli("convert", str(path), "-o", str(tmp_path / "w.bundle"), "--wide-weights")
    assert done.returncode == 0, done.stderr
    assert all(layer.wide for layer in read_segment(next((tmp_path / "w.bundle").glob("*.net"))))
    refused = run_cli("convert", str(SHIPPED), "-o", str(tmp_path / "m.bundle"), "--wide-weights")
    assert refused.returncode == 2
    assert "wide weights apply to a NIR graph" in refused.stderr and "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "m.bundle").exists()
