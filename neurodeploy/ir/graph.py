r"""A NIR graph, read into the one normalized, validated form that the partitioner walks.

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
  convention taken is kept in :attr:`Graph.tau_convention`). Norse's
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from neurodeploy.errors import UserError

MAX_NEURONS = 2**26
MAX_WEIGHTS = 2**28
SPIKING = ("CubaLIF", "LIF", "IF")
NEURONS = (*SPIKING, "CubaLI", "LI", "I")
CONTINUOUS = ("CubaLIF", "LIF", "CubaLI", "LI")  # neurons with time constants: they need dt
HOST_ONLY = ("Conv1d", "Scale", "Threshold")  # a PyTorch equivalent, no Loihi one
KNOWN = (*NEURONS, *HOST_ONLY, "Input", "Output", "Conv2d", "Linear", "Affine", "SumPool2d", "AvgPool2d",
         "Flatten")
_NEURON_PARAMS = {
    "CubaLIF": ("tau_mem", "tau_syn", "r", "v_leak", "v_threshold", "v_reset", "w_in"),
    "LIF": ("tau", "r", "v_leak", "v_threshold", "v_reset"),
    "IF": ("r", "v_threshold", "v_reset"),
    "CubaLI": ("tau_mem", "tau_syn", "r", "v_leak", "w_in"),
    "LI": ("tau", "r", "v_leak"),
    "I": ("r",),
}
Shape = tuple[int, ...]


@dataclass(frozen=True)
class Neuron:
    """One layer's neuron parameters (equal across the layer), NIR's units; ``dt`` in seconds."""

    kind: str  # one of NEURONS
    v_threshold: float | None = None  # None for the non-spiking kinds
    tau_mem: float | None = None  # seconds; None for IF and I
    tau_syn: float | None = None  # seconds; CubaLIF and CubaLI only
    v_leak: float = 0.0
    v_reset: float = 0.0
    r: float = 1.0
    w_in: float = 1.0
    dt: float | None = None  # the graph's time step; None when no neuron has a time constant

    def __post_init__(self) -> None:
        if self.kind not in NEURONS:
            raise ValueError(f"unknown neuron kind {self.kind!r}")
        if (self.kind in SPIKING) != (self.v_threshold is not None):
            raise ValueError(f"{self.kind}: v_threshold must be given exactly for spiking neurons")
        for name in ("tau_mem", "tau_syn"):
            tau = getattr(self, name)
            if tau is not None and (self.dt is None or not 0 < self.dt / tau <= 1):
                raise ValueError(f"{name} = {tau} s and dt = {self.dt} s is not a forward Euler step "
                                 "(dt / tau must lie in (0, 1])")

    @property
    def spiking(self) -> bool:
        return self.kind in SPIKING

    @property
    def voltage_decay(self) -> float:
        """Fraction of v lost per step: ``dt / tau_mem`` (0 for IF and I)."""
        return 0.0 if self.tau_mem is None or self.dt is None else self.dt / self.tau_mem

    @property
    def current_decay(self) -> float:
        """Fraction of the synaptic current lost per step: ``dt / tau_syn``; 1 without a current filter."""
        return 1.0 if self.tau_syn is None or self.dt is None else self.dt / self.tau_syn

    @property
    def filters_current(self) -> bool:
        """True when the synaptic current remembers earlier steps (``dt < tau_syn``)."""
        return self.current_decay < 1.0


@dataclass(frozen=True)
class Conv:
    """nir.Conv2d: ``weight`` (O, C/groups, kh, kw); ``padding`` is "same" only when it is asymmetric."""

    weight: np.ndarray
    bias: np.ndarray | None
    stride: tuple[int, int]
    padding: tuple[int, int] | str
    dilation: tuple[int, int]
    groups: int


@dataclass(frozen=True)
class Dense:
    """nir.Linear (no bias) or nir.Affine: ``y = weight @ x + bias``, weight (O, I)."""

    weight: np.ndarray
    bias: np.ndarray | None


@dataclass(frozen=True)
class Pool:
    """nir.SumPool2d (``kind="sum"``) or nir.AvgPool2d (``"avg"``: the sum over kh·kw, divided by kh·kw)."""

    kind: str
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True)
class Flatten:
    """nir.Flatten with per-sample, non-negative dims: axes start..end (inclusive) become one."""

    start_dim: int
    end_dim: int


@dataclass(frozen=True)
class Node:
    """A graph node: its NIR kind, its typed operation and its per-sample shapes.

    ``op`` is a :class:`Neuron`, :class:`Conv`, :class:`Dense`, :class:`Pool`
    or :class:`Flatten`; ``None`` for Input and Output; the NIR node itself
    (arrays as numpy) for the HOST_ONLY kinds.
    """

    name: str
    kind: str
    op: Any
    input_shape: Shape
    output_shape: Shape


@dataclass(frozen=True)
class Graph:
    """A normalized NIR graph; ``nodes`` keep the file's order."""

    nodes: dict[str, Node]
    edges: tuple[tuple[str, str], ...]
    recurrent: frozenset[tuple[str, str]]  # (synapse, neuron) edges that close a recurrence
    dt: float | None
    tau_convention: str = "seconds"  # how the file stored tau: "seconds" (NIR), "norse-1.1", "rockpool-3.1"

    def inputs(self, name: str) -> list[str]:
        return [a for a, b in self.edges if b == name]

    def outputs(self, name: str) -> list[str]:
        return [b for a, b in self.edges if a == name]


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
        if kind not in KNOWN:
            raise UserError(f"{source}: node {name!r} is a {kind}, which neither Loihi nor neurodeploy's "
                            "host runtime implements", "replace it with NIR primitives")
        for key, value in _fields(node).items():
            size = np.size(value) if isinstance(value, np.ndarray) else 0
            if size > (MAX_WEIGHTS if key == "weight" else MAX_NEURONS):
                raise UserError(f"{source}: node {name!r} has a {key} of {size} elements, more than "
                                f"neurodeploy handles ({MAX_WEIGHTS if key == 'weight' else MAX_NEURONS})",
                                "split the layer")
    step = _time_step(raw, nodes, dt, source)
    convention = _tau_convention(nodes, step, tau_convention)
    tau_unit = 1.0 / step if convention == "norse-1.1" and step is not None else 1.0
    ops = {name: _op(name, node, step, source, tau_unit, convention == ROCKPOOL) for name, node in nodes.items()}
    recurrent = _recurrences(nodes, edges, source)
    shapes = _infer_shapes(nodes, ops, edges, recurrent, source)
    graph_nodes = {name: Node(name, type(nodes[name]).__name__, ops[name], *shapes[name]) for name in nodes}
    return Graph(nodes=graph_nodes, edges=tuple(edges), recurrent=frozenset(recurrent), dt=step,
                 tau_convention=convention)


TauConvention = Literal["auto", "seconds", "norse-1.1", "rockpool-3.1"]
TAU_FIELDS = ("tau", "tau_mem", "tau_syn")
ROCKPOOL = "rockpool-3.1"


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


def _tau_convention(nodes: dict[str, Any], dt: float | None, asked: str) -> str:
    """The graph's convention: Rockpool 3.1's (:func:`_is_rockpool`), else :func:`tau_convention_of` over
    every tau of its continuous-time neurons."""
    if asked == ROCKPOOL or (asked == "auto" and _is_rockpool(nodes, dt)):
        return ROCKPOOL
    taus = [_array(value) for node in nodes.values() if type(node).__name__ in CONTINUOUS
            for key, value in _fields(node).items() if key in TAU_FIELDS and value is not None]
    return tau_convention_of(asked, dt, taus)


def _rockpool_r(tau_mem: Any, dt: float) -> Any:
    """The ``r`` that Rockpool 3.1's ``to_nir`` writes for a membrane time constant: ``tau·exp(-dt/tau)/dt``."""
    return tau_mem * np.exp(-dt / tau_mem) / dt


def _is_rockpool(nodes: dict[str, Any], dt: float | None) -> bool:
    """True when the graph has LIF or CubaLIF neurons and every one's ``r`` is Rockpool 3.1's at ``dt``."""
    neurons = [_fields(n) for n in nodes.values() if type(n).__name__ in ("LIF", "CubaLIF")]
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


def _array(value: Any) -> Any:
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return value


def _fields(node: Any) -> dict[str, Any]:
    """A node's parameters with tensors as numpy arrays (the node itself is not changed)."""
    skip = ("input_type", "output_type", "metadata", "nodes", "edges")
    return {k: _array(v) for k, v in vars(node).items() if k not in skip}


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
    timed = [(name, type(node).__name__) for name, node in nodes.items() if type(node).__name__ in CONTINUOUS]
    if dt is None:
        value = (getattr(raw, "metadata", None) or {}).get("dt")
        if value is not None:
            dt = float(np.asarray(_array(value), dtype=np.float64).reshape(-1)[0])
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
    values = {p: _scalar(name, kind, p, fields[p], source) for p in _NEURON_PARAMS[kind]
              if fields.get(p) is not None}
    if "tau" in values:
        values["tau_mem"] = values.pop("tau")
    if rockpool and kind in CONTINUOUS:
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
    return Neuron(kind=kind, dt=dt if kind in CONTINUOUS else None, **values)


def _pair(value: Any, what: str, name: str, source: str) -> tuple[int, int]:
    arr = np.asarray(_array(value)).reshape(-1)
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
    f = _fields(node)
    if kind in ("Input", "Output"):
        return None
    if kind in NEURONS:
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
    if kind == "Flatten":  # made per-sample by _infer_shapes, which knows the input's rank
        return Flatten(start_dim=int(np.asarray(f["start_dim"])), end_dim=int(np.asarray(f["end_dim"])))
    host = copy.copy(node)
    for key, value in f.items():
        setattr(host, key, value)
    return host


# -- structure -----------------------------------------------------------------------------------------

def _recurrences(nodes: dict[str, Any], edges: list[tuple[str, str]], source: str) -> set[tuple[str, str]]:
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
            neurons = [n for n in members if kinds[n] in NEURONS]
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
    shapes = {np.shape(v) for v in _fields(node).values() if isinstance(v, np.ndarray) and v.size > 1}
    return next(iter(shapes)) if len(shapes) == 1 else None


def _rank_taken(node: Any, op: Any) -> int | None:
    """The per-sample input rank a node takes, where its kind fixes it."""
    if isinstance(op, (Conv, Pool)):
        return 3
    if isinstance(op, Dense):
        return 1
    if type(node).__name__ == "Conv1d":
        return 2
    shape = _param_shape(node) if isinstance(op, Neuron) or type(node).__name__ in HOST_ONLY else None
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


def _conv_size(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


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
        return (o, *(_conv_size(shape[i + 1], (kh, kw)[i], op.stride[i], op.padding[i], op.dilation[i])
                     for i in range(2)))
    if isinstance(op, Dense):
        if shape != (op.weight.shape[1],):
            raise refuse(f"({op.weight.shape[1]},)")
        return (op.weight.shape[0],)
    if isinstance(op, Pool):
        if len(shape) != 3:
            raise refuse("(C, H, W)")
        return (shape[0], *(_conv_size(shape[i + 1], op.kernel[i], op.stride[i], op.padding[i]) for i in range(2)))
    if isinstance(op, Flatten):
        return (*shape[:op.start_dim], math.prod(shape[op.start_dim:op.end_dim + 1]), *shape[op.end_dim + 1:])
    if kind == "Conv1d":
        weight = np.asarray(op.weight)
        if len(shape) != 2 or shape[0] != weight.shape[1] * int(op.groups):
            raise refuse(f"({weight.shape[1] * int(op.groups)}, L)")
        stride, padding, dilation = (int(np.asarray(v).reshape(-1)[0]) for v in (op.stride, op.padding, op.dilation))
        return (weight.shape[0], _conv_size(shape[1], weight.shape[2], stride, padding, dilation))
    declared = _param_shape(node) if kind not in ("Input", "Output") else None
    if declared is not None and declared != shape:
        raise refuse(f"shape {declared}")
    return shape


def _infer_shapes(nodes: dict[str, Any], ops: dict[str, Any], edges: list[tuple[str, str]],
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
            shape = _size(tuple(int(d) for d in np.asarray(_array(declared)).reshape(-1)), name, source)
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
