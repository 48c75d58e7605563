"""neurodeploy: deploy the spiking stage of a hybrid SNN-CNN trained with Norse onto Lava / Loihi 2.

Importing neurodeploy installs the Lava compatibility layer (stdlib only, no
Lava import), so ``import lava...`` works after it on Python 3.11+. The public
API is imported lazily to keep the command line quick to start::

    from neurodeploy import convert, Bundle, simulate, profile
"""

from __future__ import annotations

from typing import Any

from neurodeploy import _lava_compat as _lava_compat

__version__ = "0.1.0"

_API = {
    "convert": ("neurodeploy.convert", "convert"),
    "Bundle": ("neurodeploy.bundle", "Bundle"),
    "HybridInpainter": ("neurodeploy.model", "HybridInpainter"),
    "ModelConfig": ("neurodeploy.model", "ModelConfig"),
    "load_model": ("neurodeploy.checkpoint", "load_model"),
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        import importlib

        module, attr = _API[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'neurodeploy' has no attribute {name!r}")
