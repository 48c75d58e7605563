r"""The graph runtime: N samples through a format-2 bundle's partition, chip segments and host segments in turn.

Segments run in the partition's order, each over all N samples and all T
steps at once, reading what earlier segments produced:

* a **host segment** runs in torch (:func:`neurodeploy.ir.host_ops.run_host_segment`,
  the float semantics of its nodes, parameters from ``host.pt``);
* a **chip segment** runs on the ``reference`` backend
  (:func:`neurodeploy.chip.reference.run_segment_batch`, NumPy, Loihi's fixed
  point bit for bit) or on ``lava`` (:class:`neurodeploy.runtime.lava.segment_run.LavaSegment`:
  the segment's netx file as one Lava process, ``models="neurodeploy"``, or in
  stock lava-dl, ``models="stock"``; compiled once per run, or once per worker
  in a :class:`LavaSegments` kept open across runs, and reused for every sample;
  a sample is ``T + depth`` Lava steps, set from the input's T),
  or on ``torch`` (:func:`neurodeploy.runtime.torch_backend.run_segment_batch`, the
  reference's arithmetic batched in PyTorch on ``device`` cpu or cuda).

The bridge at each cut. Host -> chip: the value x the segment reads becomes
integer payloads, ``p = x`` for spikes (0/1) or ``p = clip(round(255·x), 0,
255)`` for 8-bit graded values (:data:`neurodeploy.chip.encoding.PAYLOAD_MAX`);
the manifest states which per segment; the rule is :func:`neurodeploy.chip.encoding.to_payload`.
Values the clip changes (a host part that produces values above 1, or below
0) are counted per cut (:attr:`GraphRun.clipped`, ``fidelity["cuts"]``) and
:func:`run_graph` warns once when any was. Chip -> host: every layer's spikes of
every time step, 0/1. Loihi's one-step synaptic delay per layer is removed:
a segment of depth d runs ``T + d`` Lava steps and its layer k's output for
input step t is read at step t + k, so every value the user sees is aligned
to the input's time steps, like the float graph's.

Fidelity (:func:`fidelity`): the float side is :func:`neurodeploy.ir.float_run.run_float`
on ``graph.nir`` as written (float64, no folding, no rounding), never the
quantized path. Per chip layer (``layers[i]``) and over all chip layers
together, the spike scores of :mod:`neurodeploy.spike_metrics` (spike
precision, recall and F1, also within ±1 step, rate correlation, count
error; ``cell_agreement_vs_float`` only for continuity: it counts silent
cells as agreement); ``output_agreement_vs_float``, the fraction of samples
whose argmax of the output summed over time equals the float graph's, over
the samples whose float argmax is unique (``output_ties`` the others);
per chip layer also ``local``, the same scores against the float layer fed
what the deployed layer read (its segment's input payloads ``p/P``, or the
deployed previous layer's spikes): the layer's own deployment error, which
the end-to-end scores compound through the stack (a spike one step off in
the first integrate-and-fire layer moves many in the next);
``warnings``, chip layers that never fire or fire on every step and an output
that is zero throughout (also raised as Python warnings); ``exact_vs_reference``,
whether every chip layer's spikes equal the reference backend's (trivially
for the reference backend itself); ``cuts``, per chip segment, the values
its input payload clipped (``clipped``, of ``values``).

Against the library's own output Y on the same X (``simulate --compare Y.npy``,
:func:`read_compare`, :func:`compare_scores`): ``fidelity["vs_compare"]``, the
deployed output's spike scores against Y's (when Y is 0/1) and its argmax
agreement (:mod:`neurodeploy.spike_metrics`).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurodeploy.bundle.deployment import ChipPart, GraphDeployment, HostPart
from neurodeploy.bundle.format import Bundle
from neurodeploy.chip.encoding import clipped_payloads
from neurodeploy.chip.encoding import to_payload as payload_rule
from neurodeploy.chip.reference import run_segment_batch
from neurodeploy.errors import UserError
from neurodeploy.io import read_samples
from neurodeploy.ir.float_run import run_chip_layer, run_float
from neurodeploy.ir.host_ops import run_host_segment
from neurodeploy.ir.nir_reader import NO_TIME_CONSTANTS
from neurodeploy.runtime.backends import BACKENDS, LAVA_BACKENDS, REFERENCE, TABLE
from neurodeploy.runtime.lava.segment_run import LavaSegment, check_stock_netx
from neurodeploy.spike_metrics import SpikeTally, firing_warnings, output_scores, spike_scores

# -- input ----------------------------------------------------------------------------------------

def read_input(path: str | Path, deployment: GraphDeployment) -> np.ndarray:
    """Read X (N, T, *input_shape) for a bundle's graph from ``--input`` (see :func:`neurodeploy.io.read_samples`)."""
    return read_samples(path, deployment.input_shape, deployment.input_payload)


def read_compare(path: str | Path, deployment: GraphDeployment, x: np.ndarray) -> np.ndarray:
    """Read Y (N, T, *output_shape), the library's own output on the same X, from a ``.npy`` file, checked.

    Refused, each in one line: another kind of file, a missing one, values
    that are not finite numbers, and a shape other than X's N and T with the
    bundle's output shape.
    """
    p = Path(path)
    shape = f"({x.shape[0]}, {x.shape[1]}, " + ", ".join(map(str, deployment.output_shape)) + ")"
    fix = f"save the library's own output on the same samples as .npy of shape {shape}"
    if p.suffix.lower() != ".npy":
        raise UserError(f"--compare {p} is not a .npy file", fix)
    if not p.is_file():
        raise UserError(f"--compare {p} does not exist", "check the path")
    try:
        y = np.load(p, allow_pickle=False)
    except Exception as exc:
        raise UserError(f"--compare {p} is not a readable NumPy file ({type(exc).__name__})", fix) from None
    if y.dtype.kind not in "biuf":
        raise UserError(f"--compare {p} holds {y.dtype} values, not numbers", fix)
    if y.shape != (*x.shape[:2], *deployment.output_shape):
        raise UserError(f"--compare {p} has shape {y.shape}; the output on --input's {x.shape[0]} samples of "
                        f"{x.shape[1]} steps is {shape}", fix)
    y = y.astype(np.float64)
    if not np.all(np.isfinite(y)):
        raise UserError(f"--compare {p} holds values that are not finite (NaN or inf)", "give finite values")
    return y


def compare_scores(output: np.ndarray, compare: np.ndarray) -> dict[str, Any]:
    """The deployed output against Y, the library's own output (``fidelity["vs_compare"]``).

    The keys of the float comparison: :func:`neurodeploy.spike_metrics.spike_scores`
    when Y is spikes (every value 0 or 1), and :func:`neurodeploy.spike_metrics.output_scores`
    (its ``output_agreement_vs_float`` here is the agreement with Y's argmax).
    """
    spiking = bool(np.all((compare == 0) | (compare == 1)))
    return {**(spike_scores(output, compare) if spiking else {}), **output_scores(output, compare)}


# -- running --------------------------------------------------------------------------------------

def to_payload(x: np.ndarray, part: ChipPart) -> np.ndarray:
    """Host values -> the chip segment's integer input payloads (uint8), shaped for its first layer."""

    payload = payload_rule(x, part.payload_max)  # max 1 for spikes
    first = part.layers[0]
    return payload.reshape(*x.shape[:2], *first.input_shape)


@dataclass
class GraphRun:
    """One run: the output, every chip layer's spikes (and the reference's, for Lava), timings."""

    backend: str
    output: np.ndarray  # (N, T, *output_shape)
    spikes: dict[str, np.ndarray]  # chip layer -> (N, T, *shape) uint8
    exact_vs_reference: bool
    seconds: dict[str, float] = field(default_factory=dict)
    payloads: dict[int, np.ndarray] = field(default_factory=dict)  # chip part index -> its input payloads
    clipped: dict[int, int] = field(default_factory=dict)  # chip part index -> input values the payload clipped

    def head(self, n: int) -> GraphRun:
        """The run's first n samples (output, spikes), for a fidelity check of those only; the payloads and
        their clip counts stay the whole run's (they are counted while it runs, at no extra cost)."""
        return GraphRun(self.backend, self.output[:n], {k: v[:n] for k, v in self.spikes.items()},
                        self.exact_vs_reference, self.seconds, self.payloads, self.clipped)


class LavaSegments:
    """The chip segments compiled in Lava, kept open between calls of :func:`run_graph`; use as a context
    manager. One per (segment, T), compiled on first use: a worker that runs sample after sample
    (:class:`neurodeploy.cli.works.SampleWork`) compiles each segment once, not once per sample."""

    def __init__(self, models: str = "neurodeploy", backend: str = "lava") -> None:
        self.models, self.backend = models, backend
        self.open: dict[tuple[int, int], Any] = {}
        self.compile_seconds = 0.0

    def __enter__(self) -> LavaSegments:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for segment in self.open.values():
            segment.close()
        self.open.clear()

    def run(self, part: ChipPart, frames: np.ndarray) -> list[np.ndarray]:
        """Every sample of ``frames`` (N, T, *input) through the part's segment: per layer spikes (N, T, *out)."""

        n, steps = frames.shape[:2]
        segment = self.open.get((part.index, steps))
        if segment is None:
            segment = LavaSegment(part.path, timesteps=steps, input_message_bits=part.input_message_bits,
                                  models=self.models, backend=self.backend)  # type: ignore[arg-type]
            self.open[part.index, steps] = segment.__enter__()
            self.compile_seconds += segment.compile_seconds
        outs = [np.zeros((n, steps, *layer.output_shape), dtype=np.uint8) for layer in part.layers]
        for i in range(n):
            for out, layer_spikes in zip(outs, segment.run(frames[i]), strict=True):
                out[i] = layer_spikes
        return outs


def run_graph(deployment: GraphDeployment, x: np.ndarray, backend: str = "reference",
              models: str = "neurodeploy", device: str = "cpu", check: bool | int = True,
              lava: LavaSegments | None = None) -> GraphRun:
    """Run N samples ``x`` (N, T, *input_shape) through the partition on ``backend`` (module docstring).

    ``check``: also run the reference backend and compare (``exact_vs_reference``), on every sample
    (True) or on the first ``check`` samples (an int); with ``check=False`` (or 0) the backend runs
    alone and ``exact_vs_reference`` is not measured (True).
    ``lava``: compiled segments to run on and keep open (backends lava and loihi2); by default the
    segments are compiled for this call and closed after it.
    """
    if lava is None and backend in LAVA_BACKENDS:
        with LavaSegments(models, backend) as own:
            return run_graph(deployment, x, backend, models, device, check, own)

    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r} for a graph bundle", f"pass one of {', '.join(BACKENDS)}")
    spec = TABLE[backend]
    if lava is not None and not (lava.backend == "lava" and lava.models == "neurodeploy"):  # the netx graph runs

        for part in deployment.parts:
            if isinstance(part, ChipPart):
                check_stock_netx(part.path, part.layers)
    started = time.perf_counter()
    seconds = {"compile": 0.0, "chip": 0.0, "host": 0.0}
    values: dict[str, torch.Tensor] = {deployment.input_node: torch.from_numpy(np.asarray(x, np.float64))}
    spikes: dict[str, np.ndarray] = {}
    payloads: dict[int, np.ndarray] = {}
    clipped: dict[int, int] = {}
    exact = True
    for part in deployment.parts:
        t0 = time.perf_counter()
        if isinstance(part, HostPart):
            values.update(run_host_segment(deployment.graph, part.nodes, values))
            seconds["host"] += time.perf_counter() - t0
            continue
        clipped[part.index] = clipped_payloads(values[part.source].numpy(), part.payload_max)
        frames = payloads[part.index] = to_payload(values[part.source].numpy(), part)
        if spec.run_batch is not None:
            got = spec.run_batch(part.layers, frames, device)
        elif lava is not None:
            compiled = lava.compile_seconds
            got = lava.run(part, frames)
            seconds["compile"] += lava.compile_seconds - compiled
        else:
            raise ValueError(f"backend {backend} runs in Lava: pass its compiled segments")
        if backend != REFERENCE and check:
            checked = None if check is True else int(check)
            reference = run_segment_batch(part.layers, frames[:checked])
            exact = exact and all(np.array_equal(a[:checked], b) for a, b in zip(got, reference, strict=True))
        for name, s in zip(part.names, got, strict=True):
            spikes[name] = s
            values[name] = torch.from_numpy(s.astype(np.float64))
        seconds["chip"] += time.perf_counter() - t0
    output = values[deployment.output_node].numpy()
    seconds["total"] = time.perf_counter() - started
    lost = [f"{n} at {_part(deployment, k).source}" for k, n in clipped.items() if n]
    if lost:
        warnings.warn(f"host values outside [0, 1] were clipped at the host->chip cut(s): {', '.join(lost)} "
                      "(see fidelity['cuts']); scale the host's output into [0, 1]", stacklevel=2)
    return GraphRun(backend, output, spikes, exact, seconds, payloads, clipped)


def _part(deployment: GraphDeployment, index: int) -> ChipPart:
    part = deployment.parts[index]
    assert isinstance(part, ChipPart)
    return part


def fidelity(deployment: GraphDeployment, x: np.ndarray, run: GraphRun) -> dict[str, Any]:
    """The run against the float graph on the same ``x`` (module docstring); warns about silent layers."""
    flt = {k: v.numpy() for k, v in run_float(deployment.float_graph, torch.from_numpy(x)).items()}
    layers, overall, notes = [], SpikeTally(), []
    for part in deployment.parts:
        if not isinstance(part, ChipPart):
            continue
        source = part.source
        read = run.payloads[part.index][:len(x)]  # what the chip read (a head() run keeps the whole run's)
        upstream = read.reshape(flt[source].shape) / part.payload_max
        for name, nodes in zip(part.names, part.nodes, strict=True):
            tally = SpikeTally().add(run.spikes[name], flt[name])
            local = run_chip_layer(deployment.float_graph, name, nodes, source, upstream)
            layers.append({"name": name, **tally.scores(), "local": spike_scores(run.spikes[name], local)})
            overall.merge(tally)
            notes += firing_warnings(name, tally.deployed, tally.cells)
            source, upstream = name, run.spikes[name]
    silent = [layer["name"] for layer in layers if layer["spikes_deployed"] == 0]
    graph = deployment.float_graph
    if silent and graph.dt is not None and graph.tau_convention_reason != NO_TIME_CONSTANTS:
        notes.append(f"{', '.join(silent)} never fire{'s' if len(silent) == 1 else ''}: the graph's time constants "
                     f"were read as {graph.tau_convention} at dt = {graph.dt:g} s ({graph.tau_convention_reason}); "
                     "if it was exported for another time step (snnTorch's is 1e-4), convert it again with that dt")
    if deployment.output_node not in deployment.chip_layers and not np.any(run.output):
        notes.append(f"the output {deployment.output_node} is zero for every sample and step")
    cuts = []
    for k, lost in run.clipped.items():
        part, values = _part(deployment, k), int(run.payloads[k].size)
        cuts.append({"segment": k, "node": part.source, "payload": part.payload, "values": values,
                     "clipped": lost, "clipped_fraction": lost / values if values else 0.0})
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return {
        "exact_vs_reference": bool(run.exact_vs_reference),
        **overall.scores(),
        "layers": layers,
        **output_scores(run.output, flt[deployment.output_node]),
        "cuts": cuts,
        "warnings": notes,
    }


def report(bundle: Bundle, x: np.ndarray, run: GraphRun, fid: dict[str, Any]) -> dict[str, Any]:
    """The JSON of ``neurodeploy simulate`` for a graph bundle."""
    dep: GraphDeployment = bundle.deployment
    return {
        "bundle": str(bundle.path), "backend": run.backend, "samples": int(x.shape[0]),
        "timesteps": int(x.shape[1]), "input_shape": list(dep.input_shape), "output_shape": list(dep.output_shape),
        "chip_layers": [{"name": n, "spikes": int(run.spikes[n].sum()),
                         "firing_rate": float(run.spikes[n].mean()),
                         "neurons": math.prod(run.spikes[n].shape[2:])} for n in dep.chip_layers],
        "seconds": run.seconds,
        "fidelity": fid,
    }
