"""Training the hybrid inpainter with Norse: MSE, Adam, one process or many.

Adam's learning rate follows a cosine from ``lr`` to 0 over the epochs,
computed from the epoch number alone, so a resumed run keeps the schedule.
With a :class:`ConvergenceRule` (``TrainConfig.converge``) the number of
epochs is not known in advance: the rate stays at ``lr`` and training stops
when the rule says the validation MSE has converged, or at its maximum.
The loss is by default the paper's measure: the MSE over the whole image between the
ground truth and the inpainted image (known pixels kept, the network's output
in the hole). Known pixels then contribute zero, so the gradient comes from
the hole only, as it should for inpainting; ``loss="hole"`` or ``"psnr"``
weigh every crop alike whatever its hole's size (:func:`training_loss`).
``val_data`` validates on other photos than ``data``'s tenth (e.g. the builtin
validation photos while training on a folder, whose every image then trains).

The holes cover 1-30% of each crop (:data:`neurodeploy.inpainter.data.TRAIN_MASKS`,
rectangles or brush strokes), the sizes users draw; validation after every
epoch uses the fixed 128-crop protocol (holes of 5-25%).

Every random choice is seeded: weights from ``seed``; crops, flips and masks
from ``(seed, epoch, index)``; the sample order of an epoch from
``(seed, epoch)``; Poisson input spikes from ``(seed, epoch, step)``. So
``--resume`` after any interruption continues exactly, and the run under
``torchrun --nproc_per_node N`` (DistributedDataParallel, gloo on CPU, nccl on
GPU) splits each global batch of ``batch_size`` samples between ranks and
averages their gradients, as one process would.

A checkpoint is written atomically after every epoch (see
:mod:`neurodeploy.inpainter.checkpoint`). On a GPU, training switches PyTorch to its
deterministic algorithms, so a seed gives the same weights there as well.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from neurodeploy.errors import UserError
from neurodeploy.inpainter.checkpoint import model_from_checkpoint, read_checkpoint, save_checkpoint
from neurodeploy.inpainter.data import EvalSet, ImageFolder, resolve_paths, stack_pairs, to_tensors
from neurodeploy.inpainter.model import HybridInpainter, ModelConfig
from neurodeploy.io import check_output_file, list_images, save_torch


@dataclass(frozen=True)
class ConvergenceRule:
    """When a run to convergence stops, from its validation MSE per epoch ``v_1 .. v_n`` alone.

    After epoch ``n`` the window is its last ``w = max(min_window, ceil(window * n))`` epochs (a quarter
    of them by default, 5 at least). The run has converged when ``n >= min_epochs``, ``n >= 2 w``, and
    the mean validation MSE of the window is not ``improvement`` (1%) below the mean of the ``w``
    epochs before it::

        mean(v_{n-w+1} .. v_n) > (1 - improvement) * mean(v_{n-2w+1} .. v_{n-w})

    Means of two adjacent windows, not minima: a noisy curve's lucky low epoch used to set the bar
    (the best before the window), which the few epochs of the window then rarely beat, so a curve still
    falling by several per cent per window stopped early; a mean over ``w`` epochs shrinks the epoch-to-
    epoch noise by sqrt(w), and the window grows with the run. It stops at ``max_epochs`` whether or not
    it has converged. Being a function of the curve, the rule gives the same stop on a resumed run.
    """

    min_epochs: int = 10
    max_epochs: int = 60
    improvement: float = 0.01
    window: float = 0.25
    min_window: int = 5

    def __post_init__(self) -> None:
        if self.min_epochs < 2:
            raise UserError(f"`min_epochs={self.min_epochs}` must be at least 2: the rule compares the last "
                            "epochs with earlier ones", "pass e.g. `min_epochs=10`")
        if self.max_epochs < self.min_epochs:
            raise UserError(f"`max_epochs={self.max_epochs}` is below `min_epochs={self.min_epochs}`",
                            "pass a `max_epochs` at least as large as `min_epochs`")
        if not 0 < self.improvement < 1 or not 0 < self.window <= 0.5:
            raise UserError("`improvement` must lie strictly between 0 and 1 and `window` in (0, 0.5]",
                            "pass e.g. improvement=0.01, window=0.25")
        if self.min_window < 1:
            raise UserError(f"`min_window={self.min_window}` must be at least 1", "pass e.g. `min_window=5`")

    def window_epochs(self, epochs: int) -> int:
        # round() first, so that 0.2 * 15 = 3.0000000000000004 gives a window of 3, not 4
        return max(self.min_window, math.ceil(round(self.window * epochs, 9)))

    def converged(self, val_losses: list[float]) -> bool:
        """Whether the curve ``val_losses`` (one value per epoch) has converged by the rule."""
        n = len(val_losses)
        w = self.window_epochs(n)
        if n < self.min_epochs or n < 2 * w:
            return False
        last, before = val_losses[n - w:], val_losses[n - 2 * w:n - w]
        return sum(last) / w > (1 - self.improvement) * sum(before) / w

    def finished(self, val_losses: list[float]) -> bool:
        """Converged, or at the maximum epoch count."""
        return len(val_losses) >= self.max_epochs or self.converged(val_losses)

    def describe(self) -> str:
        return (f"stop after epoch n (n >= {self.min_epochs}) when the mean validation MSE of the last "
                f"w = max({self.min_window}, ceil({self.window:g} n)) epochs is not {self.improvement:.0%} below "
                f"the mean of the w epochs before them, i.e. mean(last) > {1 - self.improvement:g} x "
                f"mean(before); at {self.max_epochs} epochs in any case (then not converged); constant "
                "learning rate")

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "rule": self.describe()}


@dataclass(frozen=True)
class TrainConfig:
    """Options of ``neurodeploy train``."""

    data: str = "builtin"
    out: str = "model.pt"
    epochs: int = 40
    batch_size: int = 8
    lr: float = 5e-4  # at 2e-3 the residual network's fourth layer dies (docs/BENCHMARKS.md section 23)
    crop: int = 128
    samples_per_epoch: int = 256
    seed: int = 0
    device: str = "auto"
    resume: bool = False
    force: bool = False  # replace an existing model at `out` (without `resume`)
    val_crop: int = 128
    converge: ConvergenceRule | None = None  # train until converged; `epochs` is then its max_epochs
    val_data: str | None = None  # the validation photos: "builtin" or a folder; None: those of `data`
    loss: str = "hole"  # see training_loss; "image" is the paper's

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise UserError(f"unknown loss {self.loss!r}", f"pass one of {', '.join(LOSSES)}")
        for name in ("epochs", "batch_size", "crop", "samples_per_epoch", "val_crop"):
            if getattr(self, name) < 1:
                raise UserError(f"`{name}` must be at least 1", "pass a positive number")
        if self.converge is not None and self.epochs != self.converge.max_epochs:
            raise UserError(f"`epochs={self.epochs}` with a convergence rule of at most "
                            f"{self.converge.max_epochs} epochs", "pass `epochs` equal to its `max_epochs`")
        if not self.lr > 0:
            raise UserError("`lr` must be positive", "pass e.g. `lr=2e-3`")

    def check_output(self) -> None:
        """Refuse, before any work, an `out` that is a folder, another kind of file, or a model to keep."""
        check_output_file(self.out, "torch checkpoint")
        if os.path.exists(self.out) and not (self.resume or self.force):
            raise UserError(f"{self.out} already holds a model, which training would replace",
                            "pass `resume=True` to continue it or `force=True` to replace it")


@dataclass
class TrainResult:
    """What a finished run reports."""

    epochs: int
    train_losses: list[float]
    val_losses: list[float]
    seconds: float
    world_size: int
    rank_checksums: list[str]
    converged: bool | None = None  # by `TrainConfig.converge`; None without one


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"`device={name}` asked for, but torch sees no CUDA GPU", "pass `device=cpu`")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r}", "pass `device=cpu`, cuda or auto") from None


def params_checksum(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def inpainting_loss(image: torch.Tensor, prediction: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MSE over the whole image of the inpainted result (known pixels from ``image``)."""
    return F.mse_loss(image * (1 - mask) + prediction * mask, image)


def hole_mse(image: torch.Tensor, prediction: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each sample's MSE over its hole pixels only, shape (B,): the error the hole PSNR is made of."""
    squared = ((prediction - image) * mask).pow(2).sum(dim=(1, 2, 3))
    return squared / (mask.sum(dim=(1, 2, 3)) * image.shape[1]).clamp_min(1.0)


LOSSES = ("image", "hole", "psnr")


def training_loss(image: torch.Tensor, prediction: torch.Tensor, mask: torch.Tensor,
                  kind: str = "image") -> torch.Tensor:
    """The loss a run minimises: ``image`` (:func:`inpainting_loss`), ``hole`` (the batch's mean of
    :func:`hole_mse`: every sample weighs the same, whatever its hole's size) or ``psnr`` (the mean of
    10 log10 of each sample's hole MSE: minus the mean hole PSNR the evaluation reports)."""
    if kind == "image":
        return inpainting_loss(image, prediction, mask)
    per_sample = hole_mse(image, prediction, mask)
    if kind == "hole":
        return per_sample.mean()
    return (10 * torch.log10(per_sample.clamp_min(1e-10))).mean()


@torch.no_grad()
def validation_mse(model: HybridInpainter, evalset: EvalSet, device: torch.device,
                   batch_size: int = 8) -> float:
    """The paper's validation measure on the fixed protocol: whole-image MSE of the result."""
    model.eval()
    total, count = 0.0, 0
    samples = list(evalset)
    for start in range(0, len(samples), batch_size):
        chunk = [to_tensors(s.image, s.mask) for s in samples[start:start + batch_size]]
        image, mask = stack_pairs(chunk, device)
        generator = torch.Generator(device=device).manual_seed(start)
        pred = model(image, mask, generator).clamp(0, 1)
        total += float(inpainting_loss(image, pred, mask)) * len(chunk)
        count += len(chunk)
    model.train()
    return total / count


def _distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    return world, rank


@dataclass(frozen=True)
class _Session:
    """A run's state between epochs: the model (``net`` is it, or its DistributedDataParallel wrapper), the
    optimizer, the epoch to start from and the loss curves so far (appended to after every epoch)."""

    model: HybridInpainter
    net: torch.nn.Module
    optimizer: torch.optim.Optimizer
    start_epoch: int
    train_losses: list[float]
    val_losses: list[float]


@dataclass(frozen=True)
class _Data:
    """The training samples, the validation protocol and how a global batch splits over the processes."""

    dataset: ImageFolder
    evalset: EvalSet
    local_batch: int  # samples per process in one step
    steps: int  # optimizer steps per epoch


def train(config: TrainConfig, model_config: ModelConfig, progress: bool = True,
          on_epoch: Callable[[int, float, float, float], None] | None = None) -> TrainResult:
    """Train (or resume) and write ``config.out`` after every epoch; rank 0 writes.

    ``on_epoch(epoch, train_mse, val_mse, seconds)`` is called on rank 0 after each epoch's checkpoint.
    """
    config.check_output()
    world, rank = _distributed()
    device = _device_for(config, world)
    if config.batch_size % world:
        raise UserError(f"`batch_size={config.batch_size}` does not split over {world} processes",
                        f"pass a multiple of {world}")
    session = _start_session(config, model_config, device, world)
    data = _load_data(config, world)

    started = time.perf_counter()
    bar = _progress(progress and rank == 0)
    with bar:
        task = bar.add_task("train", total=(config.epochs - session.start_epoch) * data.steps)
        for epoch in range(session.start_epoch, config.epochs):
            if config.converge is not None and config.converge.finished(session.val_losses):
                break  # a resumed run that had already converged
            epoch_started = time.perf_counter()
            running = _train_epoch(config, session, data, epoch, rank, device,
                                   lambda text: bar.update(task, advance=1, description=text))
            session.train_losses.append(_mean_over_ranks(running, world, device))
            val = validation_mse(session.model, data.evalset, device)
            session.val_losses.append(val)
            if rank == 0:
                _save_epoch(config, session, data, epoch)
                if on_epoch is None:
                    bar.console.print(f"epoch {epoch + 1}: train MSE {session.train_losses[-1]:.5f}  "
                                      f"validation MSE {val:.5f}")
                else:  # the caller reports the epoch its own way (the sweep: with the time left)
                    on_epoch(epoch + 1, session.train_losses[-1], val, time.perf_counter() - epoch_started)
    checksums = _finish_processes(config, session.model, world, rank)
    converged = None if config.converge is None else config.converge.converged(session.val_losses)
    return TrainResult(len(session.val_losses), session.train_losses, session.val_losses,
                       time.perf_counter() - started, world, checksums, converged)


def _device_for(config: TrainConfig, world: int) -> torch.device:
    """The device of this process (rank ``LOCAL_RANK``'s GPU under torchrun), the process group joined."""
    device = resolve_device(config.device)
    if world > 1:
        if device.type == "cuda":
            local = int(os.environ.get("LOCAL_RANK", "0"))
            device = torch.device("cuda", local)
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        # The same command gives the same numbers on a GPU too: without this,
        # cuDNN picks kernels by timing and some backward passes add atomically.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)
    return device


def _start_session(config: TrainConfig, model_config: ModelConfig, device: torch.device,
                   world: int) -> _Session:
    """The model seeded by ``config.seed``, or the checkpoint at ``config.out`` with its optimizer, losses and
    torch generator state when resuming."""
    torch.manual_seed(config.seed)
    model = HybridInpainter(model_config)
    start_epoch, train_losses, val_losses = 0, [], []
    ckpt = read_checkpoint(config.out) if config.resume and os.path.exists(config.out) else None
    if ckpt is not None:
        model = model_from_checkpoint(ckpt, config.out)
    # on the device before the optimizer exists, so that Adam's state lands there too
    model.to(device)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    if ckpt is not None:
        optimizer.load_state_dict(ckpt["optimizer"])
        start_epoch = int(ckpt["epoch"])
        train_losses = list(ckpt["train_losses"])
        val_losses = list(ckpt["val_losses"])
        torch.set_rng_state(ckpt["rng"]["torch"])
    net: torch.nn.Module = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model)
    return _Session(model, net, optimizer, start_epoch, train_losses, val_losses)


def _load_data(config: TrainConfig, world: int) -> _Data:
    # validating on other photos (`val_data`), every photo of `data` trains, none is held out
    separate = config.val_data not in (None, config.data) and config.data != "builtin"
    train_paths = resolve_paths(config.data, "train")  # refuses a missing or empty folder
    if separate:
        train_paths = list_images(Path(config.data))
    dataset = ImageFolder(train_paths, crop=config.crop, seed=config.seed,
                          samples_per_epoch=config.samples_per_epoch)
    evalset = EvalSet(resolve_paths(config.val_data or config.data, "val"), crop=config.val_crop, seed=config.seed)
    steps = config.samples_per_epoch // config.batch_size
    if steps < 1:
        raise UserError("`samples_per_epoch` is smaller than `batch_size`", "raise `samples_per_epoch`")
    return _Data(dataset, evalset, config.batch_size // world, steps)


def _train_epoch(config: TrainConfig, session: _Session, data: _Data, epoch: int, rank: int,
                 device: torch.device, advance: Callable[[str], None]) -> float:
    """One epoch of Adam steps on this process's share of each global batch; returns its mean training MSE.

    The rate is ``lr`` (with a convergence rule) or the cosine ``lr/2 (1 + cos(pi epoch / epochs))``; the
    sample order is the permutation of ``(seed, epoch)``, the input spikes of a step seeded by
    ``(seed, epoch, step, rank)``. ``advance(text)`` moves the progress bar one step.
    """
    for group in session.optimizer.param_groups:  # cosine decay, a function of the epoch alone
        group["lr"] = config.lr if config.converge is not None else \
            config.lr * 0.5 * (1 + math.cos(math.pi * epoch / config.epochs))
    data.dataset.epoch = epoch
    order = np.random.default_rng([config.seed, epoch]).permutation(config.samples_per_epoch)
    running = 0.0
    for step in range(data.steps):
        first = step * config.batch_size + rank * data.local_batch
        image, mask = stack_pairs([data.dataset[int(i)] for i in order[first:first + data.local_batch]], device)
        generator = torch.Generator(device=device).manual_seed(_hash_seed(config.seed, epoch, step, rank))
        pred = session.net(image, mask, generator)
        loss = training_loss(image, pred, mask, config.loss)
        session.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        session.optimizer.step()
        running += float(loss.detach())
        advance(f"epoch {epoch + 1}/{config.epochs} loss {running / (step + 1):.5f}")
    return running / data.steps


def _save_epoch(config: TrainConfig, session: _Session, data: _Data, epoch: int) -> None:
    """The checkpoint after ``epoch``: weights, optimizer, curves, data and the torch generator's state."""
    save_checkpoint(
        config.out, session.model,
        optimizer=session.optimizer.state_dict(),
        epoch=epoch + 1,
        train_losses=session.train_losses,
        val_losses=session.val_losses,
        data={"source": config.data, "val_source": config.val_data or config.data,
              "train_images": len(data.dataset.paths), "val_images": len(data.evalset.paths),
              "skipped_files": data.dataset.skipped},
        train_config=dataclasses.asdict(config),
        rng={"torch": torch.get_rng_state()},
    )


def _finish_processes(config: TrainConfig, model: torch.nn.Module, world: int, rank: int) -> list[str]:
    """Every rank's weight checksum (kept in the checkpoint when there are several), the process group left."""
    checksums = _gather_checksums(model, world)
    if world > 1 and rank == 0:
        ckpt = read_checkpoint(config.out)
        ckpt["rank_checksums"] = checksums
        save_torch(ckpt, config.out)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return checksums


def _hash_seed(*parts: int) -> int:
    return int(np.random.default_rng(list(parts)).integers(0, 2**31 - 1))


def _mean_over_ranks(value: float, world: int, device: torch.device) -> float:
    if world == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return float(tensor) / world


def _gather_checksums(model: torch.nn.Module, world: int) -> list[str]:
    mine = params_checksum(model)
    if world == 1:
        return [mine]
    gathered: list[Any] = [None] * world
    dist.all_gather_object(gathered, mine)
    return [str(g) for g in gathered]


def _progress(enabled: bool) -> Any:
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TimeElapsedColumn(), TimeRemainingColumn(), disable=not enabled, transient=False)
