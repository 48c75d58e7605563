"""``neurodeploy sweep --until-converged``: the stopping rule, resuming after a kill, the refusals."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path
from typing import Any

import pytest

from neurodeploy.errors import UserError
from neurodeploy.inpainter.model import ModelConfig
from neurodeploy.inpainter.sweep import SweepConfig, run_sweep
from neurodeploy.inpainter.train import ConvergenceRule, TrainConfig, train
from tests.conftest import TINY, run_cli


def stop_epoch(rule: ConvergenceRule, curve: list[float]) -> int:
    """The epoch after which training would stop on ``curve``, as train() applies the rule."""
    for n in range(1, len(curve) + 1):
        if rule.finished(curve[:n]):
            return n
    raise AssertionError("the rule never stopped on this curve")


def test_the_rule_on_hand_made_curves() -> None:
    rule = ConvergenceRule(min_epochs=5, max_epochs=100)
    # falls, then flat at 0.1 from epoch 7: at n = 8 the window (ceil(1.6) = 2 epochs, best 0.1) is still
    # more than 1% below the best before it (0.12); at n = 9 the epochs before the window reach 0.1 too
    flat = [1.0, 0.5, 0.3, 0.2, 0.15, 0.12, 0.1, 0.1, 0.1, 0.1]
    assert not rule.converged(flat[:8]) and rule.converged(flat[:9]) and stop_epoch(rule, flat) == 9
    # a steady 2% fall per epoch never converges: it runs to max_epochs and is not converged there
    falling = [0.98 ** n for n in range(100)]
    assert stop_epoch(rule, falling) == 100 and not rule.converged(falling)
    # 0.9% better over the window is not 1%; 1.1% is
    before = [1.0] * 12
    assert rule.converged([*before, 1.0, 1.0, 0.991])
    assert not rule.converged([*before, 1.0, 1.0, 0.989])
    # the window is 20% of the epochs, rounded up: 3 of 15 (not 4, as 0.2 * 15 in floating point would give)
    assert [rule.window_epochs(n) for n in (5, 10, 11, 15, 16)] == [1, 2, 3, 3, 4]
    # never before min_epochs, even on a flat curve
    assert not ConvergenceRule(min_epochs=8, max_epochs=20).converged([0.1] * 7)
    assert ConvergenceRule(min_epochs=8, max_epochs=20).converged([0.1] * 8)


def test_train_stops_where_the_rule_says(tmp_path: Path) -> None:
    rule = ConvergenceRule(min_epochs=2, max_epochs=3)
    config = TrainConfig(out=str(tmp_path / "m.pt"), epochs=3, batch_size=2, crop=32, samples_per_epoch=2,
                         val_crop=32, device="cpu", converge=rule)
    seen: list[int] = []
    result = train(config, TINY, progress=False, on_epoch=lambda epoch, *_: seen.append(epoch))
    assert result.epochs == len(result.val_losses) == len(seen) == seen[-1]
    assert result.converged == rule.converged(result.val_losses)
    # every epoch before the stop left the rule unfinished, the last one finished it
    assert all(not rule.finished(result.val_losses[:n]) for n in range(1, result.epochs))
    assert rule.finished(result.val_losses)


def tiny_sweep(out: Path, **overrides: Any) -> SweepConfig:
    settings: dict[str, Any] = dict(out=str(out), variants=(0, 1), seeds=1, samples_per_epoch=8, batch_size=4,
                                    crop=32, eval_crop=32, eval_crops_per_image=1, tile=32, backend="reference",
                                    hw=("loihi2",), device="cpu", model=TINY,
                                    converge=ConvergenceRule(min_epochs=3, max_epochs=5))
    return SweepConfig(**{**settings, **overrides})


def learned(document: dict[str, Any]) -> dict[str, Any]:
    """What a sweep measured of its models, without the seconds it took."""
    keep = ("seed", "psnr_hole", "ssim", "mse_hole", "val_mse", "epochs_trained", "converged", "train_mse_curve",
            "val_mse_curve", "energy_j")
    figures = {}
    for name, v in document["variants"].items():
        for run in v["per_seed"]:
            deployment = {k: x for k, x in run.get("deployment", {}).items() if k != "simulate_seconds"}
            figures[f"{name}_{run['seed']}"] = {**{k: run.get(k) for k in keep}, "deployment": deployment}
    return figures


def _sweep_quietly(config: SweepConfig) -> None:
    run_sweep(config, log=lambda line: None, progress=False)


def test_a_sweep_killed_twice_and_resumed_equals_one_run_through(tmp_path: Path) -> None:
    whole = run_sweep(tiny_sweep(tmp_path / "whole"), log=lambda line: None, progress=False)
    assert whole["protocol"]["epochs"] == "until converged"
    assert whole["protocol"]["convergence"]["max_epochs"] == 5
    for v in whole["variants"].values():
        for run in v["per_seed"]:
            assert 3 <= run["epochs_trained"] == len(run["val_mse_curve"]) == len(run["train_mse_curve"]) <= 5

    out = tmp_path / "killed"
    context = multiprocessing.get_context("spawn")  # a fresh interpreter, as a user's run would be
    # killed (SIGKILL, no clean-up) once in the twin's training, once in the SC-NN's
    for checkpoint, resume in (("all_cnn_seed0.pt", False), ("scnn_seed0.pt", True)):
        child = context.Process(target=_sweep_quietly, args=(tiny_sweep(out, resume=resume),))
        child.start()
        deadline = time.monotonic() + 300
        while not (out / "models" / checkpoint).exists() and child.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        child.kill()
        child.join()
        assert child.exitcode == -9, "the sweep ended before it could be interrupted"
    resumed = run_sweep(tiny_sweep(out, resume=True), log=lambda line: None, progress=False)
    assert resumed["complete"] and resumed["protocol"]["resumed"]
    assert learned(resumed) == learned(whole)
    for name in ("sweep.png", "learning_curves.png", "report.html"):
        assert (out / name).stat().st_size > 0


def test_progress_lines_estimate_the_time_left(tmp_path: Path) -> None:
    lines: list[str] = []
    run_sweep(tiny_sweep(tmp_path / "s", converge=ConvergenceRule(min_epochs=2, max_epochs=2)), log=lines.append,
              progress=False)
    epochs = [line for line in lines if " epoch " in line]
    assert len(epochs) == 4  # two models, two epochs each
    assert all("left (estimate)" in line for line in epochs)
    assert "0.0 min left" in epochs[-1]  # nothing left after the last epoch but the last scoring


@pytest.mark.parametrize(("args", "message"), [
    (("--until-converged", "--epochs", "5"), "--epochs and --until-converged"),
    (("--min-epochs", "5"), "pass --until-converged"),
    (("--until-converged", "--min-epochs", "20", "--max-epochs", "10"), "--max-epochs 10 is below"),
    (("--until-converged", "--min-epochs", "1"), "--min-epochs 1 must be"),
])
def test_bad_convergence_options_are_one_line_exit_2(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    result = run_cli("sweep", "--out", str(tmp_path / "out"), *args, timeout=120)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert not (tmp_path / "out").exists()


def test_resume_refuses_models_trained_to_another_rule(tmp_path: Path) -> None:
    out = tmp_path / "s"
    config = tiny_sweep(out, variants=(0,), converge=ConvergenceRule(min_epochs=2, max_epochs=2))
    run_sweep(config, log=lambda line: None, progress=False)
    with pytest.raises(UserError, match="other settings"):
        run_sweep(tiny_sweep(out, variants=(0,), resume=True, converge=ConvergenceRule(min_epochs=2, max_epochs=4,
                                                                                       improvement=0.05)))
    with pytest.raises(UserError, match="other settings"):  # and a fixed budget is another setting too
        run_sweep(tiny_sweep(out, variants=(0,), resume=True, converge=None, epochs=2))
    assert ModelConfig.from_dict(TINY.to_dict()) == TINY
