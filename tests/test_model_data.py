"""The SC-NN model, its data and its training loop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from norse.torch.functional.lif import LIFFeedForwardState, lif_feed_forward_step
from PIL import Image

from neurodeploy.inpainter.checkpoint import load_model
from neurodeploy.inpainter.data import (
    BUILTIN_VAL,
    PHOTO_MASKS,
    EvalSet,
    ImageFolder,
    MaskSpec,
    WholePhotoSet,
    builtin_paths,
    random_mask,
)
from neurodeploy.inpainter.holes import smooth_fill
from neurodeploy.inpainter.model import HybridInpainter, LIFConfig, ModelConfig
from neurodeploy.inpainter.train import hole_mse, training_loss

from .conftest import TINY, run_cli, tiny_model


def test_lif_unrolling_matches_norse_functional_step_by_hand() -> None:
    model = tiny_model()
    torch.manual_seed(1)
    image, mask = torch.rand(2, 3, 9, 11), (torch.rand(2, 1, 9, 11) < 0.3).float()
    spikes = model.spikes(image, mask)
    current = model.snn.layers[0].conv(model.network_input(image, mask))
    p = TINY.lif.norse_parameters()
    state = LIFFeedForwardState(v=torch.zeros_like(current), i=torch.zeros_like(current))
    by_hand = []
    for _ in range(TINY.timesteps):
        z, state = lif_feed_forward_step(current, state, p, dt=TINY.lif.dt)
        by_hand.append(z)
    assert spikes.shape == (TINY.timesteps, 2, TINY.snn_channels, 9, 11)
    assert torch.equal(spikes, torch.stack(by_hand))
    assert 0 < float(spikes.detach().mean()) < 1


def test_poisson_encoding_is_seeded() -> None:
    config = ModelConfig(**{**TINY.to_dict(), "encoding": "poisson"})
    model = HybridInpainter(config).eval()
    image, mask = torch.rand(1, 3, 8, 8), torch.zeros(1, 1, 8, 8)
    a = model.spikes(image, mask, torch.Generator().manual_seed(3))
    b = model.spikes(image, mask, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_model_config_round_trips_through_json() -> None:
    config = ModelConfig(snn_channels=5, cnn_dilations=(1, 1, 2, 2, 1), encoding="poisson",
                         lif=LIFConfig(tau_mem_inv=300.0))
    assert ModelConfig.from_json(config.to_json()) == config
    with pytest.raises(ValueError):
        ModelConfig.from_dict({**config.to_dict(), "bogus": 1})


def test_mask_protocol_is_deterministic_and_respects_the_hole_ratio() -> None:
    spec = MaskSpec(min_ratio=0.05, max_ratio=0.25)
    first = [random_mask(np.random.default_rng([7, i]), 96, 80, spec) for i in range(12)]
    again = [random_mask(np.random.default_rng([7, i]), 96, 80, spec) for i in range(12)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert all(0.05 * 0.8 <= m.mean() <= 0.25 for m in first)
    evalset = EvalSet(builtin_paths("val"), crop=64)
    assert np.array_equal(evalset[3].mask, EvalSet(builtin_paths("val"), crop=64)[3].mask)
    assert len(evalset) == 16


def test_unreadable_file_is_skipped_with_a_counted_warning(tmp_path: Path) -> None:
    folder = tmp_path / "photos" / "nested"
    folder.mkdir(parents=True)
    for i in range(2):
        Image.fromarray(np.full((40, 50, 3), 40 * i, np.uint8)).save(folder / f"ok{i}.png")
    Image.fromarray(np.full((40, 50), 7, np.uint16)).save(folder / "deep.png")  # 16-bit grayscale
    Image.fromarray(np.full((40, 50, 4), 9, np.uint8), "RGBA").save(folder / "alpha.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.warns(UserWarning, match="skipped 1 unreadable image file"):
        data = ImageFolder(sorted((tmp_path / "photos").rglob("*.png")), crop=32)
    assert data.skipped == 1 and len(data.paths) == 4
    image, mask = data[0]
    assert image.shape == (3, 32, 32) and mask.shape == (1, 32, 32)


def test_empty_folder_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = run_cli("train", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "m.pt"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "holds no images" in result.stderr
    assert not (tmp_path / "m.pt").exists()


def test_mask_of_the_wrong_size_is_a_one_line_error(tmp_path: Path, tiny_checkpoint: Path) -> None:
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "img.png")
    Image.fromarray(np.zeros((21, 30), np.uint8)).save(tmp_path / "mask.png")
    result = run_cli("evaluate", str(tiny_checkpoint), "--image", str(tmp_path / "img.png"),
                     "--mask", str(tmp_path / "mask.png"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "mask" in result.stderr and "30x21" in result.stderr and result.stderr.strip().count("\n") == 0


def test_train_writes_a_safe_checkpoint_and_resume_continues(tmp_path: Path) -> None:
    config = tmp_path / "tiny.json"
    config.write_text(TINY.to_json())
    out = tmp_path / "m.pt"
    args = ["train", "--out", str(out), "--config", str(config), "--timesteps", "4", "--crop", "32",
            "--samples-per-epoch", "8", "--batch-size", "4", "--device", "cpu"]
    first = run_cli(*args, "--epochs", "1")
    assert first.returncode == 0, first.stderr
    data = torch.load(out, weights_only=True)
    assert data["epoch"] == 1 and len(data["val_losses"]) == 1
    resumed = run_cli(*args, "--epochs", "2", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    straight = run_cli(*[a if a != str(out) else str(tmp_path / "s.pt") for a in args], "--epochs", "2")
    assert straight.returncode == 0, straight.stderr
    a, _ = load_model(out)
    b, _ = load_model(tmp_path / "s.pt")
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name


def test_torchrun_two_cpu_processes_hold_identical_weights(tmp_path: Path) -> None:
    config = tmp_path / "tiny.json"
    config.write_text(TINY.to_json())
    out = tmp_path / "ddp.pt"
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [str(torchrun), "--nproc_per_node", "2", "--master_port", "29517", "-m", "neurodeploy", "train",
         "--out", str(out), "--config", str(config), "--timesteps", "4", "--crop", "32",
         "--samples-per-epoch", "16", "--batch-size", "4", "--epochs", "1", "--device", "cpu"],
        capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    ckpt = torch.load(out, weights_only=True)
    checksums = ckpt["rank_checksums"]
    assert len(checksums) == 2 and checksums[0] == checksums[1]
    assert json.loads(json.dumps(ckpt["train_config"]))["batch_size"] == 4


def test_smooth_fill_solves_laplace_in_the_hole_and_keeps_known_pixels() -> None:
    # a linear ramp is harmonic: the fill must reproduce it inside a large hole
    ys, xs = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 80), indexing="ij")
    ramp = (0.3 * ys + 0.6 * xs)[None, None].expand(1, 3, 64, 80)
    known = torch.ones(1, 1, 64, 80)
    known[..., 10:50, 20:70] = 0.0
    filled = smooth_fill(ramp * known, known)
    assert torch.equal(filled * known, ramp * known)
    assert float((filled - ramp).abs().max()) < 0.02
    # maximum principle: no value outside the known range; nothing known -> zeros
    noise = torch.rand(2, 3, 33, 17, generator=torch.Generator().manual_seed(0))
    holes = (torch.rand(2, 1, 33, 17, generator=torch.Generator().manual_seed(1)) > 0.7).float()
    out = smooth_fill(noise * holes, holes)
    assert float(out.min()) >= 0.0 and float(out.max()) <= float(noise.max())
    assert torch.equal(smooth_fill(noise, torch.zeros(2, 1, 33, 17)), torch.zeros_like(noise))


def test_smooth_fill_of_odd_sides_keeps_a_gradient() -> None:
    # odd sides at every pyramid level (97 -> 49 -> 25 ...): before the levels were aligned, the
    # fill of this ramp was 16 grey levels off; a quarter of the image missing, in its middle
    ys, xs = torch.meshgrid(torch.linspace(0, 1, 97), torch.linspace(0, 1, 151), indexing="ij")
    ramp = (0.2 + 0.3 * ys + 0.4 * xs)[None, None]
    known = torch.ones(1, 1, 97, 151)
    known[..., 24:73, 38:113] = 0.0
    assert float((smooth_fill(ramp * known, known) - ramp).abs().max()) < 2 / 255


def test_whole_photo_protocol_is_seeded_full_size_and_draws_large_holes_of_each_kind() -> None:
    photos = WholePhotoSet(builtin_paths("val"))
    again = WholePhotoSet(builtin_paths("val"))
    assert len(photos) == 2 * len(builtin_paths("val"))
    for i in (0, 1, 5):
        sample, same = photos[i], again[i]
        assert np.array_equal(sample.mask, same.mask) and np.array_equal(sample.image, same.image)
        assert sample.image.shape[:2] == sample.mask.shape and min(sample.mask.shape) >= 400  # not a crop
        assert PHOTO_MASKS.min_ratio <= sample.mask.mean() <= PHOTO_MASKS.max_ratio
    assert photos[0].name.endswith("/rectangles") and photos[1].name.endswith("/strokes")
    assert not np.array_equal(WholePhotoSet(builtin_paths("val"), seed=1)[0].mask, photos[0].mask)


def test_residual_output_is_the_fill_plus_the_host_correction_through_the_bundle(tmp_path: Path) -> None:
    from neurodeploy.inpainter.checkpoint import save_checkpoint
    from neurodeploy.inpainter.conversion import convert
    from neurodeploy.inpainter.evaluate import to_uint8
    from neurodeploy.inpainter.holes import composite
    from neurodeploy.inpainter.simulator import SimulationInput, Simulator

    config = ModelConfig(**{**TINY.to_dict(), "hole_fill": "smooth", "residual": True, "final_activation": "none"})
    model = tiny_model(config=config)
    with torch.no_grad():  # no correction: the deployed output must be exactly the fill
        model.cnn.layers[-1][0].weight.zero_()
        model.cnn.layers[-1][0].bias.zero_()
    save_checkpoint(tmp_path / "m.pt", model, epoch=0, train_losses=[], val_losses=[])
    bundle = convert(tmp_path / "m.pt", tmp_path / "b", tile=24)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)
    mask = np.zeros((40, 36), dtype=bool)
    mask[8:30, 5:25] = True
    img, msk = torch.from_numpy(image).permute(2, 0, 1).float() / 255.0, torch.from_numpy(mask)[None].float()
    fill = model.network_input(img[None], msk[None])[0, :3]
    with Simulator(bundle, "reference") as sim:
        result = sim.run(SimulationInput("x", image, mask))
    assert np.array_equal(result.output, to_uint8(composite(img, fill, msk)))
    assert result.fidelity["psnr_vs_float"] == 100.0


@pytest.mark.parametrize("spiking_layers", [0, 1, 2, 3])
def test_spiking_layers_turn_the_first_convs_into_lif_convs(spiking_layers: int) -> None:
    config = ModelConfig(**{**TINY.to_dict(), "cnn_dilations": (1, 1, 1, 1, 1), "spiking_layers": spiking_layers})
    torch.manual_seed(0)
    model = HybridInpainter(config)
    image, mask = torch.rand(2, 3, 18, 22), torch.zeros(2, 1, 18, 22)
    mask[:, :, 4:9, 5:12] = 1.0
    assert model(image, mask).shape == (2, 3, 18, 22)  # sides not divisible by the strides: padded, cropped
    convs = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert len(convs) == 6  # the same six layers whatever runs on the chip
    if spiking_layers == 0:
        assert model.snn is None
        with pytest.raises(ValueError, match="no spikes"):
            model.spikes(image, mask)
        return
    assert len(model.snn.layers) == spiking_layers
    every = model.snn(model.encode(model.padded(model.network_input(image, mask))), every_layer=True)
    stride = config.spiking_stride
    assert every[-1].shape == (TINY.timesteps, 2, convs[spiking_layers - 1].out_channels,
                                -(-18 // stride), -(-22 // stride))
    assert all(set(torch.unique(s).tolist()) <= {0.0, 1.0} for s in every)


def test_a_lif_conv_must_be_a_plain_conv() -> None:
    with pytest.raises(ValueError, match="conv layer 3 cannot be a LIF convolution"):
        ModelConfig(cnn_dilations=(1, 1, 2, 1, 1), spiking_layers=4)


def test_checkpoints_from_before_the_stack_load(tmp_path: Path) -> None:
    model = HybridInpainter(TINY)
    state = {("snn.conv." + k[len("snn.layers.0.conv."):] if k.startswith("snn.layers.0.conv.") else k): v
             for k, v in model.state_dict().items()}
    assert "snn.conv.weight" in state
    ckpt = {"format": "neurodeploy-checkpoint", "version": 1, "model_config": TINY.to_dict(), "state_dict": state}
    from neurodeploy.inpainter.checkpoint import model_from_checkpoint

    loaded = model_from_checkpoint(ckpt)
    assert torch.equal(loaded.snn.layers[0].conv.weight, model.snn.layers[0].conv.weight)


def test_evaluate_scores_the_deployed_model_beside_the_float_one_and_the_classical_methods(
        tmp_path: Path, tiny_checkpoint: Path) -> None:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)).save(tmp_path / "img.png")
    Image.fromarray(random_mask(rng, 70, 90, PHOTO_MASKS).astype(np.uint8) * 255).save(tmp_path / "mask.png")
    result = run_cli("evaluate", str(tiny_checkpoint), "--image", str(tmp_path / "img.png"),
                     "--mask", str(tmp_path / "mask.png"), "--json", str(tmp_path / "eval.json"))
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "eval.json").read_text())["images"]
    assert set(report["methods"]) == {"scnn", "deployed", "telea", "ns", "biharmonic", "harmonic"}
    assert " deployed " in result.stdout
    wrong = run_cli("evaluate", str(tiny_checkpoint), "--protocol", "tiles")
    assert wrong.returncode == 2 and "--protocol" in wrong.stderr and wrong.stderr.strip().count("\n") == 0


def test_train_on_a_folder_validates_on_the_builtin_photos_with_the_hole_loss(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):  # 12 images: a folder split would hold out the 10th for validation
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(folder / f"p{i:02d}.png")
    config = tmp_path / "tiny.json"
    config.write_text(TINY.to_json())
    out = tmp_path / "m.pt"
    result = run_cli("train", "--out", str(out), "--config", str(config), "--timesteps", "4", "--crop", "32",
                     "--samples-per-epoch", "4", "--batch-size", "4", "--device", "cpu", "--epochs", "1",
                     "--data", str(folder), "--val-data", "builtin", "--loss", "hole")
    assert result.returncode == 0, result.stderr
    data = torch.load(out, weights_only=True)
    assert data["data"]["train_images"] == 12 and data["data"]["val_images"] == len(BUILTIN_VAL)
    assert data["data"]["val_source"] == "builtin" and data["train_config"]["loss"] == "hole"
    bad = run_cli("train", "--out", str(tmp_path / "b.pt"), "--loss", "l1")
    assert bad.returncode == 2 and "unknown loss 'l1'" in bad.stderr and not (tmp_path / "b.pt").exists()


def test_the_hole_losses_weigh_each_crop_by_its_own_hole() -> None:
    image = torch.zeros(2, 3, 4, 4)
    prediction = torch.zeros(2, 3, 4, 4)
    mask = torch.zeros(2, 1, 4, 4)
    mask[0, :, :2, :2] = 1  # a hole of 4 pixels, off by 0.1
    mask[1, :, :, :] = 1  # a hole of 16 pixels, off by 0.2
    prediction[0] = 0.1
    prediction[1] = 0.2
    assert torch.allclose(hole_mse(image, prediction, mask), torch.tensor([0.01, 0.04]))
    assert torch.isclose(training_loss(image, prediction, mask, "hole"), torch.tensor(0.025))
    # minus the mean hole PSNR: (10 log10 0.01 + 10 log10 0.04) / 2 = (-20 - 13.979) / 2
    assert torch.isclose(training_loss(image, prediction, mask, "psnr"), torch.tensor(-16.9897), atol=1e-3)
    # the paper's whole-image MSE: (4 x 0.01 + 16 x 0.04) / 32 pixels
    assert torch.isclose(training_loss(image, prediction, mask, "image"), torch.tensor((0.04 + 0.64) / 32))
