"""The backends table: every backend a chip segment runs on, one row each.

The CLI's ``--backend`` help and checks, the graph runtime
(:func:`neurodeploy.runtime.graph_run.run_graph`), the inpainter's tiles
(:class:`neurodeploy.inpainter.tiling.SpikeBridge`) and the thread plan read
it. A backend that runs without Lava is one module with a batch function
``(layers, frames (B, T, *input_shape), device) -> per layer spikes (B, T, *out)``
plus one row here; a Lava backend runs through
:class:`~neurodeploy.runtime.lava.segment_run.LavaSegment`, whose run
configuration :func:`neurodeploy.runtime.lava.lifecycle.select_run_config` picks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from neurodeploy.chip.reference import run_segment_batch as run_reference
from neurodeploy.errors import UserError
from neurodeploy.runtime.torch_backend import DEVICES
from neurodeploy.runtime.torch_backend import check_device as check_torch_device
from neurodeploy.runtime.torch_backend import run_segment_batch as run_torch

Backend = Literal["lava", "reference", "loihi2", "torch"]
LavaModels = Literal["neurodeploy", "stock"]
BatchRun = Callable[[Sequence[Any], np.ndarray, str], list[np.ndarray]]
REFERENCE = "reference"  # the backend every other one is checked against, bit for bit


@dataclass(frozen=True)
class BackendSpec:
    """One backend: how it runs a chip segment, and what ``--backend``'s help says of it."""

    name: str
    summary: str
    run_batch: BatchRun | None = None  # None: the segment runs in Lava (a compiled process network)
    devices: tuple[str, ...] = ("cpu",)  # the torch devices it takes (--device)
    batched: bool = False  # runs many tiles as one batch: the inpainter hands it a row of tiles at once

    @property
    def lava(self) -> bool:
        return self.run_batch is None


def _reference(layers: Sequence[Any], frames: np.ndarray, device: str) -> list[np.ndarray]:
    return run_reference(layers, frames)


def _torch(layers: Sequence[Any], frames: np.ndarray, device: str) -> list[np.ndarray]:
    return run_torch(layers, frames, device)


TABLE: dict[str, BackendSpec] = {spec.name: spec for spec in (
    BackendSpec("lava", "CPU simulation in Lava"),
    BackendSpec(REFERENCE, "NumPy, bit-exact, fast", _reference),
    BackendSpec("loihi2", "Loihi 2 hardware, needs lava-loihi"),
    BackendSpec("torch", "PyTorch, batched, cpu or cuda", _torch, devices=DEVICES, batched=True),
)}
BACKENDS: tuple[str, ...] = tuple(TABLE)
LAVA_BACKENDS: tuple[str, ...] = tuple(name for name, spec in TABLE.items() if spec.lava)
SIMULATED: tuple[str, ...] = tuple(name for name, spec in TABLE.items() if not spec.lava)  # run without Lava


def backend(name: str) -> BackendSpec:
    """The table's row for ``name``; an unknown name is a one-line UserError listing them all."""
    if name not in TABLE:
        raise UserError(f"unknown backend {name!r}", f"pass one of {', '.join(TABLE)}")
    return TABLE[name]


def backend_help() -> str:
    """``--backend``'s help: every backend with its summary, read from the table."""
    return "; ".join(f"{spec.name} ({spec.summary})" for spec in TABLE.values()) + "."


def check_backend_device(name: str, device: str) -> None:
    """``device`` on backend ``name``: one it takes, and (for cuda) one torch sees; else a UserError."""
    spec = backend(name)
    if device not in spec.devices:
        with_it = [n for n, s in TABLE.items() if device in s.devices]
        raise UserError(f"`device={device}` runs only on the {' or '.join(with_it)} backend",
                        f"add `backend={with_it[0]}`")
    if spec.devices != ("cpu",):
        check_torch_device(device)

