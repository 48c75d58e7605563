"""The structure of a graph being read: recurrences, and every node's per-sample shape, inferred from its inputs."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from neurodeploy.errors import UserError
from neurodeploy.ir.graph import Conv, Dense, Flatten, Neuron, Pool, Shape, conv_output_size, is_neuron
from neurodeploy.ir.host_only import HOST_OPS

MAX_NEURONS = 2**26


def as_array(value: Any) -> Any:
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return value


def node_fields(node: Any) -> dict[str, Any]:
    """A node's parameters with tensors as numpy arrays (the node itself is not changed)."""
    skip = ("input_type", "output_type", "metadata", "nodes", "edges")
    return {k: as_array(v) for k, v in vars(node).items() if k not in skip}


def recurrences(nodes: dict[str, Any], edges: list[tuple[str, str]], source: str) -> set[tuple[str, str]]:
    """The (synapse, neuron) edges of the graph's recurrences; any other cycle is a UserError."""
    import networkx as nx

    g = nx.DiGraph()
    g.add_nodes_from(nodes)
    g.add_edges_from(edges)
    recurrent = set()
    for scc in nx.strongly_connected_components(g):
        members = sorted(scc, key=list(nodes).index)
        if len(members) == 1 and not g.has_edge(members[0], members[0]):
            continue
        if len(members) == 2:
            kinds = {n: type(nodes[n]).__name__ for n in members}
            neurons = [n for n in members if is_neuron(kinds[n])]
            synapses = [n for n in members if kinds[n] in ("Linear", "Affine")]
            if len(neurons) == 1 and len(synapses) == 1 and list(g.predecessors(synapses[0])) == neurons:
                recurrent.add((synapses[0], neurons[0]))
                continue
        cycle = [a for a, _ in nx.find_cycle(g.subgraph(members))]
        path = " -> ".join(f"{n} ({type(nodes[n]).__name__})" for n in [*cycle, cycle[0]])
        raise UserError(f"{source}: the cycle {path} is not a recurrence (a neuron fed back through one "
                        "Linear or Affine)", "remove the cycle, or feed the neuron back through one synapse")
    return recurrent


def _size(shape: Shape, name: str, source: str) -> Shape:
    if any(d < 1 for d in shape) or math.prod(shape) > MAX_NEURONS:
        raise UserError(f"{source}: node {name!r} has shape {shape}: {math.prod(shape)} neurons, outside "
                        f"1..{MAX_NEURONS}", "check the node's shape; split layers this large")
    return shape


def _param_shape(node: Any) -> Shape | None:
    """The shape that a neuron's, Scale's or Threshold's per-element arrays declare, if they declare one."""
    shapes = {np.shape(v) for v in node_fields(node).values() if isinstance(v, np.ndarray) and v.size > 1}
    return next(iter(shapes)) if len(shapes) == 1 else None


def _rank_taken(node: Any, op: Any) -> int | None:
    """The per-sample input rank a node takes, where its kind fixes it."""
    if isinstance(op, (Conv, Pool)):
        return 3
    if isinstance(op, Dense):
        return 1
    host = HOST_OPS.get(type(node).__name__)
    if host is not None and host.rank is not None:
        return host.rank
    shape = _param_shape(node) if isinstance(op, Neuron) or host is not None else None
    return None if shape is None else len(shape)


def _flatten_dims(name: str, raw: Flatten, shape: Shape, declared: Any, target: Shape | None,
                  source: str) -> Flatten:
    """Per-sample (start, end) of a Flatten; see the module docstring for the batch-axis rule."""
    rank = len(shape)

    def reading(offset: int) -> Flatten | None:
        start, end = (d + rank if d < 0 else d - offset for d in (raw.start_dim, raw.end_dim))
        return Flatten(start, end) if 0 <= start <= end < rank else None

    def out(f: Flatten) -> Shape:
        return (*shape[:f.start_dim], math.prod(shape[f.start_dim:f.end_dim + 1]), *shape[f.end_dim + 1:])

    plain, batch = reading(0), reading(1)
    if batch is not None and declared is not None and np.size(declared) == rank + 1:
        return batch
    fitting = [f for f in (plain, batch) if f is not None and target is not None and out(f) == target]
    if len(fitting) == 1:
        return fitting[0]
    if plain is not None:
        return plain
    if batch is not None:
        return batch
    raise UserError(f"{source}: node {name!r} (Flatten): start_dim {raw.start_dim} and end_dim {raw.end_dim} "
                    f"do not fit its input of shape {shape}", "fix the Flatten's dims")


def _output_shape(name: str, node: Any, op: Any, shape: Shape, source: str) -> Shape:
    """A node's per-sample output shape from its input shape; a UserError where they do not fit."""
    kind = type(node).__name__

    def refuse(wanted: str) -> UserError:
        return UserError(f"{source}: node {name!r} ({kind}) takes {wanted} but receives shape {shape}",
                         "fix the shapes of the graph")

    if isinstance(op, Conv):
        o, c, kh, kw = op.weight.shape
        if len(shape) != 3 or shape[0] != c * op.groups:
            raise refuse(f"({c * op.groups}, H, W)")
        if op.padding == "same":
            return (o, shape[1], shape[2])
        return (o, *(conv_output_size(shape[i + 1], (kh, kw)[i], op.stride[i], op.padding[i], op.dilation[i])
                     for i in range(2)))
    if isinstance(op, Dense):
        if shape != (op.weight.shape[1],):
            raise refuse(f"({op.weight.shape[1]},)")
        return (op.weight.shape[0],)
    if isinstance(op, Pool):
        if len(shape) != 3:
            raise refuse("(C, H, W)")
        return (shape[0], *(conv_output_size(shape[i + 1], op.kernel[i], op.stride[i], op.padding[i])
                            for i in range(2)))
    if isinstance(op, Flatten):
        return (*shape[:op.start_dim], math.prod(shape[op.start_dim:op.end_dim + 1]), *shape[op.end_dim + 1:])
    host = HOST_OPS.get(kind)
    if host is not None and host.output_shape is not None:
        out = host.output_shape(op, shape)
        if isinstance(out, str):
            raise refuse(out)
        return out
    declared = _param_shape(node) if kind not in ("Input", "Output") else None
    if declared is not None and declared != shape:
        raise refuse(f"shape {declared}")
    return shape


def infer_shapes(nodes: dict[str, Any], ops: dict[str, Any], edges: list[tuple[str, str]],
                  recurrent: set[tuple[str, str]], source: str) -> dict[str, tuple[Shape, Shape]]:
    """Per-sample (input, output) shapes of every node, from the Inputs on; normalizes Flatten ops in ``ops``."""
    import networkx as nx

    forward = [e for e in edges if e not in recurrent]
    dag = nx.DiGraph()
    dag.add_nodes_from(nodes)
    dag.add_edges_from(forward)
    index = {name: i for i, name in enumerate(nodes)}
    shapes: dict[str, tuple[Shape, Shape]] = {}
    for name in nx.lexicographical_topological_sort(dag, key=index.get):
        node, kind = nodes[name], type(nodes[name]).__name__
        consumers = list(dag.successors(name))
        if kind == "Input":
            declared = (node.input_type or {}).get("input")
            if declared is None:
                raise UserError(f"{source}: Input {name!r} has no shape", "give the Input node its shape")
            shape = _size(tuple(int(d) for d in np.asarray(as_array(declared)).reshape(-1)), name, source)
            taken = {_rank_taken(nodes[c], ops[c]) for c in consumers}
            if len(shape) > 1 and shape[0] == 1 and len(shape) - 1 in taken:
                shape = shape[1:]  # a batch axis of 1
            shapes[name] = (shape, shape)
            continue
        given = {a: shapes[a][1] for a in dag.predecessors(name)}
        if not given:
            raise UserError(f"{source}: node {name!r} ({kind}) has no input", "connect it to the graph or remove it")
        if len(set(given.values())) > 1:
            listed = ", ".join(f"{s} from {a}" for a, s in given.items())
            raise UserError(f"{source}: node {name!r} ({kind}) receives different shapes: {listed}",
                            "fix the shapes of the graph")
        shape = next(iter(given.values()))
        if isinstance(ops[name], Flatten):
            targets = [ops[c].weight.shape[1:] for c in consumers if isinstance(ops[c], Dense)]
            declared = (node.input_type or {}).get("input")
            ops[name] = _flatten_dims(name, ops[name], shape, declared, targets[0] if targets else None, source)
        shapes[name] = (shape, _size(_output_shape(name, node, ops[name], shape, source), name, source))
    for synapse, neuron in recurrent:
        if shapes[synapse][1] != shapes[neuron][0]:
            raise UserError(f"{source}: recurrent synapse {synapse!r} gives shape {shapes[synapse][1]} to neuron "
                            f"{neuron!r} of shape {shapes[neuron][0]}", "fix the recurrent weight's shape")
    return shapes
