"""Lava (stock netx models, Loihi2SimCfg fixed_pt) spikes equal the reference backend's exactly."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from neurodeploy.bundle.format import Bundle
from neurodeploy.chip.encoding import input_frames
from neurodeploy.chip.reference import run_segment
from neurodeploy.inpainter.checkpoint import save_checkpoint
from neurodeploy.inpainter.conversion import convert
from neurodeploy.inpainter.data import builtin_paths, to_tensors
from neurodeploy.inpainter.holes import network_input
from neurodeploy.inpainter.model import HybridInpainter, ModelConfig
from neurodeploy.inpainter.tiling import SpikeBridge
from neurodeploy.io import read_image

from .conftest import TINY, tiny_model


def _untiled(bundle: Bundle, frames: np.ndarray) -> np.ndarray:
    """The bundle's one spiking layer run over the whole of ``frames`` (T, C, H, W) as one window."""
    (layer,) = bundle.segment_layers
    whole = dataclasses.replace(layer, input_shape=frames.shape[1:], output_shape=(layer.output_shape[0],
                                                                                 *frames.shape[2:]))
    return run_segment([whole], frames)[0]


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
    assert torch.equal(lava, torch.from_numpy(_untiled(bundle, frames)))
    assert int(lava.sum()) > 0


def test_tiled_equals_untiled(tiny_bundle: Path) -> None:
    bundle = Bundle.load(tiny_bundle)
    frames = _image_frames(bundle, size=53)
    tiled = SpikeBridge.of(bundle, "reference").run(frames)
    untiled = _untiled(bundle, frames)  # one window over the whole image, zero padded
    assert torch.equal(tiled, torch.from_numpy(untiled))


@pytest.mark.parametrize(("strides", "spiking_layers"), [((1, 1, 1, 1, 1), 3), ((2, 2, 1, -2, -2), 3),
                                                         ((2, 2, 1, -2, -2), 2)])
def test_a_stack_of_lif_convs_runs_in_lava_bit_exact_and_tiles_like_one_window(
        tmp_path: Path, strides: tuple[int, ...], spiking_layers: int) -> None:
    from neurodeploy.inpainter.simulator import SimulationInput, Simulator

    config = ModelConfig(**{**TINY.to_dict(), "cnn_strides": strides, "cnn_dilations": (1, 1, 1, 1, 1),
                            "spiking_layers": spiking_layers})
    torch.manual_seed(1)
    model = HybridInpainter(config)
    bundle = convert(model, tmp_path / "stack.bundle", tile=16)
    frames = _image_frames(bundle, size=30)
    with SpikeBridge.of(bundle, "lava") as bridge:
        lava = bridge.run(frames)
    reference = SpikeBridge.of(bundle, "reference").run(frames)
    stride = config.spiking_stride
    assert lava.shape[-2:] == (-(-30 // stride), -(-30 // stride))
    assert torch.equal(lava, reference) and int(reference.sum()) > 0
    rgb = read_image(builtin_paths("val")[0])[:37, :42]  # sides no multiple of the strides
    mask = np.zeros(rgb.shape[:2], bool)
    mask[8:20, 5:25] = True
    item = SimulationInput("x", rgb, mask)
    with Simulator(bundle, "lava", keep_spikes=True) as sim:
        tiled = sim.run(item)
    assert tiled.fidelity["exact_vs_reference"] and len(tiled.tallies) == spiking_layers
    assert all(layer["spike_f1"] > 0.9 for layer in tiled.fidelity["layers"])  # every layer against the Norse stack
    whole = convert(model, tmp_path / "whole.bundle", tile=48)  # one tile holds the whole image
    with Simulator(whole, "reference", keep_spikes=True) as sim:
        one = sim.run(item)
    assert np.array_equal(tiled.output, one.output) and torch.equal(tiled.spikes, one.spikes)
    for a, b in zip(tiled.tallies, one.tallies, strict=True):
        assert np.array_equal(a.synops_per_step, b.synops_per_step) and a.spikes == b.spikes
