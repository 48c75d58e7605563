"""neurodeploy: deploy the spiking stage of a hybrid SNN-CNN trained with Norse onto Lava / Loihi 2.

Importing neurodeploy installs the Lava compatibility layer (stdlib only, no
Lava import), so ``import lava...`` works after it on Python 3.11+. The public
API is imported lazily to keep the command line quick to start::

    from neurodeploy import Bundle, SimulationInput, convert, load_model, plan, profile, simulate

No public name is also a submodule's name (the functions live in
``conversion``, ``simulation`` and ``profiling``): importing a submodule sets
it as an attribute of the package, which would shadow a function of the same
name.
"""

from __future__ import annotations

from typing import Any

from neurodeploy.runtime.lava import compat as _lava_compat  # noqa: F401  (installs the compatibility layer)

__version__ = "0.1.0"

_API = {
    "Bundle": ("neurodeploy.bundle.format", "Bundle"),
    "HybridInpainter": ("neurodeploy.inpainter.model", "HybridInpainter"),
    "ModelConfig": ("neurodeploy.inpainter.model", "ModelConfig"),
    "SimulationInput": ("neurodeploy.inpainter.simulator", "SimulationInput"),
    "SimulationReport": ("neurodeploy.inpainter.simulation", "SimulationReport"),
    "UserError": ("neurodeploy.errors", "UserError"),
    "convert": ("neurodeploy.inpainter.conversion", "convert"),
    "load_model": ("neurodeploy.inpainter.checkpoint", "load_model"),
    "plan": ("neurodeploy.chip.partition", "plan"),
    "profile": ("neurodeploy.inpainter.profile", "profile"),
    "profile_netx": ("neurodeploy.cost.netx_profile", "profile_netx"),
    "read_netx": ("neurodeploy.converters.netx_in", "read_network"),
    "read_image": ("neurodeploy.io", "read_image"),
    "read_mask": ("neurodeploy.io", "read_mask"),
    "run_netx": ("neurodeploy.runtime.netx_run", "run_netx"),
    "simulate": ("neurodeploy.inpainter.simulation", "simulate"),
    "write_png": ("neurodeploy.io", "write_png"),
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        import importlib

        module, attr = _API[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'neurodeploy' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
