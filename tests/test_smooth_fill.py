"""The lean smooth fill (banded passes, bool masks, two planes per level) gives the bits of the
straightforward whole-plane computation it replaced, kept here as the reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neurodeploy.chip.encoding import PAYLOAD_MAX
from neurodeploy.inpainter import holes
from neurodeploy.inpainter.data import random_mask, to_tensors
from neurodeploy.inpainter.holes import network_input, smooth_fill
from neurodeploy.inpainter.model import ModelConfig
from neurodeploy.inpainter.snn_input import SnnInput


def reference_smooth_fill(image: torch.Tensor, known: torch.Tensor, iterations: int = 10) -> torch.Tensor:
    """smooth_fill as it was before it went lean: every step over the whole plane, masks as floats."""
    if min(image.shape[-2:]) <= 1 or bool((known > 0).all()):
        return image * known
    height, width = image.shape[-2:]
    even = (0, width % 2, 0, height % 2)
    total = F.avg_pool2d(F.pad(image * known, even), 2)
    weight = F.avg_pool2d(F.pad(known, even), 2)
    coarse = reference_smooth_fill(total / weight.clamp_min(1e-12), (weight > 0).to(image.dtype), iterations)
    unknown = 1.0 - known
    fixed = image * known
    x = F.interpolate(coarse, scale_factor=2.0, mode="bilinear", align_corners=False)[..., :height, :width]
    x = x.mul_(unknown).add_(fixed)
    for _ in range(iterations):
        p = F.pad(x, (1, 1, 1, 1), mode="replicate")
        mean = p[..., :-2, 1:-1] + p[..., 2:, 1:-1]
        mean += p[..., 1:-1, :-2] + p[..., 1:-1, 2:]
        x = mean.mul_(0.25).mul_(unknown).add_(fixed)
    return x


def reference_network_input(image: torch.Tensor, mask: torch.Tensor, mask_input: bool = True,
                            hole_fill: str = "zero") -> torch.Tensor:
    """network_input before the lean fill (float mask only)."""
    known = 1.0 - mask
    masked = image * known
    if hole_fill == "mean":
        mean = masked.sum(dim=(2, 3), keepdim=True) / known.sum(dim=(2, 3), keepdim=True).clamp_min(1.0)
        masked = masked + torch.round(mean * 255.0) / 255.0 * mask
    elif hole_fill == "smooth":
        for c in range(masked.shape[1]):
            fill = reference_smooth_fill(masked[:, c:c + 1], known)
            masked[:, c:c + 1] += fill.mul_(255.0).round_().div_(255.0).mul_(mask)
    return torch.cat([masked, mask], dim=1) if mask_input else masked


def reference_payload(image: np.ndarray, mask: np.ndarray, config: ModelConfig) -> np.ndarray:
    """SnnInput's payloads as computed before: float masks, to_tensors, one colour at a time for smooth."""
    colours = list(range(config.image_channels))
    payload = np.empty((config.snn_in_channels, *mask.shape), np.uint8)
    for group in [[c] for c in colours] if config.hole_fill == "smooth" else [colours]:
        img, hole = to_tensors(image[..., group], mask)
        x = reference_network_input(img[None], hole[None], False, config.hole_fill)[0]
        payload[group] = x.mul_(PAYLOAD_MAX).round_().to(torch.uint8).numpy()
    if config.mask_input:
        payload[-1] = mask * np.uint8(PAYLOAD_MAX)
    return payload


def _case(seed: int, batch: int, channels: int, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images in 8-bit steps and float 0/1 known masks drawn as --random-mask draws holes."""
    rng = np.random.default_rng(seed)
    image = torch.from_numpy(rng.integers(0, 256, (batch, channels, height, width)).astype(np.float32)) / 255.0
    holes = np.stack([random_mask(rng, height, width) if min(height, width) > 2 else rng.random((height, width)) < 0.5
                      for _ in range(batch)])
    return image, torch.from_numpy(~holes).float()[:, None]


SIZES = [(1, 7), (2, 2), (3, 5), (5, 3), (16, 16), (33, 17), (64, 80), (97, 151), (130, 67)]


@pytest.mark.parametrize("band_values", [holes.BAND_VALUES, 40, 6000])
@pytest.mark.parametrize(("height", "width"), SIZES)
def test_smooth_fill_has_the_bits_of_the_whole_plane_computation(monkeypatch: pytest.MonkeyPatch, band_values: int,
                                                                 height: int, width: int) -> None:
    """Whole images as one band, bands of 2 rows (40 values) and of 6 to 74 rows (6000 values)."""
    monkeypatch.setattr(holes, "BAND_VALUES", band_values)
    image, known = _case(height * 1000 + width, 2, 3, height, width)
    for iterations in (0, 1, 10):
        expected = reference_smooth_fill(image * known, known, iterations)
        for mask in (known, known.bool()):
            assert torch.equal(smooth_fill(image * known, mask, iterations), expected)
    # an image not masked beforehand; every pixel known; none known
    assert torch.equal(smooth_fill(image, known), reference_smooth_fill(image, known))
    assert torch.equal(smooth_fill(image, torch.ones_like(known)), image)
    assert torch.equal(smooth_fill(image, torch.zeros_like(known).bool()), torch.zeros_like(image))


@pytest.mark.parametrize("hole_fill", ["zero", "mean", "smooth"])
def test_network_input_has_the_bits_of_the_float_mask_computation(monkeypatch: pytest.MonkeyPatch,
                                                                  hole_fill: str) -> None:
    monkeypatch.setattr(holes, "BAND_VALUES", 300)
    image, known = _case(7, 3, 3, 61, 50)
    mask = 1.0 - known
    for mask_input in (True, False):
        expected = reference_network_input(image, mask, mask_input, hole_fill)
        assert torch.equal(network_input(image, mask, mask_input, hole_fill), expected)
        assert torch.equal(network_input(image, mask.bool(), mask_input, hole_fill), expected)


@pytest.mark.parametrize("hole_fill", ["zero", "mean", "smooth"])
def test_snn_input_payloads_are_those_computed_before(monkeypatch: pytest.MonkeyPatch, hole_fill: str) -> None:
    monkeypatch.setattr(holes, "BAND_VALUES", 500)
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (75, 93, 3), dtype=np.uint8)
    mask = random_mask(rng, 75, 93)
    for mask_input in (True, False):
        config = ModelConfig(hole_fill=hole_fill, mask_input=mask_input)
        source = SnnInput(image, mask, config)
        expected = reference_payload(image, mask, config)
        if source.payload is None:  # the zero fill reads windows of the image itself
            assert torch.equal(source.window(slice(0, 75), slice(0, 93)),
                               torch.from_numpy(expected).float() / float(PAYLOAD_MAX))
        else:
            assert np.array_equal(source.payload, expected)
