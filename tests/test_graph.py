"""NIR graphs in, placement out: graph.py's normalization, the partitioner's rules and folds, convert --plan.

Networks are built and exported inside the tests by Sinabs, snnTorch and
Norse, written with nir.write and read back; the folded chip layers are
compared with the unfolded ops run in torch.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import nir
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neurodeploy.chip.layers import ConvLayer, DenseLayer, RecurrentDenseLayer
from neurodeploy.chip.partition import CHIP, HOST, ChipSegment, HostSegment, Pool, _NotExactError, fold_pool, plan
from neurodeploy.errors import UserError
from neurodeploy.ir.graph import Flatten
from neurodeploy.ir.nir_reader import read_graph


def _cli(*args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": str(columns), "TERM": "dumb"}
    return subprocess.run([sys.executable, "-m", "neurodeploy", *args], capture_output=True, text=True,
                          timeout=300, env=env)


def _places(partition) -> dict[str, str]:
    return {row.node: row.place for row in partition.placement}


def _plan_prints_a_full_table(path: Path, *args: str) -> str:
    """`convert PATH --plan` exits 0, writes nothing, and its table fits 80 columns untruncated."""
    before = sorted(os.listdir(path.parent))
    run = _cli("convert", str(path), "--plan", *args)
    assert run.returncode == 0, run.stderr
    assert sorted(os.listdir(path.parent)) == before
    assert "…" not in run.stdout and "..." not in run.stdout
    assert max(len(line) for line in run.stdout.splitlines()) <= 80
    assert "chip layer" in run.stdout and "nothing written" in run.stdout
    return run.stdout


def _sum_pool(x: torch.Tensor, k: int) -> torch.Tensor:
    return F.avg_pool2d(x, k) * k * k


# -- (a) Sinabs: Conv2d -> IAF -> SumPool2d -> Conv2d -> IAF -> SumPool2d -> Flatten -> Linear -> IAF -> Linear -> IAF

@pytest.fixture(scope="module")
def sinabs_net(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Sequential, Path]:
    import sinabs
    import sinabs.layers as sl

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1, bias=False), sl.IAFSqueeze(batch_size=1),
        sl.SumPool2d(2), torch.nn.Conv2d(4, 8, 3, padding=1, bias=False), sl.IAFSqueeze(batch_size=1),
        sl.SumPool2d(2), torch.nn.Flatten(), torch.nn.Linear(8 * 4 * 4, 16, bias=False), sl.IAFSqueeze(batch_size=1),
        torch.nn.Linear(16, 10, bias=False), sl.IAFSqueeze(batch_size=1))
    graph = sinabs.to_nir(net, torch.rand(1, 2, 16, 16))
    graph.infer_types()
    path = tmp_path_factory.mktemp("sinabs") / "sinabs.nir"
    nir.write(path, graph)
    return net, path


def test_sinabs_conv_net_goes_on_the_chip_with_its_pools_folded(sinabs_net) -> None:
    net, path = sinabs_net
    p = plan(path)
    assert _places(p) == {"input": HOST, "0": CHIP, "1": CHIP, "2": CHIP, "3": CHIP, "4": CHIP, "5": CHIP,
                          "6": CHIP, "7": CHIP, "8": CHIP, "9": CHIP, "10": CHIP, "output": HOST}
    assert [type(s) for s in p.segments] == [HostSegment, ChipSegment, HostSegment]
    assert [(c.src, c.dst) for c in p.cuts] == [("input", "0"), ("10", "output")]
    conv1, conv2, dense1, dense2 = p.layers
    assert [type(layer) for layer in p.layers] == [ConvLayer, ConvLayer, DenseLayer, DenseLayer]
    assert conv2.nodes == ("2", "3", "4") and dense1.nodes == ("5", "6", "7", "8")
    assert all(layer.bias is None for layer in p.layers)  # Sinabs stores bias=False as zeros
    assert conv2.stride == (2, 2) and conv2.padding == (2, 2) and conv2.weight.shape == (8, 4, 6, 6)
    assert conv2.input_shape == (4, 16, 16) and conv2.output_shape == (8, 8, 8)
    assert dense1.input_shape == (8, 8, 8) and dense1.weight.shape == (16, 512)
    assert conv1.neuron.kind == "IF" and conv1.neuron.v_threshold == 1.0 and conv1.neuron.v_reset == 0.0
    # the folded layers compute what the unfolded ops of the Sinabs network compute
    torch.manual_seed(1)
    x = torch.rand(3, 4, 16, 16, dtype=torch.float64)
    unfolded = F.conv2d(_sum_pool(x, 2), net[3].weight.double(), padding=1)
    folded = F.conv2d(x, torch.from_numpy(conv2.weight), stride=conv2.stride, padding=conv2.padding)
    torch.testing.assert_close(folded, unfolded, rtol=1e-12, atol=1e-12)
    x = torch.rand(3, 8, 8, 8, dtype=torch.float64)
    unfolded = F.linear(torch.flatten(_sum_pool(x, 2), 1), net[7].weight.double())
    folded = F.linear(x.reshape(3, -1), torch.from_numpy(dense1.weight))
    torch.testing.assert_close(folded, unfolded, rtol=1e-12, atol=1e-12)
    assert np.array_equal(dense2.weight, net[9].weight.detach().double().numpy())


def test_sinabs_plan_on_the_command_line(sinabs_net) -> None:
    out = _plan_prints_a_full_table(sinabs_net[1])
    assert "4 chip layers in 1 chip segment, 2 host nodes, 2 cuts" in out
    assert "folded into 3" in out and "folded into 7" in out


def test_keeping_a_neuron_on_the_host_takes_its_synapse_chain_along(sinabs_net) -> None:
    p = plan(sinabs_net[1], host=["4"])
    rows = {row.node: row for row in p.placement}
    assert rows["4"].place == HOST and "as asked" in rows["4"].reason
    assert rows["3"].place == HOST and "synapse of 4" in rows["3"].reason
    assert rows["2"].place == HOST  # the pool had nothing left to fold into
    assert [type(s) for s in p.segments] == [HostSegment, ChipSegment, HostSegment, ChipSegment, HostSegment]
    assert len(p.layers) == 3 and ("4", "5") in [(c.src, c.dst) for c in p.cuts]
    out = _plan_prints_a_full_table(sinabs_net[1], "--host", "4")
    assert "3 chip layers in 2 chip segments" in out


# -- (b) snnTorch: a recurrent CubaLIF classifier with biases

@pytest.fixture(scope="module")
def recurrent_net(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Sequential, Path]:
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    n, m = 12, 8

    def rsynaptic(size: int, alpha: float) -> snn.RSynaptic:
        return snn.RSynaptic(alpha=torch.full((size,), alpha), beta=torch.full((size,), 0.9),
                             threshold=torch.ones(size), linear_features=size, all_to_all=True, init_hidden=True)

    net = torch.nn.Sequential(
        torch.nn.Linear(6, n), rsynaptic(n, 0.5),  # a filtered current: its biases become a bias axon
        torch.nn.Linear(n, m), rsynaptic(m, 0.0),  # alpha = 0: dt = tau_syn, no filter, biases are exact
        torch.nn.Linear(m, 4, bias=False),
        snn.Synaptic(alpha=torch.full((4,), 0.5), beta=torch.full((4,), 0.8), threshold=torch.ones(4),
                     init_hidden=True, output=True))
    graph = export_to_nir(net, torch.rand(6))
    path = tmp_path_factory.mktemp("rsynaptic") / "rsynaptic.nir"
    nir.write(path, graph)
    return net, path


def test_recurrent_cubalif_classifier(recurrent_net) -> None:
    net, path = recurrent_net
    with pytest.raises(UserError, match="no time step"):
        plan(path)  # snnTorch writes tau in seconds for dt = 1e-4 but does not say so
    p = plan(path, dt=1e-4)
    assert _places(p) == {"input": HOST, "0": CHIP, "1.lif": CHIP, "1.w_rec": CHIP, "2": CHIP, "3.lif": CHIP,
                          "3.w_rec": CHIP, "4": CHIP, "5": CHIP, "output": HOST}
    filtered, rec, dense = p.layers
    assert isinstance(filtered, RecurrentDenseLayer) and filtered.neuron.filters_current
    assert np.allclose(filtered.bias, (net[0].bias + net[1].recurrent.bias).detach().numpy())
    assert isinstance(rec, RecurrentDenseLayer) and isinstance(dense, DenseLayer)
    assert rec.nodes == ("2", "3.w_rec", "3.lif") and len(p.segments) == 3
    assert np.allclose(rec.weight_in, net[2].weight.detach().numpy())
    assert np.allclose(rec.weight_rec, net[3].recurrent.weight.detach().numpy())
    assert np.allclose(rec.bias, (net[2].bias + net[3].recurrent.bias).detach().numpy())
    assert rec.neuron.kind == "CubaLIF" and not rec.neuron.filters_current
    assert dense.neuron.filters_current and dense.bias is None
    assert math.isclose(dense.neuron.current_decay, 0.5, rel_tol=1e-6)
    assert math.isclose(dense.neuron.voltage_decay, 0.2, rel_tol=1e-5)
    out = _plan_prints_a_full_table(path, "--dt", "1e-4")
    assert "3 chip layers in 1 chip segment, 2 host nodes, 2 cuts" in out
    assert "recurrent weights of 3.lif" in out


# -- (c) snnTorch: an LIF MLP

def test_snntorch_lif_mlp(tmp_path: Path) -> None:
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(20, 16), snn.Leaky(beta=torch.full((16,), 0.9), threshold=torch.ones(16), init_hidden=True),
        torch.nn.Linear(16, 5), snn.Leaky(beta=torch.full((5,), 0.9), threshold=torch.ones(5), init_hidden=True,
                                          output=True))
    path = tmp_path / "mlp.nir"
    nir.write(path, export_to_nir(net, torch.rand(20)))
    p = plan(path, dt=1e-4)
    assert _places(p) == {"input": HOST, "0": CHIP, "1": CHIP, "2": CHIP, "3": CHIP, "output": HOST}
    first, second = p.layers
    assert first.neuron.kind == "LIF" and math.isclose(first.neuron.voltage_decay, 0.1, rel_tol=1e-5)
    assert np.allclose(first.bias, net[0].bias.detach().numpy())  # LIF: no current filter, the bias is exact
    assert np.allclose(second.weight, net[2].weight.detach().numpy())
    _plan_prints_a_full_table(path, "--dt", "1e-4")


# -- Norse: an in-memory graph with a batch axis, torch tensors and 0-d parameters

def test_norse_graph_in_memory_and_written() -> None:
    import norse.torch as norse

    torch.manual_seed(0)
    net = norse.SequentialState(torch.nn.Conv2d(1, 4, 3), norse.IAFCell(),
                                torch.nn.Conv2d(4, 2, 3, padding=1), norse.IAFCell())
    graph = norse.to_nir(net, torch.rand(1, 1, 8, 8))
    p = plan(graph)
    assert [row.place for row in p.placement] == [HOST, CHIP, CHIP, CHIP, CHIP, HOST]
    first, second = p.layers
    assert first.input_shape == (1, 8, 8) and second.input_shape == (4, 6, 6)  # the batch axis of 1 is gone
    assert np.allclose(first.bias, net[0].bias.detach().numpy())  # IF: the bias is exact on the chip


# -- Rockpool: CubaLIF layers (Input with a batch axis)

def test_rockpool_graph_in_memory() -> None:
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFTorch, LinearTorch
    from rockpool.nn.modules.torch.nir import to_nir

    net = Sequential(LinearTorch((4, 6)), LIFTorch(6, dt=1e-3), LinearTorch((6, 3)), LIFTorch(3, dt=1e-3))
    p = plan(to_nir(net), dt=1e-3)
    assert [row.place for row in p.placement] == [HOST, CHIP, CHIP, CHIP, CHIP, HOST]
    assert [layer.input_shape for layer in p.layers] == [(4,), (6,)]
    assert all(layer.neuron.kind == "CubaLIF" and layer.neuron.filters_current for layer in p.layers)


# -- graph.py's normalization of exporter quirks

def _if(shape: tuple[int, ...], threshold: float | np.ndarray = 1.0) -> nir.IF:
    return nir.IF(r=np.ones(shape), v_threshold=np.broadcast_to(threshold, shape).copy(), v_reset=np.zeros(shape))


def _pool_flatten_linear(start_dim: int, input_shape: tuple[int, ...], declared: np.ndarray | None) -> nir.NIRGraph:
    rng = np.random.default_rng(0)
    return nir.NIRGraph(nodes={
        "in": nir.Input(input_type={"input": np.array(input_shape)}),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type={"input": declared}, start_dim=start_dim, end_dim=-1),
        "fc": nir.Affine(weight=rng.normal(size=(5, 3 * 2 * 2)), bias=np.zeros(5)),
        "spk": _if((5,)),
        "out": nir.Output(output_type={"output": np.array([5])}),
    }, edges=[("in", "pool"), ("pool", "flat"), ("flat", "fc"), ("fc", "spk"), ("spk", "out")], type_check=False)


@pytest.mark.parametrize(("start_dim", "input_shape", "declared"), [
    (0, (3, 4, 4), None),  # NIR's reading: no batch axis
    (1, (3, 4, 4), np.array([1, 3, 2, 2])),  # counted with the batch axis, which the declared type shows
    (1, (3, 4, 4), None),  # counted with the batch axis: only that reading gives the Linear its 12 inputs
    (1, (1, 3, 4, 4), None),  # a batch axis on the Input too
])
def test_flatten_start_dim_with_or_without_the_batch_axis(start_dim, input_shape, declared) -> None:
    g = read_graph(_pool_flatten_linear(start_dim, input_shape, declared))
    assert g.nodes["in"].output_shape == (3, 4, 4)
    assert g.nodes["flat"].op == Flatten(0, 2) and g.nodes["flat"].output_shape == (12,)
    assert g.nodes["fc"].op.bias is None  # a zero bias array is no bias
    layer, = plan(g).layers
    assert layer.nodes == ("pool", "flat", "fc", "spk") and layer.input_shape == (3, 4, 4)


def test_a_flatten_that_keeps_the_channels_is_read_without_the_batch_axis() -> None:
    graph = _pool_flatten_linear(1, (3, 4, 4), None)
    graph.nodes["fc"] = nir.Linear(weight=np.ones((5, 4)))
    graph.nodes["spk"] = _if((3, 5))
    graph.nodes["out"] = nir.Output(output_type={"output": np.array([3, 5])})
    with pytest.raises(UserError, match=r"'fc' \(Linear\) takes \(4,\) but receives shape \(3, 4\)"):
        read_graph(graph)  # (3, 2, 2) flattened from axis 1 is (3, 4): a shape error, not a guess


def test_nested_subgraphs_are_flattened_with_dotted_names() -> None:
    rng = np.random.default_rng(0)
    inner = nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([4])}),
        "fc": nir.Linear(weight=rng.normal(size=(3, 4))),
        "lif": nir.LIF(tau=np.full(3, 0.01), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3),
                       v_reset=np.zeros(3)),
        "output": nir.Output(output_type={"output": np.array([3])}),
    }, edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")], type_check=False)
    outer = nir.NIRGraph(nodes={
        "in": nir.Input(input_type={"input": np.array([4])}), "block": inner,
        "out": nir.Output(output_type={"output": np.array([3])}),
    }, edges=[("in", "block"), ("block", "out")], type_check=False, metadata={"dt": 1e-3})
    g = read_graph(outer)
    assert list(g.nodes) == ["in", "block.fc", "block.lif", "out"]
    assert set(g.edges) == {("in", "block.fc"), ("block.fc", "block.lif"), ("block.lif", "out")}
    assert g.dt == 1e-3  # from the metadata
    assert g.nodes["block.lif"].op.tau_mem == 0.01 and read_graph(outer, dt=5e-4).dt == 5e-4
    assert [layer.nodes for layer in plan(outer).layers] == [("block.fc", "block.lif")]


def test_host_only_kinds_stay_on_the_host_with_a_reason_and_unknown_kinds_are_refused() -> None:
    graph = nir.NIRGraph(nodes={
        "in": nir.Input(input_type={"input": np.array([4])}),
        "scale": nir.Scale(scale=np.full(4, 2.0)),
        "fc": nir.Linear(weight=np.ones((3, 4))),
        "li": nir.LI(tau=np.full(3, 0.01), r=np.ones(3), v_leak=np.zeros(3)),
        "out": nir.Output(output_type={"output": np.array([3])}),
    }, edges=[("in", "scale"), ("scale", "fc"), ("fc", "li"), ("li", "out")], type_check=False)
    p = plan(graph, dt=1e-3)
    assert all(row.place == HOST for row in p.placement) and not p.segments[1:]
    reasons = {row.node: row.reason for row in p.placement}
    assert "no Loihi equivalent" in reasons["scale"] and "does not spike" in reasons["li"]
    assert "no spiking neuron" in reasons["fc"]
    graph.nodes["scale"] = nir.Delay(delay=np.ones(4))
    with pytest.raises(UserError, match="'scale' is a Delay"):
        plan(graph, dt=1e-3)


# -- folding: exact in float, refused where it would not be

@pytest.mark.parametrize("kind", ["sum", "avg"])
def test_pool_then_conv_folds_exactly_or_not_at_all(kind: str) -> None:
    rng = np.random.default_rng(0)
    folded_any = refused_any = 0
    for kp, sp, pp, k, s, p, size in [(kp, sp, pp, k, s, p, size) for kp in (1, 2, 3) for sp in (1, 2, 3)
                                      for pp in (0, 1) for k in (1, 2, 3) for s in (1, 2) for p in (0, 1, 2)
                                      for size in (7, 8) if pp <= kp // 2]:
        weight = rng.normal(size=(2, 3, k, k))
        pool = Pool(kind, (kp, kp), (sp, sp), (pp, pp))
        x = torch.from_numpy(rng.normal(size=(1, 3, size, size)))
        pooled = F.avg_pool2d(x, kp, sp, pp) * (kp * kp if kind == "sum" else 1)
        if min(pooled.shape[2:]) + 2 * p < k:
            continue
        unfolded = F.conv2d(pooled, torch.from_numpy(weight), stride=s, padding=p)
        try:
            w, stride, padding = fold_pool(weight, (s, s), (p, p), pool, (size, size))
        except _NotExactError:
            refused_any += 1
            continue
        folded_any += 1
        folded = F.conv2d(x, torch.from_numpy(w), stride=stride, padding=padding)
        torch.testing.assert_close(folded, unfolded, rtol=1e-10, atol=1e-10)
    assert folded_any > 100 and refused_any > 10


def test_a_fold_refused_as_inexact_really_differs() -> None:
    """Pool 2/2 on 7 rows drops row 6; a padded conv after it would read that row once folded."""
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(1, 1, 3, 3))
    with pytest.raises(_NotExactError, match="drops"):
        fold_pool(weight, (1, 1), (1, 1), Pool("sum", (2, 2), (2, 2), (0, 0)), (7, 7))
    x = torch.from_numpy(rng.normal(size=(1, 1, 7, 7)))
    unfolded = F.conv2d(_sum_pool(x, 2), torch.from_numpy(weight), padding=1)
    w = np.repeat(np.repeat(weight, 2, axis=2), 2, axis=3)  # what folding would have given
    naive = F.conv2d(x, torch.from_numpy(w), stride=2, padding=2)
    assert naive.shape == unfolded.shape and not torch.allclose(naive, unfolded)


def test_pool_flatten_linear_folds_into_one_dense_layer_even_with_a_dropped_remainder() -> None:
    rng = np.random.default_rng(0)
    graph = nir.NIRGraph(nodes={
        "in": nir.Input(input_type={"input": np.array([2, 7, 9])}),
        "pool": nir.AvgPool2d(kernel_size=np.array([3, 3]), stride=np.array([2, 2]), padding=np.array([1, 1])),
        "flat": nir.Flatten(input_type={"input": None}, start_dim=0, end_dim=-1),
        "fc": nir.Linear(weight=rng.normal(size=(6, 2 * 4 * 5))),
        "spk": _if((6,)),
        "out": nir.Output(output_type={"output": np.array([6])}),
    }, edges=[("in", "pool"), ("pool", "flat"), ("flat", "fc"), ("fc", "spk"), ("spk", "out")], type_check=False)
    layer, = plan(graph).layers
    assert layer.input_shape == (2, 7, 9) and layer.weight.shape == (6, 126)
    x = torch.from_numpy(rng.normal(size=(4, 2, 7, 9)))
    unfolded = F.linear(torch.flatten(F.avg_pool2d(x, 3, 2, 1), 1), torch.from_numpy(graph.nodes["fc"].weight))
    torch.testing.assert_close(F.linear(x.reshape(4, -1), torch.from_numpy(layer.weight)), unfolded,
                               rtol=1e-10, atol=1e-10)


# -- bad graphs: one line, exit 2, nothing written

def _linear_if(n_in: int, n_out: int, neuron: nir.NIRNode | None = None) -> dict[str, nir.NIRNode]:
    return {"in": nir.Input(input_type={"input": np.array([n_in])}),
            "fc": nir.Linear(weight=np.ones((n_out, n_in))),
            "spk": neuron if neuron is not None else _if((n_out,)),
            "out": nir.Output(output_type={"output": np.array([n_out])})}


CHAIN = [("in", "fc"), ("fc", "spk"), ("spk", "out")]
BAD_GRAPHS = {
    "unequal": (_linear_if(4, 3, _if((3,), np.array([1.0, 1.0, 2.0]))), CHAIN, {}, ["'spk'", "v_threshold differs"]),
    "cycle": ({**_linear_if(4, 3), "fc2": nir.Linear(weight=np.eye(3)), "fc3": nir.Linear(weight=np.eye(3))},
              [*CHAIN, ("spk", "fc2"), ("fc2", "fc3"), ("fc3", "spk")], {}, ["cycle", "not a recurrence"]),
    "shapes": (_linear_if(4, 3, _if((7,))), CHAIN, {}, ["'spk' (IF) takes shape (7,)", "(3,)"]),
    "huge": ({"in": nir.Input(input_type={"input": np.array([10**9])}),
              "spk": nir.IF(r=np.ones(1), v_threshold=np.ones(1), v_reset=np.zeros(1)),
              "out": nir.Output(output_type={"output": np.array([10**9])})},
             [("in", "spk"), ("spk", "out")], {}, ["1000000000 neurons"]),
    "no-dt": (_linear_if(4, 3, nir.LIF(tau=np.full(3, 0.01), r=np.ones(3), v_leak=np.zeros(3),
                                       v_threshold=np.ones(3), v_reset=np.zeros(3))),
              CHAIN, {}, ["no time step", "--dt"]),
    "host": (_linear_if(4, 3), CHAIN, {"--host": "fc,nope"}, ["--host names 'nope'"]),
}


@pytest.mark.parametrize("case", sorted(BAD_GRAPHS))
def test_bad_graphs_are_one_line_and_exit_2(case: str, tmp_path: Path) -> None:
    nodes, edges, options, words = BAD_GRAPHS[case]
    path = tmp_path / f"{case}.nir"
    nir.write(path, nir.NIRGraph(nodes=nodes, edges=edges, type_check=False))
    args = [a for kv in options.items() for a in kv]
    run = _cli("convert", str(path), "--plan", *args, "-o", str(tmp_path / "out.bundle"))
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert run.stderr.strip().count("\n") == 0 and "Traceback" not in run.stderr and not run.stdout
    for word in words:
        assert word in run.stderr, run.stderr
    assert os.listdir(tmp_path) == [path.name]


def test_a_huge_weight_is_refused_before_it_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import neurodeploy.ir.nir_reader as graph_module

    path = tmp_path / "wide.nir"
    nir.write(path, nir.NIRGraph(nodes=_linear_if(64, 32), edges=CHAIN, type_check=False))
    monkeypatch.setattr(graph_module, "MAX_WEIGHTS", 1000)
    monkeypatch.setattr(nir, "read", lambda *a, **k: pytest.fail("nir.read ran"))
    with pytest.raises(UserError, match="fc/weight"):
        plan(path)


def _conv_if(**conv: object) -> nir.NIRGraph:
    rng = np.random.default_rng(0)
    settings = {"stride": 1, "padding": 1, "dilation": 1, "groups": 1, **conv}
    return nir.NIRGraph(nodes={
        "in": nir.Input(input_type={"input": np.array([2, 8, 8])}),
        "conv": nir.Conv2d(input_shape=None, weight=rng.normal(size=(4, 2 // settings["groups"], 3, 3)),
                           bias=np.zeros(4), **settings),
        "spk": nir.IF(r=np.ones(1), v_threshold=np.ones(1), v_reset=np.zeros(1)),
        "out": nir.Output(output_type={"output": None}),
    }, edges=[("in", "conv"), ("conv", "spk"), ("spk", "out")], type_check=False)


@pytest.mark.parametrize(("conv", "host", "reason"), [
    ({}, (), None),
    ({"groups": 2}, (), "groups 2"),
    ({"dilation": 2, "padding": 2}, (), "dilation (2, 2)"),
    ({}, ("conv",), "its synapse conv is kept on the host as asked"),
])
def test_conv_settings_the_chip_lacks_and_forced_synapses_keep_the_layer_on_the_host(conv, host, reason) -> None:
    p = plan(_conv_if(**conv), host=host)
    rows = {row.node: row for row in p.placement}
    if reason is None:
        assert rows["spk"].place == CHIP and p.layers[0].output_shape == (4, 8, 8)
    else:
        assert rows["spk"].place == rows["conv"].place == HOST and reason in rows["spk"].reason
