"""Large runs: per-item JSON lines with resume, and Ray (a local cluster, loopback) with a worker killed mid-run."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from neurodeploy.cluster import ImageWork, ResultsLog, parse_cluster, run_items
from neurodeploy.data import MaskSpec, random_mask
from neurodeploy.errors import UserError
from neurodeploy.simulation import SimulationInput


def _items(n: int) -> list[tuple[str, Any]]:
    def load(i: int) -> SimulationInput:
        rng = np.random.default_rng([5, i])
        return SimulationInput(f"img{i}", rng.integers(0, 256, (48, 40, 3), dtype=np.uint8),
                               random_mask(rng, 48, 40, MaskSpec()))
    return [(f"img{i}", (lambda i=i: load(i))) for i in range(n)]


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _timeless(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "seconds"}


def _one_process(bundle: Path, n: int) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    images: dict[str, np.ndarray] = {}
    records = run_items(ImageWork(bundle, "torch"), _items(n), on_item=lambda r, a: images.__setitem__(r["id"], a))
    return records, images


def test_results_are_written_per_item_and_a_rerun_resumes_after_a_partial_line(tiny_bundle: Path,
                                                                              tmp_path: Path) -> None:
    want, _ = _one_process(tiny_bundle, 5)
    log = tmp_path / "items.jsonl"
    run_items(ImageWork(tiny_bundle, "torch"), _items(5)[:3], results=log)
    with open(log, "a") as handle:  # a crash while writing the fourth record
        handle.write(json.dumps({"id": "img3", "name": "img3"})[:12])
    seen: list[str] = []
    got = run_items(ImageWork(tiny_bundle, "torch"), _items(5), results=log, on_item=lambda r, a: seen.append(r["id"]))
    assert seen == ["img3", "img4"]
    assert [r["id"] for r in _lines(log)] == [f"img{i}" for i in range(5)]
    assert [_timeless(r) for r in got] == [_timeless(r) for r in want]


def test_bad_cluster_and_results_arguments_are_user_errors(tmp_path: Path) -> None:
    assert parse_cluster(None) is None and parse_cluster("ray") == "" and parse_cluster("ray:1.2.3.4:6379") == "1.2.3.4:6379"
    with pytest.raises(UserError, match="unknown cluster"):
        parse_cluster("dask")
    with pytest.raises(UserError, match="not a .jsonl"):
        ResultsLog(tmp_path / "items.json")


def _kill_one_worker() -> int:
    """SIGKILL one of Ray's WorkActor processes; its pid."""
    import psutil

    for proc in psutil.process_iter(["cmdline"]):
        if any("WorkActor" in part for part in proc.info["cmdline"] or []):
            os.kill(proc.pid, signal.SIGKILL)
            return proc.pid
    raise AssertionError("no Ray worker found")


def test_ray_with_a_worker_killed_mid_run_ends_with_every_item_exactly_once(tiny_bundle: Path,
                                                                             tmp_path: Path) -> None:
    pytest.importorskip("ray")
    n = 8
    want, want_images = _one_process(tiny_bundle, n)
    log = tmp_path / "items.jsonl"
    images: dict[str, np.ndarray] = {}
    killed: list[int] = []

    def on_item(record: dict[str, Any], image: np.ndarray) -> None:
        images[record["id"]] = image
        if not killed:  # after the first item came back, with items in flight on both workers
            killed.append(_kill_one_worker())

    got = run_items(ImageWork(tiny_bundle, "torch"), _items(n), cluster="ray", workers=2, results=log,
                    on_item=on_item)
    assert killed
    ids = [r["id"] for r in _lines(log)]
    assert sorted(ids) == sorted(f"img{i}" for i in range(n)) and len(ids) == n
    assert [_timeless(r) for r in got] == [_timeless(r) for r in want]
    assert all(np.array_equal(images[k], want_images[k]) for k in want_images)
