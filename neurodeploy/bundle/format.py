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
read into a :class:`~neurodeploy.bundle.deployment.GraphDeployment`
(:attr:`Bundle.deployment`), the form the graph runtime runs. Any other
version, older (format 1, the inpainter before it became a partition) or
newer, is refused with one line telling to re-convert, never read as one
of these.

Format 3, a directory::

    segment_0.net  the spiking stack (K conv layers) on one tile's window, netx HDF5 in Loihi
                   fixed point (converters/netx_io.write_segment), loadable in stock lava-dl
    graph.nir      the spiking stack as a NIR graph with float weights (inpainter/nir_stack.stack_graph)
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

import dataclasses
import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from neurodeploy.bundle.deployment import GraphDeployment
from neurodeploy.bundle.manifest import FORMAT, MANIFEST_FILE, Manifest, Segment, read_manifest
from neurodeploy.chip.sigma_delta import SigmaDeltaLayer, read_sigma_delta_file
from neurodeploy.converters.netx_in import read_segment
from neurodeploy.errors import UserError
from neurodeploy.io import check_output_folder, sha256_file


@dataclass(frozen=True)
class Bundle:
    """A verified bundle directory and its manifest: the JSON object as written, and typed."""

    path: Path
    manifest: dict[str, Any]  # manifest.json as read (its digest verified); records shown as written read from it
    typed_manifest: Manifest  # the same, checked and typed: read by attribute

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
        typed = read_manifest(manifest, manifest_path)
        for name, digest in typed.files.items():
            file = root / name
            if Path(name).name != name:
                raise UserError(f"{manifest_path} lists a file outside the bundle: {name!r}",
                                "re-create the bundle with neurodeploy convert")
            if not file.is_file():
                raise UserError(f"bundle {root} is missing {name}", "re-create it with neurodeploy convert")
            if sha256_file(file) != digest:
                raise UserError(f"bundle {root}: {name} does not match the sha256 in its manifest "
                                "(changed or corrupted)", "re-create it with neurodeploy convert")
        bundle = cls(root, manifest, typed)
        if bundle.kind == "graph":
            _ = bundle.deployment  # read and cross-checked now, not at the first run
        return bundle

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def kind(self) -> str:
        """``"inpainter"`` (format 3) or ``"graph"`` (format 2)."""
        return self.typed_manifest.kind

    def require(self, kind: str) -> Bundle:
        """This bundle if it is of ``kind``; else a one-line UserError saying which input it takes."""
        if self.kind != kind:
            what = {"inpainter": "the inpainter", "graph": "a NIR graph"}
            how = {"inpainter": "--image PHOTO", "graph": "--input X.npy"}
            version = self.typed_manifest.format_version
            raise UserError(f"bundle {self.path} holds {what[self.kind]} (format {version}), not {what[kind]}",
                            f"run it with {how[self.kind]}")
        return self

    @cached_property
    def deployment(self) -> GraphDeployment:
        """A format-2 bundle as the graph runtime runs it."""
        return GraphDeployment.from_bundle(self.require("graph"))

    @property
    def timesteps(self) -> int:
        timesteps = self.require("inpainter").typed_manifest.timesteps
        assert timesteps is not None  # validate_manifest: format 3 has T
        return timesteps

    @property
    def payload_bits(self) -> int:
        """The inpainter's bits per graded input payload (0: Poisson spikes)."""
        bits = self.require("inpainter").typed_manifest.input.payload_bits
        assert bits is not None  # read_manifest: format 3 has them
        return bits

    @property
    def encoding(self) -> str:
        return str(self.require("inpainter").typed_manifest.input.encoding)

    @cached_property
    def chip_segment(self) -> Segment:
        """The inpainter's chip segment: the spiking stack (validated: there is one)."""
        segment = self.require("inpainter").typed_manifest.segment("cuba")
        assert segment is not None  # validate_manifest: an inpainter's first segment is on the chip
        return segment

    @cached_property
    def segment_layers(self) -> tuple[Any, ...]:
        """The inpainter's spiking stack as quantized layers, read from its netx file (FixedPointLayer)."""
        segment = self.chip_segment
        layers = read_segment(self.file(str(segment.file)))
        if len(layers) != len(segment.layers) or any(layer.kind != "conv" for layer in layers):
            raise UserError(f"bundle {self.path}: {segment.file} does not hold the manifest's "
                            f"{len(segment.layers)} conv layers", "re-create it with neurodeploy convert")
        return layers


    @cached_property
    def sigma_delta_segment(self) -> dict[str, Any] | None:
        """The inpainter's sigma-delta segment (placement ``all``): its manifest entry as written (block, delta
        threshold, per layer the scales), or None (a graph has none)."""
        segment = self.typed_manifest.segment("sigma_delta") if self.kind == "inpainter" else None
        return None if segment is None else self.manifest["segments"][segment.index]

    @cached_property
    def sigma_delta_layers(self) -> tuple[SigmaDeltaLayer, ...]:
        """The sigma-delta layers from their netx file, with the float steps the manifest keeps."""
        entry = self.sigma_delta_segment
        if entry is None:
            return ()
        layers = read_sigma_delta_file(str(self.file(entry["file"])))
        if len(layers) != len(entry["layers"]):
            raise UserError(f"bundle {self.path}: {entry['file']} does not hold the manifest's "
                            f"{len(entry['layers'])} sigma-delta layers", "re-create it with neurodeploy convert")
        return tuple(dataclasses.replace(layer, message_step=float(e["message_step"]),
                                         input_step=float(e["input_step"]))
                     for layer, e in zip(layers, entry["layers"], strict=True))


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
