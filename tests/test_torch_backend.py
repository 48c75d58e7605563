"""The torch backend equals the reference bit for bit: the test networks' chip segments, the inpainter, edge cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neurodeploy import torch_backend
from neurodeploy.converters.netx_io import read_segment, write_segment
from neurodeploy.errors import UserError
from neurodeploy.reference import run_segment_batch

from .test_chip_segments import _chip, mlp_case, recurrent_case, sinabs_case  # noqa: F401  (fixtures)


def _equal(want: list[np.ndarray], got: list[np.ndarray]) -> None:
    assert len(want) == len(got)
    for w, g in zip(want, got, strict=True):
        assert g.dtype == np.uint8 and g.shape == w.shape
        assert np.array_equal(w, g)


@pytest.mark.parametrize("case", ["sinabs_case", "mlp_case", "recurrent_case"])
def test_torch_runs_each_test_network_bit_exact_with_the_reference(case: str, tmp_path: Path,
                                                                   request: pytest.FixtureRequest) -> None:
    """Quantized layers and the same layers read back from the netx file; every layer's spikes."""
    _, graph, x, _, dt = request.getfixturevalue(case)
    _, _, quantized = _chip(graph, dt)
    want = run_segment_batch(quantized, x)
    assert sum(int(w.sum()) for w in want) > 0
    _equal(want, torch_backend.run_segment_batch(quantized, x))
    path = tmp_path / "segment.net"
    write_segment(path, quantized)
    _equal(want, torch_backend.run_segment_batch(read_segment(path), x))


def test_graded_payloads_wrapping_currents_biases_and_constant_frames(request: pytest.FixtureRequest) -> None:
    """8-bit graded input, large weights (the 24-bit wrap and the voltage clip happen), frames equal over time."""
    import dataclasses

    _, graph, _, _, dt = request.getfixturevalue("sinabs_case")
    _, _, quantized = _chip(graph, dt)
    rng = np.random.default_rng(0)
    first = quantized[0]
    loud = dataclasses.replace(first, weight=np.full_like(first.weight, 127), i_decay=1, v_decay=0,
                               vth_mant=1 << 16, payload_max=255)
    layers = (loud, *quantized[1:])
    frames = rng.integers(0, 256, (3, 6, *first.input_shape)).astype(np.uint8)
    frames[1] = frames[1, :1]  # sample 1: the same frame every step
    want = run_segment_batch(layers, frames)
    assert want[0].any() and not want[0].all()
    _equal(want, torch_backend.run_segment_batch(layers, frames))


def test_the_inpainter_runs_bit_exact_on_torch(tiny_bundle: Path) -> None:
    """The inpainter's spiking stage as batches of tiles: spikes and images equal to the reference backend's."""
    from neurodeploy.bundle import Bundle
    from neurodeploy.data import MaskSpec, random_mask
    from neurodeploy.simulation import SimulationInput, simulate

    bundle = Bundle.load(tiny_bundle)
    rng = np.random.default_rng(1)
    items = [SimulationInput(f"img{i}", rng.integers(0, 256, (70, 53, 3), dtype=np.uint8),
                             random_mask(rng, 70, 53, MaskSpec())) for i in range(2)]
    runs = {backend: simulate(bundle, items, backend=backend, keep_spikes=True)  # type: ignore[arg-type]
            for backend in ("reference", "torch")}
    for item in items:
        assert np.array_equal(runs["reference"].outputs[item.name], runs["torch"].outputs[item.name])
    for ref, tch in zip(runs["reference"].results, runs["torch"].results, strict=True):
        assert tch["fidelity"]["exact_vs_reference"] is True
        assert tch["spikes"] == ref["spikes"] and ref["spikes"]["total"] > 0
        assert tch["fidelity"] == ref["fidelity"]


def test_an_unknown_or_missing_device_is_a_user_error() -> None:
    with pytest.raises(UserError, match="unknown device"):
        torch_backend.check_device("tpu")
    if not __import__("torch").cuda.is_available():
        with pytest.raises(UserError, match="no CUDA GPU"):
            torch_backend.check_device("cuda")


def test_torch_equals_lava_on_the_inpainter(tiny_bundle: Path) -> None:
    """Once against Lava itself (neurodeploy's segment process): the same spikes and the same image."""
    from neurodeploy.bundle import Bundle
    from neurodeploy.data import MaskSpec, random_mask
    from neurodeploy.simulation import SimulationInput, simulate

    rng = np.random.default_rng(3)
    items = [SimulationInput("a", rng.integers(0, 256, (40, 30, 3), dtype=np.uint8), random_mask(rng, 40, 30,
                                                                                                 MaskSpec()))]
    bundle = Bundle.load(tiny_bundle)
    spikes: dict[str, np.ndarray] = {}
    runs = {backend: simulate(bundle, items, backend=backend, fidelity=False, keep_spikes=True,  # type: ignore
                              on_result=lambda r, b=backend: spikes.__setitem__(b, r.spikes.numpy()))
            for backend in ("lava", "torch")}
    assert spikes["lava"].any() and np.array_equal(spikes["lava"], spikes["torch"])
    assert np.array_equal(runs["lava"].outputs["a"], runs["torch"].outputs["a"])
