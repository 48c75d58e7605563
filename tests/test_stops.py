"""Issue 33, item 3 (and item 10's Ctrl-C): SIGTERM or Ctrl-C to the process group of a Lava ``simulate``, as a
scheduler, systemd, a container stop or a terminal sends them, and a disk that fills mid-run: each ends the run
at once with one line, Lava's processes stopped, their shared memory freed, what finished kept."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.bench_sigterm import descendants, one_try, photos


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return photos(tmp_path_factory.mktemp("stops") / "photos", count=200)


def _assert_ok(record: dict) -> None:
    assert record["running_when_sent"] and record["children"] and record["segments"], record
    assert not record["hung"] and record["seconds"] < 10, record
    assert record["segments_left"] == [] and record["survivors"] == [], record
    assert record["stderr_lines"] == 1 and record["ok"], record
    assert 1 <= record["images_kept"] < 200


def test_sigterm_to_the_process_group_stops_a_lava_run_cleanly(tiny_bundle: Path, folder: Path,
                                                               tmp_path: Path) -> None:
    record = one_try(tiny_bundle, folder, tmp_path / "out")
    _assert_ok(record)
    assert record["exit"] == 143 and "SIGTERM" in record["stderr"][0]


def test_ctrl_c_to_the_process_group_says_one_line_and_writes_the_partial_json(tiny_bundle: Path, folder: Path,
                                                                               tmp_path: Path) -> None:
    out, report = tmp_path / "out", tmp_path / "run.json"
    record = one_try(tiny_bundle, folder, out, extra=("--json", str(report)), signum=signal.SIGINT)
    _assert_ok(record)
    assert record["exit"] == 130 and "Ctrl-C" in record["stderr"][0] and str(report) in record["stderr"][0]
    written = json.loads(report.read_text())
    assert written["interrupted"] is True
    assert sorted(r["name"] for r in written["results"]) == sorted(p.stem for p in out.glob("*.png"))


@pytest.mark.slow
def test_sigterm_to_the_process_group_ten_times(tiny_bundle: Path, folder: Path, tmp_path: Path) -> None:
    """The issue's bar: 10 of 10 tries end within 10 s with nothing left in /dev/shm (6 of 10 hung before)."""
    records = [one_try(tiny_bundle, folder, tmp_path / f"out{n}") for n in range(10)]
    assert [r["ok"] for r in records] == [True] * 10, [r for r in records if not r["ok"]]


@pytest.fixture
def small_disk(tmp_path: Path) -> object:
    """A 100 KiB tmpfs: room for two of the photos' PNGs, so the disk fills mid-run (mounting needs root)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=100k", "tmpfs", str(disk)],
                      capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root (CAP_SYS_ADMIN)")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.mark.parametrize("results", [False, True])
def test_a_disk_full_mid_run_is_one_line_and_no_hang(tiny_bundle: Path, folder: Path, small_disk: Path,
                                                     results: bool) -> None:
    out = small_disk / "out"
    more = ["--results", str(small_disk / "items.jsonl")] if results else []
    proc = subprocess.Popen([sys.executable, "-m", "neurodeploy", "simulate", str(tiny_bundle), "--image",
                             str(folder), "--random-mask", "1", "-o", str(out), *more], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    children: dict[int, float] = {}
    while proc.poll() is None and time.monotonic() < deadline:
        children |= descendants(proc.pid)
        time.sleep(0.1)
    if proc.poll() is None:
        proc.kill()
        pytest.fail("simulate hung after a write error")
    err = proc.stderr.read() if proc.stderr else ""
    assert proc.returncode == 1, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "No space left on device" in err and str(out) in err
    assert 1 <= len(list(out.glob("*.png"))) < 200
