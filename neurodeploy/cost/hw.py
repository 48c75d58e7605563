"""Hardware profiles: one TOML file per platform, every number with its source.

A profile file (``hw_profiles/*.toml``, or any file a user passes with
``--hw path.toml``)::

    name = "loihi"
    kind = "neuromorphic"            # or "host"
    description = "..."
    [energy.synop_j]                 # one table per figure
    value = 23.6e-12                 # SI units: J, W, MAC/s
    source = "paper, table"
    kind = "measured"                # or "derived", "fitted" (on what) or "assumed", which then need:
    derivation = "how it was derived"
    band = [20e-12, 27e-12]          # optional: the range the measurements support (run-to-run spread)

Required figures: neuromorphic ``synop_j``, ``spike_route_j`` (per synaptic
event delivered), ``neuron_update_j``, ``static_w`` (one chip's static
power), ``io_bit_j`` (a bit moved between chip and host); host ``mac_j``,
``static_w``. Optional: host ``ac_j``, ``[latency] macs_per_s`` (host);
neuromorphic ``[latency]`` ``step_s`` (a fixed time step) or the
per-operation times of :mod:`neurodeploy.cost.latency` (``synop_s``,
``neuron_update_s``, ``spike_s``, ``barrier_s``), and ``[resources]`` the
limits :mod:`neurodeploy.cost.mapping` maps onto (``neurons_per_core``,
``synapse_bits_per_core``, ``fan_in_per_core``, ``fan_out_per_core``,
``cores_per_chip``; a limit left out is not checked, except
``neurons_per_core`` and ``cores_per_chip``, which a mapping needs; with
``synmem_words_per_core`` the mapping follows Lava's Loihi 2 compiler, which
also reads ``memory_words_per_core``, ``words_per_neuron``,
``synapse_word_bits`` and ``dense_synapse_bits``: :mod:`neurodeploy.cost.mapping`).
Every figure is checked on load: present, a finite number, not negative,
with a source.
"""

from __future__ import annotations

import importlib.resources
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neurodeploy.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

REQUIRED = {
    "neuromorphic": ("synop_j", "spike_route_j", "neuron_update_j", "static_w", "io_bit_j"),
    "host": ("mac_j", "static_w"),
}
OPTIONAL = {"neuromorphic": (), "host": ("ac_j",)}
LATENCY = {"neuromorphic": ("step_s", "synop_s", "neuron_update_s", "spike_s", "barrier_s", "synmem_read_s"),
           "host": ("macs_per_s",)}
LOIHI2_COMPILER = ("synmem_words_per_core", "memory_words_per_core", "words_per_neuron", "synapse_word_bits",
                   "dense_synapse_bits")
RESOURCES = {"neuromorphic": ("neurons_per_core", "synapse_bits_per_core", "fan_in_per_core", "fan_out_per_core",
                              "cores_per_chip", *LOIHI2_COMPILER), "host": ()}
UNITS = {"j": "J", "w": "W", "s": "s", "per_s": "1/s", "neurons_per_core": "neurons",
         "synapse_bits_per_core": "bit", "fan_in_per_core": "axons", "fan_out_per_core": "axons",
         "cores_per_chip": "cores", "synmem_words_per_core": "words", "memory_words_per_core": "words",
         "words_per_neuron": "words", "synapse_word_bits": "bit", "dense_synapse_bits": "bit"}
KINDS = ("measured", "derived", "fitted", "assumed")  # all but measured say how in ``derivation``


@dataclass(frozen=True)
class Figure:
    """One number of a profile, with where it comes from."""

    value: float
    source: str
    kind: str  # one of KINDS: "measured", "derived", "fitted" (on what: ``derivation``) or "assumed"
    derivation: str = ""
    band: tuple[float, float] | None = None  # the range the measurements support, where known

    def at(self, end: int) -> float:
        """The band's low (0) or high (1) end; the value itself where there is no band."""
        return self.band[end] if self.band else self.value


@dataclass(frozen=True)
class EnergyProfile:
    """A platform's energy (and, where known, latency) figures."""

    name: str
    kind: str  # "neuromorphic" or "host"
    description: str
    energy: dict[str, Figure]
    latency: dict[str, Figure]
    path: str
    resources: dict[str, Figure] = field(default_factory=dict)

    def j(self, key: str) -> float:
        """An energy figure's value, 0 where the profile does not have it."""
        figure = self.energy.get(key)
        return figure.value if figure else 0.0


def unit_of(key: str) -> str:
    """The SI unit a figure's name ends with: ``synop_j`` -> J, ``macs_per_s`` -> 1/s."""
    if key in UNITS:
        return UNITS[key]
    if key.endswith("_per_s"):
        return "1/s"
    return UNITS.get(key.rsplit("_", 1)[-1], "")


def _figure(data: Any, where: str) -> Figure:
    if not isinstance(data, dict):
        raise UserError(f"{where} must be a table with value, source and kind", "see hw_profiles/loihi.toml")
    for key in ("value", "source", "kind"):
        if key not in data:
            raise UserError(f"{where} is missing '{key}'", "give every figure a value, a source and a kind")
    value = data["value"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"{where}.value must be a finite number, got {value!r}", "write the number in SI units")
    if value < 0:
        raise UserError(f"{where}.value is negative ({value})", "energies, powers and rates are at least 0")
    if not isinstance(data["source"], str) or not data["source"].strip():
        raise UserError(f"{where}.source is empty", "name the paper and table the number comes from")
    if data["kind"] not in KINDS:
        raise UserError(f"{where}.kind is {data['kind']!r}", f"use kind = one of {', '.join(KINDS)}")
    derivation = data.get("derivation", "")
    if data["kind"] != "measured" and (not isinstance(derivation, str) or not derivation.strip()):
        raise UserError(f"{where} is {data['kind']} but has no derivation",
                        "say how the number was derived, fitted (on what) or why it is assumed")
    band = data.get("band")
    if band is not None:
        if (not isinstance(band, list) or len(band) != 2
                or not all(isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b) for b in band)
                or not 0 <= band[0] <= band[1]):
            raise UserError(f"{where}.band must be [low, high], 0 <= low <= high", "write the measured range")
        band = (float(band[0]), float(band[1]))
    return Figure(float(value), data["source"].strip(), data["kind"], str(derivation).strip(), band)


def parse_profile(text: str, path: str) -> EnergyProfile:
    """Validate a profile's TOML text; every defect is a one-line UserError naming the field."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path} is not valid TOML ({exc})", "fix the file or pass a profile name") from None
    for key in ("name", "kind", "description"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise UserError(f"{path} is missing the field '{key}'", "see hw_profiles/loihi.toml for the layout")
    kind = data["kind"]
    if kind not in REQUIRED:
        raise UserError(f"{path}: kind is {kind!r}", "use kind = \"neuromorphic\" or \"host\"")
    energy_table = data.get("energy", {})
    latency_table = data.get("latency", {})
    resource_table = data.get("resources", {})
    if not all(isinstance(t, dict) for t in (energy_table, latency_table, resource_table)):
        raise UserError(f"{path}: [energy], [latency] and [resources] must be tables", "see hw_profiles/loihi.toml")
    energy = {}
    for key in REQUIRED[kind]:
        if key not in energy_table:
            raise UserError(f"{path} is missing the field energy.{key}",
                            f"a {kind} profile needs {', '.join(REQUIRED[kind])}")
    for key, value in energy_table.items():
        if key not in REQUIRED[kind] + OPTIONAL[kind]:
            raise UserError(f"{path}: unknown field energy.{key}",
                            f"a {kind} profile has {', '.join(REQUIRED[kind] + OPTIONAL[kind])}")
        energy[key] = _figure(value, f"{path}: energy.{key}")
    latency = {}
    for key, value in latency_table.items():
        if key not in LATENCY[kind]:
            raise UserError(f"{path}: unknown field latency.{key}", f"a {kind} profile has {LATENCY[kind]}")
        latency[key] = _figure(value, f"{path}: latency.{key}")
    resources = {}
    for key, value in resource_table.items():
        if key not in RESOURCES[kind]:
            raise UserError(f"{path}: unknown field resources.{key}", f"a {kind} profile has {RESOURCES[kind]}")
        resources[key] = _figure(value, f"{path}: resources.{key}")
        if resources[key].value < 1 or resources[key].value != int(resources[key].value):
            raise UserError(f"{path}: resources.{key}.value must be a whole number of at least 1",
                            "write the limit as a count")
    if resources and not {"neurons_per_core", "cores_per_chip"} <= set(resources):
        raise UserError(f"{path}: [resources] needs neurons_per_core and cores_per_chip",
                        "add both, or leave [resources] out")
    return EnergyProfile(data["name"].strip(), kind, data["description"].strip(), energy, latency, path, resources)


def _shipped() -> dict[str, Any]:
    root = importlib.resources.files("neurodeploy.hw_profiles")
    return {p.name[:-5]: p for p in root.iterdir() if p.name.endswith(".toml")}


def list_profiles() -> list[EnergyProfile]:
    """Every shipped profile, sorted by kind then name."""
    profiles = [parse_profile(p.read_text(), f"hw_profiles/{p.name}") for p in _shipped().values()]
    return sorted(profiles, key=lambda p: (p.kind != "neuromorphic", p.name))


def load_profile(name_or_path: str | os.PathLike[str]) -> EnergyProfile:
    """A shipped profile by name, or a user's profile file by path (``*.toml``)."""
    text = str(name_or_path)
    shipped = _shipped()
    if text in shipped:
        return parse_profile(shipped[text].read_text(), f"hw_profiles/{text}.toml")
    path = Path(text)
    if path.suffix == ".toml" or path.exists():
        try:
            content = path.read_text()
        except FileNotFoundError:
            raise UserError(f"profile file {path} does not exist", "check the path") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"profile file {path} cannot be read ({type(exc).__name__})",
                            "pass a UTF-8 TOML file") from None
        return parse_profile(content, str(path))
    raise UserError(f"unknown hardware profile {text!r}",
                    f"known profiles: {', '.join(sorted(shipped))}; or pass a path to a .toml file")
