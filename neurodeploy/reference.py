"""The ``reference`` backend: the deployed layer's fixed-point dynamics without Lava.

It runs exactly what Lava runs for ``snn.net`` (see :mod:`neurodeploy.lif_mapping`
for the equations): the integer conv, the CUBA update with its 24-bit current
wrap and voltage clip, the strict threshold and reset to 0, with the per-image
reset. Its output spikes equal Lava's bit for bit (tested), so it is the
yardstick for every Lava backend and a fast path for users without Lava.
The arithmetic itself lives in :mod:`neurodeploy.cuba`.
"""

from __future__ import annotations

import numpy as np

from neurodeploy.converters.netx_io import NetxConvLayer


def run_layer(layer: NetxConvLayer, frames: np.ndarray) -> np.ndarray:
    """Input frames (T, C_in, H, W) -> output spikes (T, C_out, H, W) uint8, aligned with the input."""
    from neurodeploy.cuba import run_sequence

    return run_sequence(layer, frames)
