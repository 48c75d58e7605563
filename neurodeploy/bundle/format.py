"""The deployment bundle: what ``neurodeploy convert`` writes and every backend reads.

Two kinds, one :class:`Bundle` class, one partition schema (``segments``
and ``cuts``, each chip segment a netx file of typed layers);
``manifest["format_version"]`` says which kind, :attr:`Bundle.kind` names
it. Format 2 (``"graph"``) is any NIR graph the partitioner handles, format
3 (``"inpainter"``) the Norse-trained inpainter: its spiking stack as one
chip segment, its CNN as one host segment, run over tiles of an image.
:meth:`Bundle.load` verifies both the same way (the manifest's own digest,
then every file's sha256, refusing a bundle whose files differ from the
manifest with a one-line error naming the file); a format-2 bundle is also
read into a :class:`~neurodeploy.runtime.graph_run.GraphDeployment`
(:attr:`Bundle.deployment`), the form the graph runtime runs. Any other
version, older (format 1, the inpainter before it became a partition) or
newer, is refused with one line telling to re-convert, never read as one
of these.

Format 3, a directory::

    segment_0.net  the spiking stack (K conv layers) on one tile's window, netx HDF5 in Loihi
                   fixed point (converters/netx_io.write_segment), loadable in stock lava-dl
    graph.nir      the spiking stack as a NIR graph with float weights (converters/nir_io.stack_graph)
    host.pt        the host CNN: {"format", "version", "model_config", "state_dict"}
    manifest.json  format_version 3, sha256 of the source and of every file, T, dt, the input's
                   encoding and payload, the tile, the partition (segments: the chip segment's layers
                   with their quantization and neuron mapping, its Lava timing; the host CNN) and the
                   cuts, the model config, versions, manifest_sha256

Format 2, a directory::

    segment_K.net  chip segment K of the partition (K counts all segments, host ones too): one netx
                   HDF5 network of several layers, loadable in stock lava.lib.dl.netx.hdf5.Network
                   unless a layer has a bias into a filtered current (its ``bias_current``; the
                   segment's ``lava.stock_netx`` is then false and stock netx is refused)
    host.pt        the host segments' nodes as plain tensors and numbers (neurodeploy.ir.host_ops)
    graph.nir      the source graph, re-written by nir.write: the structure, and the float reference
    manifest.json  format_version 2, dt, the input (node, shape, payload) and output, the partition
                   (segments in order: host node lists, chip layers with their shapes, quantization and
                   neuron mapping, each chip segment's input payload and Lava timing), the cuts with
                   direction and payload, sha256 of every file, manifest_sha256
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from neurodeploy.errors import UserError
from neurodeploy.io import check_output_folder, load_torch, sha256_file

FORMAT = "neurodeploy-bundle"
FORMAT_VERSION = 3  # the inpainter (format 1 was the inpainter before the partition)
GRAPH_FORMAT_VERSION = 2  # a NIR graph
KINDS = {GRAPH_FORMAT_VERSION: "graph", FORMAT_VERSION: "inpainter"}
HOST_FILE, MANIFEST_FILE, GRAPH_FILE = "host.pt", "manifest.json", "graph.nir"


def segment_file(index: int) -> str:
    """The netx file of the chip segment at position ``index`` of the partition."""
    return f"segment_{index}.net"
HOST_FORMAT = "neurodeploy-host"


@dataclass(frozen=True)
class Bundle:
    """A verified bundle directory and its manifest."""

    path: Path
    manifest: dict[str, Any]

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Bundle:
        """Read ``manifest.json`` and check every listed file's sha256."""
        root = Path(path)
        manifest_path = root / MANIFEST_FILE
        if not root.is_dir():
            raise UserError(f"bundle {root} is not a directory", "pass a directory written by neurodeploy convert")
        if not manifest_path.is_file():
            raise UserError(f"bundle {root} has no {MANIFEST_FILE}", "re-create it with neurodeploy convert")
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UserError(f"{manifest_path} is not valid JSON ({type(exc).__name__})",
                            "re-create the bundle with neurodeploy convert") from None
        check_version(manifest, manifest_path)
        check_manifest_digest(manifest, manifest_path)
        validate_segments(manifest, manifest_path)
        if manifest["format_version"] == GRAPH_FORMAT_VERSION:
            validate_graph_manifest(manifest, manifest_path)
        else:
            validate_manifest(manifest, manifest_path)
        for name, digest in manifest["files"].items():
            file = root / name
            if Path(name).name != name:
                raise UserError(f"{manifest_path} lists a file outside the bundle: {name!r}",
                                "re-create the bundle with neurodeploy convert")
            if not file.is_file():
                raise UserError(f"bundle {root} is missing {name}", "re-create it with neurodeploy convert")
            if sha256_file(file) != digest:
                raise UserError(f"bundle {root}: {name} does not match the sha256 in its manifest "
                                "(changed or corrupted)", "re-create it with neurodeploy convert")
        bundle = cls(root, manifest)
        if bundle.kind == "graph":
            _ = bundle.deployment  # read and cross-checked now, not at the first run
        return bundle

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def kind(self) -> str:
        """``"inpainter"`` (format 3) or ``"graph"`` (format 2)."""
        return KINDS[self.manifest["format_version"]]

    def require(self, kind: str) -> Bundle:
        """This bundle if it is of ``kind``; else a one-line UserError saying which input it takes."""
        if self.kind != kind:
            what = {"inpainter": "the inpainter", "graph": "a NIR graph"}
            how = {"inpainter": "--image PHOTO", "graph": "--input X.npy"}
            raise UserError(f"bundle {self.path} holds {what[self.kind]} (format {self.manifest['format_version']}), "
                            f"not {what[kind]}", f"run it with {how[self.kind]}")
        return self

    @cached_property
    def deployment(self) -> Any:
        """A format-2 bundle as the graph runtime runs it (:class:`~neurodeploy.runtime.graph_run.GraphDeployment`)."""
        from neurodeploy.runtime.graph_run import GraphDeployment

        return GraphDeployment.from_bundle(self.require("graph"))

    @property
    def timesteps(self) -> int:
        return int(self.manifest["timesteps"])

    @property
    def encoding(self) -> str:
        return str(self.manifest["input"]["encoding"])

    @cached_property
    def chip_segment(self) -> dict[str, Any]:
        """The inpainter's chip segment: its manifest entry (the spiking stack)."""
        return next(s for s in self.require("inpainter").manifest["segments"] if s["place"] == "chip")

    @cached_property
    def segment_layers(self) -> tuple[Any, ...]:
        """The inpainter's spiking stack as quantized layers, read from its netx file (NetxSegmentLayer)."""
        from neurodeploy.converters.netx_io import read_segment

        layers = read_segment(self.file(self.chip_segment["file"]))
        if len(layers) != len(self.chip_segment["layers"]) or any(layer.kind != "conv" for layer in layers):
            raise UserError(f"bundle {self.path}: {self.chip_segment['file']} does not hold the manifest's "
                            f"{len(self.chip_segment['layers'])} conv layers", "re-create it with neurodeploy convert")
        return layers

    def host_model(self) -> Any:
        """The host CNN (``HostCNN``), rebuilt from ``host.pt`` alone."""
        from neurodeploy.inpainter.model import HostCNN, ModelConfig

        data = load_torch(self.file(HOST_FILE), what="host CNN file")
        if data.get("format") != HOST_FORMAT:
            raise UserError(f"{self.file(HOST_FILE)} is not a neurodeploy host CNN file",
                            "re-create the bundle with neurodeploy convert")
        config = ModelConfig.from_dict(dict(data["model_config"]))
        cnn = HostCNN(config)
        try:
            cnn.load_state_dict(data["state_dict"])
        except (RuntimeError, KeyError, TypeError) as exc:
            raise UserError(f"{self.file(HOST_FILE)} does not fit its model_config ({type(exc).__name__})",
                            "re-create the bundle with neurodeploy convert") from None
        cnn.eval()
        return cnn

    @property
    def model_config(self) -> Any:
        from neurodeploy.inpainter.model import ModelConfig

        return ModelConfig.from_dict(dict(self.manifest["model_config"]))


def check_target(path: str | os.PathLike[str], force: bool = False) -> Path:
    """Check, before converting, that ``path`` can become a bundle directory.

    An existing bundle is replaced only with ``force``; a file, or a
    directory that is not a bundle (no neurodeploy ``manifest.json``), is
    never replaced, ``force`` or not.
    """
    target = check_output_folder(path)
    if not target.exists():
        return target
    if not force:
        raise UserError(f"bundle directory {target} already exists", "pass `force=True` to replace it")
    if any(target.iterdir()) and not _is_bundle(target):
        raise UserError(f"{target} is a directory but not a neurodeploy bundle; `force` replaces bundles only",
                        "name a new directory for the bundle")
    return target


def _is_bundle(root: Path) -> bool:
    try:
        manifest = json.loads((root / MANIFEST_FILE).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == FORMAT


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
    if places != ["chip", "host"]:
        raise UserError(f"{where}: an inpainter is one chip segment then one host segment, not {places}", fix)
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
