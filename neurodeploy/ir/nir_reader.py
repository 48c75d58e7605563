r"""A NIR graph, read into the one normalized, validated form that the partitioner walks (:mod:`neurodeploy.ir.graph`).

:func:`read_graph` takes a ``.nir`` file or an in-memory ``nir.NIRGraph`` and
returns a :class:`Graph`: named nodes with a typed operation and a per-sample
input and output shape each, the edges, the time step, and the recurrent
edges. Everything a user can get wrong is a :class:`~neurodeploy.errors.UserError`
here, before any layer is built. What it normalizes, and why:

* Nested subgraphs are flattened; inner names are joined with ``.``
  (``"rnn.lif"``). An edge to a subgraph enters at its Input, an edge from it
  leaves at its Output, and those inner Input / Output nodes are spliced out.
* Torch tensors become numpy arrays (in-memory graphs from Norse or nirtorch).
* Shapes are per sample: they are inferred from each Input through every
  primitive, whatever ``input_type`` / ``output_type`` say or omit. An Input
  of shape ``(1, *s)`` whose consumer takes rank ``len(s)`` (a Conv2d or a
  pool takes 3, a Linear 1) is ``s``: the 1 was a batch axis.
* ``Flatten.start_dim`` / ``end_dim`` are counted without the batch axis in
  NIR, with it in some exporters (``torch.nn.Flatten(start_dim=1)`` copied
  as is). The per-sample reading is ``(start_dim, end_dim)``; the batch
  reading is one less for non-negative values. The batch reading is taken
  when the Flatten's declared input type has one axis more than the inferred
  per-sample input, or when only it gives the next Linear its input size,
  or when only it is valid for the input's rank.
* Neuron parameters must be equal across a layer (Loihi's layers share one
  value); per-neuron arrays are checked and become one float each.
  Unequal values are a UserError naming the node and the parameter.
* Biases that are all zero are no bias (exporters store ``bias=False`` as zeros).
* Continuous-time neurons (LIF, CubaLIF, LI, CubaLI) need the time step
  ``dt``: the ``dt`` argument, else ``graph.metadata["dt"]``, else a
  UserError. Forward Euler turns ``tau·dx/dt = f`` into ``x += (dt/tau)·f``,
  so ``dt/tau`` must lie in (0, 1]. Norse 1.1's ``to_nir`` stores
  ``tau = dt·tau_seconds`` (it writes ``dt / tau_inv``): with
  ``tau_convention="auto"`` a graph where some ``dt/tau`` exceeds 1, not a
  forward Euler step in seconds, is read as Norse 1.1's and every tau is
  divided by ``dt`` (``"seconds"`` / ``"norse-1.1"`` say it outright; the
  convention taken is kept in :attr:`Graph.tau_convention`, and why in
  :attr:`Graph.tau_convention_reason`: a norse-1.1 guess on a graph whose
  neurons are not written as Norse's, a CubaLIF with ``r = w_in = 1``, says it
  doubts it, since that is what a wrong ``dt`` does to an snnTorch graph). Norse's
  ``LIFCell`` / ``LICell`` add the whole input to the current
  (``i ← i + x``, then decay) and Norse 1.1 writes them as CubaLIF / CubaLI
  with ``w_in = 1``; in NIR's ``i += (dt/tau_syn)·(w_in·S - i)`` that jump
  needs ``w_in = tau_syn/dt``, so a Norse 1.1 graph's ``w_in`` is multiplied
  by ``tau_syn/dt`` (without it the current is ``dt/tau_syn`` too small: an
  output layer that never fires).
  Rockpool 3.1's ``to_nir`` writes the time constants of its exponential
  decay and ``r = tau_mem·exp(-dt/tau_mem)/dt``, while its forward is
  ``i_t = β·(i + w_in·S_t)``, ``v_t = α·v + i_t + b`` (``α = exp(-dt/tau_mem)``,
  ``β = exp(-dt/tau_syn)``, ``b`` the bias it exports as ``v_leak``). A graph
  whose every LIF and CubaLIF has that ``r`` at the given ``dt`` is read as
  Rockpool's (``"rockpool-3.1"``) and rewritten to the forward Euler form
  below, which then computes exactly Rockpool's update: ``tau_mem = dt/(1-α)``,
  ``r = 1/(1-α)``, ``v_leak = b/(1-α)``, ``tau_syn = dt/(1-β)``,
  ``w_in = w_in·β/(1-β)``. Rockpool resets by subtracting the threshold; NIR
  (and its export, ``v_reset = 0``) and Loihi reset to ``v_reset``: that
  difference stays (measured in docs/BENCHMARKS.md, section 11). The
  forward Euler form:

      LIF:     v_t = v + (dt/tau_mem)·(v_leak - v + r·I_t)
      CubaLIF: i_t = i + (dt/tau_syn)·(-i + w_in·S_t)
               v_t = v + (dt/tau_mem)·(v_leak - v + r·i_t)
      IF:      v_t = v + r·I_t          (no time constant: one step per input step)

  then ``z_t = [v_t > v_threshold]`` and ``v_t <- v_reset`` where ``z_t``.
* Cycles must be recurrences: a neuron and a Linear/Affine that feeds it back
  (``N -> R -> N``, R's only input N). Any other cycle is a UserError. The
  edges ``R -> N`` are :attr:`Graph.recurrent`; without them the graph is a DAG.
* Sizes are capped before anything is allocated from them: a node of more
  than ``MAX_NEURONS`` neurons or a weight of more than ``MAX_WEIGHTS``
  elements is a UserError (for a file, the HDF5 datasets are measured before
  ``nir.read`` loads them).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from neurodeploy.errors import UserError
from neurodeploy.ir.graph import (
    NEURON_KINDS,
    STRUCTURAL,
    Conv,
    Dense,
    Flatten,
    Graph,
    Neuron,
    Node,
    Pool,
    TauConvention,
    is_continuous,
    is_neuron,
)
from neurodeploy.ir.host_only import HOST_OPS
from neurodeploy.ir.shapes import MAX_NEURONS, as_array, infer_shapes, node_fields, recurrences

MAX_WEIGHTS = 2**28


# -- reading -------------------------------------------------------------------------------------------

def read_graph(graph_or_path: Any, dt: float | None = None, tau_convention: TauConvention = "auto") -> Graph:
    """Read a NIR graph (a path to a ``.nir`` file, or a ``nir.NIRGraph``) into a validated :class:`Graph`."""
    import nir

    if isinstance(graph_or_path, (str, os.PathLike)):
        raw = _read_file(Path(graph_or_path))
        source = str(graph_or_path)
    elif isinstance(graph_or_path, nir.NIRGraph):
        raw, source = graph_or_path, "the NIR graph"
    else:
        raise UserError(f"cannot read a {type(graph_or_path).__name__} as a NIR graph",
                        "pass a .nir file or a nir.NIRGraph")
    nodes, edges, _ = _flatten(raw, "", source)
    for name, node in nodes.items():
        kind = type(node).__name__
        if not (is_neuron(kind) or kind in STRUCTURAL or kind in HOST_OPS):
            raise UserError(f"{source}: node {name!r} is a {kind}, which neither Loihi nor neurodeploy's "
                            "host runtime implements", "replace it with NIR primitives")
        for key, value in node_fields(node).items():
            size = np.size(value) if isinstance(value, np.ndarray) else 0
            if size > (MAX_WEIGHTS if key == "weight" else MAX_NEURONS):
                raise UserError(f"{source}: node {name!r} has a {key} of {size} elements, more than "
                                f"neurodeploy handles ({MAX_WEIGHTS if key == 'weight' else MAX_NEURONS})",
                                "split the layer")
    step = _time_step(raw, nodes, dt, source)
    convention, why = _tau_convention(nodes, step, tau_convention)
    tau_unit = 1.0 / step if convention == "norse-1.1" and step is not None else 1.0
    ops = {name: _op(name, node, step, source, tau_unit, convention == ROCKPOOL) for name, node in nodes.items()}
    recurrent = recurrences(nodes, edges, source)
    shapes = infer_shapes(nodes, ops, edges, recurrent, source)
    graph_nodes = {name: Node(name, type(nodes[name]).__name__, ops[name], *shapes[name]) for name in nodes}
    return Graph(nodes=graph_nodes, edges=tuple(edges), recurrent=frozenset(recurrent), dt=step,
                 tau_convention=convention, tau_convention_reason=why)


TAU_FIELDS = ("tau", "tau_mem", "tau_syn")
ROCKPOOL = "rockpool-3.1"
NO_TIME_CONSTANTS = "auto: the graph has no time constants to read"
DOUBTFUL = "but its neurons are not Norse 1.1's"  # in the reason of a norse-1.1 guess that looks wrong


def tau_convention_of(asked: str, dt: float | None, taus: Iterable[Any]) -> str:
    """The convention that ``taus`` (arrays or numbers) are stored in: ``asked`` unless "auto", and then
    "norse-1.1" when some dt/tau exceeds 1 (no forward Euler step in seconds), else "seconds"."""
    if asked not in ("auto", "seconds", "norse-1.1"):
        raise UserError(f"unknown tau convention {asked!r}", "pass `tau_convention=auto`, seconds or norse-1.1")
    if asked != "auto":
        return asked
    if dt is None:
        return "seconds"
    for value in taus:
        tau = np.asarray(value, dtype=np.float64)
        if np.any((tau > 0) & (dt / np.where(tau > 0, tau, 1.0) > 1)):
            return "norse-1.1"
    return "seconds"


def _tau_convention(nodes: dict[str, Any], dt: float | None, asked: str) -> tuple[str, str]:
    """The graph's convention and why: Rockpool 3.1's (:func:`_is_rockpool`), else :func:`tau_convention_of`
    over every tau of its continuous-time neurons."""
    if asked != "auto" and asked in (ROCKPOOL, "seconds", "norse-1.1"):
        return asked, "given"
    if asked == "auto" and _is_rockpool(nodes, dt):
        return ROCKPOOL, (f"auto-detected: every LIF's r is Rockpool 3.1's tau_mem·exp(-dt/tau_mem)/dt at "
                          f"dt = {dt:g} s")
    named = [(name, key, as_array(value)) for name, node in nodes.items() if is_continuous(type(node).__name__)
             for key, value in node_fields(node).items() if key in TAU_FIELDS and value is not None]
    convention = tau_convention_of(asked, dt, [tau for _, _, tau in named])
    named = [(name, key, np.asarray(tau, np.float64)) for name, key, tau in named if np.any(np.asarray(tau) > 0)]
    if dt is None or not named:
        return convention, NO_TIME_CONSTANTS if not named else "auto: no time step"
    name, key, tau = min(named, key=lambda item: float(np.min(np.where(item[2] > 0, item[2], np.inf))))
    ratio = dt / float(np.min(np.where(tau > 0, tau, np.inf)))
    if convention == "norse-1.1":
        doubt = "" if _looks_like_norse(nodes) else f", {DOUBTFUL} (CubaLIF with r = w_in = 1): is dt right?"
        return convention, (f"auto-detected: dt/{key} = {ratio:.3g} > 1 at node {name!r} with dt = {dt:g} s is no "
                            f"forward Euler step in seconds, so each tau is read as Norse 1.1's dt·tau{doubt}")
    return convention, f"auto-detected: every dt/tau <= 1 at dt = {dt:g} s (the largest {ratio:.3g}, node {name!r})"


def _looks_like_norse(nodes: dict[str, Any]) -> bool:
    """True when every continuous-time spiking neuron is written as Norse 1.1 writes its LIFCell: a CubaLIF
    with ``r = 1`` and ``w_in = 1`` (snnTorch writes LIF with ``r = tau/dt``, Rockpool its own ``r``)."""
    for node in nodes.values():
        kind, f = type(node).__name__, node_fields(node)
        if kind == "LIF" or (kind == "CubaLIF" and not all(
                np.allclose(np.asarray(f.get(key, 1.0), np.float64), 1.0) for key in ("r", "w_in"))):
            return False
    return True


def _rockpool_r(tau_mem: Any, dt: float) -> Any:
    """The ``r`` that Rockpool 3.1's ``to_nir`` writes for a membrane time constant: ``tau·exp(-dt/tau)/dt``."""
    return tau_mem * np.exp(-dt / tau_mem) / dt


def _is_rockpool(nodes: dict[str, Any], dt: float | None) -> bool:
    """True when the graph has LIF or CubaLIF neurons and every one's ``r`` is Rockpool 3.1's at ``dt``."""
    neurons = [node_fields(n) for n in nodes.values() if type(n).__name__ in ("LIF", "CubaLIF")]
    if dt is None or not neurons:
        return False
    for f in neurons:
        tau = np.asarray(f.get("tau_mem", f.get("tau")), dtype=np.float64)
        r = np.asarray(f.get("r", 1.0), dtype=np.float64)
        if tau.size == 0 or np.any(tau <= 0) or not np.allclose(r, _rockpool_r(tau, dt), rtol=1e-4, atol=0):
            return False
    return True


def _from_rockpool(name: str, kind: str, values: dict[str, float], dt: float, source: str) -> dict[str, float]:
    """A Rockpool 3.1 neuron's parameters rewritten to the forward Euler form that computes its update
    (module docstring)."""
    if kind not in ("LIF", "CubaLIF"):
        raise UserError(f"{source}: node {name!r} is a {kind}; neurodeploy reads only LIF and CubaLIF "
                        "in Rockpool 3.1's convention", "pass `tau_convention=seconds` if the graph is not Rockpool's")
    tau_mem, r = values["tau_mem"], values.get("r", 1.0)
    if tau_mem <= 0 or not math.isclose(r, _rockpool_r(tau_mem, dt), rel_tol=1e-4):
        raise UserError(f"{source}: node {name!r} ({kind}): r = {r:.6g} is not Rockpool 3.1's "
                        f"tau_mem·exp(-dt/tau_mem)/dt at dt = {dt:g}",
                        "pass the `dt` the Rockpool model was built with, or `tau_convention=seconds`")
    keep = 1.0 - math.exp(-dt / tau_mem)  # 1 - α
    out = {**values, "tau_mem": dt / keep, "r": 1.0 / keep, "v_leak": values.get("v_leak", 0.0) / keep}
    if "tau_syn" in values and values["tau_syn"] > 0:
        beta = math.exp(-dt / values["tau_syn"])
        out.update(tau_syn=dt / (1.0 - beta), w_in=values.get("w_in", 1.0) * beta / (1.0 - beta))
    return out


def _read_file(path: Path) -> Any:
    import h5py
    import nir

    if not path.is_file():
        raise UserError(f"{path} does not exist", "pass a NIR graph (.nir)")
    too_big: list[str] = []

    def measure(name: str, item: Any) -> None:
        if isinstance(item, h5py.Dataset) and item.size > (MAX_WEIGHTS if name.endswith("weight") else MAX_NEURONS):
            too_big.append(f"{name} ({item.size} elements)")

    try:
        with h5py.File(path, "r") as f:
            f.visititems(measure)
    except OSError as exc:
        raise UserError(f"{path} is not a NIR file (HDF5: {exc})", "write it with nir.write") from None
    if too_big:
        raise UserError(f"{path}: {too_big[0]} is larger than neurodeploy handles "
                        f"({MAX_NEURONS} neurons, {MAX_WEIGHTS} weights a layer)", "split the layer")
    try:
        return nir.read(path, type_check=False)
    except Exception as exc:
        raise UserError(f"{path} is not a readable NIR file ({type(exc).__name__}: {exc})",
                        "write it with nir.write") from None


def _flatten(graph: Any, prefix: str, source: str) -> tuple[dict[str, Any], list[tuple[str, str]], list[str]]:
    """Nodes and edges with every subgraph inlined (names joined with '.'), inner Input/Output spliced out.

    Returns the nodes, the edges and (below the top level) the inner Input /
    Output names still to splice out.
    """
    import nir

    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    inner_io: list[str] = []
    entry: dict[str, str] = {}  # subgraph name -> the full name of its one Input
    exit_: dict[str, str] = {}
    for name, node in graph.nodes.items():
        full = prefix + str(name)
        if isinstance(node, nir.NIRGraph):
            sub_nodes, sub_edges, sub_io = _flatten(node, full + ".", source)
            ins = [f"{full}.{k}" for k, v in node.nodes.items() if isinstance(v, nir.Input)]
            outs = [f"{full}.{k}" for k, v in node.nodes.items() if isinstance(v, nir.Output)]
            if len(ins) == 1:
                entry[full] = ins[0]
            if len(outs) == 1:
                exit_[full] = outs[0]
            nodes.update(sub_nodes)
            edges.extend(sub_edges)
            inner_io += sub_io + ins + outs
        else:
            nodes[full] = node
    for a, b in graph.edges:
        a, b = prefix + _text(a), prefix + _text(b)
        a, b = exit_.get(a, a), entry.get(b, b)
        for end in (a, b):
            if end not in nodes:
                raise UserError(f"{source}: an edge names {end!r}, which is not a node (or is a subgraph "
                                "with several inputs or outputs)", "connect existing nodes")
        if (a, b) in edges:
            raise UserError(f"{source}: the edge {a} -> {b} is given twice", "list each edge once")
        edges.append((a, b))
    if not prefix:
        for name in inner_io:
            before = [a for a, b in edges if b == name]
            after = [b for a, b in edges if a == name]
            edges = [e for e in edges if name not in e]
            edges += [(a, b) for a in before for b in after if (a, b) not in edges]
            del nodes[name]
        inner_io = []
    return nodes, edges, inner_io


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# -- parameters ----------------------------------------------------------------------------------------

def _time_step(raw: Any, nodes: dict[str, Any], dt: float | None, source: str) -> float | None:
    """``dt`` if given, else the graph's ``metadata["dt"]``; a UserError if a neuron needs it and neither has it."""
    timed = [(name, type(node).__name__) for name, node in nodes.items() if is_continuous(type(node).__name__)]
    if dt is None:
        value = (getattr(raw, "metadata", None) or {}).get("dt")
        if value is not None:
            dt = float(np.asarray(as_array(value), dtype=np.float64).reshape(-1)[0])
    if dt is None:
        if timed:
            name, kind = timed[0]
            raise UserError(f"{source}: node {name!r} ({kind}) has time constants in seconds and the graph's "
                            "metadata gives no time step", "pass `dt` in seconds (snnTorch exports with 1e-4)")
        return None
    if isinstance(dt, bool) or not math.isfinite(dt) or dt <= 0:
        raise UserError(f"the time step {dt} is not a positive number of seconds", "pass e.g. `dt=1e-3`")
    return float(dt)


def _scalar(name: str, kind: str, param: str, value: Any, source: str) -> float:
    """The one value a per-neuron parameter array holds; a UserError if its neurons differ."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.size == 0 or not np.all(np.isfinite(arr)):
        raise UserError(f"{source}: node {name!r} ({kind}): {param} is empty or not finite",
                        "give every neuron a finite value")
    first = float(arr.flat[0])
    if not np.allclose(arr, first, rtol=1e-6, atol=0):
        raise UserError(f"{source}: node {name!r} ({kind}): {param} differs between neurons "
                        f"({arr.min():.6g} to {arr.max():.6g}); a Loihi layer shares one value",
                        f"give all neurons of the layer the same {param}")
    return first


def _neuron(name: str, kind: str, fields: dict[str, Any], dt: float | None, source: str,
            tau_unit: float = 1.0, rockpool: bool = False) -> Neuron:
    values = {p: _scalar(name, kind, p, fields[p], source) for p in NEURON_KINDS[kind].params
              if fields.get(p) is not None}
    if "tau" in values:
        values["tau_mem"] = values.pop("tau")
    if rockpool and is_continuous(kind):
        assert dt is not None  # _is_rockpool or _time_step asked for it
        values = _from_rockpool(name, kind, values, dt, source)
    for param in ("tau_mem", "tau_syn"):
        if param in values:
            values[param] *= tau_unit  # seconds (1 / dt for Norse 1.1's dt·seconds)
    if tau_unit != 1.0 and "tau_syn" in values and dt is not None:
        # Norse 1.1's current jumps by the whole input (i += x) and its export writes w_in = 1: the NIR
        # form i += (dt/tau_syn)·(w_in·x - i) computes that jump only with w_in = tau_syn / dt.
        values["w_in"] = values.get("w_in", 1.0) * values["tau_syn"] / dt
    for param in ("tau_mem", "tau_syn"):
        if param in values:
            tau = values[param]
            if tau <= 0:
                raise UserError(f"{source}: node {name!r} ({kind}): {param} = {tau} is not positive",
                                "time constants are positive seconds")
            assert dt is not None  # _time_step asked for it
            if dt / tau > 1:
                raise UserError(f"{source}: node {name!r} ({kind}): dt / {param} = {dt / tau:.3g} is above 1, "
                                "not a forward Euler step", "pass a smaller `dt`, or store tau in seconds")
    return Neuron(kind=kind, dt=dt if is_continuous(kind) else None, **values)


def _pair(value: Any, what: str, name: str, source: str) -> tuple[int, int]:
    arr = np.asarray(as_array(value)).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, 2)
    if arr.size != 2 or not np.all(arr == np.round(arr)) or np.any(arr < 0):
        raise UserError(f"{source}: node {name!r}: {what} {value!r} is not one or two whole numbers",
                        f"give {what} as an int or a pair of ints")
    return int(arr[0]), int(arr[1])


def _bias(value: Any) -> np.ndarray | None:
    if value is None:
        return None
    bias = np.asarray(value, dtype=np.float64).reshape(-1)
    return None if not np.any(bias) else bias


def _weight(value: Any, ndim: int, name: str, kind: str, source: str) -> np.ndarray:
    weight = np.asarray(value, dtype=np.float64)
    if weight.ndim != ndim or not np.all(np.isfinite(weight)):
        raise UserError(f"{source}: node {name!r} ({kind}) has a weight of shape {weight.shape}; "
                        f"neurodeploy needs {ndim} axes of finite values", "export the layer with a plain weight")
    return weight


def _op(name: str, node: Any, dt: float | None, source: str, tau_unit: float = 1.0, rockpool: bool = False) -> Any:
    """The typed operation of one NIR node (see :class:`Node`); ``tau_unit`` turns its taus into seconds,
    ``rockpool`` reads its neuron in Rockpool 3.1's convention."""
    import copy

    kind = type(node).__name__
    f = node_fields(node)
    if kind in ("Input", "Output"):
        return None
    if is_neuron(kind):
        return _neuron(name, kind, f, dt, source, tau_unit, rockpool)
    if kind == "Conv2d":
        weight = _weight(f["weight"], 4, name, kind, source)
        dilation = _pair(f["dilation"], "dilation", name, source)
        padding: tuple[int, int] | str
        if isinstance(f["padding"], str):
            total = [d * (k - 1) for d, k in zip(dilation, weight.shape[2:], strict=True)]
            if f["padding"] == "valid":
                padding = (0, 0)
            else:
                padding = (total[0] // 2, total[1] // 2) if total[0] % 2 == total[1] % 2 == 0 else "same"
        else:
            padding = _pair(f["padding"], "padding", name, source)
        return Conv(weight=weight, bias=_bias(f.get("bias")), stride=_pair(f["stride"], "stride", name, source),
                    padding=padding, dilation=dilation, groups=int(np.asarray(f.get("groups", 1))))
    if kind in ("Linear", "Affine"):
        return Dense(weight=_weight(f["weight"], 2, name, kind, source), bias=_bias(f.get("bias")))
    if kind in ("SumPool2d", "AvgPool2d"):
        return Pool(kind="sum" if kind == "SumPool2d" else "avg",
                    kernel=_pair(f["kernel_size"], "kernel_size", name, source),
                    stride=_pair(f["stride"], "stride", name, source),
                    padding=_pair(f["padding"], "padding", name, source))
    if kind == "Flatten":  # made per-sample by infer_shapes, which knows the input's rank
        return Flatten(start_dim=int(np.asarray(f["start_dim"])), end_dim=int(np.asarray(f["end_dim"])))
    host = copy.copy(node)
    for key, value in f.items():
        setattr(host, key, value)
    return host
