"""Faithful deployment (issue 22): what is rounded keeps the float graph's spikes, and the scores can fail.

The single LIF neuron below is the case where a quantizer that minimised only
the weights' error rounded the threshold of 2.5 weight units to 2 (s = 1, the
weight 1.0 exact): the chip fired 8 times where the float graph fired 4, none
at a float spike's step, and cell agreement still read 98.8 %.
"""

from __future__ import annotations

import json
from pathlib import Path

import nir
import numpy as np
import pytest
import torch

from neurodeploy.chip.partition import partition
from neurodeploy.chip.quantize import SCALAR_TOLERANCE, quantize_chip_layer
from neurodeploy.inpainter.conversion import convert
from neurodeploy.ir.float_run import run_float
from neurodeploy.ir.nir_reader import read_graph
from neurodeploy.runtime.graph_run import fidelity, run_graph
from neurodeploy.spike_metrics import spike_scores

from .conftest import run_cli

DT = 1e-4


def single_lif_graph(v_threshold: float = 0.1) -> nir.NIRGraph:
    """NIR ``Affine(weight=1) -> LIF(tau=2.5 ms, r=1, v_th=0.1)`` as Norse exports a LIFBox neuron, at dt = 0.1 ms."""
    return nir.NIRGraph.from_list(
        nir.Affine(weight=np.ones((1, 1), np.float32), bias=np.zeros(1, np.float32)),
        nir.LIF(tau=np.array([2.5e-3]), r=np.array([1.0]), v_leak=np.array([0.0]),
                v_threshold=np.array([v_threshold]), v_reset=np.array([0.0])))


def _drive(samples: int = 16, steps: int = 100, seed: int = 0, rate: float = 0.3) -> np.ndarray:
    return (np.random.default_rng(seed).random((samples, steps, 1)) < rate).astype(np.float64)


def test_the_threshold_is_rounded_with_the_weights_not_after_them() -> None:
    graph = read_graph(single_lif_graph(), dt=DT)
    (layer,) = partition(graph).layers
    q = quantize_chip_layer(layer, payload_max=1)
    assert q.threshold_error <= SCALAR_TOLERANCE and not q.warnings
    assert q.weight_error == 0.0 and q.layer.weight[0, 0] >= 64  # the mantissa's range is used
    at_one = quantize_chip_layer(layer, payload_max=1, scale=1.0)
    assert at_one.threshold_error > 0.15  # what the weights-only objective chose: 2.5 -> 2


@pytest.mark.parametrize("backend", ["reference", "torch", "lava"])
def test_single_lif_fires_at_the_float_graphs_steps_on_every_backend(backend: str, tmp_path: Path) -> None:
    path = tmp_path / "lif.nir"
    nir.write(path, single_lif_graph())
    bundle = convert(path, tmp_path / "lif.bundle", dt=DT)
    x = _drive()
    run = run_graph(bundle.deployment, x, backend=backend)
    flt = run_float(read_graph(path, dt=DT), torch.from_numpy(x))["lif"].numpy()
    assert flt.sum() >= 20  # the drive makes the neuron fire
    assert np.array_equal(run.output, flt)
    fid = fidelity(bundle.deployment, x, run)
    assert fid["spike_f1"] == 1.0 and fid["layers"][0]["spike_f1"] == 1.0


def test_a_wrong_spike_train_fails_f1_where_cell_agreement_passes(tmp_path: Path) -> None:
    """The old choice (s = 1: threshold 2) deployed by hand: its F1 is far from 1 while cells agree > 95 %."""
    graph = read_graph(single_lif_graph(), dt=DT)
    (layer,) = partition(graph).layers
    from neurodeploy.chip.reference import run_segment_batch

    x = _drive(rate=0.1)
    wrong = run_segment_batch((quantize_chip_layer(layer, payload_max=1, scale=1.0).layer,),
                              x.astype(np.uint8))[0]
    flt = run_float(graph, torch.from_numpy(x))["lif"].numpy()
    s = spike_scores(wrong, flt)
    assert s["cell_agreement_vs_float"] > 0.95
    assert s["spike_f1"] < 0.5


def test_an_output_that_never_fires_is_a_warning_on_stderr_and_in_the_json(tmp_path: Path) -> None:
    path = tmp_path / "deaf.nir"
    nir.write(path, single_lif_graph(v_threshold=5.0))  # 5 / 0.04 = 125 input spikes in a row to fire
    convert(path, tmp_path / "deaf.bundle", dt=DT)
    np.save(tmp_path / "x.npy", _drive(samples=4, steps=20))
    run = run_cli("simulate", str(tmp_path / "deaf.bundle"), "--input", str(tmp_path / "x.npy"),
                  "-o", str(tmp_path / "out.npz"), "--json", str(tmp_path / "sim.json"))
    assert run.returncode == 0, run.stderr
    assert "warning: chip layer lif never fires" in run.stderr
    fid = json.loads((tmp_path / "sim.json").read_text())["fidelity"]
    assert any("never fires" in w for w in fid["warnings"])
    assert fid["spike_f1"] is None and fid["spike_precision"] is None  # no spikes on either side: undefined
    assert "spike F1 n/a" in run.stdout
