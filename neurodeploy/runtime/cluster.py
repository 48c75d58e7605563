"""Large runs: items (images of a folder, samples of an .npy set) one by one, in-process or on Ray, logged per item.

A run is a list of items, each with an id (the image's name, the sample's
index) and a :class:`Work` that turns one item into a JSON-able record and
an array (the inpainted image, the sample's output). The work is built once
per worker (one compiled network per worker).

* ``cluster=None``: the items run in this process, in order.
* ``cluster="ray"`` starts a local Ray cluster (loopback only, no dashboard,
  ``workers`` CPUs); ``"ray:ADDRESS"`` connects to a running one. Each worker
  is a Ray actor holding one :class:`Work`; Ray's ``ActorPool`` hands items to
  idle actors (at most two per actor in flight, so memory is bounded by the
  work unit, not by the number of items). Actors are created with
  ``max_restarts=-1`` and ``max_task_retries=-1``: when a worker process dies
  mid-item, Ray restarts the actor (building its network again) and reruns
  that item; the driver receives each item's result once.

Results come back as items finish; the driver appends each record to the
JSON lines file (``{"id": ..., "key": ..., ...}``, one line per item, flushed
and synced as written) and hands the array to ``on_item``. A rerun with the
same file resumes: ids already in it are skipped; a partial last line (a crash
while writing) is cut off and its item redone. ``key`` is the digest of
everything that determines the item's record (its input, the bundle, the
backend, the output path: the caller's ``keys``); a record of the same id under
another key is another run's and is refused, never taken for this one. :func:`run_items` returns the
records in input order, whatever order they finished in.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from neurodeploy.errors import UserError
from neurodeploy.io import check_writable


class Work(Protocol):
    """What a worker does with one item: ``setup`` once, then ``run`` per item -> (JSON record, array),
    then ``close`` (stops a Lava runtime)."""

    def setup(self) -> None: ...

    def run(self, item_id: str, item: Any) -> tuple[dict[str, Any], np.ndarray]: ...

    def close(self) -> None: ...


def parse_cluster(cluster: str | None) -> str | None:
    """``None``, ``"ray"`` (a local cluster) or ``"ray:ADDRESS"`` -> None, "" or ADDRESS; anything else a UserError."""
    import importlib.util

    if cluster is None:
        return None
    if cluster != "ray" and not (cluster.startswith("ray:") and len(cluster) > 4):
        raise UserError(f"unknown cluster {cluster!r}", "pass `cluster=ray` (a local Ray cluster) or "
                                                        "`cluster=ray:ADDRESS` (a running one)")
    if importlib.util.find_spec("ray") is None:
        raise UserError("`cluster=ray` needs Ray, which is not installed",
                        "pip install 'neurodeploy[cluster]' (make install does)")
    return cluster[4:]


class ResultsLog:
    """The per-item JSON lines file: the records already there, and appending one as an item finishes."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if self.path.suffix != ".jsonl":
            raise UserError(f"--results {self.path} is not a .jsonl file", "name the results file ITEMS.jsonl")
        if self.path.exists() and not self.path.is_file():
            raise UserError(f"--results {self.path} is not a file", "pass a .jsonl file path")
        if not self.path.parent.is_dir():
            raise UserError(f"--results {self.path}: its folder does not exist", "create the folder first")
        check_writable(self.path)

    def done(self) -> dict[str, dict[str, Any]]:
        """The records already written, by id; a partial or unreadable last line is cut from the file."""
        if not self.path.exists():
            return {}
        records: dict[str, dict[str, Any]] = {}
        good = 0
        with open(self.path, "rb") as handle:
            for line in handle:
                try:
                    if not line.endswith(b"\n"):
                        raise ValueError("partial line")
                    record = json.loads(line)
                    records[str(record["id"])] = record
                except (ValueError, KeyError, TypeError):
                    break
                good += len(line)
        if good < self.path.stat().st_size:
            with open(self.path, "r+b") as handle:
                handle.truncate(good)
        return records

    def append(self, record: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())


def run_items(work: Work, items: Sequence[tuple[str, Callable[[], Any]]], *, cluster: str | None = None,
              workers: int = 2, results: str | os.PathLike[str] | None = None,
              on_item: Callable[[dict[str, Any], np.ndarray], None] | None = None,
              progress: Any = None, keys: Mapping[str, str] | None = None,
              resumable: Callable[[str], bool] | None = None) -> list[dict[str, Any]]:
    """Run ``items`` ((id, loader) pairs: the loader reads the item when it is sent) through ``work``.

    Returns every item's record in input order (those resumed from ``results``
    included). ``on_item`` sees each new (record, array) as it finishes;
    ``progress`` (a :class:`ItemProgress`) is advanced per item. ``keys``: each
    id's key (a digest of what determines its record), written with it; a record
    of ``results`` under another key is a UserError, before any work.
    ``resumable``: whether a logged item may be taken as done (False: its output
    is gone; it is run again).
    """
    address = parse_cluster(cluster)
    ids = [item_id for item_id, _ in items]
    if len(set(ids)) != len(ids):
        raise UserError("two items have the same id", "give every image a distinct name")
    keys = keys or {}
    log = ResultsLog(results) if results is not None else None
    logged = log.done() if log is not None else {}
    for item_id in ids:
        if item_id in logged and logged[item_id].get("key") != keys.get(item_id):
            raise UserError(f"--results {log.path if log else ''} holds a result for {item_id} from another run "
                            "(another bundle, input, mask, backend, seed or output path)",
                            f"pass another --results path, or delete {log.path if log else ''} to start over")
    records = {item_id: {k: v for k, v in record.items() if k != "key"} for item_id, record in logged.items()
               if resumable is None or resumable(item_id)}
    pending = [(item_id, load) for item_id, load in items if item_id not in records]
    if progress is not None:
        progress.start(len(items), len(items) - len(pending))

    def finished(record: dict[str, Any], array: np.ndarray) -> None:
        records[record["id"]] = record
        if log is not None:
            key = keys.get(record["id"])
            log.append(record if key is None else {**record, "key": key})
        if on_item is not None:
            on_item(record, array)
        if progress is not None:
            progress.advance()

    stream = _run_local(work, pending) if address is None else _run_ray(work, pending, address, workers)
    with contextlib.closing(stream):  # an error here (the log's disk full) stops the work at once, not at exit
        for record, array in stream:
            finished(record, array)
    return [records[item_id] for item_id in ids]


def _run_local(work: Work, pending: Sequence[tuple[str, Callable[[], Any]]]) -> Iterator[tuple[dict, np.ndarray]]:
    if not pending:
        return
    work.setup()
    try:
        for item_id, load in pending:
            yield work.run(item_id, load())
    finally:
        work.close()


def _run_ray(work: Work, pending: Sequence[tuple[str, Callable[[], Any]]], address: str,
             workers: int) -> Iterator[tuple[dict, np.ndarray]]:
    """Ray actors, one :class:`Work` each, fed by Ray's ActorPool, at most two items per actor in flight."""
    if not pending:
        return
    import ray
    from ray.util import ActorPool

    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(address="local", num_cpus=workers, include_dashboard=False, _node_ip_address="127.0.0.1",
                     log_to_driver=False, configure_logging=False)
    try:
        actor = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=-1)(WorkActor)
        count = min(workers, len(pending))
        pool = ActorPool([actor.remote(work) for _ in range(count)])
        queue = iter(pending)
        in_flight = 0
        for item_id, load in _take(queue, 2 * count):
            pool.submit(lambda a, v: a.run.remote(*v), (item_id, load()))
            in_flight += 1
        while in_flight:
            yield pool.get_next_unordered()
            in_flight -= 1
            for item_id, load in _take(queue, 1):
                pool.submit(lambda a, v: a.run.remote(*v), (item_id, load()))
                in_flight += 1
    finally:
        if started_here:
            ray.shutdown()


def _take(iterator: Iterator[Any], n: int) -> list[Any]:
    out = []
    for _ in range(n):
        try:
            out.append(next(iterator))
        except StopIteration:
            break
    return out


class WorkActor:
    """A Ray actor's state: one :class:`Work`, set up once (its compiled network) and reused for every item."""

    def __init__(self, work: Work) -> None:
        self.work = work
        self.work.setup()

    def pid(self) -> int:
        return os.getpid()

    def run(self, item_id: str, item: Any) -> tuple[dict[str, Any], np.ndarray]:
        return self.work.run(item_id, item)


def sample_items(x: np.ndarray) -> list[tuple[str, Callable[[], Any]]]:
    """The samples of X (N, T, ...) as items with ids "0" .. "N-1"."""
    return [(str(n), (lambda n=n: x[n])) for n in range(x.shape[0])]


class ItemProgress:
    """A rich progress bar over items (on a terminal only); use as a context manager."""

    def __init__(self, console: Any) -> None:
        self.console = console
        self.bar: Any = None

    def __enter__(self) -> ItemProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def start(self, total: int, done: int) -> None:
        if not self.console.is_terminal:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("items"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                            console=self.console, transient=True)
        self.bar.start()
        self.task = self.bar.add_task("items", total=total, completed=done)

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.advance(self.task)

