"""The speed a user gets: ``neurodeploy simulate`` as typed on the command line, beside the in-process pipeline.

Two inputs, every backend (reference, torch, lava), side by side in one run:

* images: the shipped checkpoint converted to a bundle; a folder of whole photos of mixed sizes from
  scikit-image (:data:`PHOTOS`) with seeded masks;
  ``neurodeploy simulate b.bundle --image photos/ --mask masks/ -o out/ --json run.json --backend B``;
* graph samples: the Sinabs IF conv net of tests/test_chip_segments.py converted to a bundle, seeded
  binary inputs X (:data:`SAMPLES` samples); ``neurodeploy simulate g.bundle --input X.npy -o out.npz
  --json run.json --backend B``.

Per backend: the command with ``--fidelity none``, with the default ``--fidelity all``, and with
``--threads 2`` (the choice the default rule does not take on 2 cores), each with the default threads
otherwise; and the in-process pipeline the way docs/BENCHMARKS.md section 12 measures it (one
Simulator / ``run_graph`` call, one torch thread, fidelity off, compile apart, after a warm-up item).
All of it twice: on the machine as it is, and with a second CPU-bound process that this script starts
and stops (a busy loop, bounded in time).

A command's rate leaves its fixed costs out by subtraction: each command runs on every item and on the
first item alone (the smallest photo; the first sample), :data:`REPEATS` times each, alternately, and its
rate is ``(items - 1) / (median wall(all) - median wall(first))``. The interpreter's start-up, the
imports, reading the bundle, Lava's compile and the float model are in both runs and cancel; the wall
times are reported. The in-process figure
is taken over the same items past the first. Outputs are checked byte for byte against the in-process
pipeline's. Images/s (samples/s) and the ratio command / in-process, per load. On images the in-process
pipeline is timed once before every pair of commands, each time in a fresh interpreter as the commands
are (:func:`fresh_in_process_rate`), and each command's ratio takes the median of the in-process passes
timed beside it (interleaved, under the same load).

    python benchmarks/bench_cli.py [--json cli.json]
    python benchmarks/bench_cli.py --batching   # the fidelity check's tiles: one by one or as one batch
    python benchmarks/bench_cli.py --backends torch --loads busy --images-only --repeats 7   # one cell, finer
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from neurodeploy import convert  # noqa: E402
from neurodeploy.bundle.format import Bundle  # noqa: E402
from neurodeploy.inpainter.data import MaskSpec, builtin_paths, random_mask  # noqa: E402
from neurodeploy.inpainter.float_spikes import stack_spikes  # noqa: E402
from neurodeploy.inpainter.simulator import SimulationInput, Simulator  # noqa: E402
from neurodeploy.io import read_image, read_mask, write_png  # noqa: E402
from neurodeploy.runtime.graph_run import LavaSegments, read_input, run_graph  # noqa: E402
from tests import test_chip_segments as cases  # noqa: E402  (the test builders: one place for the networks)

PHOTOS = ("microaneurysms", "chelsea", "coins", "coffee", "rocket", "astronaut", "motorcycle_left", "moon")
SAMPLES = 512
BACKENDS = ("reference", "torch", "lava")
BUSY_SECONDS = 2400  # the second CPU-bound process ends by itself after this, whatever happens here
REPEATS = 3  # each command's runs, alternately on all items and on the first; their median wall times
NEURODEPLOY = [sys.executable, "-m", "neurodeploy"]


def photo_folder(root: Path) -> tuple[Path, Path]:
    """The photos of :data:`PHOTOS`, whole, as PNGs, and a seeded mask of each, same-named."""
    paths = {p.stem: p for p in builtin_paths("train") + builtin_paths("val")}
    photos, masks = root / "photos", root / "masks"
    photos.mkdir()
    masks.mkdir()
    for i, name in enumerate(PHOTOS):
        image = read_image(paths[name])
        hole = random_mask(np.random.default_rng([0, i]), image.shape[0], image.shape[1], MaskSpec())
        write_png(photos / f"{name}.png", image)
        write_png(masks / f"{name}.png", np.repeat(hole[..., None], 3, axis=2).astype(np.uint8) * 255)
    return photos, masks


def graph_input(root: Path) -> tuple[Path, Path]:
    """The Sinabs IF conv net as a bundle, and X (SAMPLES, T, 2, 16, 16) of seeded binary events."""
    _, graph = cases._sinabs_net()
    bundle = convert(graph, root / "g.bundle").path
    x = cases._binary((SAMPLES, cases.STEPS, 2, 16, 16), 0.5, seed=1)
    np.save(root / "X.npy", x)
    return bundle, root / "X.npy"


def _env() -> dict[str, str]:
    """The user's environment as it is: no OMP_NUM_THREADS, so threads are what the command chooses."""
    return {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                                             "OPENBLAS_NUM_THREADS")}


def command(args: list[str], json_path: Path) -> tuple[float, dict]:
    """Run ``neurodeploy ARGS --json JSON_PATH``; its wall time and its JSON."""
    started = time.perf_counter()
    done = subprocess.run([*NEURODEPLOY, *args, "--json", str(json_path)], capture_output=True, text=True,
                          env=_env())
    wall = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return wall, json.loads(json_path.read_text())


def in_process_images(bundle: Path, items: list[SimulationInput], backend: str) -> tuple[float, dict]:
    """Images/s of one Simulator over the items past the first, a warm-up (section 12's way), and their
    outputs."""
    with Simulator(Bundle.load(bundle), backend, fidelity=False) as sim:  # type: ignore[arg-type]
        sim.run(items[0])
        started = time.perf_counter()
        outputs = {item.name: sim.run(item).output for item in items[1:]}
        return (len(items) - 1) / (time.perf_counter() - started), outputs


def fresh_in_process_rate(bundle: Path, photos: Path, masks: Path, backend: str) -> float:
    """:func:`in_process_images` on the photos past the first, in a fresh interpreter (``--in-process``), as
    the commands run: torch and oneDNN keep per-shape state for the process's life, so a process that has
    seen these photo sizes before runs them about 12 % faster (measured: a second pass over the 7 photos
    1.56 s against the first 1.74 s), an advantage no command has."""
    done = subprocess.run([sys.executable, __file__, "--in-process", str(bundle), str(photos), str(masks), backend],
                          capture_output=True, text=True, env=_env(), check=True)
    return float(done.stdout.split()[-1])


def _in_process_main(bundle: Path, photos: Path, masks: Path, backend: str) -> None:
    torch.set_num_threads(1)  # section 12's way: one torch thread
    items = [SimulationInput(p.stem, image, read_mask(masks / p.name, image.shape[:2]))
             for p in sorted(photos.iterdir()) for image in [read_image(p)]]
    first = next(item for item in items if item.name == PHOTOS[0])
    print(in_process_images(bundle, [first] + [i for i in items if i is not first], backend)[0])


def in_process_samples(bundle: Path, x_path: Path, backend: str) -> tuple[float, np.ndarray]:
    """Samples/s of ``run_graph`` on X after a warm-up sample (Lava compiled before), and the output."""
    deployment = Bundle.load(bundle).deployment
    x = read_input(x_path, deployment)
    with LavaSegments() as lava:
        keep = lava if backend == "lava" else None
        run_graph(deployment, x[:1], backend, check=False, lava=keep)
        started = time.perf_counter()
        run = run_graph(deployment, x, backend, check=False, lava=keep)
        return len(x) / (time.perf_counter() - started), run.output


CONFIGS = (("fidelity none", ["--fidelity", "none"]), ("fidelity all (default)", []),
           ("fidelity none, --threads 2", ["--fidelity", "none", "--threads", "2"]))


def marginal(args: list[str], one: list[str], many: list[str], items: int, out: Path, repeats: int = REPEATS,
             in_process: Callable[[], float] | None = None) -> dict:
    """The command on ``items`` items and on one (its first), each ``repeats`` times alternately: the rate of the
    items past the first, ``(items - 1) / (median wall(items) - median wall(1))``, which every fixed cost
    (interpreter, imports, bundle, compile, the float model) leaves out; the wall times and the threads the
    command chose. The medians because a command's start-up alone scatters by +-0.4 s. ``in_process``, when
    given, is timed once before each pair (its rates in ``in_process_each``), so that both figures of a ratio
    are taken under the same load, interleaved: under a busy loop one in-process pass alone scattered from
    2.79 to 4.37 images/s across runs."""
    walls, walls_one, in_process_rates = [], [], []
    for _ in range(repeats):
        if in_process is not None:
            in_process_rates.append(in_process())
        wall_one, _ = command([*args, *one, "-o", str(out) + "-one" + out.suffix],
                              out.with_name(out.name + "-one.json"))
        wall, doc = command([*args, *many, "-o", str(out)], out.with_name(out.name + ".json"))
        walls.append(wall)
        walls_one.append(wall_one)
    wall, wall_one = float(np.median(walls)), float(np.median(walls_one))
    return {"wall_seconds": wall, "wall_seconds_one_item": wall_one, "rate": (items - 1) / (wall - wall_one),
            "wall_seconds_each": walls, "wall_seconds_one_item_each": walls_one, "threads": doc["threads"],
            "in_process_each": in_process_rates}


def measure(root: Path, photos: Path, masks: Path, graph: Path, x_path: Path, load: str,
            backends: tuple[str, ...] = BACKENDS, graphs: bool = True, repeats: int = REPEATS) -> dict:
    """Every backend's commands and in-process figures, on images and (``graphs``) on graph samples, under
    ``load``."""
    image_bundle = root / "b.bundle"
    items = [SimulationInput(p.stem, image, read_mask(masks / p.name, image.shape[:2]))
             for p in sorted(photos.iterdir()) for image in [read_image(p)]]
    first = next(item for item in items if item.name == PHOTOS[0])
    one = root / "one"  # the first photo alone: the one-item run whose time every other run's includes
    if not one.exists():
        (one / "photos").mkdir(parents=True)
        shutil.copy(photos / f"{first.name}.png", one / "photos")
        np.save(root / "X1.npy", np.load(x_path)[:1])
    rows: dict[str, dict] = {}
    torch.set_num_threads(1)  # the in-process figures: one torch thread, as section 12
    for backend in backends:
        # in-process on the images past the first, which the command's marginal rate covers; timed again
        # before every pair of commands, and each ratio takes the median of the passes beside its commands
        _, outputs = in_process_images(image_bundle, [first] + [i for i in items if i is not first], backend)
        row: dict = {}
        for name, extra in CONFIGS:
            out = root / f"out-{load}-{backend}-{len(row)}"
            r = marginal(["simulate", str(image_bundle), "--mask", str(masks), "--backend", backend, *extra],
                         ["--image", str(one / "photos")], ["--image", str(photos)], len(items), out, repeats,
                         partial(fresh_in_process_rate, image_bundle, photos, masks, backend))
            same = sum(np.array_equal(read_image(out / f"{n}.png"), o) for n, o in outputs.items())
            ips = float(np.median(r["in_process_each"]))
            row[name] = {**r, "in_process": ips, "ratio": r["rate"] / ips, "outputs_equal": f"{same}/{len(outputs)}"}
        row["in_process"] = float(np.median([x for r in row.values() for x in r["in_process_each"]]))
        rows[f"images, {backend}"] = row
        if not graphs:
            continue
        samples_per_second, output = in_process_samples(graph, x_path, backend)
        row = {"in_process": samples_per_second}
        for name, extra in CONFIGS:
            out = root / f"g-{load}-{backend}-{len(row)}.npz"
            r = marginal(["simulate", str(graph), "--backend", backend, *extra], ["--input", str(root / "X1.npy")],
                         ["--input", str(x_path)], SAMPLES, out, repeats)
            with np.load(out) as archive:
                same = bool(np.array_equal(archive["output"], output))
            row[name] = {**r, "ratio": r["rate"] / samples_per_second, "outputs_equal": same}
        rows[f"graph samples, {backend}"] = row
    return rows


def check_batching(bundle: Path, rounds: int = 3) -> dict:
    """The fidelity check's two parts on a batch of tiles of the shipped model (the torch backend's batch of a
    row): one by one against as one batch, and the float model as the check runs it (Norse's step in place)
    against Norse's own forward; best of ``rounds``, one torch thread (``--batching``)."""
    from neurodeploy.chip.reference import run_segment_batch
    from neurodeploy.inpainter.simulator import TILE_BATCH, float_model

    loaded = Bundle.load(bundle)
    model, layers = float_model(loaded), Simulator(loaded, "reference", fidelity=False).bridge.layers
    assert model.snn is not None
    x = torch.rand(TILE_BATCH, *layers[0].input_shape, generator=torch.Generator().manual_seed(0))
    frames = np.broadcast_to(np.rint(x.numpy() * 255).astype(np.uint8)[:, None],
                             (TILE_BATCH, loaded.timesteps, *layers[0].input_shape))
    runs = {"Norse's forward, one by one": lambda: [model.snn(x[i:i + 1], every_layer=True) for i in range(len(x))],
            "float model, one by one": lambda: [stack_spikes(model.snn, x[i:i + 1]) for i in range(len(x))],
            "float model, one batch": lambda: stack_spikes(model.snn, x),
            "reference, one by one": lambda: [run_segment_batch(layers, frames[i:i + 1]) for i in range(len(x))],
            "reference, one batch": lambda: run_segment_batch(layers, frames)}
    best = {}
    torch.set_num_threads(1)
    with torch.no_grad():
        for name, run in runs.items():
            times = []
            for _ in range(rounds):
                started = time.perf_counter()
                run()
                times.append(time.perf_counter() - started)
            best[name] = min(times)
    return best


def busy_loop() -> subprocess.Popen:
    """A second CPU-bound process: one core's busy loop that ends by itself after :data:`BUSY_SECONDS`."""
    code = f"import time\nend = time.time() + {BUSY_SECONDS}\nwhile time.time() < end: pass"
    return subprocess.Popen([sys.executable, "-c", code])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "examples/models/scnn_inpaint.pt")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--loads", nargs="+", choices=("as-is", "busy"), default=["as-is", "busy"])
    parser.add_argument("--repeats", type=int, default=REPEATS, help="runs per command (their median)")
    parser.add_argument("--images-only", action="store_true", help="leave out the graph samples")
    parser.add_argument("--batching", action="store_true", help="only time the fidelity check's tiles one by one "
                                                                "against one batch")
    parser.add_argument("--in-process", nargs=4, metavar=("BUNDLE", "PHOTOS", "MASKS", "BACKEND"),
                        help=argparse.SUPPRESS)  # one in-process pass in this fresh interpreter: its images/s
    args = parser.parse_args()
    if args.in_process:
        bundle, photos, masks, backend = args.in_process
        _in_process_main(Path(bundle), Path(photos), Path(masks), backend)
        return
    if args.batching:
        with tempfile.TemporaryDirectory() as tmp:
            for name, seconds in check_batching(convert(args.model, Path(tmp) / "b.bundle").path).items():
                print(f"{name:26s} {seconds * 1000:7.1f} ms")
        return
    document: dict = {"photos": list(PHOTOS), "samples": SAMPLES, "cores": len(os.sched_getaffinity(0))}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        convert(args.model, root / "b.bundle")
        photos, masks = photo_folder(root)
        graph, x_path = graph_input(root)
        document["megapixels"] = sum(read_image(p).shape[0] * read_image(p).shape[1]
                                     for p in photos.iterdir()) / 1e6
        loads = {"as-is": "as is", "busy": "a second CPU-bound process"}
        for load in [loads[name] for name in args.loads]:
            busy = busy_loop() if load != "as is" else None
            try:
                document[load] = {"load_average_before": os.getloadavg(),
                                  **measure(root, photos, masks, graph, x_path, load.split()[0],
                                            tuple(args.backends), not args.images_only, args.repeats),
                                  "load_average_after": os.getloadavg()}
            finally:
                if busy is not None:
                    busy.kill()
                    busy.wait()
            _print(load, document[load])
    if args.json:
        args.json.write_text(json.dumps(document, indent=2))


def _print(load: str, rows: dict) -> None:
    print(f"\n{load}: load average {rows['load_average_before']} -> {rows['load_average_after']}")
    for what, row in rows.items():
        if not isinstance(row, dict):
            continue
        unit = "images/s" if what.startswith("images") else "samples/s"
        print(f"  {what:24s} in-process {row['in_process']:8.2f} {unit}")
        for name, r in row.items():
            if isinstance(r, dict):
                beside = f" (in-process beside it {r['in_process']:.2f})" if "in_process" in r else ""
                print(f"    {name:28s} {r['rate']:8.2f} {unit}  {r['ratio']:6.1%}{beside}  "
                      f"wall {r['wall_seconds']:6.2f} s, "
                      f"one item {r['wall_seconds_one_item']:6.2f} s  "
                      f"threads {r['threads']['threads']}  outputs equal {r['outputs_equal']}")


if __name__ == "__main__":
    main()
