"""Chip segments end to end: NIR export -> plan -> quantize -> netx per segment -> Lava == reference ~ float.

Networks are built (and two of them briefly trained) and exported inside the
tests by Sinabs, snnTorch and Norse; inputs are seeded binary spikes. Three
comparisons, each able to fail:

* Lava (stock netx models) equals :func:`neurodeploy.chip.reference.run_segment`
  bit for bit, every layer of the segment;
* :mod:`neurodeploy.ir.float_run` (NIR semantics in float) equals the
  library's own forward pass;
* the reference (Loihi fixed point) agrees with the library's forward:
  first chip layer spikes >= 99 %, argmax of summed output spikes >= 95 %
  (issue 13). The argmax needs a network with margins: on the untrained
  Sinabs conv net, 8-bit rounding flips spikes that four integrate-and-fire
  layers amplify (argmax agreement 0.64), so that bound is checked on the same
  architecture trained for a few seconds on seeded spike patterns.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import nir
import numpy as np
import pytest
import torch

from benchmarks.fidelity_nets import train
from neurodeploy.chip.cuba import STATE_LIMIT
from neurodeploy.chip.neuron_mapping import map_neuron
from neurodeploy.chip.partition import ChipSegment, plan
from neurodeploy.chip.quantize import fixed_point, quantize_segment
from neurodeploy.chip.reference import run_segment, run_segment_batch
from neurodeploy.converters.netx_in import read_segment
from neurodeploy.converters.netx_io import FixedPointLayer, write_segment
from neurodeploy.ir.float_run import run_float

SAMPLES, STEPS = 64, 16


def _binary(shape: tuple[int, ...], rate: float, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random(shape) < rate).astype(np.uint8)


def _chip(graph: nir.NIRGraph, dt: float | None = None):
    p = plan(graph, dt=dt)
    chips = [s for s in p.segments if isinstance(s, ChipSegment)]
    assert len(chips) == 1
    return p, chips[0], quantize_segment(chips[0].layers, payload_max=1)


def _agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.asarray(a) == np.asarray(b)))


def _argmax_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Agreement of the argmax over classes of spikes (B, T, classes) summed over time."""
    return float(np.mean(np.asarray(a).sum(1).argmax(-1) == np.asarray(b).sum(1).argmax(-1)))


# -- the networks and their libraries' own forward passes ---------------------------------------

def _sinabs_net() -> tuple[torch.nn.Sequential, nir.NIRGraph]:
    """(a) Conv2d -> IAF -> SumPool2d -> Conv2d -> IAF -> SumPool2d -> Flatten -> Linear -> IAF -> Linear -> IAF."""
    import sinabs
    import sinabs.layers as sl
    from sinabs.activation import MembraneReset, SingleSpike

    torch.manual_seed(0)

    def iaf() -> sl.IAFSqueeze:
        return sl.IAFSqueeze(batch_size=1, spike_fn=SingleSpike, reset_fn=MembraneReset())

    net = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1, bias=False), iaf(), sl.SumPool2d(2),
        torch.nn.Conv2d(4, 8, 3, padding=1, bias=False), iaf(), sl.SumPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(128, 16), iaf(), torch.nn.Linear(16, 10, bias=False), iaf())
    with torch.no_grad():  # livelier than the default init: every layer fires 5-30 % of the time
        for index, gain in ((0, 3), (3, 4), (7, 6), (9, 10)):
            net[index].weight.mul_(gain)
    return net, sinabs.to_nir(net, torch.rand(1, 2, 16, 16))


def _sinabs_forward(net: torch.nn.Sequential, x: np.ndarray) -> dict[str, np.ndarray]:
    """Spikes (B, T, ...) of every IAF, named as in the exported graph (the Sequential index)."""
    import sinabs.layers as sl

    b, t = x.shape[:2]
    out: dict[str, np.ndarray] = {}
    hooks = []
    for i, m in enumerate(net):
        if isinstance(m, sl.IAFSqueeze):
            m.batch_size, m.num_timesteps = b, -1
            m.v_mem = torch.zeros(0)  # a fresh state of the new batch shape

            def keep(_m, _i, o, name=str(i)) -> None:
                out[name] = o.reshape(b, t, *o.shape[1:]).numpy()

            hooks.append(m.register_forward_hook(keep))
    with torch.no_grad():
        net(torch.from_numpy(x).float().reshape(b * t, *x.shape[2:]))
    for h in hooks:
        h.remove()
    return out


def _mlp_net() -> tuple[torch.nn.Sequential, nir.NIRGraph]:
    """(c) snnTorch LIF MLP, reset to zero, biases."""
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(20, 16), snn.Leaky(beta=torch.full((16,), 0.9), threshold=torch.ones(16), init_hidden=True,
                                           reset_mechanism="zero"),
        torch.nn.Linear(16, 5), snn.Leaky(beta=torch.full((5,), 0.9), threshold=torch.ones(5), init_hidden=True,
                                          reset_mechanism="zero", output=True))
    return net, export_to_nir(net, torch.rand(20))


def _recurrent_net() -> tuple[torch.nn.Sequential, nir.NIRGraph]:
    """(b) snnTorch recurrent CubaLIF classifier with biases, all on the chip.

    RSynaptic with alpha = 0 (dt = tau_syn: no current filter, so its biases
    are exact as Loihi's voltage bias), then a filtering Synaptic (alpha 0.5)
    without bias.
    """
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    n = 12
    net = torch.nn.Sequential(
        torch.nn.Linear(8, n),
        snn.RSynaptic(alpha=torch.zeros(n), beta=torch.full((n,), 0.9), threshold=torch.ones(n), linear_features=n,
                      all_to_all=True, init_hidden=True, reset_mechanism="zero"),
        torch.nn.Linear(n, 4, bias=False),
        snn.Synaptic(alpha=torch.full((4,), 0.5), beta=torch.full((4,), 0.8), threshold=torch.ones(4),
                     init_hidden=True, reset_mechanism="zero", output=True))
    with torch.no_grad():
        net[0].weight.mul_(2.0)
        net[2].weight.mul_(3.0)
    graph = export_to_nir(net, torch.rand(8))
    net[3].reset_delay = False  # set after export: snnTorch 1.0's tracer fails on it
    return net, graph


def _snntorch_forward(net: torch.nn.Sequential, x: np.ndarray, neurons: dict[int, str]) -> dict[str, np.ndarray]:
    """Spikes (B, T, n) of the snnTorch neurons at the given Sequential indices, by graph node name."""
    for m in net:
        for attr in ("mem", "syn", "spk"):
            if hasattr(m, attr):
                setattr(m, attr, torch.zeros(0))  # a fresh state, re-shaped on the first step
    rec: dict[int, list[torch.Tensor]] = {i: [] for i in neurons}
    hooks = [net[i].register_forward_hook(lambda _m, _i, o, i=i: rec[i].append(o[0] if isinstance(o, tuple) else o))
             for i in neurons]
    with torch.no_grad():
        for t in range(x.shape[1]):
            net(torch.from_numpy(x[:, t]).float())
    for h in hooks:
        h.remove()
    return {name: torch.stack(rec[i], 1).numpy() for i, name in neurons.items()}


@pytest.fixture(scope="module")
def sinabs_case():
    net, graph = _sinabs_net()
    x = _binary((SAMPLES, STEPS, 2, 16, 16), 0.5, seed=1)
    return net, graph, x, _sinabs_forward(net, x), None


@pytest.fixture(scope="module")
def mlp_case():
    net, graph = _mlp_net()
    x = _binary((SAMPLES, STEPS, 20), 0.3, seed=2)
    return net, graph, x, _snntorch_forward(net, x, {1: "1", 3: "3"}), 1e-4


@pytest.fixture(scope="module")
def recurrent_case():
    net, graph = _recurrent_net()
    x = _binary((SAMPLES, STEPS, 8), 0.3, seed=3)
    return net, graph, x, _snntorch_forward(net, x, {1: "1.lif", 3: "3"}), 1e-4


# -- trained networks: the margins an argmax needs to survive 8-bit rounding --------------------------

CLASSES, TRAIN_SAMPLES, HELD_OUT = 4, 512, 128
NORSE_DT = 1e-3  # norse.torch.to_nir's default time step


def _patterns(n: int, shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n seeded samples (n, STEPS, *shape) of binary spikes and their labels: one rate map per class.

    The CLASSES rate maps (0.6·u³, u uniform: mostly quiet, a few busy inputs)
    depend on ``shape`` only, so training and held-out samples share them.
    """
    rates = 0.6 * np.random.default_rng(100 + len(shape)).random((CLASSES, *shape)) ** 3
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, n)
    return (rng.random((n, STEPS, *shape)) < rates[labels][:, None]).astype(np.uint8), labels


def _accuracy(spikes: np.ndarray, labels: np.ndarray) -> float:
    """How often the argmax of the output spikes (B, T, classes) summed over time is the label."""
    return float(np.mean(np.asarray(spikes).sum(1).argmax(-1) == labels))


def _train(net: Any, outputs: Callable[[torch.Tensor], torch.Tensor], x: np.ndarray,
           labels: np.ndarray, epochs: int, lr: float, seed: int) -> float:
    """The benchmarks' training loop (:func:`benchmarks.fidelity_nets.train`, one thread) in batches of 32."""
    return train(list(net.parameters()), outputs, x, labels, epochs=epochs, lr=lr, seed=seed, batch=32)


def _trained_sinabs_net(seed: int = 0) -> tuple[torch.nn.Sequential, nir.NIRGraph, float]:
    """The architecture of :func:`_sinabs_net` with CLASSES outputs, trained on :func:`_patterns`.

    A wider surrogate gradient than Sinabs' default (width 1 instead of 0.5
    of the threshold; it only shapes the gradient, not the forward pass or
    the export) and a milder gain on the last layer keep output neurons from
    falling silent for good early in training.
    """
    import sinabs
    import sinabs.layers as sl
    from sinabs.activation import MembraneReset, SingleExponential, SingleSpike

    torch.manual_seed(seed)

    def iaf() -> sl.IAFSqueeze:
        return sl.IAFSqueeze(batch_size=1, spike_fn=SingleSpike, reset_fn=MembraneReset(),
                             surrogate_grad_fn=SingleExponential(grad_width=1.0))

    net = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1, bias=False), iaf(), sl.SumPool2d(2),
        torch.nn.Conv2d(4, 8, 3, padding=1, bias=False), iaf(), sl.SumPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(128, 16), iaf(), torch.nn.Linear(16, CLASSES, bias=False), iaf())
    with torch.no_grad():
        for index, gain in ((0, 3), (3, 4), (7, 6), (9, 3)):
            net[index].weight.mul_(gain)

    def outputs(x: torch.Tensor) -> torch.Tensor:
        _fresh_sinabs_state(net, x.shape[0])
        return net(x.reshape(-1, *x.shape[2:])).reshape(*x.shape[:2], -1)

    x, labels = _patterns(TRAIN_SAMPLES, (2, 16, 16), seed=10)
    accuracy = _train(net, outputs, x, labels, epochs=12, lr=1e-2, seed=seed)
    _fresh_sinabs_state(net, 1)  # export with one sample of one step
    return net, sinabs.to_nir(net, torch.rand(1, 2, 16, 16)), accuracy


def _fresh_sinabs_state(net: torch.nn.Sequential, batch: int) -> None:
    import sinabs.layers as sl

    for m in net:
        if isinstance(m, sl.IAFSqueeze):
            m.batch_size, m.num_timesteps = batch, -1
            m.v_mem = torch.zeros(0)


def _norse_spikes(net: torch.nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Spikes (B, T, n) of every LIFBoxCell of a Norse SequentialState, by graph node name (its index)."""
    import norse.torch as norse

    rec: dict[str, list[torch.Tensor]] = {str(i): [] for i, m in enumerate(net) if isinstance(m, norse.LIFBoxCell)}
    hooks = [net[int(i)].register_forward_hook(lambda _m, _i, o, i=i: rec[i].append(o[0])) for i in rec]
    state = None
    try:
        for t in range(x.shape[1]):
            _, state = net(x[:, t], state)
    finally:
        for h in hooks:
            h.remove()
    return {name: torch.stack(values, 1) for name, values in rec.items()}


def _trained_norse_net(seed: int = 0) -> tuple[torch.nn.Module, nir.NIRGraph, float]:
    """(d) Norse LIF MLP (Linear -> LIFBoxCell -> Linear -> LIFBoxCell, biases, tau_mem 10 ms), trained."""
    import norse.torch as norse

    torch.manual_seed(seed)
    net = norse.SequentialState(torch.nn.Linear(20, 16), norse.LIFBoxCell(), torch.nn.Linear(16, CLASSES),
                                norse.LIFBoxCell())
    with torch.no_grad():  # dt / tau_mem = 0.1: the leak wants larger weights than the default init
        net[0].weight.mul_(8.0)
        net[2].weight.mul_(16.0)
    x, labels = _patterns(TRAIN_SAMPLES, (20,), seed=20)
    accuracy = _train(net, lambda b: _norse_spikes(net, b)["3"], x, labels, epochs=25, lr=3e-2, seed=seed)
    return net, norse.to_nir(net, torch.rand(1, 20), dt=NORSE_DT), accuracy


@pytest.fixture(scope="module")
def trained_sinabs_case():
    net, graph, train_accuracy = _trained_sinabs_net()
    x, labels = _patterns(HELD_OUT, (2, 16, 16), seed=11)
    return (net, graph, x, _sinabs_forward(net, x), None), labels, train_accuracy


@pytest.fixture(scope="module")
def trained_rockpool_case():
    """Planned at Rockpool's dt: its export writes r = tau_mem·exp(-dt/tau_mem)/dt, which the graph reader
    recognises (tau_convention "auto" -> "rockpool-3.1")."""
    net, graph, train_accuracy = _trained_rockpool_net()
    x, labels = _patterns(HELD_OUT, (20,), seed=31)
    with torch.no_grad():
        library = {n: v.numpy() for n, v in _rockpool_spikes(net, torch.from_numpy(x).float()).items()}
    return (net, graph, x, library, ROCKPOOL_DT), labels, train_accuracy


@pytest.fixture(scope="module")
def rockpool_case(trained_rockpool_case):
    return trained_rockpool_case[0]


@pytest.fixture(scope="module")
def trained_norse_case():
    """Planned at Norse's own dt: Norse 1.1 exports tau = dt / tau_mem_inv = dt·tau_mem, which the graph
    reader recognises (tau_convention "auto")."""
    net, graph, train_accuracy = _trained_norse_net()
    x, labels = _patterns(HELD_OUT, (20,), seed=21)
    with torch.no_grad():
        library = {n: v.numpy() for n, v in _norse_spikes(net, torch.from_numpy(x).float()).items()}
    return (net, graph, x, library, NORSE_DT), labels, train_accuracy


ROCKPOOL_DT = 1e-3  # Rockpool's default time step
ROCKPOOL_TAU_MEM, ROCKPOOL_TAU_SYN = 2e-4, 5e-3


def _rockpool_spikes(net, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Spikes (B, T, n) of both LIFTorch layers of :func:`_trained_rockpool_net`, from a fresh state.

    Rockpool modules keep their state between calls; ``reset_state`` starts every batch at rest.
    """
    net.reset_state()
    out, _, record = net(x, record=True)
    return {"1_LIFTorch": record["1_LIFTorch"]["spikes"], "3_LIFTorch": out}


def _trained_rockpool_net(seed: int = 0, tau_mem: float = ROCKPOOL_TAU_MEM):
    """(e) Rockpool LIF MLP: LinearTorch -> LIFTorch -> LinearTorch -> LIFTorch, trained on :func:`_patterns`.

    Rockpool's LIFTorch subtracts the threshold at a spike; NIR (its export says
    ``v_reset = 0``) and Loihi reset to zero. With ``tau_mem = dt / 5`` the
    membrane keeps exp(-5) = 0.7 % of the residue, so the two resets agree and the
    memory lives in the synaptic current (``tau_syn`` 5 ms). ``max_spikes_per_dt=1``:
    one spike a step, as NIR and Loihi. Only the weights train: Rockpool exports
    the neurons' biases as zeros (``v_leak``) and taus must stay equal across a layer.
    No Linear biases here; behind the current filter they become a bias axon
    (:func:`test_rockpool_linear_bias_behind_the_current_filter_goes_on_the_chip`).
    """
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFTorch, LinearTorch
    from rockpool.nn.modules.torch.nir import to_nir

    torch.manual_seed(seed)

    def lif(n: int) -> LIFTorch:
        return LIFTorch(n, tau_mem=tau_mem, tau_syn=ROCKPOOL_TAU_SYN, dt=ROCKPOOL_DT, max_spikes_per_dt=1.0)

    net = Sequential(LinearTorch((20, 16), has_bias=False), lif(16), LinearTorch((16, CLASSES), has_bias=False),
                     lif(CLASSES))

    class Weights:  # Rockpool's own parameters() is a dict of every parameter family
        def parameters(self) -> list[torch.Tensor]:
            return [p for n, p in torch.nn.Module.named_parameters(net) if n.endswith("weight")]

    x, labels = _patterns(TRAIN_SAMPLES, (20,), seed=30)
    accuracy = _train(Weights(), lambda b: _rockpool_spikes(net, b)["3_LIFTorch"], x, labels, epochs=20,
                      lr=1e-2, seed=seed)
    return net, to_nir(net), accuracy


# -- the mapping and the quantizer -------------------------------------------------------------

def test_the_three_networks_plan_into_one_chip_segment_with_exact_fixed_point(sinabs_case, mlp_case,
                                                                              recurrent_case) -> None:
    kinds = {"sinabs": ["conv", "conv", "dense", "dense"], "mlp": ["dense", "dense"],
             "recurrent": ["dense_rec", "dense"]}
    for name, case in (("sinabs", sinabs_case), ("mlp", mlp_case), ("recurrent", recurrent_case)):
        _, graph, _, _, dt = case
        _, segment, quantized = _chip(graph, dt)
        assert [q.layer.kind for q in quantized] == kinds[name]
        for layer, q in zip(segment.layers, quantized, strict=True):
            assert all("saturate" in w for w in q.warnings), q.warnings  # an outlier may clip; nothing else
            assert (q.max_input << 6) * 4096 / q.layer.i_decay < STATE_LIMIT  # u cannot wrap for any input
            # snnTorch Leaky / Synaptic and Sinabs IAF all map to vThMant = s·P·v_th
            assert map_neuron(layer.neuron).threshold_per_unit == pytest.approx(1.0, rel=1e-5)
            assert q.layer.vth_mant == round(q.weight_scale)
    recurrent = fixed_point(_chip(recurrent_case[1], 1e-4)[2])
    assert recurrent[0].bias is not None and recurrent[1].i_decay == 2048 and recurrent[1].v_decay == 819


def test_subtractive_or_leaky_neurons_are_refused_by_the_mapping() -> None:
    from neurodeploy.ir.graph import Neuron

    with pytest.raises(ValueError, match="v_reset"):
        map_neuron(Neuron("IF", v_threshold=1.0, v_reset=0.5))
    with pytest.raises(ValueError, match="v_leak"):
        map_neuron(Neuron("LIF", v_threshold=1.0, tau_mem=1e-3, v_leak=0.1, dt=1e-4))


# -- netx files: several layers, and the old one-layer files -----------------------------------

def test_segment_files_read_back_what_was_written(tmp_path: Path, sinabs_case) -> None:
    quantized = fixed_point(_chip(sinabs_case[1])[2])
    path = tmp_path / "segment.net"
    write_segment(path, quantized)
    back = read_segment(path)
    for q, r in zip(quantized, back, strict=True):
        assert np.array_equal(q.weight, r.weight) and (q.stride, q.padding) == (r.stride, r.padding)
        assert (q.i_decay, q.v_decay, q.vth_mant) == (r.i_decay, r.v_decay, r.vth_mant)
    assert back[2].input_shape == (512,)  # the flatten block before the first dense one
    x = _binary((STEPS, 2, 16, 16), 0.5, seed=9)
    assert all(np.array_equal(a, b) for a, b in zip(run_segment(quantized, x), run_segment(back, x), strict=True))


# -- Lava == reference, bit for bit ------------------------------------------------------------

def _model_class(process) -> type:
    """The ProcessModel class Lava's compiler chose for ``process`` (it stores the class or an instance)."""
    chosen = process.model_class
    return chosen if isinstance(chosen, type) else type(chosen)


@pytest.mark.parametrize("case", ["sinabs_case", "mlp_case", "recurrent_case", "rockpool_case"])
def test_lava_runs_each_segment_bit_exact_with_the_reference(case: str, tmp_path: Path,
                                                             request: pytest.FixtureRequest) -> None:
    """Stock netx and neurodeploy's one-process ChipSegment, every layer, against the reference and each other."""
    from lava.proc.dense.models import PyDenseModelBitAcc

    from neurodeploy.runtime.lava.processes.segment import ChipSegment, PyChipSegmentModel
    from neurodeploy.runtime.lava.segment_run import LavaSegment

    _, graph, x, _, dt = request.getfixturevalue(case)
    quantized = fixed_point(_chip(graph, dt)[2])
    path = tmp_path / "segment.net"
    write_segment(path, quantized)
    layers = read_segment(path)
    busy = sum(s.reshape(len(x), -1).sum(1, dtype=np.int64) for s in run_segment_batch(layers, x))
    x = x[np.argsort(-busy, kind="stable")[:3]]  # the three samples with the most spikes
    wants = [run_segment(layers, sample) for sample in x]
    assert all(sum(int(w.sum()) for w in want) > 0 for want in wants)
    got: dict[str, list[list[np.ndarray]]] = {}
    for models in ("stock", "neurodeploy"):
        with LavaSegment(path, timesteps=STEPS, models=models) as lava:  # type: ignore[arg-type]
            got[models] = [lava.run(sample) for sample in x]
            if models == "neurodeploy":  # the whole segment is one Lava process
                assert isinstance(lava._net, ChipSegment) and _model_class(lava._net) is PyChipSegmentModel
            else:
                dense = [block.synapse for block in lava._net.layers if not hasattr(block.synapse, "kernel_size")]
                assert dense and all(_model_class(s) is PyDenseModelBitAcc for s in dense)
    for want, stock, ours in zip(wants, got["stock"], got["neurodeploy"], strict=True):
        for w, s, o in zip(want, stock, ours, strict=True):
            assert np.array_equal(s, w) and np.array_equal(o, w) and np.array_equal(o, s)


def _layer(kind: str, inp: tuple[int, ...], out: tuple[int, ...], weight: np.ndarray, vth: int, *,
           rec: np.ndarray | None = None, bias: np.ndarray | None = None, stride: int = 1, padding: int = 0,
           i_decay: int = 4096, v_decay: int = 1024):
    return FixedPointLayer(kind, inp, out, weight.astype(np.int8), rec, bias, (stride, stride), (padding, padding),
                           i_decay, v_decay, vth)


@pytest.mark.parametrize("first", ["conv", "dense"])
def test_one_process_segment_equals_stock_netx_on_graded_input(first: str, tmp_path: Path) -> None:
    """8-bit graded frames (changing, then constant), biases, a strided conv, flatten, a recurrent block."""
    from neurodeploy.runtime.lava.segment_run import LavaSegment

    rng = np.random.default_rng(11)
    w = lambda *shape: rng.integers(-20, 21, shape)  # noqa: E731
    if first == "conv":
        layers = [_layer("conv", (3, 8, 8), (4, 8, 8), w(4, 3, 3, 3), 700, padding=1,
                         bias=rng.integers(-50, 50, 4).astype(np.int32), i_decay=1024),
                  _layer("conv", (4, 8, 8), (6, 4, 4), w(6, 4, 2, 2) * 5, 30, stride=2),
                  _layer("dense", (96,), (10,), w(10, 96) * 3, 40)]
    else:
        layers = [_layer("dense", (40,), (32,), w(32, 40), 900, bias=rng.integers(-50, 50, 32).astype(np.int32)),
                  _layer("dense_rec", (32,), (16,), w(16, 32) * 4, 60, rec=w(16, 16).astype(np.int8) * 4,
                         i_decay=512, v_decay=256)]
    path = tmp_path / "graded.net"
    write_segment(path, layers)
    read = read_segment(path)
    changing = rng.integers(0, 256, (6, *read[0].input_shape))
    samples = [changing, np.broadcast_to(changing[:1], changing.shape), changing[::-1]]
    wants = [run_segment(read, sample) for sample in samples]
    for want in wants:
        assert all(0 < int(w.sum()) < w.size for w in want), [int(w.sum()) for w in want]
    for models in ("stock", "neurodeploy"):
        with LavaSegment(path, timesteps=6, input_message_bits=8, models=models) as lava:  # type: ignore[arg-type]
            for sample, want in zip(samples, wants, strict=True):
                got = lava.run(sample)
                assert all(np.array_equal(g, w) for g, w in zip(got, want, strict=True)), models


def test_a_fault_inside_the_segment_process_is_reported_and_the_runtime_stopped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lava.magma.core.decorator import implements
    from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

    import neurodeploy.runtime.lava.segment_run as segment_lava
    from neurodeploy.runtime.lava.lifecycle import LavaProcessError
    from neurodeploy.runtime.lava.processes.segment import ChipSegment, PyChipSegmentModel

    @implements(proc=ChipSegment, protocol=LoihiProtocol)
    class Failing(PyChipSegmentModel):
        def run_spk(self) -> None:
            if self.time_step == 3:
                raise ValueError("fault injected inside the segment")
            super().run_spk()

    select = segment_lava.select_run_config

    def with_fault(*args, **kwargs):
        cfg = select(*args, **kwargs)
        cfg.exception_proc_model_map[ChipSegment] = Failing
        return cfg

    monkeypatch.setattr(segment_lava, "select_run_config", with_fault)
    rng = np.random.default_rng(0)
    path = tmp_path / "dense.net"
    write_segment(path, [_layer("dense", (8,), (4,), rng.integers(-9, 10, (4, 8)), 5)])
    with (pytest.raises(LavaProcessError, match="fault injected inside the segment"),
          segment_lava.LavaSegment(path, timesteps=4) as segment):
        actors = list(segment._net.runtime._messaging_infrastructure.actors)
        segment.run(np.ones((4, 8), np.uint8))
    assert actors and not any(actor.is_alive() for actor in actors)  # stopped, nothing left running


# -- float side and chip side against each library's forward ---------------------------------------

def _measure(case) -> dict[str, float]:
    _, graph, x, library, dt = case
    p, segment, quantized = _chip(graph, dt)
    names = [layer.name for layer in segment.layers]
    chip = dict(zip(names, run_segment_batch(fixed_point(quantized), x), strict=True))
    flt = {n: v.numpy() for n, v in run_float(p.graph, torch.from_numpy(x)).items() if n in names}
    return {
        "float_vs_library": min(_agreement(flt[n], library[n]) for n in names),
        "first_layer": _agreement(chip[names[0]], library[names[0]]),
        "argmax": _argmax_agreement(chip[names[-1]], library[names[-1]]),
        "first_layer_vs_float": _agreement(chip[names[0]], flt[names[0]]),
        "argmax_vs_float": _argmax_agreement(chip[names[-1]], flt[names[-1]]),
        "output_rate": float(library[names[-1]].mean()),
    }


def test_snntorch_lif_mlp_matches_snntorch(mlp_case) -> None:
    m = _measure(mlp_case)
    assert m["float_vs_library"] == 1.0, m
    assert m["first_layer"] >= 0.99 and m["argmax"] >= 0.95, m
    assert m["output_rate"] > 0.02, m


def test_sinabs_conv_net_matches_sinabs_in_its_first_layer(sinabs_case) -> None:
    m = _measure(sinabs_case)
    assert m["float_vs_library"] >= 0.999, m  # Sinabs fires at v >= v_th, NIR and Loihi at v > v_th
    assert m["first_layer"] >= 0.99, m
    assert m["output_rate"] > 0.05, m


def test_trained_sinabs_conv_net_argmax_matches_sinabs(trained_sinabs_case) -> None:
    """Issue 13's acceptance on the conv net of ``sinabs_case``, trained: chip argmax == Sinabs' >= 95 %."""
    case, labels, train_accuracy = trained_sinabs_case
    m = _measure(case)
    accuracy = _accuracy(case[3]["10"], labels)
    assert train_accuracy >= 0.9 and accuracy >= 0.9, (train_accuracy, accuracy)  # chance: 1 / CLASSES
    assert m["float_vs_library"] >= 0.999, m
    assert m["first_layer"] >= 0.99 and m["argmax"] >= 0.95, m


def test_recurrent_cubalif_classifier_matches_the_nir_semantics(recurrent_case) -> None:
    """snnTorch 1.0's RSynaptic resets to zero one step late (the step after a spike has mem = 0, its input
    lost) and its ``reset_delay=False`` raises, so its forward is not what its NIR export says: the chip is
    compared with the float execution of the exported graph, and snnTorch's own forward only loosely."""
    m = _measure(recurrent_case)
    assert m["first_layer_vs_float"] >= 0.99, m
    assert m["argmax_vs_float"] >= 0.95, m
    assert m["output_rate"] > 0.02, m
    assert 0.85 <= m["float_vs_library"] < 1.0, m  # the late reset: close, not equal


def test_norse_lif_graph_is_read_in_norse_units_at_its_own_time_step(trained_norse_case) -> None:
    """Norse 1.1 writes tau as dt·tau_mem (1e-5 for 10 ms): read at Norse's dt, the graph reader
    recognises the convention and gives tau in seconds."""
    from neurodeploy.ir.nir_reader import read_graph

    graph = read_graph(trained_norse_case[0][1], dt=NORSE_DT)
    assert graph.tau_convention == "norse-1.1"
    neurons = [n.op for n in graph.nodes.values() if n.kind == "LIF"]
    assert neurons and all(n.tau_mem == pytest.approx(0.01) for n in neurons)


def test_trained_norse_lif_mlp_matches_norse(trained_norse_case) -> None:
    case, labels, train_accuracy = trained_norse_case
    _, _, quantized = _chip(case[1], case[4])  # one chip segment, Lava-free
    assert [q.layer.kind for q in quantized] == ["dense", "dense"] and all(q.layer.bias is not None for q in quantized)
    m = _measure(case)
    accuracy = _accuracy(case[3]["3"], labels)
    assert train_accuracy >= 0.9 and accuracy >= 0.9, (train_accuracy, accuracy)  # chance: 1 / CLASSES
    assert m["float_vs_library"] >= 0.999, m  # float64 against Norse's float32: a tie at v_th may differ
    assert m["first_layer"] >= 0.99 and m["argmax"] >= 0.95, m
    assert m["output_rate"] > 0.02, m


def test_dense_fixed_is_stocks_shifted_integer_sum() -> None:
    """neurodeploy.chip.cuba.dense_fixed == PyDenseModelBitAcc's arithmetic: graded or binary, every weight exponent."""
    from neurodeploy.chip.cuba import dense_fixed

    rng = np.random.default_rng(7)
    weight = rng.integers(-256, 256, (12, 40)).astype(np.int64)  # netx shifts 8-bit mantissas left
    for exp in (-3, -1, 0, 2):
        for x in (rng.integers(0, 256, 40), rng.random(40) < 0.1, rng.random(40) < 0.6):
            accum = weight @ x.astype(np.int64)
            want = np.left_shift(accum, exp) if exp > 0 else np.right_shift(accum, -exp)
            for dtype in (np.float32, np.float64):
                xs = x if x.dtype == np.bool_ else x.astype(dtype)
                assert np.array_equal(dense_fixed(xs, weight.T.astype(dtype), exp), want)


def test_trained_rockpool_lif_mlp_matches_rockpool(trained_rockpool_case) -> None:
    """Issue 13 on a Rockpool network: the graph is read in Rockpool's convention and the chip follows
    Rockpool's own forward."""
    from neurodeploy.ir.nir_reader import read_graph

    case, labels, train_accuracy = trained_rockpool_case
    assert read_graph(case[1], dt=ROCKPOOL_DT).tau_convention == "rockpool-3.1"
    _, _, quantized = _chip(case[1], case[4])
    assert [q.layer.kind for q in quantized] == ["dense", "dense"]
    m = _measure(case)
    accuracy = _accuracy(case[3]["3_LIFTorch"], labels)
    assert train_accuracy >= 0.6 and accuracy >= 0.6, (train_accuracy, accuracy)  # chance: 1 / CLASSES
    assert m["float_vs_library"] >= 0.999, m  # the residue Rockpool's subtractive reset keeps, and float32
    assert m["first_layer"] >= 0.99 and m["argmax"] >= 0.95, m
    assert m["output_rate"] > 0.02, m


def _rockpool_biased_case():
    """Rockpool's LinearTorch (with bias) -> LIFTorch -> LinearTorch -> LIFTorch, untrained, on seeded input."""
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFTorch, LinearTorch
    from rockpool.nn.modules.torch.nir import to_nir

    torch.manual_seed(0)

    def lif(n: int) -> LIFTorch:
        return LIFTorch(n, tau_mem=ROCKPOOL_TAU_MEM, tau_syn=ROCKPOOL_TAU_SYN, dt=ROCKPOOL_DT, max_spikes_per_dt=1.0)

    net = Sequential(LinearTorch((20, 16), has_bias=True), lif(16), LinearTorch((16, CLASSES)), lif(CLASSES))
    x, _ = _patterns(HELD_OUT, (20,), seed=31)
    with torch.no_grad():
        library = {n: v.numpy() for n, v in _rockpool_spikes(net, torch.from_numpy(x).float()).items()}
    return net, to_nir(net), x, library, ROCKPOOL_DT


def test_rockpool_linear_bias_behind_the_current_filter_goes_on_the_chip() -> None:
    """Rockpool adds a LinearTorch's bias to the synaptic current, which decays with tau_syn and is never
    reset: from rest it rises over steps, which a Loihi voltage bias cannot follow; an always-on bias axon
    into the current does (``bias_site = "current"``). Both layers go on the chip, and the first follows
    Rockpool's own forward (untrained, 128 seeded samples: 0.9991 of its cells measured)."""
    case = _rockpool_biased_case()
    p, segment, quantized = _chip(case[1], ROCKPOOL_DT)
    assert p.graph.tau_convention == "rockpool-3.1" and p.graph.nodes["1_LIFTorch"].op.filters_current
    assert [layer.name for layer in segment.layers] == ["1_LIFTorch", "3_LIFTorch"]
    first, second = fixed_point(quantized)
    assert first.bias_site == "current" and np.any(first.bias) and second.bias is None
    m = _measure(case)
    assert m["float_vs_library"] >= 0.999 and m["first_layer"] >= 0.99, m
    assert case[3]["1_LIFTorch"].mean() > 0.02, m


def test_rockpool_graph_at_another_dt_is_refused(trained_rockpool_case) -> None:
    """r = tau_mem·exp(-dt/tau_mem)/dt fixes dt: read at another one, Rockpool's convention is refused."""
    from neurodeploy.errors import UserError
    from neurodeploy.ir.nir_reader import read_graph

    with pytest.raises(UserError, match=r"Rockpool 3\.1"):
        read_graph(trained_rockpool_case[0][1], dt=2 * ROCKPOOL_DT, tau_convention="rockpool-3.1")


def test_rockpool_and_norse_exporters_cannot_write_a_recurrent_lif_layer() -> None:
    """Why the only recurrent CubaLIF classifier in these tests is snnTorch's: Rockpool 3.1's ``to_nir``
    writes a ``LIFTorch(has_rec=True)`` as a CubaLIF without its recurrent weights and with its bias as
    ``v_leak = 0``, and Norse 1.1's writes a ``LIFRecurrentCell`` as no node at all (None). When either
    exporter learns recurrences this test fails: then add that library's recurrent classifier here."""
    import norse.torch as norse
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFTorch, LinearTorch
    from rockpool.nn.modules.torch.nir import to_nir

    torch.manual_seed(0)
    rockpool = to_nir(Sequential(LinearTorch((8, 12)), LIFTorch(12, has_rec=True, bias=torch.full((12,), 0.1))))
    (lif,) = [n for n in rockpool.nodes.values() if isinstance(n, nir.CubaLIF)]
    assert not np.any(np.asarray(lif.v_leak))  # the bias 0.1, dropped
    assert not any(isinstance(n, (nir.Linear, nir.Affine)) for n in rockpool.nodes.values()
                   if n is not rockpool.nodes["0_LinearTorch"])  # no recurrent weight
    graph = norse.to_nir(norse.SequentialState(torch.nn.Linear(8, 12), norse.LIFRecurrentCell(12, 12)),
                         torch.rand(1, 8))
    assert graph.nodes["1"] is None
