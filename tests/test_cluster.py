"""Large runs: per-item JSON lines with resume, and Ray (a local cluster, loopback) with a worker killed mid-run."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from neurodeploy.cli.works import ImageWork
from neurodeploy.errors import UserError
from neurodeploy.inpainter.data import MaskSpec, random_mask
from neurodeploy.inpainter.simulator import SimulationInput
from neurodeploy.runtime.cluster import ResultsLog, parse_cluster, run_items


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
    assert parse_cluster(None) is None and parse_cluster("ray") == ""
    assert parse_cluster("ray:1.2.3.4:6379") == "1.2.3.4:6379"
    with pytest.raises(UserError, match="unknown cluster"):
        parse_cluster("dask")
    with pytest.raises(UserError, match=r"not a \.jsonl"):
        ResultsLog(tmp_path / "items.json")


def _kill_one_worker() -> int:
    """SIGKILL one of the WorkActor processes of the Ray cluster this test started (its descendants); its pid."""
    import psutil

    for proc in psutil.Process().children(recursive=True):
        if any("WorkActor" in part for part in proc.cmdline()):
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


# -- the command line ---------------------------------------------------------------------------------

def test_simulate_a_folder_with_results_resumes_and_matches_the_plain_run(tiny_bundle: Path, tmp_path: Path) -> None:
    from neurodeploy.io import read_image, write_png

    from .conftest import run_cli

    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        write_png(folder / f"p{i}.png", np.random.default_rng(i).integers(0, 256, (40, 36, 3), dtype=np.uint8))
    plain = run_cli("simulate", str(tiny_bundle), "--image", str(folder), "--random-mask", "1", "--backend",
                    "torch", "-o", str(tmp_path / "plain"))
    assert plain.returncode == 0, plain.stderr[-2000:]
    log = tmp_path / "items.jsonl"
    log.write_text(json.dumps({"id": "p0"})[:5])  # a partial line only: every image runs
    large = run_cli("simulate", str(tiny_bundle), "--image", str(folder), "--random-mask", "1", "--backend",
                    "torch", "-o", str(tmp_path / "large"), "--results", str(log), "--json", str(tmp_path / "r.json"))
    assert large.returncode == 0, large.stderr[-2000:]
    assert [r["id"] for r in _lines(log)] == ["p0", "p1", "p2"]
    for i in range(3):
        plain_png, large_png = (read_image(tmp_path / run / f"p{i}.png") for run in ("plain", "large"))
        assert np.array_equal(plain_png, large_png)
    again = run_cli("simulate", str(tiny_bundle), "--image", str(folder), "--random-mask", "1", "--backend",
                    "torch", "-o", str(tmp_path / "large"), "--results", str(log))
    assert again.returncode == 0 and len(_lines(log)) == 3 and "p0:" not in again.stdout


@pytest.mark.parametrize("backend, device, cluster, results, message", [
    ("lava", "cuda", None, None, "runs only on the torch backend"),
    ("torch", "gpu", None, None, "unknown --device"),
    ("torch", "cpu", "dask", None, "unknown cluster"),
    ("torch", "cpu", None, "out.csv", r"not a \.jsonl"),
])
def test_bad_scale_options_are_user_errors(backend: str, device: str, cluster: str | None, results: str | None,
                                           message: str) -> None:
    from neurodeploy.cli.inputs import check_scale as _check_scale

    with pytest.raises(UserError, match=message):
        _check_scale(backend, device, cluster, None if results is None else Path(results))


def test_a_bad_scale_option_fails_in_one_line_before_work(tiny_bundle: Path, tmp_path: Path) -> None:
    from .conftest import run_cli

    result = run_cli("simulate", str(tiny_bundle), "--image", str(tmp_path), "--random-mask", "1", "--device", "cuda",
                     cwd=tmp_path)
    assert result.returncode == 2 and "runs only on the torch backend" in result.stderr
    assert "Traceback" not in result.stderr and not list(tmp_path.glob("*-inpainted"))


@pytest.fixture(scope="module")
def mlp_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    import nir

    from neurodeploy.inpainter.conversion import convert

    from .test_chip_segments import _mlp_net

    root = tmp_path_factory.mktemp("mlp")
    _, graph = _mlp_net()
    graph.infer_types()
    nir.write(root / "mlp.nir", graph)
    # stock netx files: SampleWork's Lava runs stock lava-dl models by default
    convert(root / "mlp.nir", root / "mlp.bundle", dt=1e-4, stock_netx=True)
    np.save(root / "x.npy", (np.random.default_rng(0).random((6, 8, 20)) < 0.4).astype(np.float32))
    return root / "mlp.bundle", root / "x.npy"


def test_a_graph_input_set_on_ray_equals_the_one_process_run(mlp_bundle: tuple[Path, Path], tmp_path: Path) -> None:
    """simulate --input on a local Ray cluster (torch backend): the same outputs, in input order, as the plain run."""
    pytest.importorskip("ray")
    from .conftest import run_cli

    bundle, x = mlp_bundle
    plain = run_cli("simulate", str(bundle), "--input", str(x), "-o", str(tmp_path / "plain.npz"))
    assert plain.returncode == 0, plain.stderr[-2000:]
    log = tmp_path / "samples.jsonl"
    ray = run_cli("simulate", str(bundle), "--input", str(x), "--backend", "torch", "--cluster", "ray",
                  "--results", str(log), "-o", str(tmp_path / "ray.npz"))
    assert ray.returncode == 0, ray.stderr[-2000:]
    assert "bit-exact with the reference: yes" in ray.stdout
    assert sorted(r["id"] for r in _lines(log)) == [str(n) for n in range(6)]
    want, got = (np.load(tmp_path / f"{run}.npz")["output"] for run in ("plain", "ray"))
    assert want.any() and np.array_equal(want, got)


@pytest.mark.parametrize("kind", ["graph", "inpainter"])
def test_profile_with_results_equals_the_plain_profile(kind: str, mlp_bundle: tuple[Path, Path], tiny_bundle: Path,
                                                       tmp_path: Path) -> None:
    from neurodeploy.io import write_png

    from .conftest import run_cli

    if kind == "graph":
        bundle, x = mlp_bundle
        what = ["--input", str(x), "--backend", "reference"]
    else:
        bundle, folder = tiny_bundle, tmp_path / "photos"
        folder.mkdir()
        for i in range(2):
            write_png(folder / f"p{i}.png", np.random.default_rng(i).integers(0, 256, (40, 36, 3), dtype=np.uint8))
        what = ["--image", str(folder), "--random-mask", "2", "--backend", "reference"]
    plain = run_cli("profile", str(bundle), *what, "--json", str(tmp_path / "plain.json"))
    assert plain.returncode == 0, plain.stderr[-2000:]
    items = run_cli("profile", str(bundle), *what, "--backend", "torch", "--results", str(tmp_path / "i.jsonl"),
                    "--json", str(tmp_path / "items.json"))
    assert items.returncode == 0, items.stderr[-2000:]
    want, got = (json.loads((tmp_path / f"{run}.json").read_text()) for run in ("plain", "items"))
    assert want.pop("backend") == "reference" and got.pop("backend") == "torch"
    assert want == got


def test_graph_samples_on_lava_compile_each_segment_once_per_worker(mlp_bundle: tuple[Path, Path],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """SampleWork on Lava: sample after sample on one compiled segment, each output the reference's."""
    from neurodeploy.cli.works import SampleWork
    from neurodeploy.runtime.cluster import sample_items
    from neurodeploy.runtime.lava import segment_run as segment_lava

    compiled: list[int] = []
    real_enter = segment_lava.LavaSegment.__enter__
    monkeypatch.setattr(segment_lava.LavaSegment, "__enter__", lambda self: compiled.append(1) or real_enter(self))
    bundle, x = mlp_bundle
    samples = np.load(x)[:3]
    outputs: dict[str, dict[str, np.ndarray]] = {}
    for backend in ("reference", "lava"):
        outputs[backend] = {}
        records = run_items(SampleWork(bundle, backend), sample_items(samples),
                            on_item=lambda r, a, b=backend: outputs[b].__setitem__(r["id"], a))
        assert all(r["exact_vs_reference"] for r in records)
    assert len(compiled) == 1  # one chip segment, three samples
    assert any(a.any() for a in outputs["reference"].values())
    for name, want in outputs["reference"].items():
        assert np.array_equal(want, outputs["lava"][name])
