"""Converting the same input twice writes the same bytes, in every file of the bundle, manifest included.

Cases: the shipped inpainter checkpoint, and a Sinabs conv net read from a NIR
file with a middle neuron kept on the host (so the bundle holds ``host.pt``,
whose zip record names once came from a random temporary file name).
"""

from __future__ import annotations

import time
from pathlib import Path

import nir
import pytest

from neurodeploy.inpainter.conversion import convert

from .test_chip_segments import _sinabs_net
from .test_shipped import SHIPPED


def _files(bundle: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(bundle.iterdir())}


def _assert_same_bytes(first: Path, second: Path) -> None:
    a, b = _files(first), _files(second)
    assert sorted(a) == sorted(b)
    assert "manifest.json" in a and "host.pt" in a
    differ = [name for name in a if a[name] != b[name]]
    assert not differ, f"files whose bytes differ between two conversions: {differ}"


def _nir_file(tmp_path: Path) -> Path:
    _, graph = _sinabs_net()
    graph.infer_types()
    path = tmp_path / "sinabs.nir"
    nir.write(path, graph)
    return path


@pytest.mark.parametrize("case", ["shipped", "nir_graph"])
def test_two_conversions_of_one_input_write_byte_identical_bundles(tmp_path: Path, case: str) -> None:
    source = SHIPPED if case == "shipped" else _nir_file(tmp_path)
    options = {} if case == "shipped" else {"host": ("4",)}
    first = convert(source, tmp_path / "first" / "model.bundle", **options).path
    time.sleep(1.1)  # file formats that stamp the time (HDF5 can) would differ from here on
    second = convert(source, tmp_path / "second" / "model.bundle", **options).path
    _assert_same_bytes(first, second)
