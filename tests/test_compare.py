"""``simulate --input X.npy --compare Y.npy``: the deployed output against the library's own output Y.

The network is the snnTorch LIF MLP of tests/test_chip_segments.py, converted
into a graph bundle; Y is snnTorch's own forward pass on the same seeded spikes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from neurodeploy.bundle.format import Bundle
from neurodeploy.errors import UserError
from neurodeploy.inpainter.conversion import convert
from neurodeploy.runtime.graph_run import compare_scores, read_compare, run_graph
from neurodeploy.spike_metrics import output_scores, spike_scores

from .conftest import run_cli
from .test_chip_segments import _mlp_net, _snntorch_forward

SAMPLES, STEPS = 32, 16


@pytest.fixture(scope="module")
def mlp_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, np.ndarray]:
    """The bundle, X.npy, Y.npy (snnTorch's own output spikes on X) and Y."""
    root = tmp_path_factory.mktemp("compare")
    net, graph = _mlp_net()
    convert(graph, root / "mlp.bundle", dt=1e-4)
    x = (np.random.default_rng(4).random((SAMPLES, STEPS, 20)) < 0.3).astype(np.float32)
    y = _snntorch_forward(net, x, {3: "3"})["3"]
    np.save(root / "x.npy", x)
    np.save(root / "y.npy", y)
    return root / "mlp.bundle", root / "x.npy", root / "y.npy", y


def test_compare_scores_the_deployed_output_against_the_librarys(mlp_bundle, tmp_path: Path) -> None:
    path, x_path, y_path, y = mlp_bundle
    out, doc = tmp_path / "out.npz", tmp_path / "sim.json"
    run = run_cli("simulate", str(path), "--input", str(x_path), "--compare", str(y_path), "-o", str(out),
                  "--json", str(doc), "--backend", "reference")
    assert run.returncode == 0, run.stderr
    assert "against --compare: spike F1" in run.stdout
    got = json.loads(doc.read_text())["fidelity"]["vs_compare"]
    output = np.load(out)["output"]
    assert got == {**spike_scores(output, y), **output_scores(output, y)}
    assert y.sum() > 0 and got["spike_f1"] >= 0.95 and got["output_agreement_vs_float"] >= 0.9, got
    # a wrong Y scores low: the same spikes a step later
    late = np.roll(y, 1, axis=1)
    assert compare_scores(output, late)["spike_f1"] < 0.5 * got["spike_f1"]
    # values, not spikes: no spike scores, the argmax still scored
    values = compare_scores(output, y + 0.5)
    assert "spike_f1" not in values and values["output_samples"] == SAMPLES


def test_bad_compare_exits_2_before_any_work(mlp_bundle, tmp_path: Path) -> None:
    path, x_path, _, y = mlp_bundle
    bad = {"wrong-shape.npy": y[..., :4], "nan.npy": np.where(y > 0, np.nan, 0.0), "fewer-samples.npy": y[:-1],
           "fewer-steps.npy": y[:, :-1]}
    for name, value in bad.items():
        np.save(tmp_path / name, value)
    (tmp_path / "text.csv").write_text("1,2\n")
    words = {"missing.npy": "does not exist", "wrong-shape.npy": "has shape", "nan.npy": "not finite"}
    for name, said in words.items():  # through the CLI: one line, exit 2, nothing written
        out, doc = tmp_path / f"{name}.npz", tmp_path / f"{name}.json"
        run = run_cli("simulate", str(path), "--input", str(x_path), "--compare", str(tmp_path / name), "-o",
                      str(out), "--json", str(doc), "--backend", "reference")
        assert run.returncode == 2 and said in run.stderr, run.stderr
        assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr
        assert not out.exists() and not doc.exists()
    deployment = Bundle.load(path).deployment
    x = np.load(x_path).astype(np.float64)
    for name, said in {"text.csv": "not a .npy", "fewer-samples.npy": "has shape",
                       "fewer-steps.npy": "has shape"}.items():  # the same check, in this process
        with pytest.raises(UserError, match=said):
            read_compare(tmp_path / name, deployment, x)
    assert np.array_equal(read_compare(mlp_bundle[2], deployment, x), y)
    assert run_graph(deployment, x).output.shape == y.shape
