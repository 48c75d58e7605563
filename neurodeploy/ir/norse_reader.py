r"""A Norse module, read into the toolkit's graph: the front end for what Norse users train, without ``to_nir``.

:func:`norse_graph` walks a ``norse.torch.SequentialState`` or ``torch.nn.Sequential``
(nested ones too) and writes each module as the toolkit's NIR primitives in
seconds (NIR's convention; the bundle's ``graph.nir``, which other toolchains
read); :func:`read_norse` reads that into the normalized :class:`~neurodeploy.ir.graph.Graph`
(:func:`~neurodeploy.ir.nir_reader.read_graph`, ``tau_convention="seconds"``).
Norse 1.1's own ``to_nir`` is not used: it writes ``LIFRecurrentCell`` as None
and ``LIFBoxCell``'s time constants as ``dt / tau_inv`` in a form ``nir.write``
cannot store.

The mappings, derived from Norse 1.1.0's step functions (``a = dt·tau_mem_inv``,
``b = dt·tau_syn_inv``; ``x_t`` the cell's input at step t, ``z`` its spikes,
``H(u) = [u > 0]``) onto :data:`~neurodeploy.ir.graph.NEURON_KINDS`, whose step is
``i_t = i + b·(-i + w_in·S_t)``, ``v_t = v + a·(v_leak - v + r·i_t)``:

* ``LIFCell`` (``lif_feed_forward_step``)::

      i'_t = i_{t-1} + x_t;  v_t = v + a·(v_leak - v + i'_t);  i_t = (1 - b)·i'_t
      z_t = H(v_t - v_th);  v_t <- v_reset where z_t

  so ``i'_t = (1 - b)·i'_{t-1} + x_t``: NIR's current with ``b·w_in = 1``. A
  **CubaLIF** with ``tau_syn = 1/tau_syn_inv``, ``tau_mem = 1/tau_mem_inv``,
  ``r = 1``, ``w_in = 1/b = 1/(dt·tau_syn_inv)``, ``v_leak``, ``v_threshold =
  v_th``, ``v_reset``.
* ``LIFRecurrentCell`` (``lif_step``): the same neuron with
  ``i'_t = i_{t-1} + W_in·x_t + W_rec·z_{t-1}``: a **Linear** ``W_in`` (node
  ``<name>_in``) into the CubaLIF ``<name>``, and a **Linear** ``W_rec``
  (``<name>_rec``) from it back into it, a recurrence whose synapse reads the
  previous step's spikes (:attr:`Graph.recurrent`; on the chip a ``dense_rec``
  layer). A Linear right before the cell is folded into ``W_in``
  (``W_in·(W·x + c) = (W_in·W)·x + W_in·c``): the chip's layer is one synapse.
* ``LIFBoxCell`` (``lif_box_feed_forward_step``, no current)::

      v_t = v + a·(x_t + v_leak - v);  z_t = H(v_t - v_th);  v_t <- v_reset where z_t

  a **LIF** with ``tau = 1/tau_mem_inv``, ``r = 1``, ``v_leak``, ``v_threshold``,
  ``v_reset``. Only Norse's ``reset_value`` maps (``reset_subtract`` is refused).
* ``LICell`` (``li_feed_forward_step``): LIFCell's current and voltage, no spike:
  a **CubaLI** (``w_in = 1/b``); ``LIBoxCell`` (``li_box_feed_forward_step``,
  ``v_t = v + a·(v_leak - v + x_t)``): an **LI**. Both are non-spiking readouts:
  they run on the host, their output is the voltage.

Norse's layers that loop these cells over time (``LIF``, ``LIFRecurrent``, ``LI``) step as their
cell does and map as it does.

Structure: ``Linear`` -> NIR Affine (Linear without a bias), ``Conv2d`` (zero
padding) -> Conv2d, ``AvgPool2d`` (no ``ceil_mode``, no ``divisor_override``,
padding counted) -> AvgPool2d, a sum pool (``LPPool2d`` of norm 1, Sinabs'
``SumPool2d``; on spikes, which are not negative, ``Σ|x| = Σx``) -> SumPool2d,
``Flatten`` (its dims counted with the batch axis, as torch does) -> Flatten of
the per-sample dims; ``Dropout`` and ``Identity`` are the identity at inference
and are skipped. Parameters may be per-neuron tensors: they are broadcast to the
layer's shape and written so; the graph reader then reads one value per layer
(Loihi shares it) and names a parameter whose neurons differ.

The graph's neurons start from ``v = 0``, Norse's cells from ``v = v_leak``: the same for
Norse's default ``v_leak = 0`` (a non-zero ``v_leak`` does not map onto Loihi, and a host
readout with one differs from Norse's by ``(1 - a)^t·v_leak``, fading). Norse 1.1 has no
``LIFRecurrentBoxCell``.

Anything else is a :class:`~neurodeploy.errors.UserError` naming the module and why.
The time step is the cells' ``dt`` (every cell's must agree), or the ``dt``
given, which they must then equal.
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nir
import numpy as np
import torch
from norse.torch import LI, LIF, LIBoxCell, LICell, LIFBoxCell, LIFCell, LIFRecurrent, LIFRecurrentCell, SequentialState
from norse.torch.functional.reset import reset_value

from neurodeploy.errors import UserError
from neurodeploy.ir.graph import Graph, Shape, conv_output_size
from neurodeploy.ir.nir_reader import read_graph

CELLS = (LIFCell, LIFRecurrentCell, LIFBoxCell, LICell, LIBoxCell)
# Norse's layers that loop a cell over the outer (time) axis: each step is the cell's, so is the mapping
LOOPS = {LIF: LIFCell, LIFRecurrent: LIFRecurrentCell, LI: LICell}


def cell_kind(module: Any) -> type | None:
    """The Norse cell class whose step ``module`` computes (a cell, or a layer looping one), else None."""
    for loop, cell in LOOPS.items():
        if isinstance(module, loop):
            return cell
    return next((cell for cell in CELLS if isinstance(module, cell)), None)
SKIPPED = (torch.nn.Dropout, torch.nn.Dropout1d, torch.nn.Dropout2d, torch.nn.Dropout3d, torch.nn.Identity)


def read_norse(module: Any, dt: float | None = None, input_shape: Shape | None = None) -> Graph:
    """A Norse module as the toolkit's normalized :class:`Graph` (:func:`norse_graph`, then the NIR reader)."""
    graph = norse_graph(module, dt, input_shape)
    return read_graph(graph, dt=float(graph.metadata["dt"]), tau_convention="seconds")


def norse_graph(module: Any, dt: float | None = None, input_shape: Shape | None = None) -> nir.NIRGraph:
    """A Norse module as a NIR graph in seconds: Input -> one node per module (a recurrent cell three) -> Output.

    ``input_shape``: one sample's shape at one time step, e.g. ``(1, 8, 8)``; needed only where the first
    module does not say it (a Linear or a recurrent cell does). ``dt``: seconds, default the cells'.
    ``metadata["dt"]`` holds the time step.
    """
    children = list(_modules(module, "model"))
    step = _time_step(children, dt)
    shape = _input_shape(children, input_shape)
    writer = _Writer(shape, step)
    for index, (path, child) in enumerate(children):
        writer.add(_node_name(path, child, index), child, path)
    nodes, edges = writer.finish()
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": step})


# -- walking the module ----------------------------------------------------------------------------

def _modules(module: Any, path: str) -> Iterator[tuple[str, Any]]:
    """(path, module) of every leaf in order; Sequential containers (SequentialState too) are walked."""
    if not isinstance(module, torch.nn.Module):
        raise UserError(f"{path} is a {type(module).__name__}, not a torch module",
                        "pass a norse.torch.SequentialState or torch.nn.Sequential")
    if isinstance(module, (torch.nn.Sequential, SequentialState)):
        for name, child in module.named_children():
            yield from _modules(child, f"{path}.{name}")
        return
    if path == "model" and cell_kind(module) is None:
        raise UserError(f"the model is a {type(module).__name__}; neurodeploy reads a Norse network as a "
                        "sequence of modules", "wrap its layers in norse.torch.SequentialState or nn.Sequential")
    yield path, module


def _node_name(path: str, module: Any, index: int) -> str:
    """The child's own name where it has one (``conv0``), else its kind and place (``linear_2``)."""
    name = path.rsplit(".", 1)[-1]
    return name if not name.isdigit() and name != "model" else f"{type(module).__name__.lower()}_{index}"


def _time_step(children: list[tuple[str, Any]], dt: float | None) -> float:
    """The graph's dt: the cells' (all equal), or the one given (the cells' must match it)."""
    cells = [(path, float(child.dt)) for path, child in children if cell_kind(child) is not None]
    if not cells:
        raise UserError("the model has no Norse cell (LIFCell, LIFRecurrentCell, LIFBoxCell, LICell, LIBoxCell)",
                        "deploy a spiking network; a plain torch network has nothing for the chip")
    if dt is not None and (isinstance(dt, bool) or not math.isfinite(dt) or dt <= 0):
        raise UserError(f"the time step {dt} is not a positive number of seconds", "pass e.g. `dt=1e-3`")
    step = cells[0][1] if dt is None else float(dt)
    for path, cell_dt in cells:
        if not math.isclose(cell_dt, step, rel_tol=1e-9):
            raise UserError(f"{path}: the cell steps dt = {cell_dt:g} s, not {step:g} s",
                            "build every cell with the same dt and pass it as `dt`")
    return step


def _input_shape(children: list[tuple[str, Any]], given: Shape | None) -> Shape:
    if given is not None:
        shape = tuple(int(n) for n in given)
        if not shape or any(n < 1 for n in shape):
            raise UserError(f"input shape {given} is not a shape", "pass one sample's shape, e.g. `(1, 8, 8)`")
        return shape
    first = children[0][1]
    if isinstance(first, torch.nn.Linear):
        return (first.in_features,)
    if cell_kind(first) is LIFRecurrentCell:
        return (int(first.input_size),)
    raise UserError(f"{children[0][0]} ({type(first).__name__}) does not say the size of its input",
                    "pass one sample's input shape (`input_shape=(1, 8, 8)`, --input-shape 1,8,8)")


def _array(value: Any) -> np.ndarray:
    return np.asarray(torch.as_tensor(value).detach().cpu().double().numpy(), dtype=np.float64)


def _pair(value: Any) -> int | tuple[int, int]:
    """A torch pair as NIR stores it: one int where both axes agree."""
    pair = (value, value) if isinstance(value, int) else tuple(int(v) for v in value)
    return pair[0] if pair[0] == pair[1] else (pair[0], pair[1])


class _Writer:
    """Builds the nodes and edges, one module at a time, with the per-sample shape after each."""

    def __init__(self, shape: Shape, dt: float) -> None:
        self.shape, self.dt = shape, dt
        self.nodes: dict[str, Any] = {"input": nir.Input(input_type={"input": np.array(shape)})}
        self.edges: list[tuple[str, str]] = []
        self.last = "input"
        self.last_module: Any = None

    def finish(self) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        self.nodes["output"] = nir.Output(output_type={"output": np.array(self.shape)})
        self.edges.append((self.last, "output"))
        return self.nodes, self.edges

    def _put(self, name: str, node: Any, shape: Shape, module: Any = None) -> None:
        self.nodes[name] = node
        self.edges.append((self.last, name))
        self.last, self.shape, self.last_module = name, shape, module

    def per_neuron(self, path: str, param: str, value: Any) -> np.ndarray:
        arr = _array(value)
        try:
            return np.array(np.broadcast_to(arr, self.shape), dtype=np.float64)
        except ValueError:
            raise UserError(f"{path}: {param} has shape {tuple(arr.shape)}, which does not fit the layer's "
                            f"neurons {self.shape}", f"give {param} one value or one per neuron") from None

    def add(self, name: str, module: Any, path: str) -> None:
        if isinstance(module, SKIPPED):
            return
        if isinstance(module, torch.nn.Linear):
            self._linear(name, module, path)
        elif isinstance(module, torch.nn.Conv2d):
            self._conv(name, module, path)
        elif isinstance(module, (torch.nn.AvgPool2d, torch.nn.LPPool2d)):
            self._pool(name, module, path)
        elif isinstance(module, torch.nn.Flatten):
            self._flatten(name, module, path)
        elif cell_kind(module) is not None:
            self._cell(name, module, path)
        else:
            raise UserError(f"{path} is a {type(module).__name__}, which the Norse front end does not read "
                            "(it reads Linear, Conv2d, AvgPool2d, sum pools, Flatten, Dropout and Norse's "
                            "LIFCell, LIFRecurrentCell, LIFBoxCell, LICell, LIBoxCell, LIF, LIFRecurrent, LI)",
                            "replace it, or export the network with norse.torch.to_nir and convert the .nir")

    def _linear(self, name: str, module: torch.nn.Linear, path: str) -> None:
        if len(self.shape) != 1 or self.shape[0] != module.in_features:
            raise UserError(f"{path}: Linear({module.in_features}, {module.out_features}) reads an input of "
                            f"shape {self.shape}", "flatten it first (nn.Flatten()) or fix in_features")
        weight = module.weight.detach().cpu().numpy().astype(np.float32)
        node = (nir.Linear(weight=weight) if module.bias is None
                else nir.Affine(weight=weight, bias=module.bias.detach().cpu().numpy().astype(np.float32)))
        self._put(name, node, (module.out_features,), module)

    def _conv(self, name: str, module: torch.nn.Conv2d, path: str) -> None:
        if module.padding_mode != "zeros":
            raise UserError(f"{path}: Conv2d pads with {module.padding_mode!r}; NIR and Loihi pad with zeros",
                            "build the conv with padding_mode='zeros'")
        if len(self.shape) != 3 or self.shape[0] != module.in_channels:
            raise UserError(f"{path}: Conv2d({module.in_channels}, ...) reads an input of shape {self.shape}",
                            "pass the input shape (C, H, W) with C = in_channels")
        weight = module.weight.detach().cpu().numpy().astype(np.float32)
        bias = (np.zeros(module.out_channels, dtype=np.float32) if module.bias is None
                else module.bias.detach().cpu().numpy().astype(np.float32))
        kernel, stride, dilation = module.kernel_size, module.stride, module.dilation
        padding: Any = module.padding if isinstance(module.padding, str) else _pair(module.padding)
        pads = ((0, 0) if padding == "valid" else (-1, -1) if padding == "same"
                else (padding, padding) if isinstance(padding, int) else padding)
        out = tuple(n if p < 0 else conv_output_size(n, k, s, p, d)
                    for n, k, s, p, d in zip(self.shape[1:], kernel, stride, pads, dilation, strict=True))
        if min(out) < 1:
            raise UserError(f"{path}: Conv2d's output of an input {self.shape} is empty", "pass a larger input")
        node = nir.Conv2d(input_shape=self.shape[1:], weight=weight, stride=_pair(stride), padding=padding,
                          dilation=_pair(dilation), groups=module.groups, bias=bias)
        self._put(name, node, (module.out_channels, *out))

    def _pool(self, name: str, module: Any, path: str) -> None:
        if len(self.shape) != 3:
            raise UserError(f"{path}: a 2-d pool reads an input of shape {self.shape}", "pool a (C, H, W) input")
        if isinstance(module, torch.nn.LPPool2d):
            if float(module.norm_type) != 1.0 or module.ceil_mode:
                raise UserError(f"{path}: LPPool2d of norm {module.norm_type} (ceil_mode {module.ceil_mode}); "
                                "only the sum pool (norm 1) maps", "use a sum or average pool")
            kind, padding = nir.SumPool2d, (0, 0)
        else:
            if module.ceil_mode or module.divisor_override is not None or (
                    not module.count_include_pad and _pair(module.padding) != 0):
                raise UserError(f"{path}: AvgPool2d with ceil_mode, divisor_override or padding left out of the "
                                "count; NIR's average divides by the kernel's size", "use a plain AvgPool2d")
            kind, padding = nir.AvgPool2d, np.broadcast_to(np.asarray(module.padding), 2)
        kernel = np.broadcast_to(np.asarray(module.kernel_size), 2)
        stride = np.broadcast_to(np.asarray(module.stride if module.stride is not None else module.kernel_size), 2)
        out = tuple(conv_output_size(n, int(k), int(s), int(p))
                    for n, k, s, p in zip(self.shape[1:], kernel, stride, padding, strict=True))
        if min(out) < 1:
            raise UserError(f"{path}: the pool's output of an input {self.shape} is empty", "pass a larger input")
        self._put(name, kind(kernel_size=np.array(kernel), stride=np.array(stride), padding=np.array(padding)),
                  (self.shape[0], *out))

    def _flatten(self, name: str, module: torch.nn.Flatten, path: str) -> None:
        rank = len(self.shape)
        start, end = (d if d < 0 else d - 1 for d in (module.start_dim, module.end_dim))  # torch counts the batch
        start, end = (d + rank if d < 0 else d for d in (start, end))
        if not 0 <= start <= end < rank:
            raise UserError(f"{path}: Flatten({module.start_dim}, {module.end_dim}) of a batch of {self.shape} "
                            "would flatten the batch axis", "flatten from dim 1 on (nn.Flatten())")
        shape = (*self.shape[:start], math.prod(self.shape[start:end + 1]), *self.shape[end + 1:])
        self._put(name, nir.Flatten(input_type={"input": np.array(self.shape)}, start_dim=start, end_dim=end),
                  shape)

    def _cell(self, name: str, cell: Any, path: str) -> None:
        p, kind = cell.p, cell_kind(cell)
        if kind is LIFRecurrentCell:
            self._recurrent_input(name, cell, path)
        dt = float(self.dt)

        def param(field: str) -> np.ndarray:
            return self.per_neuron(path, field, getattr(p, field))

        for field in ("tau_mem_inv", "tau_syn_inv"):
            inv = param(field) if hasattr(p, field) else np.ones(1)
            if not np.all((inv > 0) & (inv * dt <= 1)):
                raise UserError(f"{path}: dt·{field} is not in (0, 1] at dt = {dt:g} s (Norse's Euler step "
                                "would overshoot)", "pass a smaller dt or a larger time constant")
        values: dict[str, np.ndarray] = {"tau_mem": 1.0 / param("tau_mem_inv"), "r": np.ones(self.shape),
                                         "v_leak": param("v_leak")}
        if hasattr(p, "tau_syn_inv"):
            values["tau_syn"] = 1.0 / param("tau_syn_inv")
            values["w_in"] = 1.0 / (dt * param("tau_syn_inv"))  # Norse's current jumps by the whole input
        if kind in (LIFCell, LIFRecurrentCell, LIFBoxCell):
            if kind is LIFBoxCell and p.reset_method is not reset_value:
                raise UserError(f"{path}: LIFBoxCell resets with {getattr(p.reset_method, '__name__', '?')}; "
                                "Loihi and NIR reset the voltage to a value", "build it with reset_value (default)")
            values["v_threshold"], values["v_reset"] = param("v_th"), param("v_reset")
        if kind in (LIFCell, LIFRecurrentCell):
            node: Any = nir.CubaLIF(tau_syn=values["tau_syn"], tau_mem=values["tau_mem"], r=values["r"],
                                    v_leak=values["v_leak"], v_threshold=values["v_threshold"],
                                    v_reset=values["v_reset"], w_in=values["w_in"])
        elif kind is LIFBoxCell:
            node = nir.LIF(tau=values["tau_mem"], r=values["r"], v_leak=values["v_leak"],
                           v_threshold=values["v_threshold"], v_reset=values["v_reset"])
        elif kind is LICell:
            node = nir.CubaLI(tau_syn=values["tau_syn"], tau_mem=values["tau_mem"], r=values["r"],
                              v_leak=values["v_leak"], w_in=values["w_in"])
        else:
            node = nir.LI(tau=values["tau_mem"], r=values["r"], v_leak=values["v_leak"])
        self._put(name, node, self.shape)
        if kind is LIFRecurrentCell:
            rec = f"{name}_rec"
            self.nodes[rec] = nir.Linear(weight=cell.recurrent_weights.detach().cpu().numpy().astype(np.float32))
            self.edges += [(name, rec), (rec, name)]

    def _recurrent_input(self, name: str, cell: Any, path: str) -> None:
        """The cell's input weights as a Linear node ``<name>_in``; a Linear right before it is folded in."""
        size, hidden = int(cell.input_size), int(cell.hidden_size)
        w_in = cell.input_weights.detach().cpu().double().numpy()
        if self.shape != (size,):
            raise UserError(f"{path}: LIFRecurrentCell({size}, {hidden}) reads an input of shape {self.shape}",
                            f"feed it {size} values (flatten first, or fix input_size)")
        previous = self.last_module
        node: Any
        if isinstance(previous, torch.nn.Linear):  # one synapse on the chip: W_in·(W·x + c)
            weight = (w_in @ previous.weight.detach().cpu().double().numpy()).astype(np.float32)
            del self.nodes[self.last]
            (before,) = [a for a, b in self.edges if b == self.last]
            self.edges = [e for e in self.edges if self.last not in e]
            self.last = before
            self.shape = (previous.in_features,)
            node = nir.Linear(weight=weight) if previous.bias is None else nir.Affine(
                weight=weight, bias=(w_in @ previous.bias.detach().cpu().double().numpy()).astype(np.float32))
        else:
            node = nir.Linear(weight=w_in.astype(np.float32))
        self._put(f"{name}_in", node, (hidden,))


# -- how Norse users keep models: a builder in a Python file and a state dict -------------------------

def load_built(spec: str, state: str | os.PathLike[str] | None = None) -> Any:
    """The module that ``spec`` (``path/to/model.py:function``) builds, with ``state`` (a state dict saved
    by ``torch.save``, read with ``weights_only=True``) loaded into it; every failure a UserError."""
    file, _, function = spec.rpartition(":")
    if not file or not function.isidentifier():
        raise UserError(f"{spec} is not FILE.py:FUNCTION", "pass e.g. model.py:build (a function that returns "
                                                          "the Norse module)")
    path = Path(file)
    if not path.is_file() or path.suffix != ".py":
        raise UserError(f"{path} is not a Python file", "pass the .py file that defines the builder")
    if state is not None and not Path(state).is_file():
        raise UserError(f"state dict {state} does not exist", "pass the file torch.save(model.state_dict()) wrote")
    name = f"_neurodeploy_model_{abs(hash(path.resolve()))}"
    loader = importlib.util.spec_from_file_location(name, path)
    assert loader is not None and loader.loader is not None
    source = importlib.util.module_from_spec(loader)
    sys.modules[name] = source  # dataclasses and pickling look their module up here
    try:
        loader.loader.exec_module(source)
    except Exception as exc:
        raise UserError(f"{path} failed to import ({type(exc).__name__}: {exc})", "run it with python first") from None
    build = getattr(source, function, None)
    if not callable(build):
        raise UserError(f"{path} has no function {function!r}", f"define {function}() returning the module")
    try:
        module = build()
    except Exception as exc:
        raise UserError(f"{spec}() failed ({type(exc).__name__}: {exc})", "make it build with no arguments") from None
    if state is not None:
        try:
            weights = torch.load(state, map_location="cpu", weights_only=True)
            module.load_state_dict(weights)
        except Exception as exc:
            raise UserError(f"{state} does not load into {spec}() ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0][:200]})",
                            "pass the state dict of this model (torch.save(model.state_dict(), path))") from None
    return module.eval() if isinstance(module, torch.nn.Module) else module
