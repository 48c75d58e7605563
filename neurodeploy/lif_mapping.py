r"""The Norse LIF neuron and Lava's CUBA neuron, side by side: the one mapping.

Derived from the source of Norse 1.1.0 (``lif_feed_forward_step``) and of
lava-nc 0.10 / lava-dl 0.6 (``AbstractPyLifModelFixed``, ``PyConvModelFixed``,
``netx.hdf5.Network.get_neuron_params``).

Norse, one step of ``LIFCell`` (``v_leak = v_reset = 0``; ``a = dt·tau_mem_inv``,
``b = dt·tau_syn_inv``; ``x_t`` = the conv's output at step t)::

    i'_t = i_{t-1} + x_t                    # the input current jumps first
    v_t  = (1 - a)·v_{t-1} + a·i'_t         # v integrates the new current
    i_t  = (1 - b)·i'_t                     # then the current decays
    z_t  = [v_t > v_th];  v_t <- 0 where z_t

so ``i'_t = (1 - b)·i'_{t-1} + x_t``.

Lava, one step of the fixed-point CUBA LIF (24-bit u and v, 12-bit decays)::

    u_t = trunc(u_{t-1}·(4096 - (du + 1)) / 4096) + (a_in_t << 6)     # du+1: ds_offset = 1
    v_t = trunc(v_{t-1}·(4096 - dv) / 4096) + u_t + (bias << bias_exp)
    s_t = [v_t > vth << 6];  v_t <- 0 where s_t

netx reads ``du = iDecay - 1`` and ``dv = vDecay`` from the HDF5 file, so the
effective current decay is ``iDecay / 4096``. The conv synapse
(``PyConvModelFixed``) sends the previous step's result first and then
computes the new one: ``a_in_t = conv(input_{t-1})``, a one-step delay.

Mapping. With integer weights ``W_q ≈ s·W`` and input payloads ``p = P·x``
(``P = 255`` for 8-bit graded input, ``P = 1`` for binary spikes), Lava's
state tracks Norse's up to one scale factor per variable::

    u_t  ≈ 64·s·P · i'_t          (u is Norse's current after its jump)
    v_t  ≈ 64·s·P / a · v_t
    iDecay = round(b·4096),  vDecay = round(a·4096),  vThMant = round(v_th·s·P / a)
    bias = 0                      (a Loihi bias adds to v, Norse's conv bias to i)

and Lava's output at step t + 1 is Norse's output at step t. Each image
therefore runs T + 1 Lava steps; the first output step is dropped. The neuron
state is reset by ``LIFReset`` with ``reset_interval = T + 1`` at the step that
receives the image's first input (``reset_offset = 1`` in netx, which adds 1).
Everything in this mapping is exact except the rounding of W, the decays and
the threshold, which :mod:`neurodeploy.quantize` chooses and reports.
"""

from __future__ import annotations

from dataclasses import dataclass

from neurodeploy.model import LIFConfig

DECAY_UNITY = 4096  # 12-bit decays
STATE_SHIFT = 6  # Loihi MSB-aligns synaptic input and threshold by 6 bits
CONV_DELAY_STEPS = 1  # PyConvModelFixed sends last step's result first
NETX_RESET_OFFSET = 1  # netx adds 1 ("time starts at 1") and 1 per earlier layer


@dataclass(frozen=True)
class LavaCubaMapping:
    """The real-valued Lava CUBA parameters equivalent to a Norse LIF (before rounding)."""

    current_decay: float  # b: fraction of u lost per step (iDecay / 4096)
    voltage_decay: float  # a: fraction of v lost per step (vDecay / 4096)
    threshold_per_weight_unit: float  # v_th / a: vThMant = this * s * P

    def __post_init__(self) -> None:
        if not 0 < self.current_decay <= 1 or not 0 < self.voltage_decay <= 1:
            raise ValueError("decays must lie in (0, 1]: dt * tau_inv above 1 is not a stable Euler step")
        if not self.threshold_per_weight_unit > 0:
            raise ValueError("the threshold must be positive")


def map_lif(lif: LIFConfig) -> LavaCubaMapping:
    """Norse LIF parameters -> the Lava CUBA decays and threshold scale (see module docstring)."""
    a = lif.dt * lif.tau_mem_inv
    b = lif.dt * lif.tau_syn_inv
    return LavaCubaMapping(current_decay=b, voltage_decay=a, threshold_per_weight_unit=lif.v_th / a)


def lava_steps(timesteps: int) -> int:
    """Lava steps per image: T input steps plus the conv synapse's one-step delay."""
    return timesteps + CONV_DELAY_STEPS


def netx_reset(timesteps: int) -> tuple[int, int]:
    """(reset_interval, reset_offset) to pass to ``netx.hdf5.Network`` for per-image resets.

    Image k occupies Lava steps k(T+1)+1 .. k(T+1)+T+1 and its first input
    reaches the neurons at step k(T+1)+2, where LIFReset must zero u and v:
    ``time_step % (T+1) == (NETX_RESET_OFFSET + 1) % (T+1)``.
    """
    return lava_steps(timesteps), NETX_RESET_OFFSET
