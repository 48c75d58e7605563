"""The normalized graph every layer below the front end works on: nodes with a typed operation and per-sample shapes.

:func:`neurodeploy.ir.nir_reader.read_graph` builds it from a NIR graph (and
says what it normalizes, and why); the partitioner (:mod:`neurodeploy.chip.partition`),
the float execution (:mod:`neurodeploy.ir.float_run`) and the host ops
(:mod:`neurodeploy.ir.host_ops`) walk it. The kinds of node it knows are the
tables below: the neuron kinds (:data:`NEURON_KINDS`, their fields and step), the
structural kinds; the host-only kinds are the table of :mod:`neurodeploy.ir.host_only`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

TauConvention = Literal["auto", "seconds", "norse-1.1", "rockpool-3.1"]


@dataclass(frozen=True)
class NeuronKind:
    """A NIR neuron kind: the fields read from its node, and which parts of the step it has.

    The step (forward Euler, NIR's units; :mod:`neurodeploy.ir.float_run` runs it), with
    ``a = dt/tau_mem`` and ``b = dt/tau_syn``::

        filtered:  i_t = i + b·(-i + w_in·S_t)          else i_t = S_t
        leaky:     v_t = v + a·(v_leak - v + r·i_t)     else v_t = v + r·i_t
        spiking:   z_t = [v_t > v_threshold];  v_t <- v_reset where z_t      else the output is v_t

    A spiking kind maps onto Loihi's CUBA neuron with current decay ``b`` (1 when
    not filtered) and voltage decay ``a`` (0 when not leaky)
    (:func:`neurodeploy.chip.neuron_mapping.map_neuron`). A new kind that fits
    this step is one entry of :data:`NEURON_KINDS`.
    """

    params: tuple[str, ...]  # the NIR fields read ("tau" is read as tau_mem)
    spiking: bool
    leaky: bool
    filtered: bool

    @property
    def continuous(self) -> bool:
        """Has a time constant, so the graph needs ``dt``."""
        return self.leaky or self.filtered


NEURON_KINDS: dict[str, NeuronKind] = {
    "CubaLIF": NeuronKind(("tau_mem", "tau_syn", "r", "v_leak", "v_threshold", "v_reset", "w_in"),
                          spiking=True, leaky=True, filtered=True),
    "LIF": NeuronKind(("tau", "r", "v_leak", "v_threshold", "v_reset"), spiking=True, leaky=True, filtered=False),
    "IF": NeuronKind(("r", "v_threshold", "v_reset"), spiking=True, leaky=False, filtered=False),
    "CubaLI": NeuronKind(("tau_mem", "tau_syn", "r", "v_leak", "w_in"), spiking=False, leaky=True, filtered=True),
    "LI": NeuronKind(("tau", "r", "v_leak"), spiking=False, leaky=True, filtered=False),
    "I": NeuronKind(("r",), spiking=False, leaky=False, filtered=False),
}
STRUCTURAL = ("Input", "Output", "Conv2d", "Linear", "Affine", "SumPool2d", "AvgPool2d", "Flatten")
Shape = tuple[int, ...]


def is_neuron(kind: str) -> bool:
    return kind in NEURON_KINDS


def is_continuous(kind: str) -> bool:
    """A neuron kind with a time constant (it needs ``dt``)."""
    return kind in NEURON_KINDS and NEURON_KINDS[kind].continuous


@dataclass(frozen=True)
class Neuron:
    """One layer's neuron parameters (equal across the layer), NIR's units; ``dt`` in seconds."""

    kind: str  # a key of NEURON_KINDS
    v_threshold: float | None = None  # None for the non-spiking kinds
    tau_mem: float | None = None  # seconds; None for IF and I
    tau_syn: float | None = None  # seconds; CubaLIF and CubaLI only
    v_leak: float = 0.0
    v_reset: float = 0.0
    r: float = 1.0
    w_in: float = 1.0
    dt: float | None = None  # the graph's time step; None when no neuron has a time constant

    def __post_init__(self) -> None:
        if self.kind not in NEURON_KINDS:
            raise ValueError(f"unknown neuron kind {self.kind!r}")
        if NEURON_KINDS[self.kind].spiking != (self.v_threshold is not None):
            raise ValueError(f"{self.kind}: v_threshold must be given exactly for spiking neurons")
        for name in ("tau_mem", "tau_syn"):
            tau = getattr(self, name)
            if tau is not None and (self.dt is None or not 0 < self.dt / tau <= 1):
                raise ValueError(f"{name} = {tau} s and dt = {self.dt} s is not a forward Euler step "
                                 "(dt / tau must lie in (0, 1])")

    @property
    def spiking(self) -> bool:
        return NEURON_KINDS[self.kind].spiking

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
    (arrays as numpy) for the host-only kinds (:data:`neurodeploy.ir.host_only.HOST_OPS`).
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
    tau_convention_reason: str = "given"  # why: "given", or what auto-detection read it from

    def inputs(self, name: str) -> list[str]:
        return [a for a, b in self.edges if b == name]

    def outputs(self, name: str) -> list[str]:
        return [b for a, b in self.edges if a == name]


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    """Output length of a convolution (or pool) along one axis: floor((size + 2p - d(k-1) - 1) / s) + 1."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
