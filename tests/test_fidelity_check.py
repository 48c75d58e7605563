"""The inpainter's fidelity check: its in-place float LIF against Norse's own step, and its bit-exactness test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from neurodeploy.inpainter.checkpoint import load_model
from neurodeploy.inpainter.conversion import convert
from neurodeploy.inpainter.float_spikes import _LifState, stack_spikes
from neurodeploy.inpainter.model import HybridInpainter, LIFConfig, ModelConfig
from neurodeploy.inpainter.simulator import SimulationInput, Simulator

from .conftest import TINY, tiny_model

SHIPPED = Path(__file__).resolve().parents[1] / "examples" / "models" / "scnn_inpaint.pt"


@pytest.mark.parametrize(("spiking_layers", "encoding"), [(1, "constant"), (2, "constant"), (3, "poisson")])
def test_in_place_spikes_are_norse_forwards_bit_for_bit(spiking_layers: int, encoding: str) -> None:
    config = ModelConfig(**{**TINY.to_dict(), "cnn_dilations": (1, 1, 1, 1, 1), "spiking_layers": spiking_layers,
                            "encoding": encoding, "timesteps": 12})
    torch.manual_seed(1)
    model = HybridInpainter(config).eval()
    image, mask = torch.rand(2, 3, 30, 26), torch.zeros(2, 1, 30, 26)
    mask[:, :, 6:20, 4:15] = 1.0
    x = model.encode(model.padded(model.network_input(image, mask)), torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = model.snn(x, every_layer=True)
    got = stack_spikes(model.snn, x)
    assert [s.dtype for s in got] == [torch.bool] * spiking_layers
    for e, g in zip(expected, got, strict=True):
        assert e.sum() > 0 and (1 - e).sum() > 0  # neither silent nor saturated: the comparison can fail
        assert torch.equal(e.bool(), g)


def test_in_place_spikes_of_the_shipped_model_equal_its_forward() -> None:
    model = load_model(SHIPPED)[0].eval()
    assert model.snn is not None
    x = torch.rand(1, model.config.snn_in_channels, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model.snn(x, every_layer=True)
    for e, g in zip(expected, stack_spikes(model.snn, x), strict=True):
        assert e.sum() > 100
        assert torch.equal(e.bool(), g)


def test_in_place_state_is_norses_float_for_float() -> None:
    """Not only the spikes: v and i after every step equal Norse's LIFCell state bit for bit."""
    # decays that are not powers of two, so that a reordered sum would round differently
    lif = LIFConfig(tau_syn_inv=700.0, tau_mem_inv=300.0, v_th=0.7)
    model = HybridInpainter(ModelConfig(**{**TINY.to_dict(), "lif": lif})).eval()
    assert model.snn is not None
    layer = model.snn.layers[0]
    currents = torch.rand(9, 2, 6, 11, 13, generator=torch.Generator().manual_seed(2)) * 1.5 - 0.3
    state, own, fired = None, _LifState(currents[0], layer), []
    for current in currents:
        with torch.no_grad():
            z, state = layer.lif(current, state)
        spikes = own.step(current, torch.empty(current.shape, dtype=torch.bool))
        assert torch.equal(z.bool(), spikes)
        assert torch.equal(state.v, own.v) and torch.equal(state.i, own.i)
        fired.append(float(spikes.float().mean()))
    assert 0.05 < sum(fired) / len(fired) < 0.95  # neither silent nor saturated: v carries over between steps


def test_a_backend_that_differs_from_the_reference_is_caught(tmp_path: Path) -> None:
    bundle = convert(tiny_model(), tmp_path / "b.bundle", tile=16)
    rng = np.random.default_rng(0)
    item = SimulationInput("x", rng.integers(0, 256, (40, 36, 3), dtype=np.uint8), rng.random((40, 36)) < 0.3)
    with Simulator(bundle, "torch") as sim:
        honest = sim.run(item).fidelity
        run_tiles = sim.bridge.run_tiles

        def one_spike_off(frames: np.ndarray) -> list[np.ndarray]:
            every = run_tiles(frames)
            height, width = every[0].shape[-2:]
            every[0][:, 0, 0, height // 2, width // 2] ^= 1  # one neuron of every tile, at the first step
            return every

        sim.bridge.run_tiles = one_spike_off  # type: ignore[method-assign]
        broken = sim.run(item).fidelity
    assert honest["exact_vs_reference"] is True and honest["exact_vs_reference_tiles"] == 1
    assert broken["exact_vs_reference"] is False and broken["exact_vs_reference_tiles"] == 1
    assert broken["spike_f1"] < honest["spike_f1"]  # the float comparison sees it too
