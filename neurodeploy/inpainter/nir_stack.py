"""The inpainter's spiking stack as a NIR graph (``graph.nir`` of an inpainter bundle).

The inpainter is deployed like any graph: :func:`stack_graph` writes its
spiking stack as a NIR graph, which the partitioner (:mod:`neurodeploy.chip.partition`)
places on the chip as one segment; the graph file is the float reference.

A stack is ``Input -> (Conv2d -> CubaLIF) x K -> Output``. Written with NIR's
conventions: time constants in seconds (``tau = 1 / tau_inv``), ``r = 1``,
``v_leak = v_reset = 0``, float weights (not the quantized ones: other
toolchains quantize for themselves), neuron parameters of the layer's shape
(C, H, W). ``w_in = 1 / b`` (``b = dt·tau_syn_inv``): Norse's current jumps by
the whole input and then decays, NIR's moves a fraction b towards ``w_in·S``,
so with this ``w_in`` NIR's current is Norse's, step for step (see
:mod:`neurodeploy.chip.neuron_mapping`). The time step is not part of a NIR graph; the
bundle manifest holds it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import nir
import numpy as np

from neurodeploy.errors import UserError
from neurodeploy.inpainter.model import LIFConfig
from neurodeploy.ir.graph import conv_output_size


def stack_graph(weights: Sequence[np.ndarray], strides: Sequence[int], lif: LIFConfig,
                input_shape: tuple[int, int, int]) -> Any:
    """The spiking stack as a NIR graph: Input -> (conv{k} -> lif{k}) for every layer k -> Output.

    ``weights`` are the float kernels (C_out, C_in, k, k) in order, each conv
    'same'-padded (k // 2) with its stride; ``input_shape`` is (C, H, W).
    """
    nodes: dict[str, Any] = {"input": nir.Input(input_type={"input": np.array(input_shape)})}
    edges, previous, shape = [], "input", tuple(input_shape)
    for k, (weight, stride) in enumerate(zip(weights, strides, strict=True)):
        c_out, _, kernel, _ = weight.shape
        pad = kernel // 2
        out = (c_out, *[conv_output_size(n, kernel, stride, pad) for n in shape[1:]])

        def per_neuron(value: float, out: tuple[int, ...] = out) -> np.ndarray:
            # NIR's type check wants the neuron shape; constant arrays compress to almost nothing.
            return np.full(out, value, dtype=np.float64)

        nodes[f"conv{k}"] = nir.Conv2d(input_shape=shape[1:], weight=np.asarray(weight, np.float32), stride=stride,
                                       padding=pad, dilation=1, groups=1, bias=np.zeros(c_out, dtype=np.float32))
        nodes[f"lif{k}"] = nir.CubaLIF(tau_syn=per_neuron(1.0 / lif.tau_syn_inv),
                                       tau_mem=per_neuron(1.0 / lif.tau_mem_inv), r=per_neuron(1.0),
                                       v_leak=per_neuron(0.0), v_threshold=per_neuron(lif.v_th),
                                       v_reset=per_neuron(0.0), w_in=per_neuron(1.0 / (lif.dt * lif.tau_syn_inv)))
        edges += [(previous, f"conv{k}"), (f"conv{k}", f"lif{k}")]
        previous, shape = f"lif{k}", out
    nodes["output"] = nir.Output(output_type={"output": np.array(shape)})
    edges.append((previous, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges)


def stack_weights(path: str | os.PathLike[str]) -> list[np.ndarray]:
    """The float kernels of a :func:`stack_graph` file, layer by layer; anything else is a UserError."""
    try:
        graph = nir.read(path)
        count = sum(1 for name in graph.nodes if name.startswith("conv"))
        return [np.asarray(graph.nodes[f"conv{k}"].weight, dtype=np.float32) for k in range(count)]
    except Exception as exc:
        raise UserError(f"{path} is not the spiking stack of a neurodeploy bundle ({type(exc).__name__})",
                        "re-create the bundle with neurodeploy convert") from None
