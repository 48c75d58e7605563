"""Issue 33, item 4: an output destination that cannot be written is refused before the work, in one line,
exit 2, by every command that writes (it was found after the work: a traceback, exit 1).

The tests run as root, where permission bits do not stop a write; a read-only mount does. The folder is a
read-only tmpfs where mounting is allowed, else a path under /sys (where no file can be created, root or not).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from neurodeploy.io import write_png


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "read-only"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)],
                             capture_output=True).returncode == 0
    if not mounted:
        yield Path("/sys/neurodeploy-test-read-only")
        return
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """``neurodeploy ARGS`` in this process (the checks come before any work, so no command gets far)."""
    from neurodeploy.cli.main import main

    monkeypatch.setattr(sys, "argv", ["neurodeploy", *args])
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        with pytest.raises(SystemExit) as stop:
            main()
    finally:  # main() takes SIGINT and SIGTERM over: give them back to pytest
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    return int(stop.value.code or 0), capsys.readouterr().err


def test_every_command_refuses_a_read_only_destination_before_the_work(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, read_only: Path,
        tiny_bundle: Path, tiny_checkpoint: Path) -> None:
    photo = tmp_path / "photo.png"
    write_png(photo, np.random.default_rng(0).integers(0, 256, (40, 36, 3), dtype=np.uint8))
    folder = tmp_path / "photos"
    folder.mkdir()
    write_png(folder / "a.png", np.zeros((30, 30, 3), np.uint8))
    here = tmp_path / "written"
    simulate = ("simulate", str(tiny_bundle), "--image", str(photo), "--random-mask", "1", "--backend", "torch")
    commands = {
        "simulate -o": (*simulate, "-o", str(read_only / "out.png")),
        "simulate -o FOLDER": ("simulate", str(tiny_bundle), "--image", str(folder), "--random-mask", "1",
                               "-o", str(read_only / "out")),
        "simulate --json": (*simulate, "-o", str(here / "out.png"), "--json", str(read_only / "r.json")),
        "simulate --spikes": (*simulate, "-o", str(here / "out.png"), "--spikes", str(read_only / "s.npz")),
        "simulate --results": (*simulate, "-o", str(here / "out.png"), "--results", str(read_only / "i.jsonl")),
        "profile --report": ("profile", str(tiny_bundle), "--image", str(photo), "--random-mask", "1",
                             "--backend", "reference", "--report", str(read_only / "report")),
        "profile --json": ("profile", str(tiny_bundle), "--image", str(photo), "--random-mask", "1",
                           "--backend", "reference", "--json", str(read_only / "p.json")),
        "evaluate --json": ("evaluate", str(tiny_checkpoint), "--json", str(read_only / "e.json")),
        "train -o": ("train", "-o", str(read_only / "model.pt"), "--epochs", "1"),
        "convert -o": ("convert", str(tiny_checkpoint), "-o", str(read_only / "b.bundle")),
        "sweep --out": ("sweep", "--out", str(read_only / "sweep"), "--epochs", "1"),
        "demo -o": ("demo", "-o", str(read_only / "demo")),
    }
    for what, args in commands.items():
        code, err = _run(monkeypatch, capsys, *args)
        assert code == 2, (what, code, err)
        assert "not writable" in err and err.strip().count("\n") == 0 and "Traceback" not in err, (what, err)
    assert not here.exists()  # nothing written anywhere
