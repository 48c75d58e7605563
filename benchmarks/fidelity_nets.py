"""Digits as events, and one small network per library trained on them with that library's own training.

The task: scikit-learn's digits (1797 images of 8x8 pixels, 10 classes, shipped
with the package, no download). Each image becomes T steps of Bernoulli
spikes, a pixel firing with probability ``MAX_RATE · intensity`` (intensity in
[0, 1]) at each step, seeded; a fixed seeded split gives the training and the
test samples. Every network is trained by BPTT through its own library's
neurons and surrogate gradients (Adam, cross-entropy of the output spike
counts, seeded, one thread) and exported by the library's own NIR exporter.

Each builder returns a :class:`Trained`: the module, the NIR graph, the
time step to read the graph at, the input layout, and the library's own
forward pass ``forward(x)`` -> output spikes (N, T, 10) as NumPy. Shared by
``benchmarks/bench_fidelity.py`` and the tests of the deployed accuracy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

CLASSES = 10
MAX_RATE = 0.5  # the busiest pixel fires every other step on average
SNNTORCH_DT = 1e-4  # what snnTorch 1.0's export_to_nir assumes: tau = dt / (1 - beta)
NORSE_DT = 1e-3  # norse.torch.to_nir's default
ROCKPOOL_DT, ROCKPOOL_TAU_MEM, ROCKPOOL_TAU_SYN = 1e-3, 2e-4, 5e-3


@dataclass(frozen=True)
class Digits:
    """Rate-coded digits: spikes (N, T, 1, 8, 8) uint8 and labels (N,), training and test."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def _split(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.random.Generator]:
    """The digits' intensities (1797, 8, 8) in [0, 1], labels, the seeded order, and the generator after it."""
    from sklearn.datasets import load_digits  # scikit-learn is imported only where the data is made

    data = load_digits()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data.target))
    return data.images / 16.0, data.target, order, rng  # the pixels are 0..16


def _events(intensity: np.ndarray, steps: int, rng: np.random.Generator) -> np.ndarray:
    rate = MAX_RATE * intensity[:, None, None]  # (n, 1, 1, 8, 8)
    return (rng.random((len(intensity), steps, 1, 8, 8)) < rate).astype(np.uint8)


def digits_events(train: int = 1000, test: int = 300, steps: int = 20, seed: int = 0) -> Digits:
    """The seeded split of scikit-learn's digits into ``train`` and ``test`` samples of ``steps`` spike frames."""
    intensity, target, order, rng = _split(seed)
    tr, te = order[:train], order[train:train + test]
    return Digits(_events(intensity[tr], steps, rng), target[tr], _events(intensity[te], steps, rng), target[te])


def redraw_test_events(draw: int, train: int = 1000, test: int = 300, steps: int = 20, seed: int = 0) -> np.ndarray:
    """Another seeded event draw (``draw`` >= 1) of the test digits of ``digits_events(train, test, steps, seed)``.

    The same digits in the same order (labels ``y_test``), never trained on;
    fresh Bernoulli spikes from the generator seeded ``[seed, draw]``, a
    stream apart from the one that drew the training and the first test events.
    """
    if draw < 1:
        raise ValueError("draw 0 is digits_events' own test events; further draws count from 1")
    intensity, _, order, _ = _split(seed)
    return _events(intensity[order[train:train + test]], steps, np.random.default_rng([seed, draw]))


@dataclass(frozen=True)
class Trained:
    """A trained network: its library, module, NIR export, time step, input layout and own forward pass."""

    name: str
    library: str
    module: Any
    graph: Any  # nir.NIRGraph
    dt: float | None
    flat: bool  # the network reads (N, T, 64) instead of (N, T, 1, 8, 8)
    forward: Callable[[np.ndarray], np.ndarray]  # x (N, T, ...) -> the library's output spikes (N, T, *output)
    train_accuracy: float

    def inputs(self, x: np.ndarray) -> np.ndarray:
        """Events (N, T, 1, 8, 8) in this network's input layout."""
        return x.reshape(*x.shape[:2], -1) if self.flat else x


@contextmanager
def one_thread() -> Iterator[None]:
    """Train on one thread: reproducible whatever the core count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def train(parameters: list[torch.Tensor], outputs: Callable[[torch.Tensor], torch.Tensor], x: np.ndarray,
          labels: np.ndarray, epochs: int, lr: float, seed: int, batch: int = 50) -> float:
    """BPTT through the library's surrogate gradient, Adam, cross-entropy of the output spike counts.

    ``outputs`` maps a batch (B, T, ...) to output spikes (B, T, classes).
    Returns the training accuracy of the last epoch.
    """
    data, target = torch.from_numpy(x).float(), torch.from_numpy(labels).long()
    optimizer = torch.optim.Adam(parameters, lr=lr)
    order = torch.Generator().manual_seed(seed)
    correct = 0
    with one_thread():
        for _ in range(epochs):
            correct = 0
            for index in torch.randperm(len(x), generator=order).split(batch):
                counts = outputs(data[index]).sum(1).flatten(1)
                loss = torch.nn.functional.cross_entropy(counts, target[index])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                correct += int((counts.argmax(1) == target[index]).sum())
    return correct / len(x)


def _no_grad_numpy(outputs: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[np.ndarray], np.ndarray]:
    def forward(x: np.ndarray) -> np.ndarray:
        with torch.no_grad(), one_thread():
            return outputs(torch.from_numpy(np.asarray(x)).float()).numpy()
    return forward


# -- snnTorch ---------------------------------------------------------------------------------------

def _snntorch_outputs(net: torch.nn.Sequential) -> Callable[[torch.Tensor], torch.Tensor]:
    """x (B, T, ...) -> the last Leaky's spikes (B, T, classes), stepping snnTorch's hidden state from rest."""

    def outputs(x: torch.Tensor) -> torch.Tensor:
        for m in net:
            if hasattr(m, "mem"):
                m.mem = torch.zeros(0)  # a fresh state, re-shaped on the first step
        return torch.stack([net(x[:, t])[0] for t in range(x.shape[1])], 1)

    return outputs


def _leaky(shape: tuple[int, ...], output: bool = False) -> torch.nn.Module:
    import snntorch as snn

    return snn.Leaky(beta=torch.full(shape, 0.9), threshold=torch.ones(shape), init_hidden=True,
                     reset_mechanism="zero", output=output)


def snntorch_mlp(d: Digits, seed: int = 0) -> Trained:
    """snnTorch: Linear 64 -> 64, Leaky, Linear -> 10, Leaky (reset to zero, beta 0.9, biases)."""
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(64, 64), _leaky((64,)), torch.nn.Linear(64, CLASSES),
                              _leaky((CLASSES,), output=True))
    outputs = _snntorch_outputs(net)
    x = d.x_train.reshape(*d.x_train.shape[:2], -1)
    accuracy = train(list(net.parameters()), outputs, x, d.y_train, epochs=6, lr=5e-3, seed=seed)
    graph = export_to_nir(net, torch.rand(64))
    return Trained("LIF MLP", "snnTorch", net, graph, SNNTORCH_DT, True, _no_grad_numpy(outputs), accuracy)


def snntorch_cnn(d: Digits, seed: int = 0) -> Trained:
    """snnTorch: Conv 1 -> 8 (3x3, stride 2, padding 1), Leaky, Flatten, Linear 128 -> 10, Leaky."""
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, stride=2, padding=1), _leaky((8, 4, 4)),
                              torch.nn.Flatten(), torch.nn.Linear(128, CLASSES), _leaky((CLASSES,), output=True))
    outputs = _snntorch_outputs(net)
    accuracy = train(list(net.parameters()), outputs, d.x_train, d.y_train, epochs=6, lr=5e-3, seed=seed)
    graph = export_to_nir(net, torch.rand(1, 1, 8, 8), ignore_dims=[0])  # no batch axis in NIR
    return Trained("LIF CNN", "snnTorch", net, graph, SNNTORCH_DT, False, _no_grad_numpy(outputs), accuracy)


# -- Sinabs -----------------------------------------------------------------------------------------

def sinabs_cnn(d: Digits, seed: int = 0, epochs: int = 15) -> Trained:
    """Sinabs, N-MNIST style: Conv 1 -> 8, IAF, SumPool 2, Conv 8 -> 16, IAF, SumPool 2, Flatten,
    Linear 64 -> 32, IAF, Linear 32 -> 10, IAF (reset to zero: MembraneReset, SingleSpike).

    A wider surrogate gradient than Sinabs' default (width 1 of the threshold;
    it shapes only the gradient) keeps output neurons from falling silent early.
    """
    import sinabs
    import sinabs.layers as sl
    from sinabs.activation import MembraneReset, SingleExponential, SingleSpike

    torch.manual_seed(seed)

    def iaf() -> sl.IAFSqueeze:
        return sl.IAFSqueeze(batch_size=1, spike_fn=SingleSpike, reset_fn=MembraneReset(),
                             surrogate_grad_fn=SingleExponential(grad_width=1.0))

    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1, bias=False), iaf(), sl.SumPool2d(2),
        torch.nn.Conv2d(8, 16, 3, padding=1, bias=False), iaf(), sl.SumPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(64, 32, bias=False), iaf(), torch.nn.Linear(32, CLASSES, bias=False), iaf())
    with torch.no_grad():  # the default init hardly reaches the threshold of 1 through four IAF layers
        for index, gain in ((0, 3), (3, 2), (7, 2), (9, 2)):
            net[index].weight.mul_(gain)

    def outputs(x: torch.Tensor) -> torch.Tensor:
        _fresh_sinabs_state(net, x.shape[0])
        return net(x.reshape(-1, *x.shape[2:])).reshape(*x.shape[:2], -1)

    accuracy = train(list(net.parameters()), outputs, d.x_train, d.y_train, epochs=epochs, lr=5e-3, seed=seed)
    _fresh_sinabs_state(net, 1)  # export with one sample of one step
    graph = sinabs.to_nir(net, torch.rand(1, 1, 8, 8))
    return Trained("IAF CNN, SumPool", "Sinabs", net, graph, None, False, _no_grad_numpy(outputs), accuracy)


def _fresh_sinabs_state(net: torch.nn.Sequential, batch: int) -> None:
    import sinabs.layers as sl

    for m in net:
        if isinstance(m, sl.IAFSqueeze):
            m.batch_size, m.num_timesteps = batch, -1
            m.v_mem = torch.zeros(0)


# -- Norse ------------------------------------------------------------------------------------------

def norse_cnn(d: Digits, seed: int = 0, epochs: int = 6) -> Trained:
    """Norse: Conv 1 -> 8 (3x3, stride 2, padding 1), LIFCell, dense 128 -> 10, LIFCell.

    LIFCell is a current-based LIF (tau_syn 5 ms, tau_mem 10 ms at dt 1 ms);
    Norse 1.1 exports it as a CubaLIF. The dense layer is a Conv2d whose 4x4
    kernel covers the whole 8x4x4 map (output 10x1x1: the arithmetic of a
    Linear on the flattened map), because Norse 1.1's ``to_nir`` writes no
    node (None) for ``torch.nn.Flatten``. The biases are zero and not trained:
    Norse's export needs a conv bias tensor, and a bias added to a filtered
    current rises over steps, which a Loihi voltage bias cannot follow.
    """
    import norse.torch as norse

    torch.manual_seed(seed)
    net = norse.SequentialState(torch.nn.Conv2d(1, 8, 3, stride=2, padding=1), norse.LIFCell(),
                                torch.nn.Conv2d(8, CLASSES, 4), norse.LIFCell())
    with torch.no_grad():  # dt / tau_mem = 0.1: the leak wants larger weights than the default init
        for conv in (net[0], net[2]):
            conv.bias.zero_()
            conv.bias.requires_grad_(False)
            conv.weight.mul_(4.0)

    outputs = _norse_outputs(net)
    weights = [p for p in net.parameters() if p.requires_grad]
    accuracy = train(weights, outputs, d.x_train, d.y_train, epochs=epochs, lr=5e-3, seed=seed)
    graph = norse.to_nir(net, torch.rand(1, 1, 8, 8), dt=NORSE_DT)
    return Trained("LIF CNN (CubaLIF)", "Norse", net, graph, NORSE_DT, False, _no_grad_numpy(outputs), accuracy)


# -- Rockpool ---------------------------------------------------------------------------------------

def rockpool_mlp(d: Digits, seed: int = 0) -> Trained:
    """Rockpool: LinearTorch 64 -> 64, LIFTorch, LinearTorch -> 10, LIFTorch (tau_mem = dt/5, tau_syn 5 ms).

    Rockpool's LIFTorch subtracts the threshold at a spike, NIR and Loihi reset
    to zero; with tau_mem = dt/5 the membrane keeps exp(-5) = 0.7 % of the
    residue, so the two resets nearly agree (tests/test_chip_segments.py).
    No biases: Rockpool exports the neurons' biases as zeros, and a Linear
    bias behind the current filter stays on the host. Only the weights train.
    Rockpool's surrogate (one-sided, zero far below the threshold) lets output
    neurons fall silent in the first epoch and recover slowly: 20 epochs.
    """
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFTorch, LinearTorch
    from rockpool.nn.modules.torch.nir import to_nir

    torch.manual_seed(seed)

    def lif(n: int) -> LIFTorch:
        return LIFTorch(n, tau_mem=ROCKPOOL_TAU_MEM, tau_syn=ROCKPOOL_TAU_SYN, dt=ROCKPOOL_DT, max_spikes_per_dt=1.0)

    net = Sequential(LinearTorch((64, 64), has_bias=False), lif(64), LinearTorch((64, CLASSES), has_bias=False),
                     lif(CLASSES))

    def outputs(x: torch.Tensor) -> torch.Tensor:
        net.reset_state()  # Rockpool modules keep their state between calls
        return net(x)[0]

    weights = [p for n, p in torch.nn.Module.named_parameters(net) if n.endswith("weight")]
    x = d.x_train.reshape(*d.x_train.shape[:2], -1)
    accuracy = train(weights, outputs, x, d.y_train, epochs=20, lr=3e-3, seed=seed)
    return Trained("LIF MLP", "Rockpool", net, to_nir(net), ROCKPOOL_DT, True, _no_grad_numpy(outputs), accuracy)


BUILDERS: dict[str, Callable[[Digits], Trained]] = {
    "snntorch_mlp": snntorch_mlp, "snntorch_cnn": snntorch_cnn, "sinabs_cnn": sinabs_cnn,
    "norse_cnn": norse_cnn, "rockpool_mlp": rockpool_mlp,
}


# -- Norse through neurodeploy's own front end (neurodeploy.ir.norse_reader, not to_nir) ------------------

def _norse_outputs(net: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """Norse's own forward over time: one ``net(x_t, state)`` per step, from no state."""
    def outputs(x: torch.Tensor) -> torch.Tensor:
        state, spikes = None, []
        for t in range(x.shape[1]):
            out, state = net(x[:, t], state)
            spikes.append(out)
        return torch.stack(spikes, 1)
    return outputs


def norse_recurrent(d: Digits, seed: int = 0, epochs: int = 4, hidden: int = 48) -> Trained:
    """Norse: LIFRecurrentCell 64 -> ``hidden`` (recurrent), Linear -> 10 (no bias), LIFCell; read flat.

    The recurrent cell is what Norse 1.1's ``to_nir`` writes as None; its graph here is neurodeploy's
    Norse front end (:func:`neurodeploy.ir.norse_reader.norse_graph`).
    """
    import norse.torch as norse

    from neurodeploy.ir.norse_reader import norse_graph

    torch.manual_seed(seed)
    net = norse.SequentialState(norse.LIFRecurrentCell(64, hidden, dt=NORSE_DT),
                                torch.nn.Linear(hidden, CLASSES, bias=False), norse.LIFCell(dt=NORSE_DT))
    with torch.no_grad():  # dt / tau_mem = 0.1: the leak wants larger weights than the default init
        net[0].input_weights.mul_(2.0)
        net[0].recurrent_weights.mul_(0.5)
        net[1].weight.mul_(6.0)
    outputs = _norse_outputs(net)
    accuracy = train(list(net.parameters()), outputs, d.x_train.reshape(*d.x_train.shape[:2], -1), d.y_train,
                     epochs=epochs, lr=5e-3, seed=seed)
    net.eval()
    return Trained("recurrent LIF (LIFRecurrentCell)", "Norse", net, norse_graph(net), NORSE_DT, True,
                   _no_grad_numpy(outputs), accuracy)


def norse_box_cnn(d: Digits, seed: int = 0, epochs: int = 6) -> Trained:
    """Norse: Conv 1 -> 8 (3x3, stride 2, padding 1, no bias), LIFBoxCell, Flatten, Linear 128 -> 10
    (no bias), LIFBoxCell (tau_mem 2 ms at dt 1 ms); its graph by neurodeploy's Norse front end."""
    import norse.torch as norse

    from neurodeploy.ir.norse_reader import norse_graph

    torch.manual_seed(seed)
    # no current filter: a spike moves v by dt·tau_mem_inv of its weight only, so tau_mem is 2 ms (half
    # the way per step); the surrogate is widened from Norse's alpha 100 so that silent neurons learn
    p = norse.LIFBoxParameters(tau_mem_inv=torch.as_tensor(500.0), alpha=torch.as_tensor(20.0))
    net = norse.SequentialState(torch.nn.Conv2d(1, 8, 3, stride=2, padding=1, bias=False),
                                norse.LIFBoxCell(p, dt=NORSE_DT), torch.nn.Flatten(),
                                torch.nn.Linear(128, CLASSES, bias=False), norse.LIFBoxCell(p, dt=NORSE_DT))
    with torch.no_grad():
        net[0].weight.mul_(6.0)
        net[3].weight.mul_(6.0)
    outputs = _norse_outputs(net)
    accuracy = train(list(net.parameters()), outputs, d.x_train, d.y_train, epochs=epochs, lr=5e-3, seed=seed)
    net.eval()
    return Trained("LIF box CNN (LIFBoxCell)", "Norse", net, norse_graph(net, input_shape=(1, 8, 8)), NORSE_DT,
                   False, _no_grad_numpy(outputs), accuracy)
