"""The deployment bundle: what ``neurodeploy convert`` writes and every backend reads.

A bundle is a directory::

    snn.net        the spiking stage, netx HDF5, Loihi fixed point (converters/netx_io.py)
    snn.nir        the spiking stage as a NIR graph with float weights
    host.pt        the host CNN: {"format", "version", "model_config", "state_dict"}
                   (absent for a bundle made from a NIR graph, which has no CNN)
    manifest.json  format version, sha256 of the source and of every file, input
                   rules, T, encoding, tile, quantization, the LIF mapping, versions

:meth:`Bundle.load` recomputes every file's sha256 and refuses a bundle whose
files differ from the manifest, with a one-line error naming the file.
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
FORMAT_VERSION = 1
SNN_FILE, NIR_FILE, HOST_FILE, MANIFEST_FILE = "snn.net", "snn.nir", "host.pt", "manifest.json"
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
        check_manifest_digest(manifest, manifest_path)
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
        return cls(root, manifest)

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def timesteps(self) -> int:
        return int(self.manifest["timesteps"])

    @property
    def encoding(self) -> str:
        return str(self.manifest["input"]["encoding"])

    @property
    def has_host(self) -> bool:
        return HOST_FILE in self.manifest["files"]

    @cached_property
    def layer(self) -> Any:
        """The quantized spiking layer, read from ``snn.net`` (a NetxConvLayer)."""
        from neurodeploy.converters.netx_io import read_netx

        return read_netx(self.file(SNN_FILE))

    def host_model(self) -> Any:
        """The host CNN (``HostCNN``), rebuilt from ``host.pt`` alone."""
        from neurodeploy.model import HostCNN, ModelConfig

        if not self.has_host:
            raise UserError(f"bundle {self.path} has no host CNN (it was made from a NIR graph)",
                            "convert a neurodeploy checkpoint to run the whole inpainter")
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
        from neurodeploy.model import ModelConfig

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


REQUIRED = {
    "format": str, "format_version": int, "files": dict, "timesteps": int, "input": dict,
    "tile": dict, "lava": dict, "quantization": dict, "lif_mapping": dict, "versions": dict,
    "source": dict,
}


def validate_manifest(manifest: Any, where: Path | str) -> None:
    """Check the manifest's shape; a missing or mistyped field is a one-line UserError."""
    fix = "re-create the bundle with neurodeploy convert"
    if not isinstance(manifest, dict):
        raise UserError(f"{where} does not hold a JSON object", fix)
    for key, kind in REQUIRED.items():
        if key not in manifest:
            raise UserError(f"{where} is missing the field {key!r}", fix)
        if not isinstance(manifest[key], kind) or isinstance(manifest[key], bool):
            raise UserError(f"{where}: field {key!r} should be a {kind.__name__}", fix)
    if manifest["format"] != FORMAT:
        raise UserError(f"{where} is not a neurodeploy bundle manifest", fix)
    if manifest["format_version"] != FORMAT_VERSION:
        raise UserError(f"{where} has bundle format {manifest['format_version']}, this neurodeploy "
                        f"reads {FORMAT_VERSION}", "convert the model again with this version")
    if SNN_FILE not in manifest["files"] or not all(isinstance(v, str) for v in manifest["files"].values()):
        raise UserError(f"{where}: 'files' must map file names (snn.net at least) to sha256 strings", fix)
    if not 1 <= manifest["timesteps"] <= 4096:
        raise UserError(f"{where}: timesteps {manifest['timesteps']} out of range", fix)
    encoding = manifest["input"].get("encoding")
    if encoding not in ("constant", "poisson"):
        raise UserError(f"{where}: unknown input encoding {encoding!r}", fix)
    tile = manifest["tile"]
    if not all(isinstance(tile.get(k), int) and tile.get(k) >= v for k, v in
               (("height", 1), ("width", 1), ("halo", 0))):
        raise UserError(f"{where}: tile needs integer height, width >= 1 and halo >= 0", fix)
    if HOST_FILE in manifest["files"] and not isinstance(manifest.get("model_config"), dict):
        raise UserError(f"{where}: a bundle with a host CNN needs its model_config", fix)
