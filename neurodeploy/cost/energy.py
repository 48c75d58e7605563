r"""The energy model: joules per inference on a neuromorphic chip plus a host, and the all-CNN baseline.

For counts of one inference (:mod:`neurodeploy.cost.counting`), a neuromorphic
profile N and a host profile H (:mod:`neurodeploy.cost.hw`)::

    E_snn    = E_dynamic + E_static
    E_dynamic = synops · (N.synop_j + N.spike_route_j) + neuron_updates · N.neuron_update_j
    E_static  = N.static_w · chips · t_snn,  t_snn = the latency model's time per inference
               (:mod:`neurodeploy.cost.latency`) when given, else T · N.step_s, else 0; chips from the
               core mapping (:mod:`neurodeploy.cost.mapping`), else 1
    E_host   = host_macs · H.mac_j + H.static_w · t_host,   t_host = host_macs / H.macs_per_s
    E_bridge = bridge_bits · N.io_bit_j
    E_total  = E_snn + E_host + E_bridge

and, for comparison, the whole network as a conventional CNN on the host
(the spiking layer computed once, densely, as an ordinary conv)::

    E_all_cnn = (dense_snn_macs + host_macs) · H.mac_j + H.static_w · t_all,
    t_all     = (dense_snn_macs + host_macs) / H.macs_per_s

Where the profile's figures carry a ``band`` (the range the measurements
support, :mod:`neurodeploy.cost.hw`), ``snn_dynamic_band`` and
``snn_static_band`` are E_dynamic and E_static with those figures at their
bands' low and high ends.

Latency estimates are given where the profiles have the figures (``step_s``,
``macs_per_s``), else ``None``. With Loihi's profile and static power 0, E_snn
is KerasSpiking's ``synops · (23.6 + 3.5) pJ + neuron_updates · 81 pJ``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from neurodeploy.cost.counting import InferenceCounts
from neurodeploy.cost.hw import EnergyProfile
from neurodeploy.errors import UserError


@dataclass(frozen=True)
class EnergyEstimate:
    """Joules (and seconds, where known) per inference for one neuromorphic + host pair."""

    neuromorphic: str
    host: str
    snn: float
    host_j: float
    bridge: float
    total: float
    all_cnn_baseline: float
    latency_s: float | None
    all_cnn_latency_s: float | None
    snn_dynamic: float = 0.0
    snn_static: float = 0.0
    snn_dynamic_band: tuple[float, float] | None = None  # the per-op energies at their bands' ends
    snn_static_band: tuple[float, float] | None = None  # static_w at its band's ends

    @property
    def ratio_to_baseline(self) -> float:
        return self.total / self.all_cnn_baseline if self.all_cnn_baseline else float("inf")

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["host"] = out.pop("host_j")
        out["host_profile"] = self.host
        out["ratio_to_baseline"] = self.ratio_to_baseline
        return out


def all_cnn(counts: InferenceCounts, host: EnergyProfile) -> tuple[float, float | None]:
    """(joules, seconds or None) of the whole network as a conventional CNN on ``host``."""
    macs_per_s = host.latency.get("macs_per_s")
    all_macs = counts.dense_snn_macs + counts.host_macs
    seconds = all_macs / macs_per_s.value if macs_per_s and macs_per_s.value else None
    return all_macs * host.j("mac_j") + host.j("static_w") * (seconds or 0.0), seconds


def estimate(counts: InferenceCounts, snn: EnergyProfile, host: EnergyProfile, chip_seconds: float | None = None,
             chips: int = 1) -> EnergyEstimate:
    """Apply the equations of the module docstring; ``chip_seconds`` is the chip's time per inference."""
    if snn.kind != "neuromorphic":
        raise UserError(f"profile {snn.name} is a {snn.kind} profile", "pass a neuromorphic profile for the SNN")
    if host.kind != "host":
        raise UserError(f"profile {host.name} is a {host.kind} profile", "pass a host profile for the CNN")
    synops = sum(layer.synops for layer in counts.layers)
    updates = sum(layer.neuron_updates for layer in counts.layers)
    timesteps = max((layer.timesteps for layer in counts.layers), default=0)
    step_s = snn.latency.get("step_s")
    macs_per_s = host.latency.get("macs_per_s")
    t_snn = chip_seconds if chip_seconds is not None else timesteps * step_s.value if step_s else None
    t_host = counts.host_macs / macs_per_s.value if macs_per_s and macs_per_s.value else None
    dynamic = synops * (snn.j("synop_j") + snn.j("spike_route_j")) + updates * snn.j("neuron_update_j")
    static = snn.j("static_w") * chips * (t_snn or 0.0)
    ops = ("synop_j", "spike_route_j", "neuron_update_j")
    dynamic_band = static_band = None
    if any(snn.energy[k].band for k in ops if k in snn.energy):
        dynamic_band = tuple(synops * (snn.energy["synop_j"].at(e) + snn.energy["spike_route_j"].at(e))
                             + updates * snn.energy["neuron_update_j"].at(e) for e in (0, 1))
    if snn.energy["static_w"].band:
        static_band = tuple(snn.energy["static_w"].at(e) * chips * (t_snn or 0.0) for e in (0, 1))
    e_snn = dynamic + static
    e_host = counts.host_macs * host.j("mac_j") + host.j("static_w") * (t_host or 0.0)
    e_bridge = counts.total_bridge_bits * snn.j("io_bit_j")
    baseline, t_all = all_cnn(counts, host)
    latency = None if t_snn is None or t_host is None else t_snn + t_host
    return EnergyEstimate(snn.name, host.name, e_snn, e_host, e_bridge, e_snn + e_host + e_bridge, baseline,
                          latency, t_all, dynamic, static, dynamic_band, static_band)
