"""The normalized graph every layer below the front end works on: nodes with a typed operation and per-sample shapes.

:func:`neurodeploy.ir.nir_reader.read_graph` builds it from a NIR graph (and
says what it normalizes, and why); the partitioner (:mod:`neurodeploy.chip.partition`),
the float execution (:mod:`neurodeploy.ir.float_run`) and the host ops
(:mod:`neurodeploy.ir.host_ops`) walk it. The kinds of node it knows are the
tables below: the neuron kinds (:data:`NEURONS`, their parameters), the host-only
kinds, and every kind the reader accepts (:data:`KNOWN`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

TauConvention = Literal["auto", "seconds", "norse-1.1", "rockpool-3.1"]
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
