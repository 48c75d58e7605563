"""The inpainter's spiking stack as a NIR graph (``graph.nir`` of an inpainter bundle).

The inpainter is deployed like any graph: :func:`stack_graph` reads its
spiking stack (Norse ``LIFCell`` layers behind convolutions) with the toolkit's
one Norse front end, :func:`neurodeploy.ir.norse_reader.norse_graph`, which
the partitioner (:mod:`neurodeploy.chip.partition`) places on the chip as one
segment; the graph file is the float reference.

A stack is ``Input -> (conv{k} -> lif{k}) x K -> Output``, each LIFCell a
``CubaLIF`` (the front end's mapping: time constants in seconds, ``tau = 1 / tau_inv``,
``r = 1``, ``w_in = 1 / b`` with ``b = dt·tau_syn_inv``, because Norse's current
jumps by the whole input and then decays, NIR's moves a fraction b towards
``w_in·S``), float weights (not the quantized ones: other toolchains quantize
for themselves), neuron parameters of the layer's shape (C, H, W). The time
step is not part of this graph file (the bundle manifest holds it), as before
the front end wrote it into the metadata: the shipped model's bundle keeps its bytes.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any

import nir
import numpy as np
import torch

from neurodeploy.errors import UserError
from neurodeploy.ir.norse_reader import norse_graph


def stack_graph(layers: Any, dt: float, input_shape: tuple[int, int, int]) -> Any:
    """The spiking stack as a NIR graph: Input -> (conv{k} -> lif{k}) for every layer k -> Output.

    ``layers``: the stack's layers in order, each with its ``conv`` (a 'same'-padded Conv2d) and its Norse
    ``lif`` cell (:class:`neurodeploy.inpainter.model.SNNConv2d`); ``input_shape`` is (C, H, W).
    """
    modules: OrderedDict[str, torch.nn.Module] = OrderedDict()
    for k, layer in enumerate(layers):
        modules[f"conv{k}"], modules[f"lif{k}"] = layer.conv, layer.lif
    graph = norse_graph(torch.nn.Sequential(modules), dt, input_shape)
    return nir.NIRGraph(nodes=graph.nodes, edges=graph.edges)  # dt lives in the manifest


def stack_weights(path: str | os.PathLike[str]) -> list[np.ndarray]:
    """The float kernels of a :func:`stack_graph` file, layer by layer; anything else is a UserError."""
    try:
        graph = nir.read(path)
        count = sum(1 for name in graph.nodes if name.startswith("conv"))
        return [np.asarray(graph.nodes[f"conv{k}"].weight, dtype=np.float32) for k in range(count)]
    except Exception as exc:
        raise UserError(f"{path} is not the spiking stack of a neurodeploy bundle ({type(exc).__name__})",
                        "re-create the bundle with neurodeploy convert") from None
