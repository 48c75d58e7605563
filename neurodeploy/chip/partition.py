r"""The partitioner: every node of a graph goes on the chip or stays on the host.

:func:`plan` reads a graph (:mod:`neurodeploy.ir.graph`) and returns a
:class:`Partition`: an ordered list of chip and host segments joined by cuts,
and one placement row per node. Everything downstream walks this structure.

Rules
-----
A **chip layer** is a synapse feeding spiking neurons
(:mod:`neurodeploy.chip.layers`). A spiking neuron node N (CubaLIF, LIF, IF)
goes on the chip with its synapse when all of these hold, and otherwise
stays on the host with the first rule that failed as its reason:

* N is not kept on the host by ``host=`` (that keeps N's whole synapse chain
  on the host too), and ``v_reset = 0`` (Loihi resets the voltage to 0);
* N has exactly one input besides a recurrence, a Conv2d, Linear or Affine
  S that feeds nothing else and is not kept on the host;
* S is a plain convolution: groups 1, dilation 1, symmetric padding;
* a bias (S's, plus the recurrence's) goes with it: Loihi's voltage bias,
  or an always-on bias axon into a filtered current (see :mod:`neurodeploy.chip.layers`);
* a recurrence ``N -> R -> N`` (R a Linear or Affine, :attr:`Graph.recurrent`)
  goes with N when S is a Linear or Affine and R feeds only N: a
  :class:`RecurrentDenseLayer` (netx ``dense_rec``).

Shape operations right before S are **folded** into it where that is exact
in float, and then run on the chip as part of S's weights:

* Flatten (all per-sample axes) then Linear: the Linear reads the unflattened
  input in C order (a :class:`DenseLayer` with the Flatten's input shape).
* Pool then Conv2d. A pool (kernel kp, stride sp, padding pp; sum, or average
  = sum / (kp_h·kp_w)) then a convolution (kernel K, stride s, padding p) is
  one convolution of the pool's input, per spatial axis::

      Y[u] = Σ_m W[m] · P[s·u + m - p],   P[q] = Σ_{i<kp} X[sp·q + i - pp]
           = Σ_t W'[t] · X[s'·u + t - p']
      W'[t] = Σ_{sp·m + i = t} W[m],  K' = sp·(K - 1) + kp,  s' = sp·s,  p' = sp·p + pp

  (X and P zero outside their extent). This is exact where the convolution's
  zero padding of P reads, in the folded form, only zeros of X: for p = 0
  always; for p > 0 when ``kp <= sp + pp`` (a pad row q = -1 reads X rows
  below 0) and ``sp·H_P - pp >= H`` (a pad row q = H_P reads X rows the pool
  never reached, ``H_P`` the pool's output size). Otherwise the pool stays
  on the host, with that reason. The output sizes agree whenever it holds
  (checked). A sum pool with kernel = stride k and no padding before a
  stride-1 conv is a stride-k conv whose kernel repeats each weight k x k times.
* Pool then Flatten then Linear: the Linear is a convolution whose kernel
  covers the whole pooled image; the pool folds into it as above, and the
  result is a dense weight over the pool's input (rows the pool never read
  get zero weight).

Several pools fold one after the other. Everything else runs on the host in
PyTorch: Input and Output, synapses without a spiking neuron after them,
non-spiking neurons (LI, CubaLI, I), Scale, Threshold, Conv1d.

Segments and cuts
-----------------
Chip layers and host nodes are ordered topologically (recurrent edges
aside). A chip segment is a run of chip layers each reading the previous
one's spikes and nothing else reading them (a netx network is a chain); a
host segment is a run of host nodes. A **cut** is an edge between two
segments: data crossing between the chip and the host (the bridge).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from neurodeploy.chip.layers import ChipLayer, ConvLayer, DenseLayer, RecurrentDenseLayer
from neurodeploy.errors import UserError
from neurodeploy.ir.graph import Conv, Dense, Flatten, Graph, Neuron, Pool, Shape, TauConvention
from neurodeploy.ir.nir_reader import read_graph
from neurodeploy.text import plural

CHIP, HOST = "chip", "host"
ASKED = "kept on the host as asked"


@dataclass(frozen=True)
class Placement:
    """One row of the plan: a node, its NIR kind, its per-sample output shape, where it runs and why."""

    node: str
    kind: str
    shape: Shape
    place: str  # CHIP or HOST
    reason: str  # for a host node: why it cannot go on the chip; for a chip node: a note or ""


@dataclass(frozen=True)
class ChipSegment:
    """Chip layers run as one netx network, each reading the previous one's spikes."""

    layers: tuple[ChipLayer, ...]

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(n for layer in self.layers for n in layer.nodes)


@dataclass(frozen=True)
class HostSegment:
    """Graph nodes run on the host in PyTorch, in this (topological) order."""

    nodes: tuple[str, ...]


Segment = ChipSegment | HostSegment


@dataclass(frozen=True)
class Cut:
    """An edge between two segments: ``src``'s output (of ``shape``) crosses to ``dst``."""

    src: str
    dst: str
    shape: Shape
    src_segment: int
    dst_segment: int


@dataclass(frozen=True)
class Partition:
    """A graph split into ordered chip and host segments, the cuts between them, and the placement table."""

    graph: Graph
    segments: tuple[Segment, ...]
    cuts: tuple[Cut, ...]
    placement: tuple[Placement, ...]

    @property
    def layers(self) -> tuple[ChipLayer, ...]:
        return tuple(layer for s in self.segments if isinstance(s, ChipSegment) for layer in s.layers)

    def summary(self) -> str:
        chips = sum(isinstance(s, ChipSegment) for s in self.segments)
        hosts = sum(p.place == HOST for p in self.placement)
        return (f"{plural(len(self.layers), 'chip layer')} in {plural(chips, 'chip segment')}, "
                f"{plural(hosts, 'host node')}, {plural(len(self.cuts), 'cut')}")


def plan(graph_or_path: Any, host: Iterable[str] = (), dt: float | None = None,
         tau_convention: TauConvention = "auto") -> Partition:
    """Place every node of a NIR graph (a ``.nir`` path, a ``nir.NIRGraph`` or a read :class:`Graph`).

    ``host`` names nodes to keep on the host; ``dt`` is the time step in
    seconds (default: the graph's ``metadata["dt"]``). Writes nothing.
    """
    graph = graph_or_path if isinstance(graph_or_path, Graph) else read_graph(graph_or_path, dt, tau_convention)
    return partition(graph, host)


def partition(graph: Graph, host: Iterable[str] = ()) -> Partition:
    """Split a read graph into chip and host segments (the rules are in the module docstring)."""
    forced = set(host)
    for name in sorted(forced):
        if name not in graph.nodes:
            shown = ", ".join(list(graph.nodes)[:8]) + (", ..." if len(graph.nodes) > 8 else "")
            raise UserError(f"`host` names {name!r}, which is not a node of the graph",
                            f"name nodes of the graph ({shown})")
    notes = {name: ASKED for name in forced}  # host nodes: why; chip nodes: a note
    layers: list[tuple[ChipLayer, str]] = []  # each with the node its input comes from
    for name, node in graph.nodes.items():
        if isinstance(node.op, Neuron):
            built = _layer(graph, name, forced, notes)
            if built is not None:
                layers.append(built)
    on_chip = {n for layer, _ in layers for n in layer.nodes}
    for name, node in graph.nodes.items():
        if name not in on_chip:
            notes.setdefault(name, _host_reason(node.kind))
    segments = _segments(graph, layers)
    segment_of = {n: i for i, s in enumerate(segments)
                  for n in s.nodes}
    cuts = tuple(sorted((Cut(a, b, graph.nodes[a].output_shape, segment_of[a], segment_of[b])
                         for a, b in graph.edges if segment_of[a] != segment_of[b]),
                        key=lambda c: (c.src_segment, c.dst_segment, c.src, c.dst)))
    order = [n for s in segments for n in s.nodes]
    placement = tuple(Placement(n, graph.nodes[n].kind, graph.nodes[n].output_shape,
                                CHIP if n in on_chip else HOST, notes.get(n, "")) for n in order)
    return Partition(graph=graph, segments=tuple(segments), cuts=cuts, placement=placement)


def _host_reason(kind: str) -> str:
    if kind == "Input":
        return "graph input: data enters on the host"
    if kind == "Output":
        return "graph output: results leave on the host"
    if kind in ("Conv2d", "Linear", "Affine"):
        return "no spiking neuron on the chip reads it"
    if kind in ("SumPool2d", "AvgPool2d", "Flatten"):
        return "folds only into a Conv2d or Linear on the chip right after it"
    return f"{kind} has no Loihi equivalent"


# -- one layer -------------------------------------------------------------------------------------

class _NotExactError(Exception):
    """A fold that would not be exact; the message says why."""


def _layer(graph: Graph, name: str, forced: set[str], notes: dict[str, str]) -> tuple[ChipLayer, str] | None:
    """The chip layer ending in neuron ``name`` and the node it reads, or None with the reasons in ``notes``."""
    neuron: Neuron = graph.nodes[name].op
    fwd = [a for a in graph.inputs(name) if (a, name) not in graph.recurrent]
    rec = [a for a in graph.inputs(name) if (a, name) in graph.recurrent]
    synapse = fwd[0] if len(fwd) == 1 and isinstance(graph.nodes[fwd[0]].op, (Conv, Dense)) else None

    def refuse(reason: str, *also: str) -> None:
        notes.setdefault(name, reason)
        for other in also:
            notes.setdefault(other, f"feeds {name}, which stays on the host")

    if name in forced:
        chain = [*rec, *([synapse] if synapse and graph.outputs(synapse) == [name] else [])]
        for other in chain:
            notes.setdefault(other, f"synapse of {name}, which is {ASKED}")
        return None
    if not neuron.spiking:
        return refuse(f"{neuron.kind} does not spike; a Loihi layer outputs spikes")
    if neuron.v_reset != 0:
        return refuse(f"v_reset = {neuron.v_reset:g}; Loihi resets the voltage to 0", *fwd, *rec)
    if len(fwd) != 1:
        return refuse(f"sums {len(fwd)} inputs; a Loihi layer reads one synapse", *rec)
    if synapse is None:
        return refuse(f"its input {fwd[0]} ({graph.nodes[fwd[0]].kind}) is not a Conv2d, Linear or Affine", *rec)
    op = graph.nodes[synapse].op
    if synapse in forced:
        return refuse(f"its synapse {synapse} is {ASKED}", *rec)
    if graph.outputs(synapse) != [name]:
        return refuse(f"its synapse {synapse} also feeds other nodes", *rec)
    if len(graph.inputs(synapse)) != 1:
        return refuse(f"its synapse {synapse} sums several inputs", synapse, *rec)
    if isinstance(op, Conv) and (op.groups != 1 or op.dilation != (1, 1) or op.padding == "same"):
        return refuse(f"its Conv2d {synapse} has groups {op.groups}, dilation {op.dilation} or padding "
                      f"{op.padding!r}; chip convs have groups 1, dilation 1, symmetric padding", synapse, *rec)
    rec_op = graph.nodes[rec[0]].op if rec else None
    if rec:
        if rec[0] in forced:
            return refuse(f"its recurrent synapse {rec[0]} is {ASKED}", synapse)
        if graph.outputs(rec[0]) != [name]:
            return refuse(f"its recurrent synapse {rec[0]} also feeds other nodes", synapse, rec[0])
        if not isinstance(op, Dense):
            return refuse("a recurrent chip layer needs a Linear or Affine input", synapse, rec[0])
    biases = [b for b in (op.bias, getattr(rec_op, "bias", None)) if b is not None]
    bias = sum(biases[1:], biases[0].copy()) if biases else None
    folded, input_shape, weight, stride, padding = _fold(graph, synapse, forced, notes)
    source = graph.inputs(folded[0] if folded else synapse)[0]
    nodes = (*folded, synapse, *rec, name)
    for n in folded:
        notes[n] = f"folded into {synapse}"
    if rec:
        notes[rec[0]] = f"recurrent weights of {name}"
        return RecurrentDenseLayer(name, nodes, input_shape, weight, rec_op.weight, bias, neuron), source
    if isinstance(op, Conv):
        return ConvLayer(name, nodes, input_shape, weight, stride, padding, bias, neuron), source
    return DenseLayer(name, nodes, input_shape, weight, bias, neuron), source


def _fold(graph: Graph, synapse: str, forced: set[str], notes: dict[str, str]
          ) -> tuple[list[str], Shape, np.ndarray, tuple[int, int], tuple[int, int]]:
    """Fold the Flatten and pools before ``synapse`` into it: (folded nodes, input shape, weight, stride, padding).

    For a dense synapse the weight is (O, prod(input shape)) and stride and
    padding mean nothing; for a conv it is (O, C, kh, kw).
    """
    node = graph.nodes[synapse]
    op = node.op
    folded: list[str] = []
    first = synapse
    dense = isinstance(op, Dense)
    if dense:
        weight, stride, padding, shape = op.weight, (1, 1), (0, 0), node.input_shape
        before = graph.nodes[graph.inputs(synapse)[0]]
        if _foldable(graph, before.name, first, forced) and isinstance(before.op, Flatten) \
                and (before.op.start_dim, before.op.end_dim) == (0, len(before.input_shape) - 1):
            folded, first, shape = [before.name], before.name, before.input_shape
            if len(shape) != 3:
                return folded, shape, weight, stride, padding
            weight = weight.reshape(weight.shape[0], *shape)  # a conv whose kernel covers the whole image
        else:
            return folded, shape, weight, stride, padding
    else:
        weight, stride, padding, shape = op.weight, op.stride, op.padding, node.input_shape
    while True:
        before = graph.nodes[graph.inputs(first)[0]]
        if not (_foldable(graph, before.name, first, forced) and isinstance(before.op, Pool)):
            break
        try:
            weight, stride, padding = fold_pool(weight, stride, padding, before.op, before.input_shape[1:])
        except _NotExactError as exc:
            notes.setdefault(before.name, f"does not fold into {synapse} exactly: {exc}")
            break
        folded.insert(0, before.name)
        first, shape = before.name, before.input_shape
    if dense:
        weight = _dense_over(weight, padding, shape)
    return folded, shape, weight, stride, padding


def _foldable(graph: Graph, name: str, consumer: str, forced: set[str]) -> bool:
    """``name`` feeds only ``consumer``, reads one node, and is not kept on the host."""
    return name not in forced and graph.outputs(name) == [consumer] and len(graph.inputs(name)) == 1


def fold_pool(weight: np.ndarray, stride: tuple[int, int], padding: tuple[int, int], pool: Pool,
              size: tuple[int, ...]) -> tuple[np.ndarray, tuple[int, int], tuple[int, int]]:
    """A pool (on an input of spatial ``size``) then a conv, as one conv (module docstring), if exact."""
    kp, sp, pp = pool.kernel, pool.stride, pool.padding
    k = weight.shape[2:]
    pooled = [(size[i] + 2 * pp[i] - kp[i]) // sp[i] + 1 for i in range(2)]
    for i in range(2):
        if padding[i] > 0 and kp[i] > sp[i] + pp[i]:
            raise _NotExactError(f"the conv's padding would read pooled pixels (pool kernel {kp[i]} > stride "
                            f"{sp[i]} + padding {pp[i]})")
        if padding[i] > 0 and sp[i] * pooled[i] - pp[i] < size[i]:
            raise _NotExactError(f"the conv's padding would read the {size[i] - sp[i] * pooled[i] + pp[i]} "
                            "input rows the pool drops")
    new_k = tuple(sp[i] * (k[i] - 1) + kp[i] for i in range(2))
    folded = np.zeros((*weight.shape[:2], *new_k), dtype=weight.dtype)
    for i in range(kp[0]):
        for j in range(kp[1]):
            folded[:, :, i:i + sp[0] * k[0]:sp[0], j:j + sp[1] * k[1]:sp[1]] += weight
    if pool.kind == "avg":
        folded /= kp[0] * kp[1]
    new_stride = (sp[0] * stride[0], sp[1] * stride[1])
    new_padding = (sp[0] * padding[0] + pp[0], sp[1] * padding[1] + pp[1])
    for i in range(2):
        unfolded = (pooled[i] + 2 * padding[i] - k[i]) // stride[i] + 1
        if (size[i] + 2 * new_padding[i] - new_k[i]) // new_stride[i] + 1 != unfolded:
            raise _NotExactError("the folded conv would have another output size")
    return folded, new_stride, new_padding


def _dense_over(weight: np.ndarray, padding: tuple[int, int], shape: Shape) -> np.ndarray:
    """A conv weight whose one output position covers the (C, H, W) input, as a dense (O, C·H·W) weight."""
    _, h, w = shape
    dense = np.zeros((weight.shape[0], *shape), dtype=weight.dtype)
    ph, pw = padding
    rows, cols = min(h, weight.shape[2] - ph), min(w, weight.shape[3] - pw)
    dense[:, :, :rows, :cols] = weight[:, :, ph:ph + rows, pw:pw + cols]
    return dense.reshape(weight.shape[0], -1)


# -- segments --------------------------------------------------------------------------------------

def _segments(graph: Graph, layers: list[tuple[ChipLayer, str]]) -> list[Segment]:
    """Chip layers and host nodes in topological order, grouped into runs (module docstring)."""
    units: list[tuple[str, ...]] = [layer.nodes for layer, _ in layers]
    layer_of = {i: layer for i, (layer, _) in enumerate(layers)}
    source_of = {i: source for i, (_, source) in enumerate(layers)}
    taken = {n for nodes in units for n in nodes}
    units += [(n,) for n in graph.nodes if n not in taken]
    unit_of = {n: i for i, nodes in enumerate(units) for n in nodes}
    index = {n: i for i, n in enumerate(graph.nodes)}
    needs: dict[int, set[int]] = {i: set() for i in range(len(units))}
    for a, b in graph.edges:
        if (a, b) not in graph.recurrent and unit_of[a] != unit_of[b]:
            needs[unit_of[b]].add(unit_of[a])
    done: set[int] = set()
    segments: list[list[int]] = []

    def chains(i: int, segment: list[int]) -> bool:
        """Unit i is a chip layer reading, alone, the spikes of the last layer of a chip ``segment``."""
        if i not in layer_of or not segment or segment[-1] not in layer_of:
            return False
        last = layer_of[segment[-1]]
        readers = [n for n in graph.outputs(last.name) if n not in last.nodes]  # its recurrence aside
        return source_of[i] == last.name and readers == [layer_of[i].nodes[0]]

    while len(done) < len(units):
        ready = sorted((i for i in range(len(units)) if i not in done and needs[i] <= done),
                       key=lambda i: min(index[n] for n in units[i]))
        current = segments[-1] if segments else []
        on_host = bool(current) and current[-1] not in layer_of
        pick = next((i for i in ready if chains(i, current)), None)
        if pick is None and on_host:
            pick = next((i for i in ready if i not in layer_of), None)
        if pick is None:
            pick = ready[0]
        if chains(pick, current) or (on_host and pick not in layer_of):
            current.append(pick)
        else:
            segments.append([pick])
        done.add(pick)
    return [ChipSegment(tuple(layer_of[i] for i in s)) if s[0] in layer_of
            else HostSegment(tuple(units[i][0] for i in s)) for s in segments]
