"""The spike bridge: tiling geometry and backend selection (no Lava run needed)."""

from __future__ import annotations

import numpy as np
import pytest

from neurodeploy.errors import UserError
from neurodeploy.inpainter.tiling import TileGrid
from neurodeploy.runtime.lava.lifecycle import select_run_config


@pytest.mark.parametrize(("height", "width", "tile", "halo"), [(10, 7, 4, 1), (8, 8, 8, 2), (5, 13, 3, 0)])
def test_tiles_cover_the_image_once_and_halos_read_the_neighbours(height: int, width: int, tile: int,
                                                                   halo: int) -> None:
    frames = np.random.default_rng(0).integers(1, 255, size=(2, 3, height, width))
    grid = TileGrid(height, width, tile, tile, halo)
    rebuilt = np.zeros_like(frames)
    for y, x in grid.corners():
        window = grid.window(frames, y, x)
        assert window.shape == (2, 3, tile + 2 * halo, tile + 2 * halo)
        padded = np.pad(frames, ((0, 0), (0, 0), (halo, halo + tile), (halo, halo + tile)))
        assert np.array_equal(window, padded[:, :, y:y + tile + 2 * halo, x:x + tile + 2 * halo])
        grid.place(rebuilt, window, y, x)
    assert np.array_equal(rebuilt, frames)


def test_loihi2_without_lava_loihi_is_a_one_line_error() -> None:
    with pytest.raises(UserError, match="lava-loihi"):
        select_run_config("loihi2", loihi_installed=False)


def test_loihi2_with_lava_loihi_selects_the_hardware_run_config() -> None:
    from lava.magma.core.run_configs import Loihi2HwCfg

    assert isinstance(select_run_config("loihi2", loihi_installed=True), Loihi2HwCfg)


def test_lava_backend_selects_fixed_point_simulation_with_streaming_io() -> None:
    from lava.magma.core.run_configs import Loihi2SimCfg

    from neurodeploy.runtime.lava.processes.io import PySpikeSinkModel, SpikeSink

    cfg = select_run_config("lava", models="stock")
    assert isinstance(cfg, Loihi2SimCfg) and cfg.select_tag == "fixed_pt"
    assert cfg.exception_proc_model_map[SpikeSink] is PySpikeSinkModel
    with pytest.raises(UserError):
        select_run_config("cuda")
