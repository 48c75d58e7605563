"""Is the spiking stage what keeps the residual network at the harmonic fill? An ablation.

``examples/configs/smooth_residual.json`` (harmonic fill + a residual host
CNN behind the spiking layer) ends exactly at the fill's score on the builtin
photos. This trains the same host CNN with no spiking stage at all: its input
is the filled image and the mask at full precision, its output a correction
added to the fill, the same loss, optimizer, data and validation protocol as
``neurodeploy train``. If this network cannot beat the fill either, the limit
is the data and the training budget, not the spikes.

Prints the validation MSE (whole image, the paper's measure) of the fill
alone and of fill + correction after every epoch, and their ratio at the end.
``--fixed-batch`` trains on one batch over and over: the network must then
fit it far below the fill, which shows the training itself works.

    python benchmarks/ablation_host_only.py [--epochs 30] [--lr 1e-3] [--seed 0] [--fixed-batch] [--device cuda]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from neurodeploy.inpainter.data import EvalSet, ImageFolder, builtin_paths, stack_pairs, to_tensors
from neurodeploy.inpainter.holes import network_input
from neurodeploy.inpainter.model import HostCNN, ModelConfig
from neurodeploy.inpainter.train import inpainting_loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--samples-per-epoch", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fixed-batch", action="store_true", help="train on the first batch only")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    # The host CNN of the shipped architecture, fed 4 channels (filled RGB + mask) instead of spike rates.
    config = ModelConfig(snn_channels=4, hole_fill="smooth", residual=True, final_activation="none")
    net = HostCNN(config).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
    train = ImageFolder(builtin_paths("train"), seed=args.seed, samples_per_epoch=args.samples_per_epoch)
    val_image, val_mask = stack_pairs(
        [to_tensors(s.image, s.mask) for s in EvalSet(builtin_paths("val"), seed=args.seed)], device)
    val_input = network_input(val_image, val_mask, True, "smooth")

    def validate() -> float:
        with torch.no_grad():
            return float(inpainting_loss(val_image, net(val_input, val_input).clamp(0, 1), val_mask))

    fill_mse = float(inpainting_loss(val_image, val_input[:, :3], val_mask))
    print(f"validation MSE of the harmonic fill alone: {fill_mse:.6f}; untrained fill + correction: "
          f"{validate():.6f}")
    steps = args.samples_per_epoch // args.batch_size

    def batch(epoch: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The crops, flips and masks of ``neurodeploy train`` for this epoch and step."""
        train.epoch = epoch
        order = np.random.default_rng([args.seed, epoch]).permutation(args.samples_per_epoch)
        first = step * args.batch_size
        return stack_pairs([train[int(i)] for i in order[first:first + args.batch_size]], device)

    if args.fixed_batch:
        fixed = batch(0, 0)
        fill_loss = inpainting_loss(fixed[0], network_input(*fixed, True, "smooth")[:, :3], fixed[1])
        print(f"the fixed training batch: MSE of its harmonic fill {float(fill_loss):.6f}")
    started = time.perf_counter()
    for epoch in range(args.epochs):
        running = 0.0
        for step in range(steps):
            image, mask = fixed if args.fixed_batch else batch(epoch, step)
            x = network_input(image, mask, True, "smooth")
            loss = inpainting_loss(image, net(x, x), mask)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            running += float(loss.detach())
        print(f"epoch {epoch + 1}: train MSE {running / steps:.6f}  validation MSE {validate():.6f}  "
              f"({time.perf_counter() - started:.0f} s)", flush=True)
    final = validate()
    print(f"after {args.epochs} epochs ({args.epochs * steps} steps): fill + correction {final:.6f} vs fill "
          f"{fill_mse:.6f}, ratio {final / fill_mse:.4f} (below 1: the CNN improves on the fill)")


if __name__ == "__main__":
    main()
