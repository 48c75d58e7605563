"""The ``reference`` backend: the deployed layer's fixed-point dynamics without Lava.

It runs exactly what Lava runs for a chip segment (see :mod:`neurodeploy.chip.neuron_mapping`
for the equations): the integer conv, the CUBA update with its 24-bit current
wrap and voltage clip, the strict threshold and reset to 0, with the per-image
reset. Its output spikes equal Lava's bit for bit (tested), so it is the
yardstick for every Lava backend and a fast path for users without Lava.
The arithmetic itself lives in :mod:`neurodeploy.chip.cuba`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from neurodeploy.chip.cuba import CubaParams, CubaState, bias_terms, conv_strided, cuba_step, dense_synapse
from neurodeploy.converters.netx_io import FixedPointLayer


def run_segment(layers: Sequence[FixedPointLayer], frames: np.ndarray) -> list[np.ndarray]:
    """Run a chip segment on one sample: frames (T, *input_shape) ints -> each layer's spikes (T, *out) uint8.

    See :func:`run_segment_batch`.
    """
    return [out[0] for out in run_segment_batch(layers, np.asarray(frames)[None])]


def run_segment_batch(layers: Sequence[FixedPointLayer], frames: np.ndarray) -> list[np.ndarray]:
    r"""Run a chip segment on a batch: frames (B, T, *input_shape) -> per layer spikes (B, T, *out) uint8.

    ``layers`` are :class:`~neurodeploy.converters.netx_io.FixedPointLayer`
    records, as quantized (``neurodeploy.chip.quantize.fixed_point``) or read back
    from the file. Every sample starts from zero state (u, v, recurrent spikes).
    Per float time step t, layer k (1-based) computes from layer k-1's spikes
    of the same step (layer 0 = the frames)::

        a_t = W x_t (+ W_rec z_{t-1})            (neurodeploy.chip.cuba: conv_strided / dense_synapse)
        z_t = cuba_step(a_t, bias_mant << 6)      (bias_site "voltage")
        z_t = cuba_step(a_t + bias_mant, 0)       (bias_site "current": the always-on bias axon)

    Alignment with Lava: every synapse sends the previous step's result, so
    in Lava, frame t enters at step t (0-based, within the sample) and layer
    k's spikes for frame t leave at step t + k. A sample therefore runs
    ``T + depth`` Lava steps, layer k's output steps k .. k + T - 1 are this
    function's steps 0 .. T - 1, and layer k's state is reset at its step k
    (netx's ``reset_offset``). Returned spikes are aligned with the float
    graph's time steps: output t belongs to input t.
    """
    frames = np.asarray(frames)
    batch, steps = frames.shape[:2]
    outputs = [np.zeros((batch, steps, *layer.output_shape), dtype=np.uint8) for layer in layers]
    states, params, biases = [], [], []
    for layer in layers:
        states.append(CubaState.zeros((batch, *layer.output_shape)))
        params.append(CubaParams.of(layer))
        biases.append(bias_terms(layer.bias, layer.bias_site, layer.output_shape))  # (into a, into v)
    first_input: np.ndarray | None = None
    for t in range(steps):
        x = frames[:, t]
        for k, layer in enumerate(layers):
            if k == 0 and first_input is not None and np.array_equal(x, frames[:, t - 1]):
                a = first_input  # the frames repeat (constant encoding): the same synaptic input as step t - 1
            elif layer.kind == "conv":
                a = conv_strided(x.reshape(batch, *layer.input_shape), layer.weight, layer.stride, layer.padding)
            else:
                a = dense_synapse(x, layer.weight)
                if layer.weight_rec is not None and t > 0:
                    a = a + dense_synapse(outputs[k][:, t - 1], layer.weight_rec)
            if k == 0 and layer.weight_rec is None:  # a recurrent input changes with the spikes
                first_input = a
            spikes = cuba_step(states[k], a + biases[k][0], params[k], biases[k][1])
            outputs[k][:, t] = spikes
            x = outputs[k][:, t]
    return outputs
