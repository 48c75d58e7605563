"""The tables the toolkit is extended through (docs/ARCHITECTURE.md), each exercised by a test.

A neuron kind that maps to CUBA is one entry of ``neurodeploy.ir.graph.NEURON_KINDS``:
the test below adds a toy kind through that entry alone and runs it through the
reader, the partition, the quantizer, the chip arithmetic and the float graph.
A host op is one entry of ``neurodeploy.ir.host_only.HOST_OPS``: a toy one is read, run on the
host and counted through its entry alone. A backend is one row of ``neurodeploy.runtime.backends.TABLE``,
which the CLI's help reads.
"""

from __future__ import annotations

import nir
import numpy as np
import pytest
import torch

from neurodeploy.chip.partition import HostSegment, plan
from neurodeploy.chip.quantize import fixed_point
from neurodeploy.chip.reference import run_segment_batch
from neurodeploy.cost.counting import host_node_macs
from neurodeploy.errors import UserError
from neurodeploy.ir.float_run import run_float
from neurodeploy.ir.graph import NEURON_KINDS, NeuronKind
from neurodeploy.ir.host_only import HOST_OPS, HostOp
from neurodeploy.ir.nir_reader import read_graph
from neurodeploy.runtime.backends import BACKENDS
from neurodeploy.spike_metrics import spike_scores

from .conftest import run_cli
from .test_chip_segments import _binary, _chip, _mlp_net

DT = 1e-4
# A LIF written under another name: leaky, spiking, no current filter, and no v_leak field (0, as Loihi needs).
ToyLIF = type("ToyLIF", (nir.LIF,), {})
TOY = NeuronKind(("tau", "r", "v_threshold", "v_reset"), spiking=True, leaky=True, filtered=False)


def _as_toy(graph: nir.NIRGraph) -> nir.NIRGraph:
    """The same graph with every LIF node a ToyLIF (same fields)."""
    nodes = {name: ToyLIF(**{f: getattr(node, f) for f in ("tau", "r", "v_leak", "v_threshold", "v_reset")})
             if type(node) is nir.LIF else node for name, node in graph.nodes.items()}
    return nir.NIRGraph(nodes=nodes, edges=list(graph.edges))


def _deployed_and_float(graph: nir.NIRGraph, x: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Every chip layer's spikes: the quantized segment on the chip arithmetic, and the float graph."""
    p, chip, quantized = _chip(graph, dt=DT)
    names = [layer.name for layer in chip.layers]
    deployed = dict(zip(names, run_segment_batch(fixed_point(quantized), x), strict=True))
    flt = {n: v.numpy() for n, v in run_float(p.graph, torch.from_numpy(x.astype(np.float64))).items() if n in names}
    return deployed, flt


def test_a_toy_neuron_kind_runs_through_its_table_entry_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    _, graph = _mlp_net()
    toy = _as_toy(graph)
    with pytest.raises(UserError, match="is a ToyLIF"):  # without its entry the kind is unknown
        read_graph(toy, dt=DT)

    monkeypatch.setitem(NEURON_KINDS, "ToyLIF", TOY)
    read = read_graph(toy, dt=DT)
    assert {n.op.kind for n in read.nodes.values() if n.kind == "ToyLIF"} == {"ToyLIF"}
    x = _binary((8, 12, 20), 0.3, seed=2)
    toy_deployed, toy_float = _deployed_and_float(toy, x)
    lif_deployed, lif_float = _deployed_and_float(graph, x)
    assert toy_deployed.keys() == lif_deployed.keys() and len(toy_deployed) == 2  # both layers on the chip
    for name in toy_deployed:  # the toy kind is a LIF: the same spikes, on the chip and in float
        assert np.array_equal(toy_deployed[name], lif_deployed[name])
        assert np.array_equal(toy_float[name], lif_float[name])
        assert toy_deployed[name].any()
        assert spike_scores(toy_deployed[name], toy_float[name])["spike_f1"] >= 0.95


# A host op of the toy kind: minus the scaled input, counted as one multiply per element.
ToyNegate = type("ToyNegate", (nir.Scale,), {})
NEGATE = HostOp(lambda op, x: -x * torch.as_tensor(op.scale, dtype=x.dtype), macs=lambda op, out: int(np.prod(out)))


def test_a_toy_host_op_runs_through_its_table_entry_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    weight, scale = rng.standard_normal((3, 4)), np.array([0.5, 2.0, -1.0])
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([4])}),
                                "fc": nir.Affine(weight=weight, bias=np.zeros(3)), "neg": ToyNegate(scale=scale),
                                "output": nir.Output(output_type={"output": np.array([3])})},
                         edges=[("input", "fc"), ("fc", "neg"), ("neg", "output")])
    with pytest.raises(UserError, match="is a ToyNegate"):  # without its entry the kind is unknown
        read_graph(graph)

    monkeypatch.setitem(HOST_OPS, "ToyNegate", NEGATE)
    read = read_graph(graph)
    assert read.nodes["neg"].output_shape == (3,)
    x = rng.standard_normal((2, 5, 4))
    out = run_float(read, torch.from_numpy(x))["neg"].numpy()
    assert np.allclose(out, -(x @ weight.T) * scale)
    assert any(isinstance(s, HostSegment) and "neg" in s.nodes for s in plan(read).segments)
    assert host_node_macs("ToyNegate", read.nodes["neg"].op, (3,)) == 3


def test_the_backend_help_lists_every_backend_of_the_table() -> None:
    run = run_cli("simulate", "--help")
    assert run.returncode == 0, run.stderr
    text = " ".join(run.stdout.replace("│", " ").split())  # the help box, its borders and wrapping undone
    for name in BACKENDS:
        assert f"{name} (" in text, name
