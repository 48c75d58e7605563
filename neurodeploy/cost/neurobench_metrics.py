r"""NeuroBench-compatible metrics of the deployed chip layers, with NeuroBench's own definitions.

NeuroBench 2.3 (``neurobench.metrics``; Yik et al., "The neurobench framework
for benchmarking neuromorphic computing algorithms and systems", Nature
Communications 2025) defines, and this module computes on the chip layers as
deployed (int8 weights, the spikes the chip fires), per sample:

* **synaptic operations** (``SynapticOperations``): per layer and time step,
  the layer applied to its binarised input (nonzero -> 1) with binarised
  weights (nonzero -> 1), bias left out, summed over the outputs::

      effective_t = Σ_outputs (W ≠ 0) ⊛ (x_t ≠ 0)          (a conv, or W x for dense)
      dense_t     = Σ_outputs 1 ⊛ 1                       (every input and weight one; a conv's
                                                          zero padding still counts nothing)

  a step's operations are accumulates (``Effective_ACs``) when every input
  value is 0, 1 or -1 (spikes), multiply-accumulates (``Effective_MACs``)
  otherwise (a graded payload, an image); ``Dense`` sums ``dense_t``. A
  recurrent dense layer adds its recurrence as a dense layer reading the
  previous step's own spikes (NeuroBench does not count recurrences that
  live inside a spiking-neuron module).
* **activation sparsity** (``ActivationSparsity``): zero outputs over all
  outputs of the spiking layers, over every step and sample.
* **connection sparsity** (``ConnectionSparsity``): zero weights over all
  weights of the synaptic layers (NeuroBench rounds it to 4 decimals; this
  module does not).
* **footprint** (``Footprint``): bytes of the parameters. ``footprint_bytes``
  counts the synaptic parameters as deployed (int8 weights, 1 byte, wide
  weights 2; int32 bias mantissas, 4 bytes); ``footprint_bytes_float32`` counts the same
  parameters at 4 bytes, which is NeuroBench's ``Footprint`` of the float
  model's synaptic layers (neuron-state buffers, e.g. snnTorch's beta and
  threshold, left out).

The inpainter's conv layer is counted as it streams tile by tile, so its
effective operations are its synaptic operations (:mod:`neurodeploy.cost.counting`,
every synapse a spike reaches) when every weight is nonzero, which is exact,
and scaled by the fraction of nonzero weights otherwise (``exact`` false).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from neurodeploy.cost.counting import conv_synops
from neurodeploy.ir.graph import conv_output_size


def _binary(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy((np.asarray(x) != 0).astype(np.float64))


def is_spiking(values: np.ndarray) -> bool:
    """NeuroBench's test: every value is 0, 1 or -1."""
    v = np.asarray(values)
    return bool(np.all((v == 0) | (v == 1) | (v == -1)))


def layer_operations(kind: str, events: np.ndarray, weight: np.ndarray, stride: tuple[int, int] = (1, 1),
                     padding: tuple[int, int] = (0, 0), weight_rec: np.ndarray | None = None,
                     spikes: np.ndarray | None = None) -> dict[str, float]:
    """Effective MACs, effective ACs and dense operations of one layer over one sample: ``events`` (T, *input)
    the values it reads, ``spikes`` (T, *output) its own (for a recurrence)."""
    events = np.asarray(events)
    t = events.shape[0]
    w = _binary(weight)
    x = _binary(events)
    if kind == "conv":
        eff = F.conv2d(x, w, stride=stride, padding=padding).sum(dim=(1, 2, 3))
        dense = float(conv_synops(np.ones((1, *events.shape[1:])), weight.shape[0], tuple(weight.shape[2:]), stride,
                                  padding, _out_hw(events.shape[2:], weight.shape[2:], stride, padding))[0])
    else:
        eff = (x.reshape(t, -1) @ w.T).sum(dim=1)
        dense = float(weight.size)
    spiking = np.array([is_spiking(events[k]) for k in range(t)])
    eff_np = eff.numpy()
    out = {"effective_macs": float(eff_np[~spiking].sum()), "effective_acs": float(eff_np[spiking].sum()),
           "dense": dense * t}
    if kind == "dense_rec" and weight_rec is not None and spikes is not None:
        prev = _binary(np.asarray(spikes).reshape(t, -1))[:-1]
        out["effective_acs"] += float((prev @ _binary(weight_rec).T).sum())
        out["dense"] += float(weight_rec.size) * t
    return out


def _out_hw(in_hw: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, int],
            padding: tuple[int, int]) -> tuple[int, int]:
    return tuple(conv_output_size(n, k, s, p) for n, k, s, p in zip(in_hw, kernel, stride, padding, strict=True))  # type: ignore[return-value]


def inpainter_operations(synops: float, weight: np.ndarray, graded_input: bool, timesteps: int,
                         image_hw: tuple[int, int], padding: int, stride: int = 1) -> dict[str, Any]:
    """A conv layer of the inpainter's stack from its counted synaptic operations (module docstring);
    ``image_hw``: the layer's input size."""
    nonzero = float(np.count_nonzero(weight)) / weight.size
    effective = synops * nonzero
    out_hw = (-(-image_hw[0] // stride), -(-image_hw[1] // stride))
    dense = float(conv_synops(np.ones((1, weight.shape[1], *image_hw)), weight.shape[0], tuple(weight.shape[2:]),
                              (stride, stride), (padding, padding), out_hw)[0]) * timesteps
    return {"effective_macs": effective if graded_input else 0.0, "effective_acs": 0.0 if graded_input else effective,
            "dense": dense, "exact": nonzero == 1.0}


def metrics(operations: list[dict[str, Any]], spikes: float, outputs: float, weights: list[np.ndarray],
            biases: list[np.ndarray | None]) -> dict[str, Any]:
    """``neurobench.{...}`` of the profile JSON: operations per layer (per sample), the spikes fired and the
    neuron outputs (neurons x steps) of all chip layers per sample, and the deployed parameters."""
    weight_count = int(sum(w.size for w in weights))
    bias_count = int(sum(b.size for b in biases if b is not None))
    zeros = int(sum(np.count_nonzero(np.asarray(w) == 0) for w in weights))
    return {
        "synaptic_operations": {
            "Effective_MACs": float(sum(o["effective_macs"] for o in operations)),
            "Effective_ACs": float(sum(o["effective_acs"] for o in operations)),
            "Dense": float(sum(o["dense"] for o in operations)),
        },
        "activation_sparsity": 1.0 - spikes / outputs if outputs else 0.0,
        "connection_sparsity": zeros / weight_count if weight_count else 0.0,
        "parameter_count": weight_count + bias_count,
        "footprint_bytes": int(sum(w.size * w.itemsize for w in weights)) + 4 * bias_count,  # int16: wide
        "footprint_bytes_float32": 4 * (weight_count + bias_count),
        "exact": all(o.get("exact", True) for o in operations),
        "definitions": "NeuroBench 2.3 neurobench.metrics: SynapticOperations, ActivationSparsity, "
                       "ConnectionSparsity, Footprint (see neurodeploy.cost.neurobench_metrics)",
    }
