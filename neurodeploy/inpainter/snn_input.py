"""The spiking stage's input of one image, read window by window: what the simulator and the calibration feed it."""

from __future__ import annotations

import numpy as np
import torch

from neurodeploy.chip.encoding import PAYLOAD_MAX
from neurodeploy.inpainter.data import to_tensors
from neurodeploy.inpainter.holes import network_input
from neurodeploy.inpainter.model import ModelConfig


class SnnInput:
    """The spiking stage's input x (C, H, W) of one image (:func:`~neurodeploy.inpainter.model.network_input`),
    read window by window.

    With ``hole_fill="zero"`` each pixel of x depends on that pixel alone, so
    a window of x is computed from the same window of the image. ``mean`` and
    ``smooth`` look at the whole image: x is computed once and kept as its
    8-bit payloads p, from which p / 255 gives x back bit for bit (every
    channel of x is k / 255 in float32). The smooth fill treats the colours
    independently and takes them one at a time (a third of the float copies
    of the image); the mean is a float sum whose rounding depends on the
    tensor's shape, so it takes all colours at once, as in training. The mask
    goes in as bool (the same values as its 0/1 float copy, a quarter of the
    bytes), and the image's float plane is freed once masked: the smooth fill
    of one colour then holds three float planes at its peak, the masked image
    and the fill's two (docs/BENCHMARKS.md section 10).
    """

    def __init__(self, image: np.ndarray, mask: np.ndarray, config: ModelConfig) -> None:
        self.image, self.mask, self.config = image, mask, config
        self.payload: np.ndarray | None = None
        if config.hole_fill == "zero":
            return
        colours = list(range(config.image_channels))
        self.payload = np.empty((config.snn_in_channels, *mask.shape), np.uint8)
        # the mask as bool, not float: it selects the same values and spares a float plane
        hole = torch.from_numpy(np.asarray(mask, dtype=bool))[None, None]
        for group in [[c] for c in colours] if config.hole_fill == "smooth" else [colours]:
            self.payload[group] = _filled_payload(image[..., group], hole, config)
        if config.mask_input:
            self.payload[-1] = mask * np.uint8(PAYLOAD_MAX)

    def window(self, rows: slice, cols: slice) -> torch.Tensor:
        """x[:, rows, cols], float32 (C, h, w)."""
        if self.payload is not None:
            return torch.from_numpy(self.payload[:, rows, cols]).float() / float(PAYLOAD_MAX)
        img, hole = to_tensors(self.image[rows, cols], self.mask[rows, cols])
        return network_input(img[None], hole[None], self.config.mask_input, "zero")[0]


def _filled_payload(image: np.ndarray, hole: torch.Tensor, config: ModelConfig) -> np.ndarray:
    """The payloads (C, H, W) of network_input's masked and filled image, of uint8 (H, W, C) ``image``
    and bool (1, 1, H, W) ``hole``; a function of its own, so that its float planes are freed on return,
    before the next colour's are made."""
    # the image as to_tensors makes it, without its float mask; handed over without a name here, so
    # that network_input frees it once it has the masked copy
    x = network_input((torch.from_numpy(np.asarray(image, np.uint8)).permute(2, 0, 1).float() / 255.0)[None],
                      hole, False, config.hole_fill)[0]
    return x.mul_(PAYLOAD_MAX).round_().to(torch.uint8).numpy()
