"""The layers of a chip segment: float synapses feeding one kind of spiking neuron, before quantization.

One small validated dataclass per layer kind, as NIR has one per primitive.
Each layer names the graph nodes it computes (``nodes``, input side first; the
neuron node is ``name``) and the per-sample shape it reads (``input_shape``).
A layer computes, every time step t, with ``x_t`` its input (spikes from the
previous layer, or values from the host)::

    I_t = W x_t (+ W_rec z_{t-1} for RecurrentDenseLayer) + bias
    z_t = neuron(I_t)                       (graph.Neuron's equations)

``bias`` is a constant input current, exact on the chip for every neuron:
Loihi's voltage bias where the neuron keeps no synaptic current from one step
to the next (``neuron.filters_current`` is False: IF, LIF, or CubaLIF with
``dt = tau_syn``), else an always-on bias axon into the filtered current
(:class:`neurodeploy.chip.neuron_mapping.CubaMapping` states both and the axon's cost).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from neurodeploy.ir.graph import Neuron, Shape, conv_output_size


def _check_common(kind: str, neuron: Neuron, bias: np.ndarray | None, outputs: int) -> None:
    if not neuron.spiking:
        raise ValueError(f"{kind}: a chip layer's neuron must spike, got {neuron.kind}")
    if bias is not None and bias.shape != (outputs,):
        raise ValueError(f"{kind}: bias of shape {bias.shape} for {outputs} outputs")


@dataclass(frozen=True)
class ConvLayer:
    """A 2-d convolution (no groups, no dilation) feeding spiking neurons."""

    name: str
    nodes: tuple[str, ...]
    input_shape: Shape  # (C, H, W)
    weight: np.ndarray  # (O, C, kh, kw)
    stride: tuple[int, int]
    padding: tuple[int, int]
    bias: np.ndarray | None  # (O,)
    neuron: Neuron

    def __post_init__(self) -> None:
        if self.weight.ndim != 4 or len(self.input_shape) != 3 or self.weight.shape[1] != self.input_shape[0]:
            raise ValueError(f"ConvLayer: weight {self.weight.shape} does not read input {self.input_shape}")
        if min(self.stride) < 1 or min(self.padding) < 0 or min(self.output_shape) < 1:
            raise ValueError(f"ConvLayer: stride {self.stride} / padding {self.padding} give no output")
        _check_common("ConvLayer", self.neuron, self.bias, self.weight.shape[0])

    @property
    def output_shape(self) -> Shape:
        _, h, w = self.input_shape
        (kh, kw), (sh, sw), (ph, pw) = self.weight.shape[2:], self.stride, self.padding
        return (self.weight.shape[0], conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw))


@dataclass(frozen=True)
class DenseLayer:
    """A dense synapse over the whole input (read flattened in C order) feeding spiking neurons."""

    name: str
    nodes: tuple[str, ...]
    input_shape: Shape  # any shape; the weight reads it flattened
    weight: np.ndarray  # (O, prod(input_shape))
    bias: np.ndarray | None
    neuron: Neuron

    def __post_init__(self) -> None:
        if self.weight.ndim != 2 or self.weight.shape[1] != math.prod(self.input_shape):
            raise ValueError(f"DenseLayer: weight {self.weight.shape} does not read input {self.input_shape}")
        _check_common("DenseLayer", self.neuron, self.bias, self.weight.shape[0])

    @property
    def output_shape(self) -> Shape:
        return (self.weight.shape[0],)


@dataclass(frozen=True)
class RecurrentDenseLayer:
    """A dense input synapse plus a dense recurrence from the layer's own spikes of the previous step."""

    name: str
    nodes: tuple[str, ...]
    input_shape: Shape
    weight_in: np.ndarray  # (O, prod(input_shape))
    weight_rec: np.ndarray  # (O, O)
    bias: np.ndarray | None  # the input's and the recurrence's biases together
    neuron: Neuron

    def __post_init__(self) -> None:
        o = self.weight_in.shape[0]
        if self.weight_in.ndim != 2 or self.weight_in.shape[1] != math.prod(self.input_shape):
            raise ValueError(f"RecurrentDenseLayer: weight_in {self.weight_in.shape} does not read "
                             f"input {self.input_shape}")
        if self.weight_rec.shape != (o, o):
            raise ValueError(f"RecurrentDenseLayer: weight_rec {self.weight_rec.shape} is not ({o}, {o})")
        _check_common("RecurrentDenseLayer", self.neuron, self.bias, o)

    @property
    def output_shape(self) -> Shape:
        return (self.weight_in.shape[0],)


ChipLayer = ConvLayer | DenseLayer | RecurrentDenseLayer
