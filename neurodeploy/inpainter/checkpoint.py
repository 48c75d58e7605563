"""Checkpoints: plain dicts of tensors and plain values, safe to load.

A checkpoint written by ``neurodeploy train`` holds::

    {"format": "neurodeploy-checkpoint", "version": 1,
     "model_config": {...},            # ModelConfig.to_dict(): plain values only
     "state_dict": {name: tensor},     # HybridInpainter weights
     "optimizer": {...},               # Adam state, for --resume
     "epoch": int,                     # epochs completed
     "train_losses": [float], "val_losses": [float],
     "data": {...}, "train_config": {...},
     "rng": {"torch": uint8 tensor}}

It loads with ``torch.load(weights_only=True)`` (no code runs), and
:func:`load_model` rebuilds the model from it alone.
"""

from __future__ import annotations

import os
from typing import Any

from neurodeploy.bundle.format import Bundle
from neurodeploy.bundle.manifest import HOST_FILE, HOST_FORMAT
from neurodeploy.errors import UserError
from neurodeploy.inpainter.model import HostCNN, HybridInpainter, ModelConfig
from neurodeploy.io import load_torch, save_torch

FORMAT = "neurodeploy-checkpoint"
VERSION = 1
REQUIRED_KEYS = ("format", "version", "model_config", "state_dict")


def save_checkpoint(path: str | os.PathLike[str], model: HybridInpainter, **extra: Any) -> None:
    """Write a checkpoint atomically (temporary file, then rename)."""
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model_config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **extra,
    }
    save_torch(payload, path)


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load and validate a checkpoint dict; every defect is a one-line UserError."""
    ckpt = load_torch(path, what="checkpoint")
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise UserError(f"{path} is missing checkpoint keys {missing}",
                        "pass a model file written by neurodeploy train")
    if ckpt["format"] != FORMAT:
        raise UserError(f"{path} is a {ckpt['format']!r} file, not a neurodeploy checkpoint",
                        "pass a model file written by neurodeploy train")
    if ckpt["version"] != VERSION:
        raise UserError(f"{path} has checkpoint version {ckpt['version']}, this neurodeploy reads {VERSION}",
                        "re-export it with a matching neurodeploy version")
    return ckpt


def model_from_checkpoint(ckpt: dict[str, Any], source: str = "checkpoint") -> HybridInpainter:
    """Rebuild the HybridInpainter a checkpoint dict describes and load its weights."""
    try:
        config = ModelConfig.from_dict(dict(ckpt["model_config"]))
    except (TypeError, ValueError) as exc:
        raise UserError(f"{source} has an invalid model_config ({exc})",
                        "pass a model file written by neurodeploy train") from None
    model = HybridInpainter(config)
    state = ckpt["state_dict"]
    if not isinstance(state, dict):
        raise UserError(f"{source} state_dict is not a dictionary", "pass a model file written by neurodeploy train")
    # checkpoints written before the spiking stage became a list of layers name its one conv snn.conv
    state = {("snn.layers.0.conv." + k[len("snn.conv."):] if k.startswith("snn.conv.") else k): v
             for k, v in state.items()}
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state)
                   if getattr(state[k], "shape", None) != expected[k].shape)
    if missing or unexpected or wrong:
        detail = "; ".join(part for part in (
            f"missing {missing[:3]}" if missing else "",
            f"unexpected {unexpected[:3]}" if unexpected else "",
            f"wrong shape {wrong[:3]}" if wrong else "") if part)
        raise UserError(f"{source} does not hold a HybridInpainter of its own model_config ({detail})",
                        "pass a checkpoint of neurodeploy's HybridInpainter")
    model.load_state_dict(state)
    model.eval()
    return model


def load_model(path: str | os.PathLike[str]) -> tuple[HybridInpainter, dict[str, Any]]:
    """Load a checkpoint file and rebuild its model; returns (model, checkpoint dict)."""
    ckpt = read_checkpoint(path)
    return model_from_checkpoint(ckpt, str(path)), ckpt


def bundle_config(bundle: Bundle) -> ModelConfig:
    """The inpainter's model config as its format-3 bundle's manifest records it."""
    config = bundle.require("inpainter").typed_manifest.model_config
    assert config is not None  # validate_manifest: format 3 has it
    return ModelConfig.from_dict(dict(config))


def bundle_host_cnn(bundle: Bundle) -> HostCNN:
    """The host CNN of a format-3 bundle, rebuilt from its ``host.pt`` alone."""
    path = bundle.file(HOST_FILE)
    data = load_torch(path, what="host CNN file")
    if data.get("format") != HOST_FORMAT:
        raise UserError(f"{path} is not a neurodeploy host CNN file", "re-create the bundle with neurodeploy convert")
    cnn = HostCNN(ModelConfig.from_dict(dict(data["model_config"])))
    try:
        cnn.load_state_dict(data["state_dict"])
    except (RuntimeError, KeyError, TypeError) as exc:
        raise UserError(f"{path} does not fit its model_config ({type(exc).__name__})",
                        "re-create the bundle with neurodeploy convert") from None
    cnn.eval()
    return cnn
