"""The Norse front end (neurodeploy.ir.norse_reader), held against Norse's own forward.

Every cell it reads (LIFCell, LIFRecurrentCell, LIFBoxCell, LICell, LIBoxCell),
dense and convolutional, feed-forward and recurrent: the graph it reads runs as
Norse 1.1's step functions do, and the deployed bundle runs bit-exact on the
reference and torch backends (Lava in the trained tests). Two classifiers
trained with Norse on digits as events (a LIFRecurrentCell one, which Norse's
``to_nir`` writes as None, and a LIFBoxCell conv net) convert in one command
from the files Norse users keep (a builder in a .py file, a state dict) and
keep Norse's argmax.
"""

from __future__ import annotations

import re
from pathlib import Path

import nir
import norse.torch as norse
import numpy as np
import pytest
import torch
from norse.torch.functional.reset import reset_subtract

from benchmarks import fidelity_nets as nets
from neurodeploy.bundle.convert import convert_module
from neurodeploy.bundle.format import Bundle
from neurodeploy.errors import UserError
from neurodeploy.inpainter.conversion import convert
from neurodeploy.ir.float_run import run_float
from neurodeploy.ir.nir_reader import read_graph
from neurodeploy.ir.norse_reader import load_built, norse_graph, read_norse
from neurodeploy.runtime.graph_run import run_graph
from neurodeploy.spike_metrics import output_scores, spike_scores

from .conftest import run_cli

T = 25


def _norse_forward(net: torch.nn.Module, x: np.ndarray, hidden: bool = False) -> list[np.ndarray] | np.ndarray:
    """Norse's own forward over time (one ``net(x_t, state)`` per step); ``hidden``: every module's output."""
    was = getattr(net, "return_hidden", False)
    net.return_hidden = hidden
    state, steps = None, []
    try:
        with torch.no_grad():
            for t in range(x.shape[1]):
                out, state = net(torch.from_numpy(x[:, t]).float(), state)
                steps.append([o.double().numpy() for o in out] if hidden else out.double().numpy())
    finally:
        net.return_hidden = was
    if hidden:
        return [np.stack([s[k] for s in steps], 1) for k in range(len(steps[0]))]
    return np.stack(steps, 1)


def _scaled(net: torch.nn.Module, gain: float) -> torch.nn.Module:
    """The default inits, ``gain`` times larger (so that every layer spikes), in eval mode."""
    torch.manual_seed(0)
    with torch.no_grad():
        for name, param in net.named_parameters():
            param.mul_(gain if "recurrent" not in name else 0.5)
    return net.eval()


def _cases() -> dict[str, tuple[torch.nn.Module, tuple[int, ...]]]:
    torch.manual_seed(0)
    per_neuron = norse.LIFParameters(v_th=torch.full((16,), 0.8), tau_mem_inv=torch.full((16,), 150.0))
    return {
        "dense LIFCell, LICell readout": (norse.SequentialState(
            torch.nn.Linear(12, 16), norse.LIFCell(per_neuron), torch.nn.Linear(16, 5), norse.LICell()), (12,), 3.0),
        "dense LIFBoxCell, LIBoxCell readout": (norse.SequentialState(
            torch.nn.Linear(12, 16), norse.LIFBoxCell(), torch.nn.Dropout(0.2), torch.nn.Linear(16, 5),
            norse.LIBoxCell()), (12,), 3.0),
        "recurrent LIFRecurrentCell, LIFCell out": (norse.SequentialState(
            norse.LIFRecurrentCell(12, 16), torch.nn.Linear(16, 5, bias=False), norse.LIFCell()), (12,), 6.0),
        "Linear folded into a LIFRecurrentCell": (norse.SequentialState(
            torch.nn.Linear(12, 16), norse.LIFRecurrentCell(16, 16), torch.nn.Linear(16, 5), norse.LIFCell()),
            (12,), 3.0),
        "conv LIFCell, avg pool, flatten, LIFCell": (torch.nn.Sequential(norse.SequentialState(
            torch.nn.Conv2d(1, 4, 3, padding=1, bias=False), norse.LIFCell()), norse.SequentialState(
            torch.nn.AvgPool2d(2), torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=False), norse.LIFCell(),
            torch.nn.Flatten(), torch.nn.Linear(24, 5, bias=False), norse.LIFCell())), (1, 8, 8), 10.0),
        "conv LIFBoxCell, sum pool, LIFBoxCell": (norse.SequentialState(
            torch.nn.Conv2d(2, 4, 3, padding=1), norse.LIFBoxCell(), torch.nn.LPPool2d(1, 2),
            torch.nn.Conv2d(4, 4, 3), norse.LIFBoxCell()), (2, 8, 8), 16.0),
    }


CASES = _cases()


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_cell_reads_as_norse_runs_it_and_deploys_bit_exact(case: str, tmp_path: Path) -> None:
    """The graph read from the module, run in float, is Norse's forward (spikes, and the readout's voltage);
    the bundle's chip layers run bit-exact on the reference and torch backends. (How close 8-bit chip layers
    come to the float ones is measured on the trained networks below, not on these random ones.)"""
    net, shape, gain = CASES[case]
    net = _scaled(net, gain)
    x = (np.random.default_rng(1).random((6, T, *shape)) < 0.3).astype(np.float64)
    graph = read_norse(net, input_shape=shape)
    (output,) = [n for n, node in graph.nodes.items() if node.kind == "Output"]
    floats = run_float(graph, torch.from_numpy(x))[output].numpy()
    # a Sequential of SequentialStates is not one Norse forward: run the inner ones in turn
    parts = list(net) if not isinstance(net, norse.SequentialState) else [net]
    norse_out = x
    for part in parts:
        norse_out = _norse_forward(part, norse_out)
    assert np.abs(norse_out).sum() > 0.05 * norse_out.size, "the case is too quiet to test anything"
    assert np.allclose(floats, norse_out, atol=1e-4), np.abs(floats - norse_out).max()
    bundle = convert_module(net, tmp_path / "net.bundle", input_shape=shape)
    assert bundle.deployment.chip_layers, bundle.manifest["summary"]
    reference = run_graph(bundle.deployment, x, "reference")
    torch_run = run_graph(bundle.deployment, x, "torch")
    assert torch_run.exact_vs_reference and np.array_equal(torch_run.output, reference.output)
    assert all(reference.spikes[layer].any() for layer in bundle.deployment.chip_layers)


def test_a_recurrent_cell_goes_on_the_chip_as_a_recurrent_dense_layer(tmp_path: Path) -> None:
    net, shape, gain = CASES["recurrent LIFRecurrentCell, LIFCell out"]
    bundle = convert_module(_scaled(net, gain), tmp_path / "rnn.bundle")
    kinds = {layer["name"]: layer["kind"] for s in bundle.typed_manifest.segments for layer in s.layers or ()}
    assert kinds == {"lifrecurrentcell_0": "dense_rec", "lifcell_2": "dense"}, kinds
    # graph.nir: nir.read reads it back, with the recurrence and the time step, and the toolkit reads it again
    raw = nir.read(bundle.path / "graph.nir")
    assert ("lifrecurrentcell_0_rec", "lifrecurrentcell_0") in [tuple(e) for e in raw.edges]
    assert float(np.asarray(raw.metadata["dt"])) == 1e-3
    again = read_graph(bundle.path / "graph.nir")
    assert again.recurrent == {("lifrecurrentcell_0_rec", "lifrecurrentcell_0")}
    assert {n: node.kind for n, node in again.nodes.items()} == {
        n: node.kind for n, node in read_norse(net, input_shape=shape).nodes.items()}


def test_norses_time_looping_layers_read_as_their_cells() -> None:
    """``LIF``, ``LIFRecurrent`` and ``LI`` (a cell looped over the outer axis) run as the graph read from them."""
    torch.manual_seed(0)
    net = _scaled(norse.SequentialState(torch.nn.Linear(12, 16), norse.LIFRecurrent(16, 16), torch.nn.Linear(16, 8),
                                        norse.LIF(), torch.nn.Linear(8, 5), norse.LI()), 6.0)
    x = (np.random.default_rng(2).random((4, T, 12)) < 0.3).astype(np.float64)
    graph = read_norse(net)
    assert [graph.nodes[n].kind for n in ("lifrecurrent_1", "lif_3", "li_5")] == ["CubaLIF", "CubaLIF", "CubaLI"]
    with torch.no_grad():
        norse_out, _ = net(torch.from_numpy(x).float().transpose(0, 1))  # Norse's layers take (T, B, ...)
    floats = run_float(graph, torch.from_numpy(x))["output"].numpy()
    hidden = run_float(graph, torch.from_numpy(x))["lif_3"].numpy()
    assert hidden.sum() > 0.02 * hidden.size, hidden.sum()
    assert np.allclose(floats, norse_out.transpose(0, 1).double().numpy(), atol=1e-4)


def test_the_face_converts_a_module_with_an_example_input(tmp_path: Path) -> None:
    """``neurodeploy.convert(module, out, dt=..., example_input=...)``: one step's batch gives the input shape."""
    net, shape, gain = CASES["conv LIFBoxCell, sum pool, LIFBoxCell"]
    bundle = convert(_scaled(net, gain), tmp_path / "conv.bundle", dt=1e-3, example_input=torch.zeros(4, *shape))
    assert bundle.manifest["source"]["kind"] == "norse"
    assert tuple(bundle.manifest["input"]["shape"]) == shape and bundle.manifest["dt"] == 1e-3


def test_what_the_front_end_cannot_read_is_one_line_naming_the_module_and_why() -> None:
    with pytest.raises(UserError, match=r"model\.1 is a ReLU, which the Norse front end does not read"):
        norse_graph(norse.SequentialState(torch.nn.Linear(4, 4), torch.nn.ReLU(), norse.LIFCell()))
    subtract = norse.LIFBoxParameters(reset_method=reset_subtract)
    with pytest.raises(UserError, match=r"model\.1: LIFBoxCell resets with reset_subtract"):
        norse_graph(norse.SequentialState(torch.nn.Linear(4, 4), norse.LIFBoxCell(subtract)))
    with pytest.raises(UserError, match=r"does not say the size of its input"):
        norse_graph(norse.SequentialState(torch.nn.Conv2d(1, 2, 3), norse.LIFCell()))
    with pytest.raises(UserError, match=r"model\.1: the cell steps dt = 0.001 s, not 0.0005 s"):
        norse_graph(norse.SequentialState(torch.nn.Linear(4, 4), norse.LIFCell()), dt=5e-4)
    with pytest.raises(UserError, match=r"model\.1: dt·tau_mem_inv is not in \(0, 1\] at dt = 0.02 s"):
        norse_graph(norse.SequentialState(torch.nn.Linear(4, 4), norse.LIFBoxCell(dt=0.02)))
    with pytest.raises(UserError, match=r"model\.0: Linear\(5, 4\) reads an input of shape \(4,\)"):
        norse_graph(norse.SequentialState(torch.nn.Linear(5, 4), norse.LIFCell()), input_shape=(4,))
    # per-neuron parameters are read; a layer whose neurons differ is named with the parameter
    ragged = norse.LIFParameters(v_th=torch.linspace(0.5, 1.0, 4))
    with pytest.raises(UserError, match=r"lifcell_1.*v_threshold differs between neurons"):
        read_norse(norse.SequentialState(torch.nn.Linear(4, 4), norse.LIFCell(ragged)))
    with pytest.raises(UserError, match=r"v_th has shape \(3,\), which does not fit the layer's neurons \(4,\)"):
        norse_graph(norse.SequentialState(torch.nn.Linear(4, 4), norse.LIFCell(
            norse.LIFParameters(v_th=torch.ones(3)))))


# -- trained with Norse, converted in one command ---------------------------------------------------------

BUILDERS = {
    "recurrent": ("import torch\nimport norse.torch as norse\n\n\ndef build():\n"
                  "    return norse.SequentialState(norse.LIFRecurrentCell(64, 48),"
                  " torch.nn.Linear(48, 10, bias=False), norse.LIFCell())\n"),
    "box_cnn": ("import torch\nimport norse.torch as norse\n\n\ndef build():\n"
                "    p = norse.LIFBoxParameters(tau_mem_inv=torch.as_tensor(500.0), alpha=torch.as_tensor(20.0))\n"
                "    return norse.SequentialState(torch.nn.Conv2d(1, 8, 3, stride=2, padding=1, bias=False),"
                " norse.LIFBoxCell(p), torch.nn.Flatten(), torch.nn.Linear(128, 10, bias=False),"
                " norse.LIFBoxCell(p))\n"),
}


@pytest.fixture(scope="module")
def digits() -> nets.Digits:
    return nets.digits_events()


@pytest.mark.parametrize("case", sorted(BUILDERS))
def test_a_norse_trained_classifier_converts_in_one_command_and_keeps_norses_argmax(
        case: str, digits: nets.Digits, tmp_path: Path) -> None:
    """`neurodeploy convert model.py:build --state state.pt` with default options: bit-exact on reference,
    torch and Lava, and the deployed output spike counts' argmax is Norse's on >= 95 % of the untied samples."""
    trained = nets.norse_recurrent(digits) if case == "recurrent" else nets.norse_box_cnn(digits)
    (tmp_path / "model.py").write_text(BUILDERS[case])
    torch.save(trained.module.state_dict(), tmp_path / "state.pt")
    shape = [] if case == "recurrent" else ["--input-shape", "1,8,8"]
    done = run_cli("convert", "model.py:build", "--state", "state.pt", "-o", "net.bundle", *shape, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    deployment = Bundle.load(tmp_path / "net.bundle").deployment
    if case == "recurrent":  # the README's --plan: the recurrent cell on the chip, its weights with it
        plan = run_cli("convert", "model.py:build", "--state", "state.pt", "--plan", cwd=tmp_path)
        shown = " ".join(plan.stdout.split())  # the table wraps its cells
        assert plan.returncode == 0 and "recurrent weights of lifrecurrentcell_0" in shown, plan.stdout
        assert "2 chip layers in 1 chip segment" in shown, plan.stdout
    x = trained.inputs(digits.x_test.astype(np.float64))
    library = trained.forward(x)
    assert np.mean(library.sum(1).argmax(1) == digits.y_test) >= 0.6, "the network did not learn the task"
    deployed = run_graph(deployment, x, "reference")
    assert run_graph(deployment, x, "torch").exact_vs_reference
    lava = run_graph(deployment, x[:2], "lava")
    assert lava.exact_vs_reference and np.array_equal(lava.output, deployed.output[:2])
    scores = output_scores(deployed.output, library)
    assert scores["output_ties"] < 0.3 * len(x), scores
    assert scores["output_agreement_vs_float"] >= 0.95, scores
    hidden = _norse_forward(trained.module, x, hidden=True)
    first = deployment.chip_layers[0]
    f1 = spike_scores(deployed.spikes[first], hidden[int(first.rsplit("_", 1)[1])])["spike_f1"]
    assert f1 >= 0.9, (first, f1)


def test_a_bad_builder_or_state_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "model.py").write_text(BUILDERS["recurrent"])
    torch.save({"0.input_weights": torch.zeros(3, 3)}, tmp_path / "state.pt")
    done = run_cli("convert", "model.py:build", "--state", "state.pt", "-o", "x.bundle", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "does not load into model.py:build()" in done.stderr and not (tmp_path / "x.bundle").exists()
    for spec, says in ((f"{tmp_path}/model.py:nothing", "has no function 'nothing'"),
                       (f"{tmp_path}/missing.py:build", "missing.py is not a Python file"),
                       ("model.py", "is not FILE.py:FUNCTION")):
        with pytest.raises(UserError, match=re.escape(says)):
            load_built(spec)
    with pytest.raises(UserError, match=r"state is the state dict of a model built by FILE\.py:FUNCTION"):
        convert(tmp_path / "net.nir", tmp_path / "y.bundle", state=tmp_path / "state.pt")
