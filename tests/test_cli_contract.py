"""What a new user hit (issue 33, items 9 and 10): the time convention said and recorded, a wrong dt flagged,
`--version`, `--chip all` refused for a NIR graph, an error message naming an option that exists, train's
default configuration."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import nir
import numpy as np
import pytest

from neurodeploy.bundle.format import Bundle
from neurodeploy.converters.netx_in import read_segment
from neurodeploy.errors import UserError
from neurodeploy.inpainter.checkpoint import load_model
from neurodeploy.inpainter.conversion import convert
from neurodeploy.inpainter.model import SHIPPED_CONFIG, ModelConfig
from neurodeploy.runtime.lava.segment_run import check_stock_netx
from tests.conftest import run_cli
from tests.test_convert import write_nir_graph
from tests.test_readme_commands import norse_graph, snntorch_mlp_graph

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def snntorch_nir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """snnTorch's own export of an MLP; its time constants are in seconds for dt = 1e-4."""
    path = tmp_path_factory.mktemp("snntorch") / "net.nir"
    nir.write(path, snntorch_mlp_graph())
    return path


def _one_line_refusal(result, *words: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def test_version_prints_the_package_version() -> None:
    result = run_cli("--version", timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"neurodeploy {version('neurodeploy')}"


def test_chip_all_is_refused_for_a_nir_graph(snntorch_nir: Path, tmp_path: Path) -> None:
    for plan in ((), ("--plan",)):
        result = run_cli("convert", str(snntorch_nir), "--chip", "all", "--dt", "1e-4", "-o",
                         str(tmp_path / "x.bundle"), *plan, timeout=120)
        _one_line_refusal(result, "--chip all", "--host")
    assert not (tmp_path / "x.bundle").exists()
    with pytest.raises(UserError, match="NIR graph"):
        convert(snntorch_nir, tmp_path / "y.bundle", dt=1e-4, chip="all")
    assert not (tmp_path / "y.bundle").exists()


def test_the_stock_netx_refusal_names_the_option_that_exists(snntorch_nir: Path, tmp_path: Path) -> None:
    bundle = convert(snntorch_nir, tmp_path / "wide.bundle", dt=1e-4, wide_weights=True)
    (segment,) = [s for s in bundle.typed_manifest.segments if s.place == "chip"]
    path = bundle.path / str(segment.file)
    with pytest.raises(UserError) as refused:
        check_stock_netx(path, read_segment(path))
    assert "--lava-models neurodeploy" in refused.value.cli_message
    assert "--models" not in refused.value.cli_message.replace("--lava-models", "")


def test_train_starts_from_the_shipped_models_configuration() -> None:
    shipped, _ = load_model(ROOT / "examples/models/scnn_inpaint.pt")
    config = ROOT / "examples/configs/full_resolution_residual.json"
    assert ModelConfig.from_json(config.read_text()) == SHIPPED_CONFIG
    assert shipped.config == SHIPPED_CONFIG
    # the CLI's default: tests/test_readme_commands.py runs `neurodeploy train --out model.pt` and loads it


def test_convert_says_which_time_convention_it_read_and_why(snntorch_nir: Path, tmp_path: Path) -> None:
    result = run_cli("convert", str(snntorch_nir), "-o", str(tmp_path / "right.bundle"), "--dt", "1e-4",
                     timeout=300)
    assert result.returncode == 0, result.stderr
    said = " ".join(result.stdout.split())
    assert "time constants read as seconds (dt = 0.0001 s; auto-detected: every dt/tau <= 1" in said
    assert "warning" not in result.stderr
    manifest = json.loads((tmp_path / "right.bundle" / "manifest.json").read_text())
    assert manifest["tau_convention"] == "seconds"
    assert manifest["tau_convention_reason"].startswith("auto-detected: every dt/tau <= 1")
    assert Bundle.load(tmp_path / "right.bundle").typed_manifest.tau_convention_reason == \
        manifest["tau_convention_reason"]
    given = convert(snntorch_nir, tmp_path / "given.bundle", dt=1e-4, tau_convention="seconds")
    assert given.manifest["tau_convention_reason"] == "given"


def test_an_snntorch_graph_with_a_wrong_dt_is_flagged_at_convert_and_when_it_never_fires(
        snntorch_nir: Path, tmp_path: Path) -> None:
    """snnTorch's graph at dt = 3e-3 (30 times its own): some dt/tau exceeds 1, auto takes it for Norse 1.1's,
    and no layer fires. convert warns, naming the cause and the fix; simulate's never-fires warning too."""
    bundle = tmp_path / "wrong.bundle"
    result = run_cli("convert", str(snntorch_nir), "-o", str(bundle), "--dt", "3e-3", timeout=300)
    assert result.returncode == 0, result.stderr
    assert "time constants read as norse-1.1" in " ".join(result.stdout.split())
    warned = " ".join(result.stderr.split())
    assert "warning:" in warned and "--dt is likely wrong" in warned and "--tau-convention seconds" in warned
    x = tmp_path / "x.npy"
    np.save(x, (np.random.default_rng(0).random((4, 12, 20)) < 0.3).astype(np.float32))
    run = run_cli("simulate", str(bundle), "--input", str(x), "-o", str(tmp_path / "out.npz"), "--backend",
                  "reference", "--json", str(tmp_path / "sim.json"), timeout=300)
    assert run.returncode == 0, run.stderr
    warnings = json.loads((tmp_path / "sim.json").read_text())["fidelity"]["warnings"]
    cause = [w for w in warnings if "time constants were read as norse-1.1 at dt = 0.003 s" in w]
    assert cause and "convert it again with that dt" in cause[0], warnings


def test_a_norse_graph_is_read_in_its_convention_without_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "norse.nir"
    write_nir_graph(norse_graph(), path)
    result = run_cli("convert", str(path), "--plan", "--dt", "1e-3", timeout=300)
    assert result.returncode == 0, result.stderr
    assert "time constants read as norse-1.1 (dt = 0.001 s; auto-detected: dt/tau_syn = 200 > 1" in \
        " ".join(result.stdout.split())
    assert "warning" not in result.stderr


def test_an_option_for_another_kind_of_input_is_refused_not_ignored(snntorch_nir: Path, tmp_path: Path) -> None:
    """`--tile` means nothing to a NIR graph or a Norse model, `--tau-convention` nothing to a Norse model
    (its cells say their convention) or a checkpoint: given, they are refused in one line, before anything
    is written, with --plan too; before, they were dropped silently."""
    (tmp_path / "model.py").write_text("import norse.torch as norse\nimport torch\n\n\ndef build():\n"
                                       "    return norse.SequentialState(torch.nn.Linear(4, 3, bias=False), "
                                       "norse.LIFCell())\n")
    shipped = str(ROOT / "examples/models/scnn_inpaint.pt")
    for k, (model, option, words) in enumerate((
            (str(snntorch_nir), ("--tile", "64", "--dt", "1e-4"), ("--tile applies to a checkpoint",)),
            ("model.py:build", ("--tile", "64"), ("--tile", "not to a Norse model", "leave --tile out")),
            ("model.py:build", ("--tau-convention", "seconds"), ("--tau-convention applies to a NIR graph",)),
            (shipped, ("--tau-convention", "seconds"), ("not to a checkpoint",)),
            (shipped, ("--input-shape", "1,8,8"), ("--input-shape applies to a Norse model",)),
            (shipped, ("--dt", "1e-3"), ("--dt",)))):
        plan = ("--plan",) if k % 2 else ()  # each kind of input refused with --plan and without
        result = run_cli("convert", model, *option, "-o", str(tmp_path / "x.bundle"), *plan, cwd=tmp_path,
                         timeout=120)
        _one_line_refusal(result, *words)
        assert not (tmp_path / "x.bundle").exists()
    with pytest.raises(UserError, match="tile applies to a checkpoint"):
        convert(snntorch_nir, tmp_path / "y.bundle", dt=1e-4, tile=64)
