"""The host segments of a partitioned graph: their parameters as plain values, and their execution in torch.

A format-2 bundle keeps everything the partitioner left on the host (Input,
Output, Linear / Affine / Conv2d without a chip neuron after them, pools,
Flatten, non-spiking or host-kept neurons, Scale, Threshold, Conv1d) in
``host.pt``::

    {"format": "neurodeploy-graph-host", "version": 1,
     "nodes": {name: {"kind": NIR kind, "op": op type, "fields": {field: tensor | number | tuple | str}}}}

Only tensors, numbers, strings and tuples: ``torch.load(weights_only=True)``
reads it and nothing in it runs code. :func:`host_ops` rebuilds each node's
typed operation (:mod:`neurodeploy.ir.graph`) from those values alone, and
:func:`run_host_segment` runs a segment with
:func:`neurodeploy.ir.float_run.run_nodes`: the host executes exactly the
float semantics of the graph, one time step after the other (float64), so a
host node has one definition in the code base.
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from neurodeploy.errors import UserError
from neurodeploy.ir.float_run import run_nodes
from neurodeploy.ir.graph import Conv, Dense, Flatten, Graph, Neuron, Pool

HOST_GRAPH_FORMAT = "neurodeploy-graph-host"
_OPS = {"Conv": Conv, "Dense": Dense, "Pool": Pool, "Flatten": Flatten, "Neuron": Neuron}


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    return value


def host_params(graph: Graph, nodes: list[str]) -> dict[str, Any]:
    """The ``host.pt`` contents for the host ``nodes`` of ``graph`` (module docstring)."""
    out: dict[str, Any] = {}
    for name in nodes:
        node = graph.nodes[name]
        op = node.op
        if op is None:
            kind, fields = "None", {}
        elif type(op) in _OPS.values():  # not any dataclass: NIR's nodes are dataclasses too
            kind = type(op).__name__
            fields = {f.name: _plain(getattr(op, f.name)) for f in dataclasses.fields(op)}
        else:  # a host-only node (ir/host_only.HOST_OPS): the NIR node's own fields
            kind = "NIR"
            fields = {k: _plain(v) for k, v in vars(op).items()
                      if k not in ("input_type", "output_type", "metadata")}
        out[name] = {"kind": node.kind, "op": kind, "fields": fields}
    return {"format": HOST_GRAPH_FORMAT, "version": 1, "nodes": out}


def _numpy(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.numpy().astype(np.float64)
    return value


def host_ops(data: dict[str, Any], where: str) -> dict[str, tuple[str, Any]]:
    """Each host node's (NIR kind, typed op), rebuilt from ``host.pt`` contents; a UserError if malformed."""
    fix = "re-create the bundle with neurodeploy convert"
    if data.get("format") != HOST_GRAPH_FORMAT or not isinstance(data.get("nodes"), dict):
        raise UserError(f"{where} is not a neurodeploy graph host file", fix)
    ops: dict[str, tuple[str, Any]] = {}
    for name, entry in data["nodes"].items():
        try:
            fields = {k: _numpy(v) for k, v in dict(entry["fields"]).items()}
            kind, op_kind = str(entry["kind"]), str(entry["op"])
            if op_kind == "None":
                op = None
            elif op_kind == "NIR":
                op = SimpleNamespace(**fields)
            else:
                op = _OPS[op_kind](**fields)
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"{where}: host node {name!r} cannot be rebuilt ({type(exc).__name__}: {exc})",
                            fix) from None
        ops[str(name)] = (kind, op)
    return ops


def with_host_ops(graph: Graph, ops: dict[str, tuple[str, Any]], where: str) -> Graph:
    """``graph`` with its host nodes' operations taken from ``host.pt`` (kinds must agree)."""
    nodes = dict(graph.nodes)
    for name, (kind, op) in ops.items():
        if name not in nodes or nodes[name].kind != kind:
            raise UserError(f"{where}: host node {name!r} ({kind}) is not a node of the bundle's graph",
                            "re-create the bundle with neurodeploy convert")
        nodes[name] = dataclasses.replace(nodes[name], op=op)
    return dataclasses.replace(graph, nodes=nodes)


def run_host_segment(graph: Graph, nodes: tuple[str, ...], values: dict[str, torch.Tensor]
                     ) -> dict[str, torch.Tensor]:
    """Run one host segment's ``nodes`` over all steps; ``values`` holds every node they read, (N, T, *shape).

    Input nodes are read from ``values`` as they are. Returns the segment's
    nodes' outputs (N, T, *shape), float64.
    """

    names = [n for n in nodes if graph.nodes[n].kind != "Input"]
    needed = {a for n in names for a in graph.inputs(n) if a not in names}
    needed |= {n for n in nodes if graph.nodes[n].kind == "Input"}
    done = run_nodes(graph, names, {a: values[a] for a in needed})
    return {n: done[n] for n in nodes}
