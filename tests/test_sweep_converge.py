"""``neurodeploy sweep --until-converged``: the stopping rule, resuming after a kill, the refusals."""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from neurodeploy.errors import UserError
from neurodeploy.inpainter.model import ModelConfig
from neurodeploy.inpainter.sweep import SweepConfig, run_sweep
from neurodeploy.inpainter.train import ConvergenceRule, TrainConfig, train
from tests.conftest import TINY, run_cli


def stop_epoch(rule: Any, curve: list[float]) -> int:
    """The epoch after which training would stop on ``curve``, as train() applies the rule."""
    for n in range(1, len(curve) + 1):
        if rule.finished(curve[:n]):
            return n
    raise AssertionError("the rule never stopped on this curve")


def test_the_rule_on_hand_made_curves() -> None:
    rule = ConvergenceRule(min_epochs=5, max_epochs=100)
    # falls, then flat at 0.1 from epoch 7: the window is max(5, ceil(n / 4)) epochs, compared by its mean
    # with the mean of the 5 before it; at n = 15 those are 0.12 and four 0.1 (the window's 0.1 is 3.8%
    # below their mean), at n = 16 all ten are 0.1
    flat = [1.0, 0.5, 0.3, 0.2, 0.15, 0.12] + [0.1] * 11
    assert not rule.converged(flat[:15]) and rule.converged(flat[:16]) and stop_epoch(rule, flat) == 16
    # a steady 2% fall per epoch never converges: it runs to max_epochs and is not converged there
    falling = [0.98 ** n for n in range(100)]
    assert stop_epoch(rule, falling) == 100 and not rule.converged(falling)
    # a window's mean 0.9% better than the one before is not 1%; 1.1% is (window of 5 at n = 15)
    assert rule.converged([1.0] * 14 + [0.951])
    assert not rule.converged([1.0] * 14 + [0.949])
    # the window is a quarter of the epochs, rounded up, 5 at least
    assert [rule.window_epochs(n) for n in (5, 20, 21, 24, 25, 40)] == [5, 5, 6, 6, 7, 10]
    # never before min_epochs, nor before two windows, even on a flat curve
    assert not ConvergenceRule(min_epochs=12, max_epochs=20).converged([0.1] * 11)
    assert ConvergenceRule(min_epochs=12, max_epochs=20).converged([0.1] * 12)
    assert not ConvergenceRule(min_epochs=2, max_epochs=20).converged([0.1] * 9)
    assert ConvergenceRule(min_epochs=2, max_epochs=20).converged([0.1] * 10)


def noisy_curve(seed: int, fall: float, epochs: int = 60, noise: float = 0.04) -> list[float]:
    """A validation curve falling by ``fall`` per epoch (relative), each epoch off by seeded noise of
    ``noise`` (relative, normal): the kind of curve 13 photos and 16 validation crops give."""
    rng = np.random.default_rng(seed)
    return [float((1 - fall) ** n * (1 + noise * rng.standard_normal())) for n in range(epochs)]


def test_the_rule_does_not_stop_a_noisy_falling_curve_early() -> None:
    rule = ConvergenceRule(min_epochs=10, max_epochs=60)
    old = MinimumRule(min_epochs=10, max_epochs=60)
    # still falling 1.5% per epoch (25% over 20 epochs) under 4% noise: the minimum-based rule stopped
    # 16 of 20 such runs by epoch 20; the window means stop 1 (at epoch 10) and let the others run on
    seeds = range(20)
    old_stops = [stop_epoch(old, noisy_curve(s, 0.015)) for s in seeds]
    new_stops = [stop_epoch(rule, noisy_curve(s, 0.015)) for s in seeds]
    assert sum(n <= 20 for n in old_stops) >= 15, old_stops
    assert sum(n <= 20 for n in new_stops) <= 1, new_stops
    # a flat noisy curve converges, well before max_epochs
    flat_stops = [stop_epoch(rule, noisy_curve(s, 0.0)) for s in seeds]
    assert max(flat_stops) < 40, flat_stops


@dataclasses.dataclass(frozen=True)
class MinimumRule:
    """The rule before issue 37, for comparison: the best of the last 20% of epochs against the best before."""

    min_epochs: int
    max_epochs: int

    def finished(self, v: list[float]) -> bool:
        n = len(v)
        if n >= self.max_epochs:
            return True
        w = max(1, math.ceil(round(0.2 * n, 9)))
        return n >= self.min_epochs and min(v[n - w:]) > 0.99 * min(v[:n - w])


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
