"""No orphaned Lava processes or shared memory, however simulate ends; interrupted work resumes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from PIL import Image

from benchmarks.bench_sigterm import segments_of

SHM = Path("/dev/shm")


def _shm() -> set[str]:
    return set(os.listdir(SHM)) if SHM.is_dir() else set()


def _photos(folder: Path, count: int, size: int = 96, broken_at: int | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        path = folder / f"img{i:03d}.png"
        if i == broken_at:
            path.write_bytes(b"\x89PNG\r\n\x1a\nbroken")
        else:
            Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path)
    return folder


def _as_at_a_terminal() -> None:
    """The child takes Ctrl-C as a command started at a terminal does: a shell runs background jobs (and
    so a test suite started with ``&``) with SIGINT ignored, which the child would inherit."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Watched:
    """A neurodeploy command in a subprocess whose descendants are recorded while it runs."""

    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "neurodeploy", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, preexec_fn=_as_at_a_terminal)
        self.children: dict[int, float] = {}
        self.seen: dict[int, list[tuple[float, str]]] = {}  # pid -> (when, process name) at each look

    def wait_for_output(self, timeout: float = 120) -> str:
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        self.record()
        return line

    def record(self) -> None:
        try:
            for child in psutil.Process(self.proc.pid).children(recursive=True):
                self.children[child.pid] = child.create_time()
                with contextlib.suppress(psutil.Error):
                    self.seen.setdefault(child.pid, []).append((time.monotonic(), child.name()))
        except psutil.NoSuchProcess:
            pass

    def python_children(self, lasting: float = 0.5) -> list[int]:
        """Children seen as Python for at least ``lasting`` seconds (Lava's forked processes), not the moment
        between a library's fork and exec of a helper program, which a look can catch."""
        return [pid for pid, looks in self.seen.items()
                if all(name.startswith("python") for _, name in looks) and looks[-1][0] - looks[0][0] >= lasting]

    def finish(self, timeout: float = 120) -> tuple[int, str]:
        _, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, err

    def survivors(self) -> list[int]:
        alive = []
        for pid, created in self.children.items():
            try:
                p = psutil.Process(pid)
                if p.create_time() == created and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                pass
        return alive


def _assert_clean(watched: Watched, shm_before: set[str]) -> None:
    assert watched.children, "the Lava run should have forked processes"
    deadline = time.monotonic() + 10
    while watched.survivors() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert watched.survivors() == []
    assert _shm() - shm_before == set()


def test_simulate_success_leaves_nothing_behind(tmp_path: Path, tiny_bundle: Path) -> None:
    photos = _photos(tmp_path / "in", 3)
    before = _shm()
    run = Watched(["simulate", str(tiny_bundle), "--image", str(photos), "--random-mask", "1",
                   "-o", str(tmp_path / "out")])
    assert run.wait_for_output()
    code, err = run.finish()
    assert code == 0, err
    assert len(list((tmp_path / "out").glob("*.png"))) == 3
    _assert_clean(run, before)


def test_bad_input_found_mid_batch_stops_cleanly_with_one_line(tmp_path: Path, tiny_bundle: Path) -> None:
    """A photo that turns bad while the run goes on (every photo is checked before the work starts, so a file
    broken from the outset never gets this far: tests/test_input_checks.py) stops the run in one line."""
    photos = _photos(tmp_path / "in", 5)
    before = _shm()
    run = _simulating(tiny_bundle, photos, tmp_path / "out")
    (photos / "img004.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")  # the last photo, read last
    code, err = run.finish()
    assert code == 2 and err.strip().count("\n") == 0 and "img004" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"img00{k}.png" for k in range(4)]
    _assert_clean(run, before)
    # and --skip-existing continues where it stopped once the file is fixed
    Image.fromarray(np.zeros((96, 96, 3), np.uint8)).save(photos / "img004.png")
    again = subprocess.run([sys.executable, "-m", "neurodeploy", "simulate", str(tiny_bundle), "--image",
                            str(photos), "--random-mask", "1", "-o", str(tmp_path / "out"), "--skip-existing"],
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "img000" not in again.stdout and "img004" in again.stdout
    assert len(list((tmp_path / "out").glob("*.png"))) == 5


def _simulating(bundle: Path, photos: Path, out: Path) -> Watched:
    """``simulate`` of a folder, returned once its first image is written: Lava is running then.

    Watched through the files: stdout is block-buffered in a pipe.
    """
    run = Watched(["simulate", str(bundle), "--image", str(photos), "--random-mask", "1", "-o", str(out)])
    deadline = time.monotonic() + 120
    while not list(out.glob("*.png")) and run.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    run.record()
    return run


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_simulate_stops_every_lava_process(tmp_path: Path, tiny_bundle: Path, signum: int) -> None:
    count = 200
    photos = _photos(tmp_path / "in", count, size=120)
    before = _shm()
    out = tmp_path / "out"
    run = _simulating(tiny_bundle, photos, out)
    run.proc.send_signal(signum)
    code, _ = run.finish()
    assert code != 0
    assert 1 <= len(list(out.glob("*.png"))) < count  # it stopped mid-batch
    _assert_clean(run, before)
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "out").iterdir())


def test_killed_simulate_takes_its_lava_processes_and_shared_memory_with_it(tmp_path: Path,
                                                                             tiny_bundle: Path) -> None:
    """SIGKILL cannot be caught: the reaper (neurodeploy.runtime.lava.reaper) cleans up from outside.

    The segments checked are the run's own (open or mapped in its processes), not every new
    one in /dev/shm: another program's may come and go meanwhile.
    """
    photos = _photos(tmp_path / "in", 200, size=120)
    out = tmp_path / "out"
    run = _simulating(tiny_bundle, photos, out)
    segments = segments_of([run.proc.pid, *run.children])
    commands = {pid: " ".join(psutil.Process(pid).cmdline()) for pid in run.children if psutil.pid_exists(pid)}
    assert run.proc.poll() is None and run.children and segments, "Lava should be running, with shared memory"
    run.proc.send_signal(signal.SIGKILL)
    run.proc.wait()
    time.sleep(5)
    assert run.survivors() == []  # every Lava process, the shared-memory server, the reaper
    assert segments & _shm() == set()
    assert any("neurodeploy.runtime.lava.reaper" in command for command in commands.values())  # which was there


FAILING_RUN = """
import sys, numpy as np
import neurodeploy.inpainter.tiling as tiling
import neurodeploy.runtime.lava.segment_run as segment_lava
from lava.magma.core.decorator import implements
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from neurodeploy.bundle.format import Bundle
from neurodeploy.runtime.lava.processes.segment import ChipSegment, PyChipSegmentModel

@implements(proc=ChipSegment, protocol=LoihiProtocol)
class Failing(PyChipSegmentModel):
    def run_spk(self):
        if self.time_step == 3:
            raise ValueError("fault injected inside a Lava process")
        super().run_spk()

select = segment_lava.select_run_config
def with_fault(*args, **kwargs):
    cfg = select(*args, **kwargs)
    cfg.exception_proc_model_map[ChipSegment] = Failing
    return cfg
segment_lava.select_run_config = with_fault
with tiling.SpikeBridge.of(Bundle.load(sys.argv[1])) as b:
    print("started", flush=True)
    b.run(np.zeros((4, 4, 48, 48), np.uint8))
"""


def test_an_exception_inside_a_lava_process_is_reported_and_cleaned_up(tmp_path: Path, tiny_bundle: Path) -> None:
    before = _shm()
    proc = subprocess.Popen([sys.executable, "-c", FAILING_RUN, str(tiny_bundle)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    run = Watched.__new__(Watched)
    run.proc, run.children, run.seen = proc, {}, {}
    run.wait_for_output()
    code, err = run.finish(timeout=60)
    assert code == 1
    assert "LavaProcessError" in err and "fault injected inside a Lava process" in err
    _assert_clean(run, before)


def _wait_for(path: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_train_killed_mid_epoch_resumes_to_the_same_weights(tmp_path: Path) -> None:
    import torch

    from neurodeploy.inpainter.checkpoint import load_model

    from .conftest import TINY

    config = tmp_path / "tiny.json"
    config.write_text(TINY.to_json())
    common = ["train", "--config", str(config), "--timesteps", "4", "--crop", "32", "--samples-per-epoch", "64",
              "--batch-size", "4", "--epochs", "8", "--device", "cpu"]
    killed = tmp_path / "killed.pt"
    proc = subprocess.Popen([sys.executable, "-m", "neurodeploy", *common, "--out", str(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(killed)  # epoch 1 is saved; epoch 2 is under way (an epoch takes a fraction of a second)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 1 <= torch.load(killed, weights_only=True)["epoch"] < 8  # killed before the end
    resumed = subprocess.run([sys.executable, "-m", "neurodeploy", *common, "--out", str(killed), "--resume"],
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    straight = subprocess.run([sys.executable, "-m", "neurodeploy", *common, "--out", str(tmp_path / "s.pt")],
                              capture_output=True, text=True, timeout=600)
    assert straight.returncode == 0, straight.stderr
    a, ckpt = load_model(killed)
    b, _ = load_model(tmp_path / "s.pt")
    assert ckpt["epoch"] == 8
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name


def test_convert_killed_mid_write_leaves_no_bundle(tmp_path: Path, tiny_checkpoint: Path) -> None:
    out = tmp_path / "bundle"
    proc = subprocess.Popen([sys.executable, "-m", "neurodeploy", "convert", str(tiny_checkpoint), "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not any(p.name.startswith(".bundle.pid") for p in tmp_path.iterdir()):  # writing has begun
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    done = subprocess.run([sys.executable, "-m", "neurodeploy", "convert", str(tiny_checkpoint), "-o", str(out),
                           "--tile", "16"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".bundle")) == []  # swept


def test_bad_first_image_stops_a_runtime_that_never_ran(tmp_path: Path, tiny_bundle: Path) -> None:
    photos = _photos(tmp_path / "in", 2, broken_at=0)
    before = _shm()
    run = Watched(["simulate", str(tiny_bundle), "--image", str(photos), "--random-mask", "1",
                   "-o", str(tmp_path / "out")])
    deadline = time.monotonic() + 60
    while run.proc.poll() is None and time.monotonic() < deadline:
        run.record()
        time.sleep(0.05)
    code, err = run.finish(timeout=60)
    assert code == 2 and "img000" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert not run.python_children(), f"the photos are checked before Lava starts: {run.seen}"
    assert _shm() - before == set()
