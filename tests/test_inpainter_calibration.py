"""``convert model.pt --calibrate PHOTOS``: the inpainter's spiking stack calibrated on seeded windows of photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from neurodeploy.bundle.format import Bundle
from neurodeploy.errors import UserError
from neurodeploy.inpainter.conversion import CALIBRATION_TILE, CALIBRATION_TILES, convert
from neurodeploy.inpainter.simulation import simulate
from neurodeploy.inpainter.simulator import SimulationInput

from .conftest import run_cli


def _photos(folder: Path, count: int = 2) -> Path:
    """``count`` small smooth colour images (random noise would leave no structure to calibrate on)."""
    folder.mkdir()
    rng = np.random.default_rng(7)
    for i in range(count):
        base = rng.integers(0, 255, (5, 6, 3), dtype=np.uint8)
        Image.fromarray(base).resize((48, 40), Image.BICUBIC).save(folder / f"photo{i}.png")
    return folder


@pytest.mark.parametrize("tile", [24, 48])  # 48: calibrated on windows of a smaller tile (CALIBRATION_TILE)
def test_calibrate_on_photos_records_it_never_loses_f1_and_simulates_bit_exact(tile: int, tmp_path: Path,
                                                                               tiny_checkpoint: Path) -> None:
    photos = _photos(tmp_path / "photos")
    static = convert(tiny_checkpoint, tmp_path / "static", tile=tile, fidelity_target=0)  # probed, kept static
    tuned = convert(tiny_checkpoint, tmp_path / "tuned", tile=tile, calibrate=photos)
    (kept,) = static.manifest["calibration"]["layers"]
    assert kept["scale"] == kept["static_scale"] and kept["candidates"] == 1

    record = tuned.manifest["calibration"]
    samples = record["samples"]
    assert [image["file"] for image in samples["images"]] == ["photo0.png", "photo1.png"]
    assert samples["tiles"] == CALIBRATION_TILES and samples["shape"][:3] == [CALIBRATION_TILES, 4, 4]
    window = min(tile, CALIBRATION_TILE) + 2 * tuned.manifest["tile"]["halo"]
    assert samples["shape"][3:] == [window, window]
    (layer,) = record["layers"]
    assert layer["spike_f1"] >= layer["spike_f1_static"]
    assert layer["static_scale"] == static.manifest["segments"][0]["layers"][0]["quantization"]["weight_scale"]
    assert layer["scale"] != layer["static_scale"]  # this case moves the scale, so the bit-exact check below bites
    (chip_layer,) = tuned.manifest["segments"][0]["layers"]
    assert chip_layer["quantization"]["weight_scale"] == layer["scale"]
    assert chip_layer["input_shape"][1:] == [tile + 2 * tuned.manifest["tile"]["halo"]] * 2

    image = np.asarray(Image.open(photos / "photo0.png"))[:30, :40]
    mask = np.zeros(image.shape[:2], bool)
    mask[8:20, 10:28] = True
    item = [SimulationInput("a", image, mask)]
    reference = simulate(Bundle.load(tuned.path), item, backend="reference", fidelity="none")
    lava = simulate(Bundle.load(tuned.path), item, backend="lava", fidelity="all")
    assert lava.results[0]["fidelity"]["exact_vs_reference"] is True
    assert np.array_equal(lava.outputs["a"], reference.outputs["a"])


@pytest.mark.parametrize("case", ["missing", "empty", "unreadable"])
def test_bad_calibration_photos_are_one_line_and_exit_2(case: str, tmp_path: Path, tiny_checkpoint: Path) -> None:
    target = {"missing": tmp_path / "nowhere", "empty": tmp_path / "empty", "unreadable": tmp_path / "bad"}[case]
    if case == "empty":
        target.mkdir()
        (target / "notes.txt").write_text("no images here")
    if case == "unreadable":
        target.mkdir()
        (target / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "b"
    run = run_cli("convert", str(tiny_checkpoint), "--tile", "24", "--calibrate", str(target), "-o", str(out))
    assert run.returncode == 2, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert not out.exists()


def test_the_default_conversion_probes_each_layer_on_the_builtin_photos_and_searches_below_the_target(
        tmp_path: Path, tiny_checkpoint: Path) -> None:
    """Without --calibrate a layer keeps its static scale where its spike F1 on the probe reaches the target,
    and is calibrated where it does not; the manifest says which, with the F1 measured."""
    default = convert(tiny_checkpoint, tmp_path / "default", tile=24)
    record = default.manifest["calibration"]
    assert record["samples"]["file"] == "builtin training photos"
    assert "below spike F1 0.95" in record["samples"]["searched"]
    (probed,) = record["layers"]
    assert probed["spike_f1_static"] >= 0.95 and probed["candidates"] == 1 and probed["scale"] == probed["static_scale"]

    strict = convert(tiny_checkpoint, tmp_path / "strict", tile=24, fidelity_target=probed["spike_f1_static"] + 1e-6)
    (searched,) = strict.manifest["calibration"]["layers"]
    assert searched["spike_f1_static"] == probed["spike_f1_static"] and searched["candidates"] > 1
    assert searched["spike_f1"] >= searched["spike_f1_static"]
    with pytest.raises(UserError, match="not a spike F1"):
        convert(tiny_checkpoint, tmp_path / "bad", tile=24, fidelity_target=1.5)
    assert not (tmp_path / "bad").exists()
