"""Issue 33, item 5: ``evaluate`` runs the float SC-NN on tiles with the halo of its receptive field, as
``simulate`` runs the deployed one: memory bounded by the tile (a 4.9 MP photo peaked at 12.3 GB whole), the
same pixels as the whole-image computation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from neurodeploy.inpainter.evaluate import (
    EVAL_BLOCK,
    MethodSkippedError,
    inpaint_biharmonic,
    largest_hole,
    scnn_inpainter,
    tiled,
)
from neurodeploy.inpainter.model import HybridInpainter, ModelConfig, host_halo, spiking_halo

from .conftest import TINY, run_cli, tiny_model


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


def test_biharmonic_is_left_out_above_its_hole_limit_with_the_reason(tmp_path: Path, tiny_checkpoint: Path) -> None:
    """Issue 33, item 5: scikit-image's biharmonic solve grows faster than the hole (6.5 GiB for a 5 MP
    photo's hole), so above ``--biharmonic-limit`` pixels it is left out of that image, said in the table,
    the JSON and the means, instead of taking the machine's memory."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    small, large = np.zeros((60, 80), bool), np.zeros((60, 80), bool)
    small[10:20, 10:20] = True  # 100 px
    large[10:40, 10:50] = True  # 1,200 px
    for name, mask in (("small", small), ("large", large)):
        Image.fromarray(image).save(tmp_path / f"{name}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / f"{name}_mask.png")
    result = run_cli("evaluate", str(tiny_checkpoint), "--no-deployed", "--biharmonic-limit", "500",
                     "--image", str(tmp_path / "small.png"), "--mask", str(tmp_path / "small_mask.png"),
                     "--image", str(tmp_path / "large.png"), "--mask", str(tmp_path / "large_mask.png"),
                     "--json", str(tmp_path / "eval.json"))
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "eval.json").read_text())["images"]
    assert [i["name"] for i in report["skipped"]["biharmonic"]] == ["large"]
    assert "1,200 px" in report["per_image"][1]["biharmonic"]["skipped"]
    assert report["per_image"][0]["biharmonic"]["psnr_hole"] == report["methods"]["biharmonic"]["psnr_hole"]
    assert "biharmonic (1 of 2)" in result.stdout and "biharmonic left out of 1 image (large)" in result.stdout
    assert set(report["skipped"]) == {"biharmonic"}  # no other method is limited


def test_the_largest_hole_is_counted_as_scikit_image_separates_holes() -> None:
    mask = np.zeros((30, 30), bool)
    mask[2:6, 2:6] = True  # 16 px
    mask[2:6, 7:10] = True  # 12 px, one pixel apart: scikit-image solves them as one region
    mask[20:25, 20:25] = True  # 25 px, apart
    assert largest_hole(mask) == 28
    assert largest_hole(np.zeros((4, 4), bool)) == 0
    image = np.random.default_rng(0).integers(0, 256, (30, 30, 3), dtype=np.uint8)
    with pytest.raises(MethodSkippedError, match="28 px"):
        inpaint_biharmonic(image, mask, limit=27)
    assert np.array_equal(inpaint_biharmonic(image, mask, limit=28), inpaint_biharmonic(image, mask, limit=0))
