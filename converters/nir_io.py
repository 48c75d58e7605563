"""The inpainter's spiking stage as a NIR graph (``snn.nir`` of a format-1 bundle): write, read, nothing else.

A NIR graph given to ``neurodeploy convert`` is read by :mod:`neurodeploy.graph`
instead, whatever its layers (bundle format 2).

A spiking stage is ``Input -> Conv2d -> CubaLIF -> Output``. Written with NIR's
conventions: time constants in seconds (``tau = 1 / tau_inv``), ``r = w_in =
1``, ``v_leak = v_reset = 0``, float weights (not the quantized ones: other
toolchains quantize for themselves), neuron parameters of the layer's shape
(C, H, W). The time step is not part of a NIR graph; the bundle manifest holds it.

Read accepts those graphs and the ones Norse's ``to_nir`` makes: Norse 1.1.0
stores ``tau = dt / tau_inv`` rather than seconds, which :func:`read_nir`
recognises (``tau_convention="auto"``: a ``dt / tau`` above 1 is not a stable
Euler step in seconds, so ``tau`` must be Norse 1.1's) or is told
(``"seconds"`` / ``"norse-1.1"``). Norse 1.1's graphs also leave the conv's
``input_shape`` unset and use 0-d parameters, which ``nir.write`` cannot store;
:func:`write_nir_graph` fills those in from the graph itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from neurodeploy.errors import UserError
from neurodeploy.graph import TauConvention, tau_convention_of
from neurodeploy.model import LIFConfig


@dataclass(frozen=True)
class SpikingStage:
    """A float conv + LIF layer, as a NIR graph describes it."""

    weight: np.ndarray  # float (C_out, C_in, k, k)
    input_shape: tuple[int, int, int]  # (C_in, H, W)
    lif: LIFConfig
    tau_convention: str = "seconds"


def write_nir(path: str | os.PathLike[str], stage: SpikingStage) -> None:
    """Write ``stage`` as a NIR graph file (``nir.write``)."""
    import nir

    c_out = stage.weight.shape[0]
    c_in, h, w = stage.input_shape

    def per_channel(value: float) -> np.ndarray:
        # NIR's type check wants the neuron shape; constant arrays compress to almost nothing.
        return np.full((c_out, h, w), value, dtype=np.float64)

    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([c_in, h, w])}),
            "conv": nir.Conv2d(input_shape=(h, w), weight=stage.weight.astype(np.float32),
                               stride=1, padding=stage.weight.shape[-1] // 2, dilation=1, groups=1,
                               bias=np.zeros(c_out, dtype=np.float32)),
            "lif": nir.CubaLIF(tau_syn=per_channel(1.0 / stage.lif.tau_syn_inv),
                               tau_mem=per_channel(1.0 / stage.lif.tau_mem_inv),
                               r=per_channel(1.0), v_leak=per_channel(0.0),
                               v_threshold=per_channel(stage.lif.v_th), v_reset=per_channel(0.0),
                               w_in=per_channel(1.0)),
            "output": nir.Output(output_type={"output": np.array([c_out, h, w])}),
        },
        edges=[("input", "conv"), ("conv", "lif"), ("lif", "output")],
    )
    nir.write(path, graph)


def write_nir_graph(graph: Any, path: str | os.PathLike[str]) -> None:
    """``nir.write`` a Conv2d -> CubaLIF graph from Norse 1.1's ``to_nir``, after repairs.

    Norse 1.1 gives the Input a batch axis, leaves the conv's ``input_shape``
    unset and gives the neuron 0-d parameters; ``nir.write`` and ``nir.read``
    need (C, H, W) types throughout, so those are filled in from the graph.
    """
    import nir

    def array(value: Any) -> Any:
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        return value

    shape = None
    for node in graph.nodes.values():
        for key, value in list(vars(node).items()):
            setattr(node, key, array(value))
        if isinstance(node, nir.Input):
            dims = np.asarray(node.input_type["input"]).reshape(-1)
            if dims.size == 4 and dims[0] == 1:
                dims = dims[1:]
            node.input_type = {"input": dims}
            node.output_type = {"output": dims}
            shape = dims
    for node in graph.nodes.values():
        if isinstance(node, nir.Conv2d) and shape is not None:
            if node.input_shape is None:
                node.input_shape = np.asarray(shape[-2:])
            out = (np.asarray(node.weight).shape[0], *[int(x) for x in shape[-2:]])
            for other in graph.nodes.values():
                if isinstance(other, nir.CubaLIF):
                    for key in ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in"):
                        value = getattr(other, key)
                        if value is not None:
                            setattr(other, key, np.broadcast_to(np.asarray(value, np.float64).reshape(-1)[0]
                                                                if np.size(value) == 1 else value, out).copy())
                    other.input_type = {"input": np.array(out)}
                    other.output_type = {"output": np.array(out)}
                if isinstance(other, nir.Output):
                    other.input_type = {"input": np.array(out)}
                    other.output_type = {"output": np.array(out)}
    nir.write(path, graph)


def _uniform(node: Any, name: str) -> float:
    value = np.asarray(getattr(node, name), dtype=np.float64)
    if value.size == 0:
        raise UserError(f"CubaLIF.{name} is empty", "write the graph with per-neuron parameters")
    if not np.allclose(value, value.flat[0], rtol=1e-6, atol=0):
        raise UserError(f"CubaLIF.{name} differs between neurons; Loihi's CUBA layer shares one value",
                        "give every neuron of the layer the same parameter")
    return float(value.flat[0])


def read_nir(path: str | os.PathLike[str], dt: float = 1e-3,
             tau_convention: TauConvention = "auto") -> SpikingStage:
    """Read a NIR graph whose spiking stage is Conv2d -> CubaLIF; anything else is a UserError."""
    import nir

    try:
        graph = nir.read(path)
    except Exception as exc:
        raise UserError(f"{path} is not a readable NIR file ({type(exc).__name__})",
                        "write it with nir.write") from None
    return stage_from_graph(graph, dt, tau_convention, str(path))


def stage_from_graph(graph: Any, dt: float = 1e-3, tau_convention: TauConvention = "auto",
                     source: str = "NIR graph") -> SpikingStage:
    """Find Input -> Conv2d -> CubaLIF -> Output in ``graph`` and turn it into a SpikingStage."""
    import nir

    nodes = graph.nodes
    allowed = (nir.Input, nir.Output, nir.Conv2d, nir.CubaLIF)
    for name, node in nodes.items():
        if not isinstance(node, allowed):
            raise UserError(f"{source}: node {name!r} is a {type(node).__name__}, which neurodeploy "
                            "cannot deploy", "give a graph of Input -> Conv2d -> CubaLIF -> Output")
    convs = [n for n in nodes.values() if isinstance(n, nir.Conv2d)]
    lifs = [n for n in nodes.values() if isinstance(n, nir.CubaLIF)]
    inputs = [n for n in nodes.values() if isinstance(n, nir.Input)]
    if len(convs) != 1 or len(lifs) != 1 or len(inputs) != 1:
        raise UserError(f"{source}: expected one Input, one Conv2d and one CubaLIF, found "
                        f"{len(inputs)}, {len(convs)} and {len(lifs)}",
                        "give a graph of Input -> Conv2d -> CubaLIF -> Output")
    conv, lif = convs[0], lifs[0]
    names = {id(n): k for k, n in nodes.items()}
    edges = {(a, b) for a, b in graph.edges}
    if (names[id(conv)], names[id(lif)]) not in edges:
        raise UserError(f"{source}: the Conv2d does not feed the CubaLIF", "connect Conv2d -> CubaLIF")
    weight = np.asarray(conv.weight, dtype=np.float64)
    if weight.ndim != 4 or weight.shape[-1] != weight.shape[-2] or weight.shape[-1] % 2 == 0:
        raise UserError(f"{source}: Conv2d weight {weight.shape} is not a square odd kernel",
                        "use a k x k kernel with odd k")
    k = weight.shape[-1]
    for attr, want in (("stride", 1), ("dilation", 1), ("groups", 1), ("padding", k // 2)):
        if np.any(np.asarray(getattr(conv, attr)) != want):
            raise UserError(f"{source}: Conv2d {attr} is {getattr(conv, attr)}, neurodeploy needs {want}",
                            "use stride 1, dilation 1, groups 1 and 'same' padding")
    bias = getattr(conv, "bias", None)
    if bias is not None and np.any(np.asarray(bias) != 0):
        raise UserError(f"{source}: the Conv2d has a nonzero bias, which Loihi would add to the voltage "
                        "instead of the current", "train the spiking conv without bias (bias=False)")
    shape = [int(x) for x in np.asarray(inputs[0].input_type["input"]).reshape(-1)]
    if len(shape) == 4 and shape[0] == 1:
        shape = shape[1:]
    if len(shape) != 3 or shape[0] != weight.shape[1]:
        raise UserError(f"{source}: input shape {shape} does not match the conv's {weight.shape[1]} channels",
                        "give the Input node a (C, H, W) shape")
    for name, want in (("v_leak", 0.0), ("v_reset", 0.0)):
        if getattr(lif, name, None) is not None and _uniform(lif, name) != want:
            raise UserError(f"{source}: CubaLIF.{name} must be 0 (Loihi leaks and resets to 0)",
                            "shift the threshold so that the resting potential is 0")
    gain = _uniform(lif, "r") * _uniform(lif, "w_in")
    tau_mem, tau_syn = _uniform(lif, "tau_mem"), _uniform(lif, "tau_syn")
    if tau_mem <= 0 or tau_syn <= 0:
        raise UserError(f"{source}: time constants must be positive", "fix tau_mem and tau_syn")
    convention = tau_convention_of(tau_convention, dt, (tau_mem, tau_syn))
    if convention == "seconds":
        tau_mem_inv, tau_syn_inv = 1.0 / tau_mem, 1.0 / tau_syn
    else:
        tau_mem_inv, tau_syn_inv = dt / tau_mem, dt / tau_syn
    try:
        config = LIFConfig(tau_syn_inv=tau_syn_inv, tau_mem_inv=tau_mem_inv,
                           v_th=_uniform(lif, "v_threshold"), dt=dt)
    except ValueError as exc:
        raise UserError(f"{source}: {exc}", "check the time constants and `dt`") from None
    return SpikingStage(weight=weight * gain, input_shape=(shape[0], shape[1], shape[2]), lif=config,
                        tau_convention=convention)
