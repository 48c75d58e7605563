"""How images become spiking-stage input, and how spikes become CNN input.

Both directions live here so that training (Norse), the reference backend and
the Lava bridge use the same definitions:

* ``constant`` encoding: the 8-bit image drives the spiking conv with the same
  current every step. On Lava it travels as graded spikes whose payload is the
  8-bit pixel value (``PAYLOAD_BITS = 8``), so the chip sees exactly the values
  the model was trained on.
* ``poisson`` encoding: each pixel emits a binary spike per step with
  probability equal to its intensity, drawn from a seeded generator.
* :func:`spike_rate`: the spike tensor (T, ...) reduced over time, the CNN's input.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

Encoding = Literal["constant", "poisson"]
PAYLOAD_BITS = 8
PAYLOAD_MAX = (1 << PAYLOAD_BITS) - 1


def encode_input(x: torch.Tensor, encoding: Encoding, timesteps: int,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Encode (B, C, H, W) intensities in [0, 1].

    ``constant`` returns ``x`` itself (4-d: the same current every step);
    ``poisson`` returns binary spikes (T, B, C, H, W).
    """
    if encoding == "constant":
        return x
    if encoding == "poisson":
        draws = torch.rand((timesteps, *x.shape), generator=generator, device=x.device,
                           dtype=x.dtype)
        return (draws < x.unsqueeze(0)).to(x.dtype)
    raise ValueError(f"unknown encoding {encoding!r}")


def spike_rate(spikes: torch.Tensor) -> torch.Tensor:
    """Mean over the leading time axis: spikes (T, ...) -> rate (...) in [0, 1]."""
    return spikes.to(torch.float32).mean(dim=0)


def to_payload(x: np.ndarray) -> np.ndarray:
    """Intensities in [0, 1] -> the 8-bit integer payloads the chip receives."""
    return np.clip(np.rint(np.asarray(x, dtype=np.float64) * PAYLOAD_MAX), 0, PAYLOAD_MAX).astype(np.uint8)


def input_frames(x: torch.Tensor, encoding: Encoding, timesteps: int,
                 generator: torch.Generator | None = None) -> np.ndarray:
    """The chip's input for one image (C, H, W) in [0, 1]: integer frames (T, C, H, W).

    ``constant``: every frame holds the 8-bit payloads. ``poisson``: binary
    spikes, drawn exactly as :func:`encode_input` draws them for the model.
    """
    if encoding == "constant":
        payload = to_payload(x.detach().cpu().numpy())
        return np.broadcast_to(payload, (timesteps, *payload.shape))
    spikes = encode_input(x.unsqueeze(0), encoding, timesteps, generator)[:, 0]
    return spikes.detach().cpu().numpy().astype(np.uint8)
