"""Issue 33, item 5: ``evaluate`` runs the float SC-NN on tiles with the halo of its receptive field, as
``simulate`` runs the deployed one: memory bounded by the tile (a 4.9 MP photo peaked at 12.3 GB whole), the
same pixels as the whole-image computation."""

from __future__ import annotations

import numpy as np
import torch

from neurodeploy.inpainter.evaluate import EVAL_BLOCK, scnn_inpainter, tiled
from neurodeploy.inpainter.model import HybridInpainter, ModelConfig, host_halo, spiking_halo

from .conftest import TINY, tiny_model


def _input(model: HybridInpainter, height: int, width: int) -> torch.Tensor:
    rng = np.random.default_rng(1)
    image = torch.tensor(rng.random((1, 3, height, width)), dtype=torch.float32)
    mask = torch.tensor(rng.random((1, 1, height, width)) < 0.2, dtype=torch.float32)
    return model.network_input(image, mask)


@torch.no_grad()
def test_tiles_give_the_whole_image_computation() -> None:
    for config in (TINY, ModelConfig(), ModelConfig(spiking_layers=2)):
        model = tiny_model(config=config)
        x = _input(model, 203, 170)  # sides that are no multiple of the tile or of the strides
        assert torch.allclose(tiled(model, x, block=48), model.from_input(x), atol=1e-5), config


def test_the_float_model_never_sees_more_than_a_tile_and_its_halo(monkeypatch: object) -> None:
    model = tiny_model(config=ModelConfig())
    seen: list[tuple[int, int]] = []
    whole = model.from_input

    def recorded(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        seen.append(tuple(x.shape[-2:]))
        return whole(x, generator)

    model.from_input = recorded  # type: ignore[method-assign]
    progress: list[tuple[int, int]] = []
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (700, 600, 3), dtype=np.uint8)
    mask = np.zeros((700, 600), bool)
    mask[300:420, 200:330] = True
    out = scnn_inpainter(model, progress=lambda done, total: progress.append((done, total)))(image, mask)
    halo = spiking_halo(model.config) + host_halo(model.config)
    assert len(seen) == 9 and max(max(s) for s in seen) <= EVAL_BLOCK + 2 * (halo + model.config.size_multiple)
    assert progress[-1] == (9, 9) and len(progress) == 9
    assert out.shape == image.shape and np.array_equal(out[~mask], image[~mask])
