"""The training path on a CUDA GPU. Skipped where torch sees none; `make test` on a GPU machine runs it."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from neurodeploy.inpainter.checkpoint import load_model
from neurodeploy.inpainter.holes import network_input
from neurodeploy.inpainter.model import ModelConfig

from .conftest import TINY, run_cli, tiny_model
from .test_chip_segments import mlp_case, recurrent_case, sinabs_case  # noqa: F401  (fixtures)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA GPU")

SMOOTH = ModelConfig(**{**TINY.to_dict(), "hole_fill": "smooth", "residual": True, "final_activation": "none"})


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    image = torch.rand((2, 3, 48, 40), generator=generator)
    mask = torch.zeros((2, 1, 48, 40))
    mask[:, :, 10:30, 8:25] = 1.0
    return image, mask


def test_the_model_on_cuda_computes_what_it_computes_on_the_cpu() -> None:
    image, mask = _batch()
    model = tiny_model(config=SMOOTH)
    gpu = copy.deepcopy(model).cuda()
    with torch.no_grad():
        fill = network_input(image, mask, True, "smooth")
        gpu_fill = network_input(image.cuda(), mask.cuda(), True, "smooth").cpu()
        spikes, gpu_spikes = model.spikes(image, mask), gpu.spikes(image.cuda(), mask.cuda()).cpu()
        out, gpu_out = model(image, mask), gpu(image.cuda(), mask.cuda()).cpu()
    # the last bit may differ (CUDA divides by a scalar through its reciprocal); the 8-bit
    # rounding may flip a value sitting on a half step; nothing else may differ
    assert (fill - gpu_fill).abs().max() <= 1 / 255 + 1e-6
    assert float(((fill - gpu_fill).abs() > 1e-6).float().mean()) < 1e-3
    assert spikes.sum() > 0 and float((spikes == gpu_spikes).float().mean()) >= 0.999
    assert float((out - gpu_out).abs().mean()) < 1e-3


def _train(tmp_path: Path, out: Path, *extra: str) -> None:
    config = tmp_path / "smooth.json"
    config.write_text(SMOOTH.to_json())
    result = run_cli("train", "--out", str(out), "--config", str(config), "--crop", "32", "--samples-per-epoch", "8",
                     "--batch-size", "4", "--device", "cuda", *extra)
    assert result.returncode == 0, result.stderr[-2000:]


def test_training_on_cuda_is_deterministic_resumes_exactly_and_loads_on_the_cpu(tmp_path: Path) -> None:
    _train(tmp_path, tmp_path / "r.pt", "--epochs", "1")
    _train(tmp_path, tmp_path / "r.pt", "--epochs", "2", "--resume")
    _train(tmp_path, tmp_path / "s.pt", "--epochs", "2")
    resumed, _ = load_model(tmp_path / "r.pt")
    straight, _ = load_model(tmp_path / "s.pt")
    for (name, x), (_, y) in zip(resumed.state_dict().items(), straight.state_dict().items(), strict=True):
        assert x.device.type == "cpu" and torch.isfinite(x).all(), name
        assert torch.equal(x, y), name


# -- the torch backend on the GPU: bit-exact with the reference (issue 17) ---------------------------

@pytest.mark.parametrize("case", ["sinabs_case", "mlp_case", "recurrent_case"])
def test_the_torch_backend_on_cuda_is_bit_exact_with_the_reference(case: str, request: pytest.FixtureRequest) -> None:
    import numpy as np

    from neurodeploy.chip.quantize import fixed_point
    from neurodeploy.chip.reference import run_segment_batch
    from neurodeploy.runtime import torch_backend

    from .test_chip_segments import _chip

    _, graph, x, _, dt = request.getfixturevalue(case)
    quantized = fixed_point(_chip(graph, dt)[2])
    want = run_segment_batch(quantized, x)
    got = torch_backend.run_segment_batch(quantized, x, device="cuda")
    assert sum(int(w.sum()) for w in want) > 0
    for w, g in zip(want, got, strict=True):
        assert np.array_equal(w, g)


def test_the_inpainter_on_cuda_equals_the_reference(tiny_bundle: Path) -> None:
    import numpy as np

    from neurodeploy.bundle.format import Bundle
    from neurodeploy.inpainter.data import MaskSpec, random_mask
    from neurodeploy.inpainter.simulation import simulate
    from neurodeploy.inpainter.simulator import SimulationInput

    rng = np.random.default_rng(2)
    items = [SimulationInput("a", rng.integers(0, 256, (70, 53, 3), dtype=np.uint8), random_mask(rng, 70, 53,
                                                                                                 MaskSpec()))]
    bundle = Bundle.load(tiny_bundle)
    ref = simulate(bundle, items, backend="reference")
    gpu = simulate(bundle, items, backend="torch", device="cuda")
    assert gpu.results[0]["fidelity"]["exact_vs_reference"] is True
    assert gpu.results[0]["spikes"] == ref.results[0]["spikes"]
    assert np.array_equal(gpu.outputs["a"], ref.outputs["a"])
