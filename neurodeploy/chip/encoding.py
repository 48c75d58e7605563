"""How images become spiking-stage input, and how spikes become CNN input.

Both directions live here so that training (Norse), the reference backend and
the Lava bridge use the same definitions:

* ``constant`` encoding: the 8-bit image drives the spiking conv with the same
  current every step. On Lava it travels as graded spikes whose payload is the
  8-bit pixel value (``PAYLOAD_BITS = 8``), so the chip sees exactly the values
  the model was trained on.
* ``poisson`` encoding: each pixel emits a binary spike per step with
  probability equal to its intensity. Training draws from a seeded torch
  generator (:func:`encode_input`). Deployment (``simulate``), which cuts an
  image into tiles, draws each spike from a hash of (seed, step, channel,
  pixel position in the image) (:func:`poisson_spikes`), so the draws do not
  depend on the tiling and the chip and the float model of the fidelity check
  see the same spikes (:func:`input_frames`, :func:`encode_window`).
* :func:`spike_rate`: the spike tensor (T, ...) reduced over time, the CNN's
  input; :func:`count_rate` the same from spike counts.
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


def count_rate(counts: torch.Tensor, timesteps: int) -> torch.Tensor:
    """Spike counts over T steps -> rate in [0, 1]: ``spike_rate`` of those spikes, bit for bit.

    The mean of T zeros and ones is their sum (exact in float32 up to 2^24)
    divided by T, which is what torch's mean computes.
    """
    return counts.to(torch.float32) / timesteps


def to_payload(x: np.ndarray, payload_max: int = PAYLOAD_MAX) -> np.ndarray:
    """Values in [0, 1] -> the integer payloads the chip receives (uint8): the one payload rule,
    ``p = clip(round(payload_max·x), 0, payload_max)``; ``payload_max`` is PAYLOAD_MAX for 8-bit graded
    values, 1 for spikes. :func:`clipped_payloads` counts what the clip loses."""
    return np.clip(np.rint(np.asarray(x, dtype=np.float64) * payload_max), 0, payload_max).astype(np.uint8)


def clipped_payloads(x: np.ndarray, payload_max: int = PAYLOAD_MAX) -> int:
    """How many values of ``x`` :func:`to_payload` clips: ``round(payload_max·x)`` below 0 or above payload_max."""
    scaled = np.rint(np.asarray(x, dtype=np.float64) * payload_max)
    return int(np.count_nonzero((scaled < 0) | (scaled > payload_max)))


def _mix(h: np.ndarray) -> np.ndarray:
    """lowbias32 (C. Wellons): a bijection of uint32 in which every output bit depends on every input bit."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x7FEB352D)
    h = h ^ (h >> np.uint32(15))
    h = h * np.uint32(0x846CA68B)
    return h ^ (h >> np.uint32(16))


def _u32(values: np.ndarray | int) -> np.ndarray:
    return (np.atleast_1d(np.asarray(values, dtype=np.int64)) & 0xFFFFFFFF).astype(np.uint32)


def poisson_draws(seed: int, timesteps: int, channels: int, origin: tuple[int, int],
                  size: tuple[int, int]) -> np.ndarray:
    """Uniform draws in [0, 1), float32 (T, C, h, w), for the window of ``size`` at ``origin`` of an image.

    The draw for step t, channel c and image pixel (y, x) is a counter-based
    hash of those five integers, u = mix(mix(mix(mix(mix(seed) ^ t) ^ c) ^ y)
    ^ mix(x + 0x9E3779B9)), with mix a 32-bit bijection (:func:`_mix`); its top
    24 bits / 2^24 are the draw, exact in float32. A draw depends on the pixel's
    place in the image, never on the window it is read through.
    """
    (top, left), (height, width) = origin, size
    key = _mix(_mix(_u32(seed)) ^ _u32(np.arange(timesteps)))  # (T,)
    key = _mix(key[:, None] ^ _u32(np.arange(channels))[None, :])  # (T, C)
    key = _mix(key[..., None] ^ _u32(np.arange(top, top + height)))  # (T, C, h)
    column = _mix(_u32(np.arange(left, left + width)) + np.uint32(0x9E3779B9))  # (w,)
    bits = _mix(key[..., None] ^ column)
    return (bits >> np.uint32(8)).astype(np.float32) * np.float32(2.0**-24)


def poisson_spikes(x: torch.Tensor, timesteps: int, seed: int, origin: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Spikes (T, C, h, w) of a window x (C, h, w) at ``origin`` of an image: 1 where the draw < x.

    P(spike) = x for every step, channel and pixel; the draws are
    :func:`poisson_draws`, so the spikes of a pixel are the same whichever
    tiling of the image reads it.
    """
    draws = torch.from_numpy(poisson_draws(seed, timesteps, x.shape[0], origin, tuple(x.shape[1:])))
    return (draws < x.detach().cpu().unsqueeze(0)).to(x.dtype)


def encode_window(x: torch.Tensor, encoding: Encoding, timesteps: int, seed: int = 0,
                  origin: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """A window x (C, h, w) at ``origin`` of an image as the float model's spiking stage takes it.

    ``constant``: x itself, batch of one (1, C, h, w). ``poisson``: the
    spikes the chip receives (:func:`input_frames`), (T, 1, C, h, w).
    """
    if encoding == "constant":
        return x.unsqueeze(0)
    if encoding == "poisson":
        return poisson_spikes(x, timesteps, seed, origin).unsqueeze(1)
    raise ValueError(f"unknown encoding {encoding!r}")


def input_frames(x: torch.Tensor, encoding: Encoding, timesteps: int, seed: int = 0,
                 origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """The chip's input for a window x (C, h, w) in [0, 1] at ``origin`` of an image: frames (T, C, h, w).

    ``constant``: every frame holds the 8-bit payloads (a read-only broadcast
    view). ``poisson``: binary spikes, :func:`poisson_spikes`, exactly those
    :func:`encode_window` gives the float model.
    """
    if encoding == "constant":
        payload = to_payload(x.detach().cpu().numpy())
        return np.broadcast_to(payload, (timesteps, *payload.shape))
    if encoding == "poisson":
        return poisson_spikes(x, timesteps, seed, origin).numpy().astype(np.uint8)
    raise ValueError(f"unknown encoding {encoding!r}")
