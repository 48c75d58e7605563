"""The hole: what the spiking stage sees of a masked image (:func:`network_input`, with the hole filled by
nothing, the known mean or :func:`smooth_fill`), and how the prediction goes back into it (:func:`composite`).

:func:`smooth_fill` is harmonic interpolation, coarse to fine: known pixels are
averaged over 2x2 blocks level by level (push), then every level's unknown
pixels are filled from the coarser one and relaxed (pull), in bands of rows so
that its temporaries stay bounded (:data:`BAND_VALUES`) whatever the image size.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

HoleFill = Literal["zero", "mean", "smooth"]


def network_input(image: torch.Tensor, mask: torch.Tensor, mask_input: bool = True,
                  hole_fill: HoleFill = "zero") -> torch.Tensor:
    """The spiking stage's input (B, C, H, W): the masked image, then the mask if ``mask_input``.

    Missing pixels hold 0 (``hole_fill="zero"``), the mean colour of the
    image's known pixels (``"mean"``) or :func:`smooth_fill` (``"smooth"``),
    rounded to 8 bits like every pixel. ``mask`` (B, 1, H, W) is 1 (or True)
    where a pixel is missing: a bool mask gives the same values as its 0/1
    float copy and spares a big image a float plane.
    """
    known = ~mask if mask.dtype == torch.bool else 1.0 - mask
    masked = image * known  # x * True is x * 1.0: the same floats as with a float mask
    del image  # freed here if the caller handed over its only reference (SnnInput does)
    if hole_fill == "mean":
        known = known.to(masked.dtype)  # summed as float, as the float mask is
        mean = masked.sum(dim=(2, 3), keepdim=True) / known.sum(dim=(2, 3), keepdim=True).clamp_min(1.0)
        masked = masked + torch.round(mean * 255.0) / 255.0 * mask
    elif hole_fill == "smooth":
        # channel by channel (the fill treats them independently) and in place, the same
        # operations as a whole: a big image holds a third of the float copies
        for c in range(masked.shape[1]):
            masked[:, c:c + 1] += smooth_fill(masked[:, c:c + 1], known).mul_(255.0).round_().div_(255.0).mul_(mask)
    return torch.cat([masked, mask.to(masked.dtype)], dim=1) if mask_input else masked


SMOOTH_FILL_ITERATIONS = 10  # relaxation sweeps per pyramid level: 19.02 dB with none, 19.59 with 10
BAND_VALUES = 1 << 20  # values per band of rows in smooth_fill's passes: 4 MB float32 temporaries


def smooth_fill(image: torch.Tensor, known: torch.Tensor,
                iterations: int = SMOOTH_FILL_ITERATIONS) -> torch.Tensor:
    """Harmonic interpolation of the unknown pixels (``known`` (B, 1, H, W) = 0), coarse to fine.

    Push: average the known pixels over 2x2 blocks, level by level, until no
    pixel is unknown (or one pixel is left). Pull: on the way back up, each
    unknown pixel starts from the bilinear upsampling of the level below and
    then takes ``iterations`` Jacobi sweeps of Laplace's equation (each
    unknown pixel becomes the mean of its four neighbours), a cascadic
    multigrid solve:

        x <- fixed + 0.25 ((up + down) + (left + right)) (1 - known),   fixed = image known

    An odd side is padded by one unknown pixel before the averaging, so
    that the upsampling by exactly 2 puts every coarse pixel back between
    its two fine ones. Known pixels keep their values; an image with no
    known pixel comes back as 0. ``known`` holds 0 and 1, as float or bool
    (a bool mask is multiplied as its 0/1 float copy, the same values).

    Memory: the passes run over bands of rows (:data:`BAND_VALUES` values),
    computing ``fixed`` and ``1 - known`` band by band, so that besides its
    arguments a level holds two planes of its image, x and the next sweep's
    x (the result is a view into one of them), and no float mask: every
    value is computed by the same float32 operations, in the same order, as
    over the whole plane at once.
    """
    if min(image.shape[-2:]) <= 1 or bool((known > 0).all()):
        return image * known
    height, width = image.shape[-2:]
    rows = _band_rows(image)
    # odd sides padded by one unknown pixel: coarse pixel i then lies exactly between fine pixels 2i and
    # 2i + 1, and the upsampling by 2 below puts it back there (sizes n -> ceil(n / 2) -> n do not)
    total, weight = _block_means(image, known, rows)
    coarse_known = weight > 0  # bool: the coarse level's 0/1 selector, a quarter of the bytes of a float one
    total.div_(weight.clamp_min_(1e-12))
    del weight
    coarse = smooth_fill(total, coarse_known, iterations)
    del total, coarse_known
    x = F.interpolate(coarse, scale_factor=2.0, mode="bilinear", align_corners=False)[..., :height, :width]
    del coarse
    for band in _bands(height, rows):
        x[..., band, :].mul_(_unknown(known[..., band, :])).add_(image[..., band, :] * known[..., band, :])
    if iterations == 0:
        return x
    # x with a border of one replicated pixel, and a second such plane, which each sweep writes
    # from the first; then they swap
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    del x
    q = torch.empty_like(p)
    for _ in range(iterations):
        # plain float32 additions, not a conv: the same on every device, where a
        # GPU may run convolutions in TF32 (a 10-bit mantissa)
        for band in _bands(height, rows):
            up, middle, down = (slice(band.start + i, band.stop + i) for i in range(3))
            mean = torch.add(p[..., up, 1:-1], p[..., down, 1:-1], out=q[..., middle, 1:-1])
            mean += p[..., middle, :-2] + p[..., middle, 2:]
            mean.mul_(0.25).mul_(_unknown(known[..., band, :])).add_(image[..., band, :] * known[..., band, :])
        _replicate_border(q)
        p, q = q, p
    del q
    return p[..., 1:-1, 1:-1]


def _band_rows(image: torch.Tensor) -> int:
    """Rows per band of smooth_fill's passes: about :data:`BAND_VALUES` values, an even number (the
    2x2 blocks of the averaging do not straddle two bands)."""
    row_values = math.prod(image.shape[:-2]) * image.shape[-1]
    return max(2, BAND_VALUES // row_values // 2 * 2)


def _bands(height: int, rows: int) -> list[slice]:
    """Row slices of ``rows`` rows (the last one shorter) covering ``height`` rows."""
    return [slice(top, min(top + rows, height)) for top in range(0, height, rows)]


def _unknown(known: torch.Tensor) -> torch.Tensor:
    """1 - known, as a bool mask when ``known`` is one (multiplied as 0/1 floats, the same values)."""
    return ~known if known.dtype == torch.bool else 1.0 - known


def _block_means(image: torch.Tensor, known: torch.Tensor, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``avg_pool2d(pad(image * known), 2)`` and ``avg_pool2d(pad(known), 2)`` (``known`` as float),
    an odd side padded by one zero, computed over bands of ``rows`` rows (even): each 2x2 block is
    averaged from the same four values as over the whole plane, without a float copy of it."""
    height, width = image.shape[-2:]
    coarse = ((height + 1) // 2, (width + 1) // 2)
    total = image.new_empty(*torch.broadcast_shapes(image.shape, known.shape)[:-2], *coarse)
    weight = image.new_empty(*known.shape[:-2], *coarse)
    for band in _bands(height, rows):
        even = (0, width % 2, 0, (band.stop - band.start) % 2)
        blocks = slice(band.start // 2, (band.stop + 1) // 2)
        total[..., blocks, :] = F.avg_pool2d(F.pad(image[..., band, :] * known[..., band, :], even), 2)
        weight[..., blocks, :] = F.avg_pool2d(F.pad(known[..., band, :].to(image.dtype), even), 2)
    return total, weight


def _replicate_border(padded: torch.Tensor) -> None:
    """Set the one-pixel border of ``padded`` to its nearest inner pixels, as ``F.pad(mode="replicate")``:
    rows first, then columns (whose copies set the corners)."""
    padded[..., 0, :] = padded[..., 1, :]
    padded[..., -1, :] = padded[..., -2, :]
    padded[..., :, 0] = padded[..., :, 1]
    padded[..., :, -1] = padded[..., :, -2]


def composite(image: torch.Tensor, prediction: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Known pixels from ``image``, missing ones (mask = 1) from ``prediction``, clamped to [0,1]."""
    return image * (1.0 - mask) + prediction.clamp(0.0, 1.0) * mask
