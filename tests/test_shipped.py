"""The shipped checkpoint: it deploys faithfully (fixed point vs float, Lava vs float)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from neurodeploy.inpainter.checkpoint import load_model
from neurodeploy.inpainter.conversion import convert
from neurodeploy.inpainter.data import EvalSet, builtin_paths
from neurodeploy.inpainter.evaluate import score
from neurodeploy.inpainter.simulator import SimulationInput, Simulator

SHIPPED = Path(__file__).resolve().parents[1] / "examples" / "models" / "scnn_inpaint.pt"


@pytest.fixture(scope="module")
def shipped_bundle(tmp_path_factory: pytest.TempPathFactory):
    assert SHIPPED.is_file(), "examples/models/scnn_inpaint.pt is part of the repository"
    return convert(SHIPPED, tmp_path_factory.mktemp("shipped") / "bundle")


def test_shipped_checkpoint_loads_with_weights_only() -> None:
    data = torch.load(SHIPPED, weights_only=True)
    model, _ = load_model(SHIPPED)
    assert data["epoch"] >= 1 and sum(p.numel() for p in model.parameters()) > 0
    assert SHIPPED.stat().st_size < 5 * 2**20


def test_fixed_point_spikes_agree_with_norse_and_lava_keeps_the_hole_psnr(shipped_bundle) -> None:
    samples = list(EvalSet(builtin_paths("val")))
    agreement, psnr_lava, psnr_float, exact = [], [], [], []
    with Simulator(shipped_bundle, "lava") as sim:
        for s in samples:
            result = sim.run(SimulationInput(s.name, s.image, s.mask))
            agreement.append(result.fidelity["spike_f1"])
            exact.append(result.fidelity["exact_vs_reference"])
            psnr_lava.append(score(s.image, result.output, s.mask).psnr_hole)
            float_psnr = result.fidelity["psnr_vs_float"]
            assert float_psnr > 30  # the deployed image is close to the float one everywhere
            psnr_float.append(_float_hole_psnr(sim, s))
    assert all(exact)  # Lava's spikes are the reference backend's, bit for bit
    assert np.mean(agreement) >= 0.95  # spike F1; docs/BENCHMARKS.md records the measured value
    assert abs(np.mean(psnr_lava) - np.mean(psnr_float)) <= 0.1  # the benchmark measures it exactly


def _float_hole_psnr(sim: Simulator, sample) -> float:
    from neurodeploy.inpainter.data import to_tensors
    from neurodeploy.inpainter.evaluate import to_uint8
    from neurodeploy.inpainter.holes import composite

    image, mask = to_tensors(sample.image, sample.mask)
    with torch.no_grad():
        pred = sim.reference_model(image[None], mask[None], torch.Generator().manual_seed(0))[0]
    return score(sample.image, to_uint8(composite(image, pred, mask)), sample.mask).psnr_hole


def _gradient(height: int, width: int) -> np.ndarray:
    """A smooth colour gradient, uint8 (H, W, 3): each colour a different linear ramp."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    return np.stack([40 + 170 * x / width, 30 + 190 * y / height, 200 - 120 * (x + y) / (height + width)],
                    axis=-1).round().astype(np.uint8)


@pytest.mark.parametrize("height, width", [(97, 150), (1024, 1280)])  # odd sides; a photo's size
def test_a_hole_of_half_the_image_in_a_gradient_comes_back_as_the_gradient(shipped_bundle, height: int,
                                                                             width: int) -> None:
    """Through the deployed pipeline (spiking stage in fixed point on the reference backend, tiles
    of 128, host CNN in blocks): no flat box, the surrounding colours continued. The harmonic fill alone
    is exact on a linear ramp; the network's learned correction (trained on photos, it sharpens edges)
    adds a ripple to it: measured 3.7 to 3.9 grey levels RMS in the hole, at most 14 to 22, at 97x150,
    300x400 and 1024x1280. A flat box in half of these ramps is off by tens of grey levels RMS."""
    image = _gradient(height, width)
    mask = np.zeros((height, width), dtype=bool)
    h, w = int(height * 0.707), int(width * 0.707)  # half the image, in its middle
    mask[(height - h) // 2:(height - h) // 2 + h, (width - w) // 2:(width - w) // 2 + w] = True
    assert 0.49 <= mask.mean() <= 0.5
    with Simulator(shipped_bundle, "reference", fidelity=False) as sim:
        output = sim.run(SimulationInput("gradient", image, mask)).output
    assert output.shape == image.shape and np.array_equal(output[~mask], image[~mask])
    error = np.abs(output.astype(int) - image.astype(int))[mask]
    assert np.sqrt((error.astype(float) ** 2).mean()) <= 5 and int(error.max()) <= 30
