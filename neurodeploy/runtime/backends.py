"""The backends table: every backend a chip segment runs on, named once.

The CLI's ``--backend`` help and checks, ``simulate``, ``profile`` and
``evaluate`` all read :data:`BACKENDS`; a new backend is one module plus one row here.
"""

from __future__ import annotations

from typing import Literal

Backend = Literal["lava", "reference", "loihi2", "torch"]
LavaModels = Literal["neurodeploy", "stock"]
BACKENDS: tuple[str, ...] = ("lava", "reference", "loihi2", "torch")
SIMULATED: tuple[str, ...] = ("reference", "torch")  # the backends that run without Lava
