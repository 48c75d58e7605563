"""Shared fixtures: a tiny trained-shape model, its checkpoint and its bundle."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from neurodeploy.inpainter.checkpoint import save_checkpoint
from neurodeploy.inpainter.model import HybridInpainter, LIFConfig, ModelConfig

TINY = ModelConfig(snn_channels=6, cnn_channels=(8, 8, 8, 8), cnn_dilations=(1, 2, 1, 2, 1),
                   timesteps=4, lif=LIFConfig())


def tiny_model(seed: int = 0, config: ModelConfig = TINY) -> HybridInpainter:
    """A small, untrained HybridInpainter (its spiking layer fires from the initialisation on)."""
    torch.manual_seed(seed)
    return HybridInpainter(config).eval()


@pytest.fixture
def tiny_checkpoint(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.pt"
    save_checkpoint(path, tiny_model(), epoch=0, train_losses=[], val_losses=[])
    return path


@pytest.fixture
def tiny_bundle(tmp_path: Path, tiny_checkpoint: Path) -> Path:
    from neurodeploy.inpainter.conversion import convert

    out = tmp_path / "tiny.bundle"
    convert(tiny_checkpoint, out, tile=24)
    return out


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ``neurodeploy ARGS`` in a fresh interpreter, as a user would."""
    return subprocess.run([sys.executable, "-m", "neurodeploy", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)
