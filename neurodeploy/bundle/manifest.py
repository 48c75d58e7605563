"""The bundle manifest: its format constants, file names, digest and validation, in one place.

Both kinds (format 2, a NIR graph; format 3, the inpainter) are described in
:mod:`neurodeploy.bundle.format`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
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
    for key in ("input", "output"):
        if not isinstance(manifest[key].get("node"), str) or not isinstance(manifest[key].get("shape"), list):
            raise UserError(f"{where}: {key!r} needs a node name and a shape", fix)
    if manifest["input"].get("payload") not in ("spikes", "graded"):
        raise UserError(f"{where}: unknown input payload {manifest['input'].get('payload')!r}", fix)
