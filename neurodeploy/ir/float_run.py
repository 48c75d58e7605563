r"""A float execution of a NIR graph's semantics in torch: the "float side" that chip results are judged by.

Independent of the quantized path: it reads the normalized :class:`~neurodeploy.ir.graph.Graph`
(nothing the partitioner folded or the quantizer rounded) and runs every node
in float64, one time step after the other, in the graph's topological order
(recurrent edges aside). Per step t, a node's input is the sum of its
predecessors' outputs of step t, plus, for a neuron closing a recurrence
``N -> R -> N``, R's output of step t - 1 (R applied to zero spikes at t = 0:
its bias, as snnTorch's ``recurrent(spk = 0)``).

Operations (per sample, a leading batch axis)::

    Conv2d     F.conv2d(x, W, bias, stride, padding, dilation, groups)
    Linear     W x;  Affine: W x + b
    SumPool2d  Σ over the window (zero padding);  AvgPool2d: that sum / (kh·kw)
    Flatten    the per-sample axes start..end joined
    host-only kinds: their entry of :data:`neurodeploy.ir.host_only.HOST_OPS`

Neurons, forward Euler with the graph's dt (``a = dt/tau_mem``, ``b = dt/tau_syn``)::

    IF:      v = v + r·I
    LIF:     v = v + a·(v_leak - v + r·I)
    CubaLIF: i = i + b·(-i + w_in·I);  v = v + a·(v_leak - v + r·i)
    I, LI, CubaLI: the same without spikes (their output is v)
    spiking: z = [v > v_th];  v = v_reset where z;  output z

This is what snnTorch (``Leaky``; ``Synaptic`` / ``RSynaptic`` with
``reset_delay=False``; reset to zero), Sinabs (``IAF`` with ``MembraneReset``;
Sinabs fires at ``v >= v_th``, equal only on exact ties) and Norse compute
for the graphs they export (checked in tests/test_chip_segments.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from neurodeploy.ir.graph import NEURON_KINDS, Conv, Dense, Flatten, Graph, Neuron, Pool
from neurodeploy.ir.host_only import HOST_OPS


def topological_order(graph: Graph) -> list[str]:
    """The graph's nodes in an order where every forward edge points ahead (recurrent edges aside)."""
    import networkx as nx

    dag = nx.DiGraph()
    dag.add_nodes_from(graph.nodes)
    dag.add_edges_from(e for e in graph.edges if e not in graph.recurrent)
    index = {name: i for i, name in enumerate(graph.nodes)}
    return list(nx.lexicographical_topological_sort(dag, key=index.get))


class _NeuronState:
    """One neuron node's state over a batch, and its step (module docstring)."""

    def __init__(self, neuron: Neuron) -> None:
        self.n = neuron
        self.v: torch.Tensor | float = 0.0
        self.i: torch.Tensor | float = 0.0

    def step(self, current: torch.Tensor) -> torch.Tensor:
        n, kind = self.n, NEURON_KINDS[self.n.kind]
        if kind.filtered:
            self.i = self.i + n.current_decay * (-self.i + n.w_in * current)
            current = self.i
        v = self.v + (n.voltage_decay * (n.v_leak - self.v + n.r * current) if kind.leaky else n.r * current)
        if not n.spiking:
            self.v = v
            return v
        assert n.v_threshold is not None
        spikes = (v > n.v_threshold).to(v.dtype)
        self.v = torch.where(spikes > 0, torch.full_like(v, n.v_reset), v)
        return spikes


def _apply(op: Any, kind: str, x: torch.Tensor) -> torch.Tensor:
    """One stateless node on a batch."""
    if isinstance(op, Conv):
        bias = None if op.bias is None else torch.from_numpy(op.bias).to(x.dtype)
        return F.conv2d(x, torch.from_numpy(op.weight).to(x.dtype), bias, stride=op.stride, padding=op.padding,
                        dilation=op.dilation, groups=op.groups)
    if isinstance(op, Dense):
        bias = None if op.bias is None else torch.from_numpy(op.bias).to(x.dtype)
        return F.linear(x, torch.from_numpy(op.weight).to(x.dtype), bias)
    if isinstance(op, Pool):
        total = F.avg_pool2d(x, op.kernel, op.stride, op.padding, count_include_pad=True)
        return total * (op.kernel[0] * op.kernel[1]) if op.kind == "sum" else total
    if isinstance(op, Flatten):
        return torch.flatten(x, op.start_dim + 1, op.end_dim + 1)
    if kind in HOST_OPS:
        return HOST_OPS[kind].apply(op, x)
    if kind in ("Input", "Output"):
        return x
    raise ValueError(f"no float execution for a {kind} node")


@torch.no_grad()
def run_float(graph: Graph, inputs: torch.Tensor | dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Run ``graph`` in float64 on inputs (B, T, *input_shape) -> every node's output (B, T, *shape).

    ``inputs`` is one tensor for a graph with one Input node, else a dict by
    Input name. Every sample starts from zero state.
    """
    order = topological_order(graph)
    input_names = [n for n in order if graph.nodes[n].kind == "Input"]
    if not isinstance(inputs, dict):
        if len(input_names) != 1:
            raise ValueError(f"the graph has {len(input_names)} inputs; pass a dict by name")
        inputs = {input_names[0]: inputs}
    return run_nodes(graph, [n for n in order if n not in inputs], inputs)


@torch.no_grad()
def run_nodes(graph: Graph, names: list[str], known: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Run the nodes ``names`` (in that order, a topological one) over all time steps, in float64.

    ``known`` holds the outputs (B, T, *shape) of nodes computed elsewhere
    (the Inputs, another segment); a node reads them at the same step t.
    Returns ``known`` and the new nodes' outputs (B, T, *shape). This is the
    one place that runs a node's semantics step by step: the float graph runs
    every node with it, the host runtime (:mod:`neurodeploy.ir.host_ops`) its
    host segments.
    """
    data = {name: torch.as_tensor(x).to(torch.float64) for name, x in known.items()}
    batch, steps = next(iter(data.values())).shape[:2]
    neurons = {n: _NeuronState(graph.nodes[n].op) for n in names if isinstance(graph.nodes[n].op, Neuron)}
    out: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    previous: dict[str, torch.Tensor] = {}  # step t - 1; before step 0 a recurrent synapse reads zeros
    for synapse, _ in graph.recurrent:
        if synapse in out:
            node = graph.nodes[synapse]
            zeros = torch.zeros(batch, *node.input_shape, dtype=torch.float64)
            previous[synapse] = _apply(node.op, node.kind, zeros)
    for t in range(steps):
        now: dict[str, torch.Tensor] = {}
        for name in names:
            node = graph.nodes[name]
            terms = [now[a] if a in now else data[a][:, t] for a in graph.inputs(name)
                     if (a, name) not in graph.recurrent]
            terms += [previous[a] for a in graph.inputs(name) if (a, name) in graph.recurrent and a in previous]
            x = terms[0] if len(terms) == 1 else torch.stack(terms).sum(0)
            y = neurons[name].step(x) if name in neurons else _apply(node.op, node.kind, x)
            now[name] = y
            out[name].append(y)
        previous = now
    return {**data, **{name: torch.stack(values, dim=1) for name, values in out.items()}}


def run_chip_layer(graph: Graph, name: str, nodes: Sequence[str], source: str, upstream: np.ndarray) -> np.ndarray:
    """One chip layer in float: its ``nodes`` (those of a :mod:`neurodeploy.chip.layers` layer) run on
    ``upstream`` (N, T, *shape), the value of node ``source`` it reads; the spikes of its neuron ``name``."""
    names = set(nodes)
    order = [n for n in topological_order(graph) if n in names]
    out = run_nodes(graph, order, {source: torch.from_numpy(np.asarray(upstream, np.float64))})
    return out[name].numpy()
