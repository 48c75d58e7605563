"""The bundle manifest: its format constants, file names, digest, validation and typed form, in one place.

Both kinds (format 2, a NIR graph; format 3, the inpainter) are described in
:mod:`neurodeploy.bundle.format`. The manifest is a :class:`Manifest`, its
parts (segments, cuts, the input and output, the tile) frozen dataclasses,
both ways: ``convert`` builds one and :func:`write_manifest` serializes it
(:meth:`Manifest.to_json`, the only place that names the JSON's keys when
writing), signs it with its digest and checks it as :func:`read_manifest`
will; :func:`read_manifest` checks the JSON object read from ``manifest.json``
and returns it typed. Records shown as they are (each chip layer's
quantization, a segment's Lava timing, the calibration, the versions) stay
mappings inside it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from neurodeploy.errors import UserError

FORMAT = "neurodeploy-bundle"
FORMAT_VERSION = 3  # the inpainter (format 1 was the inpainter before the partition)
GRAPH_FORMAT_VERSION = 2  # a NIR graph
KINDS = {GRAPH_FORMAT_VERSION: "graph", FORMAT_VERSION: "inpainter"}
HOST_FILE, MANIFEST_FILE, GRAPH_FILE = "host.pt", "manifest.json", "graph.nir"


def segment_file(index: int) -> str:
    """The netx file of the chip segment at position ``index`` of the partition."""
    return f"segment_{index}.net"
HOST_FORMAT = "neurodeploy-host"


DIGEST_FIELD = "manifest_sha256"


def manifest_digest(manifest: dict[str, Any]) -> str:
    """sha256 of the manifest's canonical JSON (sorted keys, no spaces), its own digest field left out."""
    body = {k: v for k, v in manifest.items() if k != DIGEST_FIELD}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def check_manifest_digest(manifest: Any, where: Path | str) -> None:
    """Refuse a manifest edited after convert: every field counts, not only the files' hashes.

    The manifest holds numbers that the files also hold (T, the threshold,
    the tile); rather than check each against the files, any edit is refused.
    """
    fix = "re-create the bundle with neurodeploy convert"
    if not isinstance(manifest, dict):
        raise UserError(f"{where} does not hold a JSON object", fix)
    if not isinstance(manifest.get(DIGEST_FIELD), str):
        raise UserError(f"{where} has no {DIGEST_FIELD} (written by an older neurodeploy, or edited)", fix)
    if manifest_digest(manifest) != manifest[DIGEST_FIELD]:
        raise UserError(f"{where} was modified after convert (its content does not match its {DIGEST_FIELD})", fix)


def check_version(manifest: Any, where: Path | str) -> None:
    """Refuse a manifest of another format or of a version this neurodeploy does not read, in one line."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise UserError(f"{where} is not a neurodeploy bundle manifest",
                        "re-create the bundle with neurodeploy convert")
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version not in KINDS:
        raise UserError(f"{where} has bundle format {version!r}; this neurodeploy reads formats "
                        f"{', '.join(map(str, KINDS))}", "re-convert the model or graph with this version "
                        "(neurodeploy convert)")


REQUIRED = {
    "format": str, "format_version": int, "files": dict, "timesteps": int, "input": dict,
    "tile": dict, "segments": list, "cuts": list, "model_config": dict, "versions": dict, "source": dict,
}


def _check_fields(manifest: dict[str, Any], required: dict[str, type], where: Path | str) -> None:
    """Every required field present with its type, and the graph and host files listed (both kinds have them)."""
    fix = "re-create the bundle with neurodeploy convert"
    for key, kind in required.items():
        if key not in manifest:
            raise UserError(f"{where} is missing the field {key!r}", fix)
        if not isinstance(manifest[key], kind) or isinstance(manifest[key], bool):
            raise UserError(f"{where}: field {key!r} should be a {kind.__name__}", fix)
    for name in (GRAPH_FILE, HOST_FILE):
        if name not in manifest["files"]:
            raise UserError(f"{where}: 'files' does not list {name}", fix)


def validate_manifest(manifest: dict[str, Any], where: Path | str) -> None:
    """Check a format-3 (inpainter) manifest's shape; a missing or mistyped field is a one-line UserError."""
    fix = "re-create the bundle with neurodeploy convert"
    _check_fields(manifest, REQUIRED, where)
    places = [s["place"] for s in manifest["segments"]]
    # ["chip", "chip", "host"]: placement "all", the spiking stack, then its CNN's sigma-delta layers
    if places not in (["chip", "host"], ["chip", "chip", "host"]) or (
            len(places) == 3 and manifest["segments"][1].get("neurons") != "sigma_delta"):
        raise UserError(f"{where}: an inpainter is one chip segment (and a sigma-delta one) then one host "
                        f"segment, not {places}", fix)
    if not 1 <= manifest["timesteps"] <= 4096:
        raise UserError(f"{where}: timesteps {manifest['timesteps']} out of range", fix)
    encoding = manifest["input"].get("encoding")
    if encoding not in ("constant", "poisson"):
        raise UserError(f"{where}: unknown input encoding {encoding!r}", fix)
    tile = manifest["tile"]
    if not all(isinstance(tile.get(k), int) and tile.get(k) >= v for k, v in
               (("height", 1), ("width", 1), ("halo", 0))):
        raise UserError(f"{where}: tile needs integer height, width >= 1 and halo >= 0", fix)


def validate_segments(manifest: Any, where: Path | str) -> None:
    """Check the partition both kinds share: files map names to digests, segments are well formed."""
    fix = "re-create the bundle with neurodeploy convert"
    files, segments = manifest.get("files"), manifest.get("segments")
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise UserError(f"{where}: 'files' must map file names to sha256 strings", fix)
    if not isinstance(segments, list) or not segments:
        raise UserError(f"{where}: 'segments' must list the partition's segments", fix)
    for k, segment in enumerate(segments):
        ok = isinstance(segment, dict) and segment.get("place") in ("chip", "host") \
            and isinstance(segment.get("nodes"), list)
        if ok and segment["place"] == "chip":
            ok = (segment.get("file") == segment_file(k) and segment["file"] in files
                  and isinstance(segment.get("input"), dict)
                  and segment["input"].get("payload") in ("spikes", "graded")
                  and isinstance(segment.get("layers"), list) and bool(segment["layers"]))
        if not ok:
            raise UserError(f"{where}: segment {k} is malformed", fix)


GRAPH_REQUIRED = {
    "format": str, "format_version": int, "files": dict, "source": dict, "input": dict, "output": dict,
    "segments": list, "cuts": list, "host_requested": list, "host_nodes": list, "versions": dict,
}


def validate_graph_manifest(manifest: dict[str, Any], where: Path | str) -> None:
    """Check a format-2 manifest's shape; a missing or mistyped field is a one-line UserError."""
    fix = "re-create the bundle with neurodeploy convert"
    _check_fields(manifest, GRAPH_REQUIRED, where)
    dt = manifest.get("dt", "missing")
    if dt is not None and (not isinstance(dt, (int, float)) or isinstance(dt, bool) or not dt > 0):
        raise UserError(f"{where}: field 'dt' should be a positive number of seconds or null", fix)
    if manifest.get("tau_convention") not in ("seconds", "norse-1.1", "rockpool-3.1"):
        raise UserError(f"{where}: field 'tau_convention' should be seconds, norse-1.1 or rockpool-3.1", fix)
    if not isinstance(manifest.get("tau_convention_reason", ""), str):
        raise UserError(f"{where}: field 'tau_convention_reason' should be a text", fix)
    for key in ("input", "output"):
        if not isinstance(manifest[key].get("node"), str) or not isinstance(manifest[key].get("shape"), list):
            raise UserError(f"{where}: {key!r} needs a node name and a shape", fix)
    if manifest["input"].get("payload") not in ("spikes", "graded"):
        raise UserError(f"{where}: unknown input payload {manifest['input'].get('payload')!r}", fix)


@dataclass(frozen=True)
class SegmentInput:
    """What a chip segment reads: payload p = x for spikes, p = clip(round(payload_max · x)) for graded values."""

    node: str  # the graph node whose output the segment reads
    payload: str  # "spikes" (0/1) or "graded"
    payload_max: int  # the largest payload value: 1 for spikes, 255 for 8-bit graded
    input_message_bits: int  # bits of a graded input message; 0 for spikes
    rule: str = ""  # the payload rule in words, as written for the reader of the JSON

    def to_json(self) -> dict[str, Any]:
        return {"node": self.node, "payload": self.payload, "payload_max": self.payload_max,
                "input_message_bits": self.input_message_bits, "rule": self.rule}


@dataclass(frozen=True)
class Segment:
    """One segment of the partition, in order: on the chip (a netx file of layers) or on the host (graph nodes)."""

    index: int  # its position in the partition; chip segment k is the file segment_k.net
    place: str  # "chip" or "host"
    nodes: tuple[str, ...]
    file: str | None  # a chip segment's netx file (an inpainter's host segment names host.pt)
    neurons: str | None  # chip: "cuba" (Loihi's CUBA LIF) or "sigma_delta" (the inpainter's CNN, placement "all")
    input: SegmentInput | None  # for a chip segment
    layers: tuple[Mapping[str, Any], ...]  # a chip segment's per-layer records (name, kind, quantization, ...)
    lava: Mapping[str, Any] | None = None  # a chip segment's timing on Lava (depth, reset interval, ...)
    details: Mapping[str, Any] = field(default_factory=dict)  # a segment kind's own fields (sigma-delta: block, ...)

    @property
    def layer_names(self) -> tuple[str, ...]:
        return tuple(str(layer["name"]) for layer in self.layers)

    def to_json(self) -> dict[str, Any]:
        """Its JSON entry (its index is its position). ``neurons`` is written where it is not ``"cuba"``:
        the CUBA segments were written without it before the sigma-delta segment came, and still are."""
        out: dict[str, Any] = {"place": self.place, "nodes": list(self.nodes)}
        if self.file is not None:
            out["file"] = self.file
        if self.place == "chip":
            if self.neurons != "cuba":
                out["neurons"] = self.neurons
            assert self.input is not None and self.lava is not None, "a chip segment has an input and a timing"
            out.update(input=self.input.to_json(), lava=_plain(self.lava), layers=_plain(self.layers))
        return {**out, **_plain(self.details)}


@dataclass(frozen=True)
class Cut:
    """An edge of the graph that crosses segments: ``src`` in segment ``src_segment`` feeds ``dst``."""

    src: str
    dst: str
    shape: tuple[int | str, ...]  # an inpainter's cuts name the image's sizes: (C, "H", "W")
    src_segment: int | None  # None: the graph's input, outside every segment
    dst_segment: int | None
    direction: str  # "host->chip", "chip->host", "chip->chip" or "host->host"
    payload: str  # what crosses: "spikes", "graded", or a host value

    def to_json(self) -> dict[str, Any]:
        return {"src": self.src, "dst": self.dst, "shape": list(self.shape), "src_segment": self.src_segment,
                "dst_segment": self.dst_segment, "direction": self.direction, "payload": self.payload}


@dataclass(frozen=True)
class Endpoint:
    """The graph's input or output (format 2: node, shape, payload) or the inpainter's input (format 3)."""

    node: str | None
    shape: tuple[int, ...] | None  # None for the inpainter: any H x W
    payload: str | None  # the input's: "spikes" or "graded"
    encoding: str | None = None  # the inpainter's: "constant" or "poisson"
    payload_bits: int | None = None  # the inpainter's: bits of a graded payload
    channels: int | None = None  # the inpainter's input channels
    layout: str | None = None  # the array layout, in words
    shape_rule: str | None = None  # the inpainter's: which H x W it takes

    def to_json(self) -> dict[str, Any]:
        """The fields this endpoint has (None: not one of this kind's)."""
        fields = {"node": self.node, "shape": None if self.shape is None else list(self.shape),
                  "payload": self.payload, "encoding": self.encoding, "payload_bits": self.payload_bits,
                  "channels": self.channels, "layout": self.layout, "shape_rule": self.shape_rule}
        return {key: value for key, value in fields.items() if value is not None}


@dataclass(frozen=True)
class Tile:
    """The inpainter's tile: an image is run in tiles of height x width, each read with a halo of pixels."""

    height: int
    width: int
    halo: int

    def to_json(self) -> dict[str, Any]:
        return {"height": self.height, "width": self.width, "halo": self.halo}


@dataclass(frozen=True)
class Manifest:
    """A verified manifest, typed (format 2 fields are None for format 3 and the other way round)."""

    format_version: int
    files: Mapping[str, str]  # file name -> sha256, read-only
    segments: tuple[Segment, ...]
    cuts: tuple[Cut, ...]
    input: Endpoint
    output: Endpoint | None  # format 2
    summary: str
    dt: float | None
    tau_convention: str | None
    host_requested: tuple[str, ...]  # format 2: the nodes the user kept on the host
    timesteps: int | None  # format 3
    tile: Tile | None  # format 3
    model_config: Mapping[str, Any] | None  # format 3
    calibration: Mapping[str, Any] | None  # present when convert calibrated
    source: Mapping[str, Any]  # what was converted: kind, path, sha256
    equations: Mapping[str, Any]  # the modules that state the equations (neurons, float run, timing)
    versions: Mapping[str, str]  # the packages' versions at convert
    host_nodes: tuple[str, ...] | None  # format 2: every node run on the host
    placement: str | None  # format 3: "spiking" (the LIF stack on the chip) or "all"
    tau_convention_reason: str | None = None  # format 2: "given", or what auto-detection read it from
    fidelity: Mapping[str, Any] | None = None  # format 2: the probe, weight widths' mode, target, warnings

    @property
    def kind(self) -> str:
        """``"inpainter"`` (format 3) or ``"graph"`` (format 2)."""
        return KINDS[self.format_version]

    def segment(self, neurons: str, place: str = "chip") -> Segment | None:
        """The first segment of ``place`` whose neurons are ``neurons``, or None."""
        return next((s for s in self.segments if s.place == place and s.neurons == neurons), None)

    def to_json(self) -> dict[str, Any]:
        """The JSON object ``manifest.json`` holds, its digest left out: the fields both kinds have, then
        format 2's (output, the nodes on the host) or format 3's (T, tile, placement, model)."""
        out: dict[str, Any] = {
            "format": FORMAT, "format_version": self.format_version, "source": _plain(self.source),
            "files": dict(self.files), "dt": self.dt, "tau_convention": self.tau_convention,
            "input": self.input.to_json(), "segments": [s.to_json() for s in self.segments],
            "cuts": [c.to_json() for c in self.cuts], "summary": self.summary,
            "equations": _plain(self.equations), "versions": dict(self.versions),
        }
        if self.tau_convention_reason is not None:
            out["tau_convention_reason"] = self.tau_convention_reason
        if self.kind == "graph":
            assert self.output is not None and self.host_nodes is not None
            out.update(host_requested=list(self.host_requested), output=self.output.to_json(),
                       host_nodes=list(self.host_nodes))
        else:
            assert self.tile is not None and self.model_config is not None
            out.update(timesteps=self.timesteps, tile=self.tile.to_json(), placement=self.placement,
                       model_config=_plain(self.model_config))
        if self.calibration is not None:
            out["calibration"] = _plain(self.calibration)
        if self.fidelity is not None:
            out["fidelity"] = _plain(self.fidelity)
        return out


def write_manifest(folder: Path, manifest: Manifest) -> None:
    """Write ``folder/manifest.json``: :meth:`Manifest.to_json` signed with its digest (:func:`manifest_digest`),
    sorted keys, indented. It is first checked as :func:`read_manifest` will check it when the bundle loads."""
    data = manifest.to_json()
    data[DIGEST_FIELD] = manifest_digest(data)
    read_manifest(data, folder / MANIFEST_FILE)
    (folder / MANIFEST_FILE).write_text(json.dumps(data, indent=2, sort_keys=True))


def _plain(value: Any) -> Any:
    """``value`` as JSON takes it: mappings (read-only proxies too) as dicts, tuples as lists."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def read_manifest(data: Any, where: Path | str) -> Manifest:
    """Check the JSON object of ``where`` (version, digest, fields) and return it typed; one-line UserError if not."""
    check_version(data, where)
    check_manifest_digest(data, where)
    validate_segments(data, where)
    if data["format_version"] == GRAPH_FORMAT_VERSION:
        validate_graph_manifest(data, where)
    else:
        validate_manifest(data, where)
    try:
        return _typed(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UserError(f"{where}: a field does not have the form convert writes ({type(exc).__name__}: {exc})",
                        "re-create the bundle with neurodeploy convert") from None


def _typed(data: dict[str, Any]) -> Manifest:
    graph = data["format_version"] == GRAPH_FORMAT_VERSION
    tile = data.get("tile")
    return Manifest(
        format_version=data["format_version"],
        files=MappingProxyType(dict(data["files"])),
        segments=tuple(_segment(k, s) for k, s in enumerate(data["segments"])),
        cuts=tuple(_cut(c) for c in data["cuts"]),
        input=_endpoint(data["input"], inpainter=not graph),
        output=_endpoint(data["output"]) if graph else None,
        summary=str(data.get("summary", "")),
        dt=None if data.get("dt") is None else float(data["dt"]),
        tau_convention=data.get("tau_convention"),
        tau_convention_reason=data.get("tau_convention_reason"),
        host_requested=tuple(data.get("host_requested", ())),
        timesteps=None if graph else int(data["timesteps"]),
        tile=None if graph else Tile(int(tile["height"]), int(tile["width"]), int(tile["halo"])),
        model_config=None if graph else MappingProxyType(data["model_config"]),
        calibration=data.get("calibration"),
        source=MappingProxyType(data["source"]),
        equations=MappingProxyType(data.get("equations", {})),
        versions=MappingProxyType(data["versions"]),
        host_nodes=tuple(data["host_nodes"]) if graph else None,
        placement=None if graph else data.get("placement"),
        fidelity=data.get("fidelity"),
    )


SEGMENT_FIELDS = ("place", "nodes", "file", "neurons", "input", "lava", "layers")  # the rest: Segment.details


def _segment(index: int, entry: dict[str, Any]) -> Segment:
    chip = entry["place"] == "chip"
    spec = entry.get("input") if chip else None
    return Segment(
        index=index, place=entry["place"], nodes=tuple(map(str, entry["nodes"])), file=entry.get("file"),
        neurons=str(entry.get("neurons", "cuba")) if chip else None,
        input=None if spec is None else SegmentInput(str(spec["node"]), str(spec["payload"]),
                                                     int(spec["payload_max"]), int(spec["input_message_bits"]),
                                                     str(spec.get("rule", ""))),
        layers=tuple(MappingProxyType(layer) for layer in entry.get("layers", ())),
        lava=MappingProxyType(entry["lava"]) if "lava" in entry else None,
        details=MappingProxyType({k: v for k, v in entry.items() if k not in SEGMENT_FIELDS}),
    )


def _cut(entry: dict[str, Any]) -> Cut:
    return Cut(src=str(entry["src"]), dst=str(entry["dst"]), shape=tuple(entry["shape"]),
               src_segment=entry.get("src_segment"), dst_segment=entry.get("dst_segment"),
               direction=str(entry["direction"]), payload=str(entry["payload"]))


def _endpoint(entry: dict[str, Any], inpainter: bool = False) -> Endpoint:
    if inpainter:  # every format-3 manifest has written both
        return Endpoint(node=None, shape=None, payload=entry.get("payload"), encoding=str(entry["encoding"]),
                        payload_bits=int(entry["payload_bits"]), channels=entry.get("channels"),
                        layout=entry.get("layout"), shape_rule=entry.get("shape_rule"))
    return Endpoint(node=str(entry["node"]), shape=tuple(entry["shape"]), payload=entry.get("payload"),
                    layout=entry.get("layout"))
