"""The command line's PNG writer: every image written, in order, and a failed write is not lost."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neurodeploy.io import PngWriter, read_image


def test_every_image_is_written_and_a_failed_write_raises(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (20 + i, 30, 3), dtype=np.uint8) for i in range(5)]
    with PngWriter(backlog=2) as png:
        for i, image in enumerate(images):
            png.write(tmp_path / f"{i}.png", image)
            assert len(png.pending) <= 2  # memory bounded by the backlog, not by the number of images
    assert all(np.array_equal(read_image(tmp_path / f"{i}.png"), image) for i, image in enumerate(images))
    (tmp_path / "a file").write_text("not a folder")
    with pytest.raises(OSError), PngWriter() as png:  # raised on leaving, though the write ran in the thread
        png.write(tmp_path / "a file" / "x.png", images[0])
