"""``neurodeploy simulate``: the hybrid pipeline with the spiking stage on a backend.

For each image: encode the masked image on the host (:mod:`neurodeploy.encoding`),
run the spiking stage for T steps through the :class:`~neurodeploy.bridge.SpikeBridge`
(Lava, Loihi 2, or the NumPy reference), reduce the spikes to rates and run
the host CNN (PyTorch), and composite its prediction into the hole.

Fidelity is measured against the trained float model rebuilt from the bundle
(``snn.nir``'s float weights + ``host.pt``) on the same input (the same Poisson
draws for ``poisson`` encoding): PSNR between the two output images, the
fraction of (t, c, y, x) where the spikes agree, and whether the backend's
spikes equal the reference backend's bit for bit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from neurodeploy.bridge import Backend, LavaModels, SpikeBridge
from neurodeploy.bundle import NIR_FILE, Bundle
from neurodeploy.data import to_tensors
from neurodeploy.encoding import encode_input, input_frames, spike_rate
from neurodeploy.evaluate import psnr_from_mse, to_uint8
from neurodeploy.model import HybridInpainter, composite, network_input
from neurodeploy.text import plural


@dataclass(frozen=True)
class SimulationInput:
    """One image to inpaint: uint8 (H, W, 3), bool mask (H, W) with True = missing."""

    name: str
    image: np.ndarray
    mask: np.ndarray


@dataclass
class ImageResult:
    """What simulating one image produced and measured."""

    name: str
    output: np.ndarray  # uint8 (H, W, 3), the inpainted image
    spikes: torch.Tensor  # uint8 (T, C, H, W), the spiking stage's output
    frames: np.ndarray  # the spiking stage's input (T, C, H, W)
    seconds: dict[str, float]
    fidelity: dict[str, Any] = field(default_factory=dict)

    def summary(self, backend: str) -> dict[str, Any]:
        per_step = self.spikes.reshape(self.spikes.shape[0], -1).sum(dim=1)
        return {
            "name": self.name,
            "backend": backend,
            "timesteps": int(self.spikes.shape[0]),
            "seconds": self.seconds,
            "spikes": {"total": int(per_step.sum()), "per_timestep": [int(v) for v in per_step]},
            "fidelity": self.fidelity,
        }


def float_model(bundle: Bundle) -> HybridInpainter:
    """The trained float model, rebuilt from the bundle: snn.nir's weights and host.pt's CNN."""
    from neurodeploy.converters.nir_io import read_nir

    config = bundle.model_config
    model = HybridInpainter(config)
    stage = read_nir(bundle.file(NIR_FILE), dt=config.lif.dt, tau_convention="seconds")
    with torch.no_grad():
        model.snn.conv.weight.copy_(torch.from_numpy(stage.weight))
    model.cnn = bundle.host_model()
    return model.eval()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images (100 dB, the cap, when identical)."""
    return psnr_from_mse(float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)) / 255.0**2)


class Simulator:
    """Runs images through one bundle on one backend, compiling the Lava network once."""

    def __init__(self, bundle: Bundle, backend: Backend = "lava", models: LavaModels = "neurodeploy",
                 seed: int = 0, fidelity: bool = True) -> None:
        self.bundle = bundle
        self.backend = backend
        self.seed = seed
        self.fidelity = fidelity
        self.host = bundle.host_model()
        self.config = bundle.model_config
        self.reference_model = float_model(bundle) if fidelity else None
        self.bridge = SpikeBridge.of(bundle, backend, models)
        self.reference_bridge = SpikeBridge.of(bundle, "reference") if backend != "reference" else None

    def __enter__(self) -> Simulator:
        self.bridge.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bridge.close()

    @property
    def compile_seconds(self) -> float:
        return self.bridge.compile_seconds

    def _generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed)

    @torch.no_grad()
    def run(self, item: SimulationInput) -> ImageResult:
        started = time.perf_counter()
        image, mask = to_tensors(item.image, item.mask)
        x = network_input(image[None], mask[None], self.config.mask_input, self.config.hole_fill)[0]
        frames = np.ascontiguousarray(input_frames(x, self.config.encoding, self.config.timesteps,
                                                   self._generator()))
        encoded = time.perf_counter()
        spikes = self.bridge.run(frames)
        ran = time.perf_counter()
        prediction = self.host(spike_rate(spikes)[None], x[None])[0]
        output = to_uint8(composite(image, prediction, mask))
        done = time.perf_counter()
        seconds = {"encode": encoded - started, "snn": ran - encoded, "host": done - ran,
                   "total": done - started}
        result = ImageResult(item.name, output, spikes, frames, seconds)
        if self.fidelity:
            result.fidelity = self._fidelity(x, image, mask, result)
        return result

    def _fidelity(self, x: torch.Tensor, image: torch.Tensor, mask: torch.Tensor,
                  result: ImageResult) -> dict[str, Any]:
        model = self.reference_model
        assert model is not None
        float_spikes = model.snn(encode_input(x[None], self.config.encoding, self.config.timesteps,
                                              self._generator()))[:, 0]
        float_output = to_uint8(composite(image, model.host(float_spikes[:, None], x[None])[0], mask))
        if self.reference_bridge is None:
            exact = True
        else:
            exact = bool(torch.equal(self.reference_bridge.run(result.frames), result.spikes))
        return {
            "psnr_vs_float": psnr(result.output, float_output),
            "spike_agreement_vs_float": float((float_spikes.to(torch.uint8) == result.spikes).float().mean()),
            "exact_vs_reference": exact,
        }


@dataclass
class SimulationReport:
    """What :func:`simulate` hands back: the inpainted images and the run's statistics.

    ``outputs`` maps each image's name to its inpainted uint8 (H, W, 3) image
    (empty when ``keep_outputs=False``); ``results`` holds one JSON-able
    summary per image (timings, spikes, fidelity). :meth:`to_dict` is the
    JSON document that ``neurodeploy simulate --json`` and the demo write.
    """

    backend: str
    timesteps: int
    results: list[dict[str, Any]]
    seconds: dict[str, float]
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    @property
    def images(self) -> int:
        return len(self.results)

    @property
    def images_per_second(self) -> float | None:
        run = self.seconds.get("run", 0.0)
        return self.images / run if run > 0 else None

    def to_dict(self) -> dict[str, Any]:
        covers = f"the {plural(self.images, 'image')} simulated in this run"
        if self.skipped:
            covers += f"; {plural(len(self.skipped), 'image')} skipped (listed in 'skipped'): their output existed"
        return {
            "backend": self.backend,
            "timesteps": self.timesteps,
            "images": self.images,
            "covers": covers,
            "skipped": list(self.skipped),
            "seconds": dict(self.seconds),
            "images_per_second": self.images_per_second,
            "results": list(self.results),
        }


def simulate(bundle: Bundle, items: Iterable[SimulationInput], backend: Backend = "lava",
             models: LavaModels = "neurodeploy", seed: int = 0, fidelity: bool = True,
             on_result: Callable[[ImageResult], None] | None = None,
             keep_outputs: bool = True) -> SimulationReport:
    """Simulate every item: the inpainted images (``report.outputs[name]``) and the statistics.

    ``on_result`` sees each :class:`ImageResult` (image, spikes, timings,
    fidelity) as soon as it is done; with ``keep_outputs=False`` the report
    keeps no images, so a long run holds one image at a time.
    """
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    outputs: dict[str, np.ndarray] = {}
    with Simulator(bundle, backend, models, seed, fidelity) as sim:
        for item in items:
            result = sim.run(item)
            if on_result is not None:
                on_result(result)
            if keep_outputs:
                outputs[item.name] = result.output
            results.append(result.summary(backend))
        compile_seconds = sim.compile_seconds
    run_seconds = sum(r["seconds"]["total"] for r in results)
    return SimulationReport(backend, bundle.timesteps, results,
                            {"compile": compile_seconds, "run": run_seconds,
                             "total": time.perf_counter() - started}, outputs)
