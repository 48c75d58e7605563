"""Lava (stock netx models, Loihi2SimCfg fixed_pt) spikes equal the reference backend's exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from neurodeploy.bridge import SpikeBridge
from neurodeploy.bundle import Bundle
from neurodeploy.checkpoint import save_checkpoint
from neurodeploy.conversion import convert
from neurodeploy.data import builtin_paths, to_tensors
from neurodeploy.encoding import input_frames
from neurodeploy.io import read_image
from neurodeploy.model import ModelConfig, network_input
from neurodeploy.reference import run_layer

from .conftest import TINY, tiny_model


def _image_frames(bundle: Bundle, size: int = 40) -> np.ndarray:
    rgb = read_image(builtin_paths("val")[0])[100:100 + size, 200:200 + size]
    mask = np.zeros(rgb.shape[:2], bool)
    mask[10:22, 5:30] = True
    image, hole = to_tensors(rgb, mask)
    x = network_input(image[None], hole[None], True, "mean")[0]
    return np.ascontiguousarray(input_frames(x, bundle.encoding, bundle.timesteps))


@pytest.mark.parametrize("models", ["stock", "neurodeploy"])
def test_lava_equals_reference_on_a_real_image_graded_input(tiny_bundle: Path, models: str) -> None:
    bundle = Bundle.load(tiny_bundle)
    frames = _image_frames(bundle)  # 40 x 40 over tiles of 24: four tiles, halos included
    with SpikeBridge.of(bundle, "lava", models) as bridge:
        lava = bridge.run(frames)
        again = bridge.run(frames)  # the same compiled network, reset between images
    reference = SpikeBridge.of(bundle, "reference").run(frames)
    assert 0 < int(reference.sum()) < reference.numel()
    assert torch.equal(lava, reference) and torch.equal(again, reference)


@pytest.mark.parametrize("models", ["stock", "neurodeploy"])
def test_lava_equals_reference_on_random_binary_spikes(tmp_path: Path, models: str) -> None:
    config = ModelConfig(**{**TINY.to_dict(), "encoding": "poisson"})
    path = tmp_path / "poisson.pt"
    save_checkpoint(path, tiny_model(config=config))
    bundle = convert(path, tmp_path / "poisson.bundle", tile=20)
    frames = (np.random.default_rng(4).random((config.timesteps, 4, 20, 20)) < 0.3).astype(np.uint8)
    with SpikeBridge.of(bundle, "lava", models) as bridge:
        lava = bridge.run(frames)
    assert torch.equal(lava, torch.from_numpy(run_layer(bundle.layer, np.pad(
        frames, ((0, 0), (0, 0), (1, 1), (1, 1))))[:, :, 1:-1, 1:-1]))
    assert int(lava.sum()) > 0


def test_tiled_equals_untiled(tiny_bundle: Path) -> None:
    bundle = Bundle.load(tiny_bundle)
    frames = _image_frames(bundle, size=53)
    tiled = SpikeBridge.of(bundle, "reference").run(frames)
    untiled = run_layer(bundle.layer, frames)  # one window over the whole image, zero padded
    assert torch.equal(tiled, torch.from_numpy(untiled))
