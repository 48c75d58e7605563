"""The typed manifest: read_manifest gives the JSON's parts as frozen dataclasses; a malformed part is one line;
write_manifest writes a Manifest back to the same bytes and refuses one that read_manifest would refuse.

Bundles are written by ``convert`` from a Sinabs conv net read from a NIR file
(two chip segments, host segments between them) and from the tiny inpainter.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import nir
import pytest

from neurodeploy.bundle.deployment import ChipPart
from neurodeploy.bundle.format import Bundle
from neurodeploy.bundle.manifest import (
    DIGEST_FIELD,
    MANIFEST_FILE,
    Cut,
    Segment,
    manifest_digest,
    read_manifest,
    write_manifest,
)
from neurodeploy.errors import UserError
from neurodeploy.inpainter.conversion import convert

from .test_chip_segments import _sinabs_net


@pytest.fixture(scope="module")
def graph_bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    root = tmp_path_factory.mktemp("typed_manifest")
    _, graph = _sinabs_net()
    graph.infer_types()
    nir.write(root / "sinabs.nir", graph)
    return convert(root / "sinabs.nir", root / "sinabs.bundle", host=("4",))


def test_a_graph_manifest_reads_by_attribute_what_its_json_holds(graph_bundle: Bundle) -> None:
    raw, typed = graph_bundle.manifest, graph_bundle.typed_manifest
    assert typed.kind == "graph" and typed.format_version == 2 and dict(typed.files) == raw["files"]
    assert [(s.index, s.place, list(s.nodes), s.file) for s in typed.segments] == [
        (k, s["place"], s["nodes"], s.get("file")) for k, s in enumerate(raw["segments"])]
    chips = [s for s in typed.segments if s.place == "chip"]
    assert [s.index for s in chips] == [1, 3] and [s.neurons for s in typed.segments] == [
        None, "cuba", None, "cuba", None]
    for segment in chips:
        entry = raw["segments"][segment.index]
        assert segment.input is not None and dataclasses.asdict(segment.input) == entry["input"]
        assert list(segment.layer_names) == [layer["name"] for layer in entry["layers"]]
    assert [dataclasses.asdict(c) for c in typed.cuts] == [{**c, "shape": tuple(c["shape"])} for c in raw["cuts"]]
    assert (typed.input.node, list(typed.input.shape or ()), typed.input.payload) == (
        raw["input"]["node"], raw["input"]["shape"], raw["input"]["payload"])
    assert typed.output is not None and typed.output.node == raw["output"]["node"]
    assert list(typed.host_requested) == ["4"] and typed.timesteps is None and typed.tile is None
    # the runtime's deployment is read from the typed parts: one chip part per chip segment
    assert [p.index for p in graph_bundle.deployment.parts if isinstance(p, ChipPart)] == [1, 3]


def test_an_inpainter_manifest_reads_its_tile_input_and_segments(tiny_bundle: Path) -> None:
    bundle = Bundle.load(tiny_bundle)
    raw, typed = bundle.manifest, bundle.typed_manifest
    assert typed.kind == "inpainter" and typed.timesteps == raw["timesteps"] == bundle.timesteps
    assert typed.tile is not None and dataclasses.asdict(typed.tile) == raw["tile"]
    assert (typed.input.encoding, typed.input.payload_bits) == (raw["input"]["encoding"], raw["input"]["payload_bits"])
    assert bundle.chip_segment.file == "segment_0.net" and bundle.chip_segment.index == 0
    assert [s.place for s in typed.segments] == ["chip", "host"] and bundle.sigma_delta_segment is None
    assert dict(typed.model_config or {}) == raw["model_config"]


def test_the_typed_manifest_is_read_only(graph_bundle: Bundle) -> None:
    typed = graph_bundle.typed_manifest
    with pytest.raises(dataclasses.FrozenInstanceError):
        typed.segments[0].place = "chip"  # type: ignore[misc]
    with pytest.raises(TypeError):
        typed.files["graph.nir"] = "0" * 64  # type: ignore[index]
    assert isinstance(typed.segments[0], Segment) and isinstance(typed.cuts[0], Cut)


@pytest.mark.parametrize("field", ["direction", "src"])
def test_a_signed_manifest_with_a_malformed_cut_is_one_line(graph_bundle: Bundle, field: str) -> None:
    data = json.loads((graph_bundle.path / MANIFEST_FILE).read_text())
    del data["cuts"][0][field]
    data["manifest_sha256"] = manifest_digest(data)  # signed again: only the form is wrong
    with pytest.raises(UserError) as caught:
        read_manifest(data, "m.json")
    assert "m.json" in str(caught.value) and "\n" not in str(caught.value) and field in str(caught.value)


@pytest.mark.parametrize("kind", ["graph", "inpainter"])
def test_a_manifest_read_and_written_again_is_the_same_bytes(graph_bundle: Bundle, tiny_bundle: Path,
                                                               tmp_path: Path, kind: str) -> None:
    bundle = graph_bundle if kind == "graph" else Bundle.load(tiny_bundle)
    written = (bundle.path / MANIFEST_FILE).read_bytes()
    assert bundle.typed_manifest.to_json() == {k: v for k, v in bundle.manifest.items() if k != DIGEST_FIELD}
    write_manifest(tmp_path, bundle.typed_manifest)
    assert (tmp_path / MANIFEST_FILE).read_bytes() == written


def test_writing_a_manifest_the_reader_would_refuse_is_one_line(graph_bundle: Bundle, tmp_path: Path) -> None:
    typed = graph_bundle.typed_manifest
    chip = next(s for s in typed.segments if s.place == "chip")
    moved = dataclasses.replace(chip, file="elsewhere.net")  # not segment_k.net
    broken = dataclasses.replace(typed, segments=tuple(moved if s is chip else s for s in typed.segments))
    with pytest.raises(UserError) as caught:
        write_manifest(tmp_path, broken)
    assert f"segment {chip.index} is malformed" in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / MANIFEST_FILE).exists()
