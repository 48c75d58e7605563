"""SIGTERM to the process group of a Lava ``simulate``, as a scheduler, systemd or ``docker stop`` sends it.

Each try starts ``neurodeploy simulate BUNDLE --image FOLDER --random-mask 1
--backend lava -o OUT`` in a process group of its own, waits for its first
image (Lava is running then), records the /dev/shm segments its processes
hold and its descendants, sends SIGTERM to the whole group and waits. A try
passes when the command ends within ``--limit`` seconds (10), with exit status
143, one line on stderr, no descendant alive and none of its segments left in
/dev/shm. Only the run's own segments are checked: other programs' come and go.

    python benchmarks/bench_sigterm.py [--tries 10] [--bundle B] [--json out.json]

Without ``--bundle``, a small untrained inpainter bundle is converted here.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from PIL import Image

SHM = Path("/dev/shm")


def segments_of(pids: list[int]) -> set[str]:
    """The /dev/shm segments these processes hold open or have mapped."""
    names: set[str] = set()
    for pid in pids:
        links: list[str] = []
        try:
            fd_dir = Path(f"/proc/{pid}/fd")
            links = [os.readlink(fd_dir / fd) for fd in os.listdir(fd_dir)]
            links += [line.split(maxsplit=5)[-1] for line in Path(f"/proc/{pid}/maps").read_text().splitlines()]
        except OSError:
            pass
        names |= {link.split("/dev/shm/", 1)[1].split()[0] for link in links if "/dev/shm/" in link}
    return names


def descendants(pid: int) -> dict[int, float]:
    try:
        return {p.pid: p.create_time() for p in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return {}


def alive(processes: dict[int, float]) -> list[int]:
    """Those of ``processes`` (pid: start time) still running (zombies count as ended)."""
    living = []
    for pid, created in processes.items():
        try:
            p = psutil.Process(pid)
            if p.create_time() == created and p.status() != psutil.STATUS_ZOMBIE:
                living.append(pid)
        except psutil.NoSuchProcess:
            pass
    return living


def photos(folder: Path, count: int = 200, size: int = 120) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(folder / f"img{i:03d}.png")
    return folder


def _as_at_a_terminal() -> None:
    """Take Ctrl-C as a command started at a terminal does (a background shell job ignores SIGINT)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def one_try(bundle: Path, folder: Path, out: Path, limit: float = 10.0, extra: tuple[str, ...] = (),
            signum: int = signal.SIGTERM) -> dict[str, Any]:
    """One ``signum`` (SIGTERM; SIGINT is Ctrl-C at a terminal) to the group of a running Lava simulate; what it
    left (see the module's docstring); ``ok`` with exit status 128 + signum."""
    proc = subprocess.Popen([sys.executable, "-m", "neurodeploy", "simulate", str(bundle), "--image", str(folder),
                             "--random-mask", "1", "--backend", "lava", "-o", str(out), *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_as_at_a_terminal)
    deadline = time.monotonic() + 300
    while not list(out.glob("*.png")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    children = descendants(proc.pid)
    segments = segments_of([proc.pid, *children])
    running = proc.poll() is None
    sent = time.monotonic()
    os.killpg(proc.pid, signum)
    try:
        _, err = proc.communicate(timeout=limit)
        seconds, hung = time.monotonic() - sent, False
    except subprocess.TimeoutExpired:
        seconds, hung = time.monotonic() - sent, True
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
    time.sleep(0.5)  # let the kernel reap what just died
    left = sorted(segments & set(os.listdir(SHM)))
    survivors = alive(children)
    lines = [line for line in err.strip().splitlines() if line.strip()]
    record = {"running_when_sent": running, "children": len(children), "segments": len(segments),
              "seconds": round(seconds, 2), "hung": hung, "exit": proc.returncode, "stderr_lines": len(lines),
              "stderr": lines[-3:], "segments_left": left, "survivors": survivors,
              "images_kept": len(list(out.glob("*.png")))}
    record["ok"] = (running and not hung and proc.returncode == 128 + signum and not left and not survivors
                    and len(lines) == 1 and bool(children) and bool(segments))
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tries", type=int, default=10)
    parser.add_argument("--bundle", type=Path, default=None)
    parser.add_argument("--limit", type=float, default=10.0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bundle = args.bundle
        if bundle is None:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
            from neurodeploy.inpainter.checkpoint import save_checkpoint
            from neurodeploy.inpainter.conversion import convert
            from tests.conftest import tiny_model

            save_checkpoint(root / "tiny.pt", tiny_model(), epoch=0, train_losses=[], val_losses=[])
            bundle = root / "tiny.bundle"
            convert(root / "tiny.pt", bundle, tile=24)
        folder = photos(root / "photos")
        tries = []
        for n in range(args.tries):
            record = one_try(bundle, folder, root / f"out{n}", args.limit)
            tries.append(record)
            print(f"try {n + 1}: {'ok' if record['ok'] else 'FAILED'} in {record['seconds']:.2f} s, exit "
                  f"{record['exit']}, {record['children']} children and {record['segments']} segments before, "
                  f"{len(record['survivors'])} alive and {len(record['segments_left'])} left after; "
                  f"{record['images_kept']} images kept; stderr: {record['stderr']}", flush=True)
    passed = sum(record["ok"] for record in tries)
    print(f"{passed} of {len(tries)} tries ended within {args.limit:g} s, exit 143, nothing left in /dev/shm")
    if args.json is not None:
        args.json.write_text(json.dumps({"tries": tries, "passed": passed, "limit_s": args.limit}, indent=2))


if __name__ == "__main__":
    main()
