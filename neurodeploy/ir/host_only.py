"""The host-op table: NIR kinds with a PyTorch equivalent and no Loihi one, one entry each.

An entry says all the toolkit needs of such a kind: how it runs on a batch
(float64, the host's and the float reference's one definition), its per-sample
output shape and input rank where they differ from its input's, and its
multiply-accumulates per step (the cost model's host MACs). The reader keeps
the NIR node itself as the op (its fields as numpy), so a new host op is one
entry here::

    Scale      s·x
    Threshold  [x > θ]
    Conv1d     F.conv1d(x, W, b, stride, padding, dilation, groups); MACs: out·(C/groups)·k
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from neurodeploy.ir.graph import Shape, conv_output_size


@dataclass(frozen=True)
class HostOp:
    """One host-only kind. ``output_shape(op, input_shape)`` returns the shape, or a string saying which
    input it takes when the input does not fit; ``None``: the output has the input's shape."""

    apply: Callable[[Any, torch.Tensor], torch.Tensor]  # op, x (B, *shape) -> y (B, *out)
    output_shape: Callable[[Any, Shape], Shape | str] | None = None
    rank: int | None = None  # the per-sample input rank it takes, where its kind fixes it
    macs: Callable[[Any, Shape], int] = lambda op, output_shape: 0  # per step


def _conv1d(op: Any, x: torch.Tensor) -> torch.Tensor:
    bias = None if op.bias is None else torch.as_tensor(op.bias, dtype=x.dtype)
    return F.conv1d(x, torch.as_tensor(op.weight, dtype=x.dtype), bias, stride=int(op.stride),
                    padding=int(op.padding), dilation=int(op.dilation), groups=int(op.groups))


def _conv1d_shape(op: Any, shape: Shape) -> Shape | str:
    weight = np.asarray(op.weight)
    if len(shape) != 2 or shape[0] != weight.shape[1] * int(op.groups):
        return f"({weight.shape[1] * int(op.groups)}, L)"
    stride, padding, dilation = (int(np.asarray(v).reshape(-1)[0]) for v in (op.stride, op.padding, op.dilation))
    return (weight.shape[0], conv_output_size(shape[1], weight.shape[2], stride, padding, dilation))


HOST_OPS: dict[str, HostOp] = {
    "Scale": HostOp(lambda op, x: x * torch.as_tensor(op.scale, dtype=x.dtype)),
    "Threshold": HostOp(lambda op, x: (x > torch.as_tensor(op.threshold, dtype=x.dtype)).to(x.dtype)),
    "Conv1d": HostOp(_conv1d, _conv1d_shape, rank=2,
                     macs=lambda op, out: math.prod(out) * math.prod(np.shape(op.weight)[1:])),
}
