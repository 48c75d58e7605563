"""What stops the residual SC-NN from learning a correction to the harmonic fill? Small controlled runs.

Trains ``examples/configs/smooth_residual.json`` (harmonic fill, the paper's
SC-NN adding a signed correction to it) for a fixed number of Adam steps,
changing one thing at a time against the shipped recipe: the loss, the
learning rate, the last layer's initial scale, the crop size and the
training photos. Every run has the same seed (weights, crops, holes, batch
order) and the same budget. After every ``--eval-every`` steps it scores the
float model on the builtin crop protocol of ``neurodeploy evaluate`` (the 16
seeded 128-px crops of the 4 validation photos, holes of 5-25%): the mean
hole PSNR of the SC-NN's result and of the harmonic fill alone, on the same
8-bit images, and the correction's size (RMS of output - fill in the hole,
in grey levels) and the fraction of each host ReLU layer's units that are
active on those crops. The validation photos are never trained on.

Losses (``--loss``):

* ``image``: the shipped one, MSE over the whole crop of the composite (known
  pixels contribute 0, so the batch's gradient is dominated by its largest holes);
* ``hole``: each crop's MSE over its hole pixels only, averaged over the batch
  (every crop weighs the same whatever its hole size, as in the per-image PSNR);
* ``psnr``: the mean over the batch of 10 log10 of each crop's hole MSE, i.e.
  minus the mean hole PSNR, the evaluation's own measure.

    OMP_NUM_THREADS=1 python benchmarks/residual_diagnosis.py --steps 300 --loss hole --json out.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from neurodeploy.inpainter.checkpoint import load_model, save_checkpoint
from neurodeploy.inpainter.data import EvalSet, ImageFolder, WholePhotoSet, builtin_paths, stack_pairs, to_tensors
from neurodeploy.inpainter.evaluate import inpaint_harmonic, score
from neurodeploy.inpainter.holes import composite
from neurodeploy.inpainter.model import HybridInpainter, ModelConfig
from neurodeploy.inpainter.train import inpainting_loss, training_loss
from neurodeploy.io import list_images

CONFIG = Path(__file__).resolve().parents[1] / "examples" / "configs" / "smooth_residual.json"


def crop_protocol() -> list:
    return list(EvalSet(builtin_paths("val"), crop=128, seed=0))


@torch.no_grad()
def hole_scores(model: HybridInpainter, samples: list, fill_psnr: float) -> dict[str, float]:
    model.eval()
    psnrs, rms = [], []
    active: list[list[float]] = [[] for _ in model.cnn.layers[:-1]]
    hooks = [block[1].register_forward_hook(lambda _m, _i, out, k=k: active[k].append(float((out > 0).float().mean())))
             for k, block in enumerate(model.cnn.layers[:-1])]
    for s in samples:
        img, msk = to_tensors(s.image, s.mask)
        pred = model(img[None], msk[None])[0]
        fill = model.network_input(img[None], msk[None])[0, :3]
        out = np.clip(np.rint(composite(img, pred, msk).permute(1, 2, 0).numpy() * 255), 0, 255).astype(np.uint8)
        psnrs.append(score(s.image, out, s.mask).psnr_hole)
        hole = msk[0] > 0
        rms.append(float(((pred - fill)[:, hole] * 255).pow(2).mean().sqrt()))
    for hook in hooks:
        hook.remove()
    model.train()
    psnr = float(np.mean(psnrs))
    return {"psnr_hole": psnr, "fill_psnr_hole": fill_psnr, "gain_db": psnr - fill_psnr,
            "correction_rms_grey": float(np.mean(rms)),
            "host_relu_active": [round(float(np.mean(a)), 4) for a in active]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--cosine", action="store_true", help="decay the learning rate to 0 over --steps (cosine)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--loss", choices=("image", "hole", "psnr"), default="image")
    parser.add_argument("--last-init", type=float, default=None,
                        help="scale the last layer's initial weights by this (0: zero init)")
    parser.add_argument("--data", default="builtin",
                        help="'builtin', a folder (all its images train), or both: builtin,DIR")
    parser.add_argument("--config", default=str(CONFIG))
    parser.add_argument("--set", action="append", default=[], help="ModelConfig field=JSON value")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--save", type=Path, help="write the trained model as a checkpoint (for evaluate)")
    parser.add_argument("--plot", type=Path, nargs="+", metavar="PNG RUN.json",
                        help="plot the gain over the fill of earlier runs' JSON into PNG, and stop")
    parser.add_argument("--figure", type=Path, nargs=2, metavar=("PNG", "MODEL.pt"),
                        help="draw masked | fill | SC-NN | correction | truth on 4 validation crops, and stop")
    parser.add_argument("--photos", type=Path, metavar="MODEL.pt",
                        help="score MODEL and the fill on the whole-photo protocol (8 holes), and stop")
    args = parser.parse_args()
    if args.photos:
        model, _ = load_model(args.photos)
        photos = list(WholePhotoSet(builtin_paths("val"), seed=0))
        fill = float(np.mean([score(s.image, inpaint_harmonic(s.image, s.mask), s.mask).psnr_hole for s in photos]))
        print(json.dumps({"model": str(args.photos), **hole_scores(model, photos, fill)}))
        return
    if args.plot:
        plot_runs(args.plot[0], args.plot[1:])
        return
    if args.figure:
        correction_figure(args.figure[0], args.figure[1])
        return

    fields = json.loads(Path(args.config).read_text())
    for item in args.set:
        key, value = item.split("=", 1)
        fields[key] = json.loads(value)
    torch.manual_seed(args.seed)
    model = HybridInpainter(ModelConfig.from_dict(fields))
    if args.last_init is not None:
        with torch.no_grad():
            model.cnn.layers[-1][0].weight.mul_(args.last_init)
    paths = []  # every image of every source trains: the validation photos are the builtin ones
    for source in args.data.split(","):
        paths += builtin_paths("train") if source == "builtin" else list_images(Path(source))
    data = ImageFolder(paths, crop=args.crop, seed=args.seed, samples_per_epoch=args.steps * args.batch_size)
    samples = crop_protocol()
    fill_psnr = float(np.mean([score(s.image, inpaint_harmonic(s.image, s.mask), s.mask).psnr_hole
                               for s in samples]))
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.steps) if args.cosine else None
    curve = [{"step": 0, **hole_scores(model, samples, fill_psnr)}]
    print(json.dumps(curve[-1]), flush=True)
    started, running = time.perf_counter(), 0.0
    for step in range(args.steps):
        batch = range(step * args.batch_size, (step + 1) * args.batch_size)
        image, mask = stack_pairs([data[i] for i in batch])
        pred = model(image, mask)
        loss = training_loss(image, pred, mask, args.loss)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if schedule:
            schedule.step()
        running += float(inpainting_loss(image, pred.detach(), mask))
        if (step + 1) % args.eval_every == 0:
            curve.append({"step": step + 1, "train_mse": running / args.eval_every,
                          "seconds": time.perf_counter() - started, **hole_scores(model, samples, fill_psnr)})
            running = 0.0
            print(json.dumps(curve[-1]), flush=True)
    result = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "train_images": len(paths), "curve": curve}
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    if args.save:
        save_checkpoint(args.save, model, epoch=1, train_losses=[], val_losses=[], optimizer={},
                        diagnosis=result["args"])


@torch.no_grad()
def correction_figure(png: Path, checkpoint: Path, crops: tuple[int, ...] = (0, 5, 10, 15)) -> None:
    """One row per validation crop: masked input, harmonic fill, the SC-NN's result, its correction in the
    hole (x 20, grey = 0) and the truth, with each result's hole PSNR."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    model, _ = load_model(checkpoint)
    model.eval()
    samples = crop_protocol()
    fig, axes = plt.subplots(len(crops), 5, figsize=(12, 2.6 * len(crops)))
    for row, index in zip(axes, crops, strict=True):
        s = samples[index]
        img, msk = to_tensors(s.image, s.mask)
        pred = model(img[None], msk[None])[0]
        fill = model.network_input(img[None], msk[None])[0, :3]
        to_image = lambda t: np.clip(np.rint(t.permute(1, 2, 0).numpy() * 255), 0, 255).astype(np.uint8)  # noqa: E731
        filled, result = to_image(composite(img, fill, msk)), to_image(composite(img, pred, msk))
        correction = (0.5 + 20 * (pred - fill) * msk).clamp(0, 1)
        masked = s.image.copy()
        masked[s.mask] = 255
        panels = [(masked, f"{s.name}: hole {s.mask.mean():.0%}"),
                  (filled, f"harmonic fill {score(s.image, filled, s.mask).psnr_hole:.2f} dB"),
                  (result, f"SC-NN {score(s.image, result, s.mask).psnr_hole:.2f} dB"),
                  (to_image(correction), "SC-NN - fill, x 20"), (s.image, "truth")]
        for axis, (picture, title) in zip(row, panels, strict=True):
            axis.imshow(picture)
            axis.set_title(title, fontsize=9)
            axis.axis("off")
    fig.suptitle(f"{checkpoint.name}: what the network adds to the harmonic fill (hole PSNR)")
    fig.tight_layout()
    fig.savefig(png, dpi=60)


def plot_runs(png: Path, runs: list[Path]) -> None:
    """Hole PSNR over the fill (dB) and the correction's RMS (grey levels) against the step, one line a run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (gain, size) = plt.subplots(1, 2, figsize=(11, 4))
    for path in runs:
        run = json.loads(path.read_text())
        steps = [p["step"] for p in run["curve"]]
        gain.plot(steps, [p["gain_db"] for p in run["curve"]], marker="o", label=path.stem)
        size.plot(steps, [p["correction_rms_grey"] for p in run["curve"]], marker="o", label=path.stem)
    gain.axhline(0.3, color="grey", linestyle="--", linewidth=1)
    gain.set(xlabel="Adam step (batch 8)", ylabel="hole PSNR - harmonic fill (dB)",
             title="16 builtin validation crops, 128 px")
    size.set(xlabel="Adam step (batch 8)", ylabel="RMS of the correction in the hole (grey levels)",
             title="what the network adds to the fill")
    gain.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)


if __name__ == "__main__":
    main()
