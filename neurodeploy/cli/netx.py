"""``simulate`` and ``profile`` of a Lava-DL netx file (SLAYER's ``export_hdf5``, lava-dl's tutorial networks).

The file is read as it is (:mod:`neurodeploy.converters.netx_in`), its frames are ``--image``: a photo, a
folder of photos or a .npy of frames (:func:`neurodeploy.runtime.netx_run.read_frames`), written into the
input layer's bias; each frame runs ``--steps`` Lava steps from zero state.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from neurodeploy.cli.app import console
from neurodeploy.cli.inputs import check_backend, check_scale
from neurodeploy.converters.netx_in import NetxNetwork, read_network
from neurodeploy.cost.hw import load_profile
from neurodeploy.cost.netx_profile import profile_netx
from neurodeploy.cost.profile import select_profiles
from neurodeploy.errors import UserError
from neurodeploy.io import atomic_path, check_output_file, check_output_folder
from neurodeploy.runtime.netx_run import FRAMES_PER_BATCH, read_frames, run_netx, run_netx_spikes
from neurodeploy.runtime.run_options import plan_threads, sized_threads
from neurodeploy.text import plural


def _read(path: Path, image: Path | None, input_path: Path | None, steps: int | None, backend: str, device: str,
          large: bool, spikes_in: bool = False) -> tuple[NetxNetwork, list[str], np.ndarray, int]:
    """Every check before the run: the options, the network, its input; (network, names, input, steps). The
    input: the frames' bias mantissas (N, *shape), or, for a network whose input layer has no neurons (only
    with ``spikes_in``), the spikes (N, T, *shape) of ``--input X.npy``."""
    if large:
        raise UserError("--cluster and --results run bundles", "run a netx network without them")
    if steps is not None and steps < 1:
        raise UserError(f"--steps {steps}: a frame needs at least one step", "pass --steps 16")
    check_backend(backend)
    check_scale(backend, device, None, None)
    if backend == "loihi2":
        raise UserError("a netx network runs on loihi2 through Lava-DL itself", "pass --backend torch, reference "
                                                                              "or lava (stock netx on the CPU)")
    network = read_network(path)
    if network.input is None:
        if not spikes_in:
            raise UserError(f"{path.name}'s first layer reads spikes, not a frame (layer 0 has no neuron group)",
                            "profile a netx file whose input layer is driven through its bias, as SLAYER exports it")
        if input_path is None or image is not None or steps is not None:
            raise UserError(f"{path.name}'s first layer reads spikes (layer 0 has no neuron group)",
                            "pass --input X.npy, 0/1 spikes (N, T, *input shape), without --image or --steps")
        x = _spikes(input_path, network.input_shape)
        return network, [f"{input_path.stem}_{n}" for n in range(len(x))], x, x.shape[1]
    if input_path is not None or image is None:
        raise UserError(f"{path.name} is a netx network: its frames go into the input layer's bias",
                        "pass --image PHOTO (a photo, a folder of photos or a .npy of frames)")
    names, bias = read_frames(network.input, image)
    return network, names, bias, steps or network.steps


def _spikes(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """``--input X.npy``: 0/1 spikes (N, T, *shape), checked."""
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} is not a readable .npy ({exc})", "save the spikes with numpy.save") from None
    if x.ndim != len(shape) + 2 or x.shape[2:] != shape or not np.isin(x, (0, 1)).all():
        raise UserError(f"{path} holds {x.shape}, not 0/1 spikes (N, T, {', '.join(map(str, shape))})",
                        "save 0/1 spikes of that shape")
    return x.astype(np.uint8)


def simulate_netx(path: Path, image: Path | None, input_path: Path | None, out: Path | None, json_out: Path | None,
                  backend: str, device: str, steps: int | None, threads: int | None, fidelity: str,
                  large: bool) -> None:
    """``simulate NET.net --image ...``: every layer's spikes of every frame to OUT.npz, a table of counts."""
    target = out or path.with_name(f"{path.stem}-spikes.npz")
    check_output_file(target, "npz archive", ".npz")
    if json_out is not None:
        check_output_file(json_out, "JSON")
    network, names, bias, steps = _read(path, image, input_path, steps, backend, device, large, spikes_in=True)

    def run(batch: np.ndarray, on: str) -> list[np.ndarray]:
        if network.input is None:  # bias holds input spikes
            return run_netx_spikes(network, batch, on, device, path)
        return run_netx(network, batch, steps, on, device, path)

    with sized_threads(plan_threads(backend, threads)):
        seconds, batches, exact = 0.0, [], None
        for start in range(0, len(bias), FRAMES_PER_BATCH):  # the backend's memory: one batch of frames
            started = time.perf_counter()
            batches.append(run(bias[start:start + FRAMES_PER_BATCH], backend))
            seconds += time.perf_counter() - started
        spikes = [np.concatenate(layer) for layer in zip(*batches, strict=True)]
        if fidelity != "none" and backend != "reference":
            checked = len(bias) if fidelity == "all" else 1
            want = [np.concatenate(layer) for layer in zip(*(
                run(bias[start:min(start + FRAMES_PER_BATCH, checked)], "reference")
                for start in range(0, checked, FRAMES_PER_BATCH)), strict=True)]
            exact = all(np.array_equal(a[:checked], b) for a, b in zip(spikes, want, strict=True))
    layer_names = [*([] if network.input is None else [network.input_name]), *network.names]
    with atomic_path(target) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, frames=np.array(names), **dict(zip(layer_names, spikes, strict=True)))
    console.print(f"{plural(len(names), 'frame')} of {steps} steps on {backend} in {seconds:.2f} s "
                  f"({len(names) * steps / seconds:.1f} steps/s) -> {target}", highlight=False, soft_wrap=True)
    rows = []
    for name, s in zip(layer_names, spikes, strict=True):
        rate = float(s.mean())
        rows.append({"layer": name, "shape": list(s.shape[2:]), "spikes": int(s.sum()) / len(names),
                     "firing_rate": rate})
        console.print(f"  {name:16s} {'x'.join(map(str, s.shape[2:])):>10s}  {int(s.sum()) / len(names):>12,.0f} "
                      f"spikes per frame, firing rate {rate:.4f}", highlight=False)
    if exact is not None:
        console.print(f"  bit-exact with the reference backend: {'yes' if exact else 'NO'}")
    if json_out is not None:
        with atomic_path(json_out) as tmp:
            tmp.write_text(json.dumps({"network": str(path), "backend": backend, "frames": names, "steps": steps,
                                       "seconds": seconds, "exact_vs_reference": exact, "layers": rows}, indent=2))
        console.print(f"JSON: {json_out}")


def profile_netx_file(path: Path, image: Path | None, input_path: Path | None, hw: list[str] | None, host: str,
                      backend: str, device: str, steps: int | None, threads: int | None,
                      json_out: Path | None, report: Path | None, large: bool) -> tuple[dict[str, Any], Any]:
    """``profile NET.net --image ...``: the summary and the raster's spikes, every check before the run."""
    if json_out is not None:
        check_output_file(json_out, "JSON")
    if report is not None:
        check_output_folder(report)
    select_profiles(hw)
    load_profile(host)
    network, _, bias, steps = _read(path, image, input_path, steps, backend, device, large)
    with sized_threads(plan_threads(backend, threads)):
        return profile_netx(network, bias, steps, backend, hw, host, device, str(path))


def print_netx(path: Path) -> None:
    """``convert NET.net``: the network read and checked, one row per layer; nothing to write (the file is
    already Loihi fixed point, and simulate and profile take it as it is)."""
    from rich import box
    from rich.table import Table

    network = read_network(path)
    table = Table(title=f"{path.name}: Lava-DL netx network, {network.steps} steps per frame (tSample)",
                  box=box.SIMPLE_HEAD)
    for col in ("layer", "kind", "output", "weights", "iDecay", "vDecay", "vThMant"):
        table.add_column(col, justify="right", no_wrap=True)
    if network.input is not None:
        shape = "x".join(map(str, network.input.shape))
        table.add_row(network.input_name, "input", shape, "bias", str(network.input.i_decay),
                      str(network.input.v_decay), str(network.input.vth_mant))
    for name, layer in zip(network.names, network.layers, strict=True):
        table.add_row(name, layer.kind, "x".join(map(str, layer.output_shape)),
                      f"{sum(w.size for w in layer.weights):,}",
                      str(layer.i_decay), str(layer.v_decay), str(layer.vth_mant))
    console.print(table)
    console.print(f"every layer runs on the chip in Loihi fixed point as the file holds it; nothing to convert: "
                  f"simulate and profile take {path.name} itself (--image FRAME)", highlight=False, soft_wrap=True)
