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

and Lava's output at step t + 1 is Norse's output at step t (one step per
layer in a stack: :func:`neurodeploy.chip.reference.run_segment_batch` states the
timing and the per-sample reset). Everything in this mapping is exact except
the rounding of W, the decays and the threshold, which
:mod:`neurodeploy.chip.quantize` chooses and reports. The inpainter's Norse LIF is
a NIR ``CubaLIF`` with ``tau = 1 / tau_inv`` (:func:`~neurodeploy.inpainter.nir_stack.stack_graph`),
so it takes the one mapping every graph neuron takes, :class:`CubaMapping`.
"""

from __future__ import annotations

from dataclasses import dataclass

from neurodeploy.ir.graph import NEURON_KINDS, Neuron

CONV_DELAY_STEPS = 1  # PyConvModelFixed sends last step's result first
NETX_RESET_OFFSET = 1  # netx adds 1 ("time starts at 1") and 1 per earlier layer


# -- any chip layer's neuron (graph.Neuron, NIR's units) ---------------------------------------------

@dataclass(frozen=True)
class CubaMapping:
    r"""A spiking :class:`~neurodeploy.ir.graph.Neuron` as Loihi's CUBA neuron, before rounding.

    NIR's continuous-time neurons, forward-Euler discretized with the graph's
    ``dt`` (``a = dt/tau_mem``, ``b = dt/tau_syn``; ``S_t`` = the synapse's
    output ``W x_t + B``, B the layer's bias), as :mod:`neurodeploy.ir.graph` states::

        IF:      v_t = v + r·S_t
        LIF:     v_t = v + a·(-v + r·S_t)                    (v_leak = 0)
        CubaLIF: i_t = i + b·(-i + w_in·S_t);  v_t = v + a·(-v + r·i_t)
        all:     z_t = [v_t > v_th];  v_t <- 0 where z_t      (v_reset = 0)

    Loihi's fixed-point CUBA step (lava-nc 0.10 ``AbstractPyLifModelFixed``;
    ``a_in`` = the integer synaptic input, ``iDecay = du + 1``)::

        u_t = trunc(u·(4096 - iDecay)/4096) + (a_in_t << 6)
        v_t = trunc(v·(4096 - vDecay)/4096) + u_t + (bias_mant << 6)
        z_t = [v_t > vThMant << 6];  v_t <- 0 where z_t

    With integer weights ``W_q ≈ s·W`` and input payloads ``p = P·x`` (P = 1
    for binary spikes, 255 for 8-bit graded values), ``a_in ≈ s·P·W x``.
    Loihi's state is the float state times one factor per variable::

        u = λ·i,  λ = 64·s·P / (b·w_in)         (IF, LIF: i = S, b = w_in = 1)
        v = μ·v,  μ = λ / g,  g = a·r (LIF, CubaLIF) or r (IF)

    so ``iDecay = round(4096·b)`` (4096 for IF and LIF: u keeps nothing),
    ``vDecay = round(4096·a)`` (0 for IF), and the threshold ``vThMant =
    round(s·P·v_th / (b·w_in·g))`` = ``threshold_per_unit·s·P``.

    A bias B is an input of the synapse's units: ``bias_mant = round(s·P·B)``
    (``bias_per_unit = 1``). Multiplying the float current update by λ::

        u_t = (1 - b)·u_{t-1} + 64·(a_in_t + s·P·B)
            -> u_t = trunc(u_{t-1}·(4096 - iDecay)/4096) + ((a_in_t + bias_mant) << 6)

    Where it goes on the chip (``FixedPointLayer.bias_site``, :mod:`neurodeploy.converters.netx_io`):

    * ``"voltage"``, without a current filter (b = 1, iDecay = 4096; IF, LIF,
      CubaLIF with dt = tau_syn): ``u_t = 64·(a_in_t + bias_mant)`` is used
      only this step, so Loihi's bias register, ``v += bias_mant << 6``, is
      the same (the file's ``bias``, which stock netx reads);
    * ``"current"``, through a current filter (``neuron.filters_current``):
      a constant input into u. On Loihi that is an always-on input axon, one
      spike every step, whose synaptic weight onto neuron o is ``bias_mant[o]``:
      its spike passes the same one-step synaptic delay as the layer's input,
      so ``bias_mant`` joins ``a_in_t`` at every step t of the sample, exactly
      the update above (``a_in_t += bias_mant``). Weights are 8-bit, so
      ``ceil(max|bias_mant| / 127)`` such axons carry it (at most 33 for the
      13-bit bias), each neuron's bias split over them. Cost per sample step:
      one spike per axon and one synaptic operation per axon and neuron with
      a nonzero bias (:func:`neurodeploy.cost.counting.bias_axons`). The netx file
      stores it as the layer's ``bias_current``, which stock netx does not
      read: such a segment runs on neurodeploy's backends (reference, torch,
      the Lava ``ChipSegment``), not in stock ``netx.hdf5.Network``.

    snnTorch's ``Leaky`` (``mem = β·mem + I``) is
    exported with ``tau = dt/(1-β)``, ``r = tau/dt``: ``a = 1-β``, ``a·r = 1``;
    its ``Synaptic`` adds ``w_in = tau_syn/dt``: ``b·w_in = 1``; Sinabs' IAF is
    IF with ``r = 1``. So for all three ``vThMant = round(s·P·v_th)``.

    Not expressible, refused by :func:`map_neuron`: a non-zero ``v_leak`` or
    ``v_reset``, ``r·w_in <= 0``, a non-positive threshold. Loihi resets to 0;
    a subtractive reset (snnTorch's default, Sinabs' ``MembraneSubtract``) is
    not visible in NIR (both export ``v_reset = 0``): build the networks with
    reset to zero (snnTorch ``reset_mechanism="zero"``, ``reset_delay=False``
    for Synaptic / RSynaptic, whose delayed zero reset also drops the next
    input; Sinabs ``MembraneReset`` with ``SingleSpike``).
    """

    kind: str
    current_decay: float  # b: fraction of u lost per step (iDecay / 4096); 1 for IF and LIF
    voltage_decay: float  # a: fraction of v lost per step (vDecay / 4096); 0 for IF
    threshold_per_unit: float  # v_th / (b·w_in·g): vThMant = this · s · P
    bias_per_unit: float  # bias_mant = this · s · P · B (1: a bias is an input of the same units)

    def __post_init__(self) -> None:
        if not 0 < self.current_decay <= 1 or not 0 <= self.voltage_decay <= 1:
            raise ValueError(f"{self.kind}: decays must lie in (0, 1] (current) and [0, 1] (voltage)")
        if not self.threshold_per_unit > 0:
            raise ValueError(f"{self.kind}: the threshold must be positive")


def map_neuron(neuron: Neuron) -> CubaMapping:
    """A spiking graph neuron (IF, LIF, CubaLIF) -> Loihi CUBA parameters (see :class:`CubaMapping`)."""
    if not neuron.spiking or neuron.v_threshold is None:
        raise ValueError(f"{neuron.kind} does not spike; a chip layer's neuron must")
    if neuron.v_reset != 0:
        raise ValueError(f"{neuron.kind}: v_reset = {neuron.v_reset:g}; Loihi resets the voltage to 0")
    if neuron.v_leak != 0:
        raise ValueError(f"{neuron.kind}: v_leak = {neuron.v_leak:g}; neurodeploy maps only v_leak = 0")
    a = neuron.voltage_decay
    kind = NEURON_KINDS[neuron.kind]
    b = neuron.current_decay if kind.filtered else 1.0
    w_in = neuron.w_in if kind.filtered else 1.0
    gain = a * neuron.r if kind.leaky else neuron.r
    if not neuron.r * w_in > 0:
        raise ValueError(f"{neuron.kind}: r·w_in = {neuron.r * w_in:g} is not positive")
    return CubaMapping(kind=neuron.kind, current_decay=b, voltage_decay=a,
                       threshold_per_unit=neuron.v_threshold / (b * w_in * gain), bias_per_unit=1.0)


def segment_steps(timesteps: int, depth: int) -> int:
    """Lava steps per sample for a chip segment of ``depth`` layers: each layer's synapse delays by one."""
    return timesteps + depth * CONV_DELAY_STEPS
