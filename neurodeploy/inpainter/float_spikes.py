r"""The trained spiking stage's float spikes at inference: Norse's LIF step, in place.

The fidelity check compares the deployed spikes with the trained float
model's. :meth:`SpikingStack.forward <neurodeploy.inpainter.model.SpikingStack.forward>`
runs Norse's ``lif_feed_forward_step``, which makes about ten new tensors
per step; on a CPU at inference the allocations dominate (8 tiles of the
shipped model, one thread: 193 ms against 59 ms in place; ``python
benchmarks/bench_cli.py --batching``). :func:`stack_spikes` does Norse's
operations in Norse's order on preallocated tensors, so every float is the
same and so is every spike (tests/test_fidelity_check.py holds it to Norse's
``LIFCell`` and to ``forward`` bit for bit). Per step,
with ``x`` the layer's synaptic input (its conv of the step's input)::

    i ← i + x
    v ← v + (dt·τ_mem⁻¹)·((v_leak - v) + i)
    i ← i + (-dt·τ_syn⁻¹)·i
    z = v > v_th                  (Norse: Θ(v - v_th), the same test for finite floats)
    v ← (1 - z)·v + z·v_reset

The state starts at v = v_leak, i = 0, as Norse's ``LIFCell`` does.
"""

from __future__ import annotations

import torch

from neurodeploy.inpainter.model import SpikingStack


class _LifState:
    """One layer's v, i and a scratch tensor, with the step's constants as Norse computes them."""

    def __init__(self, like: torch.Tensor, layer: torch.nn.Module) -> None:
        p, dt = layer.lif.p, layer.lif.dt
        self.p = p
        self.membrane = dt * p.tau_mem_inv  # Norse's dt * p.tau_mem_inv, the same 0-dim tensor
        self.synapse = -dt * p.tau_syn_inv
        self.v = torch.zeros_like(like) + p.v_leak
        self.i = torch.zeros_like(like)
        self.scratch = torch.empty_like(like)

    def step(self, x: torch.Tensor, spikes: torch.Tensor) -> torch.Tensor:
        """Advance one step on input x; write the spikes into bool ``spikes`` and return it."""
        v, i, scratch, p = self.v, self.i, self.scratch, self.p
        i.add_(x)
        torch.sub(p.v_leak, v, out=scratch)
        scratch.add_(i).mul_(self.membrane)
        v.add_(scratch)
        torch.mul(i, self.synapse, out=scratch)
        i.add_(scratch)
        torch.gt(v, p.v_th, out=spikes)
        v.mul_(spikes.logical_not())  # (1 - z)·v: 5x faster than a masked store
        if p.v_reset != 0:
            v.add_(spikes * p.v_reset)  # + z·v_reset
        return spikes


@torch.no_grad()
def stack_spikes(stack: SpikingStack, x: torch.Tensor) -> list[torch.Tensor]:
    """Every layer's spikes of ``stack`` on x, bool (T, B, C_k, H_k, W_k): ``stack(x, every_layer=True)``'s
    values bit for bit. x as ``forward`` takes it: (T, B, C, H, W), or (B, C, H, W) for a constant current."""
    constant = x.dim() == 4
    first = stack.layers[0].conv(x) if constant else None
    states: list[_LifState | None] = [None] * len(stack.layers)
    spikes: list[torch.Tensor | None] = [None] * len(stack.layers)
    for t in range(stack.timesteps):
        z = first if constant else stack.layers[0].conv(x[t])
        for k, layer in enumerate(stack.layers):
            if k:
                z = layer.conv(z.float())  # forward feeds Norse's float 0/1 spikes
            assert z is not None
            if states[k] is None:
                states[k] = _LifState(z, layer)
                spikes[k] = torch.empty((stack.timesteps, *z.shape), dtype=torch.bool)
            z = states[k].step(z, spikes[k][t])  # type: ignore[union-attr,index]
    return [s for s in spikes if s is not None]
