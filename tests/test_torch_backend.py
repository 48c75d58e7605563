"""The torch backend equals the reference bit for bit: the test networks' chip segments, the inpainter, edge cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neurodeploy.chip.quantize import fixed_point
from neurodeploy.chip.reference import run_segment_batch
from neurodeploy.converters.netx_in import read_segment
from neurodeploy.converters.netx_io import write_segment
from neurodeploy.errors import UserError
from neurodeploy.runtime import torch_backend

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
    quantized = fixed_point(_chip(graph, dt)[2])
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
    quantized = fixed_point(_chip(graph, dt)[2])
    rng = np.random.default_rng(0)
    first = quantized[0]
    loud = dataclasses.replace(first, weight=np.full_like(first.weight, 127), i_decay=1, v_decay=0,
                               vth_mant=1 << 16)
    layers = (loud, *quantized[1:])
    frames = rng.integers(0, 256, (3, 6, *first.input_shape)).astype(np.uint8)
    frames[1] = frames[1, :1]  # sample 1: the same frame every step
    want = run_segment_batch(layers, frames)
    assert want[0].any() and not want[0].all()
    _equal(want, torch_backend.run_segment_batch(layers, frames))


@pytest.mark.parametrize("steps", [1, 3, 8, 11])
@pytest.mark.parametrize(("v_decay", "vth"), [(0, 0), (1024, 1), (4095, 37), (1024, 26859), (17, (1 << 17) - 1)])
def test_constant_input_neurons_read_their_train_from_the_drive_table(
        steps: int, v_decay: int, vth: int, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The drive-table shortcut (same frame every step, current not kept) against the NumPy step loop.

    Drives from far below 0 to far above the threshold, biases of both signs, T up
    to 11 (past the 8 steps one byte packs), thresholds 0 and 1, a voltage that
    never decays and one that nearly empties; vth = 2^17 - 1 is past the
    shortcut's range (64·(vth + 1) reaches the 2^23 clip) and takes the step loop.
    """
    import dataclasses

    _, graph, _, _, dt = request.getfixturevalue("sinabs_case")
    quantized = fixed_point(_chip(graph, dt)[2])
    first = quantized[0]
    rng = np.random.default_rng(vth + v_decay + steps)
    fan_in = int(np.prod(first.weight.shape[1:]))
    top = max(1, min(127, -(-4 * (vth + 1) // (fan_in * 255))))  # drives up to about 4x the threshold
    weight = rng.integers(-top // 4, top + 1, first.weight.shape).astype(first.weight.dtype)
    reach = min(3 * vth + 5, 4095)  # bias mantissas fit 13 bits
    bias = rng.integers(-reach, reach + 1, first.output_shape[0]).astype(np.int32)
    layer = dataclasses.replace(first, weight=weight, bias=bias, i_decay=4096, v_decay=v_decay, vth_mant=vth)
    frames = np.repeat(rng.integers(0, 256, (4, 1, *first.input_shape)).astype(np.uint8), steps, axis=1)
    frames[0] //= 64  # small drives: most neurons between 0 and the threshold
    tables = []
    monkeypatch.setattr(torch_backend, "_drive_table_neurons",
                        lambda *a, f=torch_backend._drive_table_neurons: tables.append(1) or f(*a))
    want = run_segment_batch([layer], frames)
    assert want[0].any() and not want[0].all()
    _equal(want, torch_backend.run_segment_batch([layer], frames))
    assert len(tables) == (64 * (vth + 1) < 1 << 23)


def test_the_inpainter_runs_bit_exact_on_torch(tiny_bundle: Path) -> None:
    """The inpainter's spiking stage as batches of tiles: spikes and images equal to the reference backend's."""
    from neurodeploy.bundle.format import Bundle
    from neurodeploy.inpainter.data import MaskSpec, random_mask
    from neurodeploy.inpainter.simulation import simulate
    from neurodeploy.inpainter.simulator import SimulationInput

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
        assert tch["fidelity"].pop("exact_vs_reference_tiles") == 1  # the reference does not re-run itself
        assert ref["fidelity"].pop("exact_vs_reference_tiles") == 0
        assert tch["fidelity"] == ref["fidelity"]


def test_an_unknown_or_missing_device_is_a_user_error() -> None:
    with pytest.raises(UserError, match="unknown device"):
        torch_backend.check_device("tpu")
    if not __import__("torch").cuda.is_available():
        with pytest.raises(UserError, match="no CUDA GPU"):
            torch_backend.check_device("cuda")


def test_torch_equals_lava_on_the_inpainter(tiny_bundle: Path) -> None:
    """Once against Lava itself (neurodeploy's segment process): the same spikes and the same image."""
    from neurodeploy.bundle.format import Bundle
    from neurodeploy.inpainter.data import MaskSpec, random_mask
    from neurodeploy.inpainter.simulation import simulate
    from neurodeploy.inpainter.simulator import SimulationInput

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
