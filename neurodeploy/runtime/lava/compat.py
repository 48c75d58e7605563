"""Let lava-nc 0.10 and lava-dl 0.6 import and run on Python 3.11+.

Import this module before anything from ``lava``; every neurodeploy module
that needs Lava does so through :func:`import_lava`. Three things are fixed, all
at import time and without touching a file in site-packages:

1. ``lava.magma.compiler.var_model`` declares dataclass fields with a mutable
   default (``x: ByteEncoder = ByteEncoder()``), which Python >= 3.11 rejects
   with ``ValueError: mutable default ... use default_factory``. A meta-path
   finder hands that one module to a loader that rewrites those defaults to
   ``dataclasses.field(default_factory=ByteEncoder)`` in the source before executing it.
   On Python 3.10, or on a Lava release that no longer has the pattern, the
   rewrite changes nothing and the module loads as shipped.
2. ``lava.lib.dl.slayer`` eagerly imports ``slayer.object_detection``, which
   needs OpenCV's GUI build and torchvision. neurodeploy never uses object
   detection, so a placeholder module is registered under that name; any
   attribute access on it raises an ImportError that says why.
3. Lava's message infrastructure calls ``multiprocessing.set_start_method("fork")``
   when it is imported, which raises "context has already been set" in a process
   that has already used multiprocessing (started a worker, even with a spawn
   context). :func:`import_lava` imports that module first, with the start method
   set to ``fork`` (what Lava sets in a fresh process and needs) instead of failing.

``APPLIED`` records which fixes were actually needed, for ``neurodeploy doctor``.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import multiprocessing
import re
import sys
import types
from typing import Any

VAR_MODEL = "lava.magma.compiler.var_model"
MESSAGE_INFRASTRUCTURE = "lava.magma.runtime.message_infrastructure.multiprocessing"
OBJECT_DETECTION = "lava.lib.dl.slayer.object_detection"

# `name: ByteEncoder = ByteEncoder()` -> `name: ByteEncoder = field(default_factory=ByteEncoder)`
_MUTABLE_DEFAULT = re.compile(r"^(\s+\w+\s*:\s*(\w+)\s*=\s*)\2\(\)\s*$", re.MULTILINE)

APPLIED: dict[str, bool] = {"var_model_default_factory": False, "object_detection_placeholder": False,
                             "fork_start_method": False}
DESCRIPTIONS = {  # what each fix means, in words, for `neurodeploy doctor`
    "var_model_default_factory": "lava-nc made importable on Python 3.11+ (a dataclass default rewritten in memory)",
    "object_detection_placeholder": "lava-dl loads without OpenCV/torchvision (its unused object detection stubbed)",
    "fork_start_method": "Lava imported after multiprocessing was used (start method set to fork, as Lava needs)",
}


def rewrite_mutable_defaults(source: str) -> str:
    """Return ``source`` with ``x: T = T()`` dataclass defaults made default_factory."""
    # __import__ keeps the rewrite on one line: no import to add (which could land
    # before a `from __future__` line) and the traceback line numbers stay true.
    return _MUTABLE_DEFAULT.sub(r"\1__import__('dataclasses').field(default_factory=\2)", source)


class _RewritingLoader(importlib.machinery.SourceFileLoader):
    def get_code(self, fullname: str) -> types.CodeType:
        source = self.get_source(fullname) or ""
        fixed = rewrite_mutable_defaults(source)
        APPLIED["var_model_default_factory"] = fixed != source
        return compile(fixed, self.path, "exec", dont_inherit=True)


class _VarModelFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != VAR_MODEL:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and isinstance(spec.loader, importlib.machinery.SourceFileLoader):
                spec.loader = _RewritingLoader(fullname, spec.origin)
                return spec
            if spec is not None:
                return spec
        return None


class _ObjectDetectionPlaceholder(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise ImportError(
            "lava.lib.dl.slayer.object_detection is replaced by a placeholder in neurodeploy "
            "(it needs OpenCV's GUI build and torchvision, and neurodeploy does not use it)"
        )


def install() -> None:
    """Apply both fixes; idempotent and a no-op where nothing needs fixing."""
    if sys.version_info >= (3, 11) and not any(
        isinstance(f, _VarModelFinder) for f in sys.meta_path
    ):
        sys.meta_path.insert(0, _VarModelFinder())
    if OBJECT_DETECTION not in sys.modules:
        sys.modules[OBJECT_DETECTION] = _ObjectDetectionPlaceholder(OBJECT_DETECTION)
        APPLIED["object_detection_placeholder"] = True


def import_lava() -> None:
    """Install the fixes and import Lava's core, so later ``import lava...`` just works."""
    install()
    importlib.import_module(VAR_MODEL)
    if MESSAGE_INFRASTRUCTURE not in sys.modules and multiprocessing.get_start_method(allow_none=True) is not None:
        # the start method is already fixed in this process: Lava's own set_start_method("fork") would raise
        multiprocessing.set_start_method("fork", force=True)
        original = multiprocessing.set_start_method
        multiprocessing.set_start_method = lambda method, force=False: None  # type: ignore[assignment]
        try:
            importlib.import_module(MESSAGE_INFRASTRUCTURE)
        finally:
            multiprocessing.set_start_method = original
        APPLIED["fork_start_method"] = True


install()
