"""Fuzzing every loader a stranger's file reaches: it loads, or fails with the one-line UserError.

Never another exception (a traceback), never a hang past the deadline, never
code execution. Examples per loader: NEURODEPLOY_FUZZ_EXAMPLES (default 60;
docs/BENCHMARKS.md records a longer run).
"""

from __future__ import annotations

import io
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurodeploy.bundle.format import Bundle
from neurodeploy.bundle.manifest import DIGEST_FIELD, MANIFEST_FILE, manifest_digest
from neurodeploy.converters.netx_in import read_segment
from neurodeploy.cost.hw import parse_profile
from neurodeploy.errors import UserError
from neurodeploy.inpainter.checkpoint import bundle_host_cnn, model_from_checkpoint, read_checkpoint, save_checkpoint
from neurodeploy.inpainter.nir_stack import stack_weights
from neurodeploy.io import read_image, read_mask

from .conftest import tiny_model

EXAMPLES = int(os.environ.get("NEURODEPLOY_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=5000, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])
ROOT = Path(__file__).resolve().parents[1]
PWNED = Path("/tmp/neurodeploy-fuzz-pwned")


def mutated(data: bytes) -> st.SearchStrategy[bytes]:
    """``data`` with some bytes overwritten, truncated, or extended: near-valid files."""
    edits = st.lists(st.tuples(st.integers(0, max(len(data) - 1, 0)), st.integers(0, 255)), max_size=12)
    cut = st.integers(0, len(data))

    def apply(args: tuple[list[tuple[int, int]], int, bytes]) -> bytes:
        changes, length, tail = args
        out = bytearray(data)
        for pos, value in changes:
            out[pos] = value
        return bytes(out[:length]) + tail

    return st.tuples(edits, st.one_of(st.just(len(data)), cut), st.binary(max_size=16)).map(apply)


def fuzz_bytes(valid: bytes) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=256), mutated(valid))


def only_user_errors(load, path: Path) -> None:
    try:
        load(path)
    except UserError as exc:
        assert "\n" not in str(exc) and str(exc)
    assert not PWNED.exists()


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    from neurodeploy.inpainter.conversion import convert

    root = tmp_path_factory.mktemp("valid")
    save_checkpoint(root / "model.pt", tiny_model())
    bundle = convert(root / "model.pt", root / "bundle", tile=8)
    from PIL import Image

    Image.fromarray(np.arange(48, dtype=np.uint8).reshape(4, 4, 3)).save(root / "img.png")
    buffer = io.BytesIO()
    Image.fromarray(np.arange(48, dtype=np.uint8).reshape(4, 4, 3)).save(buffer, format="JPEG")
    return {
        "checkpoint": (root / "model.pt").read_bytes(),
        "netx": (bundle.path / "segment_0.net").read_bytes(),
        "nir": (bundle.path / "graph.nir").read_bytes(),
        "manifest": (bundle.path / MANIFEST_FILE).read_bytes(),
        "bundle_dir": str(bundle.path).encode(),
        "profile": (ROOT / "hw_profiles" / "loihi.toml").read_bytes(),
        "png": (root / "img.png").read_bytes(),
        "jpeg": buffer.getvalue(),
    }


def _write(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


def load_checkpoint_and_model(path: Path) -> None:
    model_from_checkpoint(read_checkpoint(path), str(path))


@FUZZ
@given(data=st.data())
def test_checkpoint_loader(tmp_path: Path, valid_files: dict[str, bytes], data: st.DataObject) -> None:
    blob = data.draw(fuzz_bytes(valid_files["checkpoint"]))
    only_user_errors(load_checkpoint_and_model, _write(tmp_path, "c.pt", blob))


class _RunsCode:
    def __reduce__(self):
        return (os.system, (f"touch {PWNED}",))


JSONISH = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8),
                       lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                    max_size=4), max_leaves=12)


@FUZZ
@given(field=st.sampled_from(["model_config", "state_dict", "format", "version", "optimizer", "extra"]),
       value=JSONISH, code=st.booleans())
def test_checkpoint_contents(tmp_path: Path, field: str, value: object, code: bool) -> None:
    model = tiny_model()
    ckpt = {"format": "neurodeploy-checkpoint", "version": 1, "model_config": model.config.to_dict(),
            "state_dict": model.state_dict()}
    ckpt[field] = _RunsCode() if code else value
    path = tmp_path / "c.pt"
    torch.save(ckpt, path, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    only_user_errors(load_checkpoint_and_model, path)


@FUZZ
@given(field=st.sampled_from(sorted(tiny_model().config.to_dict())), value=JSONISH)
def test_checkpoint_model_config_fields(tmp_path: Path, field: str, value: object) -> None:
    model = tiny_model()
    config = model.config.to_dict()
    config[field] = value
    path = tmp_path / "c.pt"
    torch.save({"format": "neurodeploy-checkpoint", "version": 1, "model_config": config,
                "state_dict": model.state_dict()}, path)
    only_user_errors(load_checkpoint_and_model, path)


@FUZZ
@given(data=st.data())
def test_netx_loader(tmp_path: Path, valid_files: dict[str, bytes], data: st.DataObject) -> None:
    only_user_errors(read_segment, _write(tmp_path, "segment_0.net", data.draw(fuzz_bytes(valid_files["netx"]))))


@FUZZ
@given(data=st.data())
def test_nir_loader(tmp_path: Path, valid_files: dict[str, bytes], data: st.DataObject) -> None:
    only_user_errors(stack_weights, _write(tmp_path, "graph.nir", data.draw(fuzz_bytes(valid_files["nir"]))))


@FUZZ
@given(data=st.data())
def test_profile_loader(tmp_path: Path, valid_files: dict[str, bytes], data: st.DataObject) -> None:
    blob = data.draw(fuzz_bytes(valid_files["profile"]))
    only_user_errors(lambda p: parse_profile(p.read_bytes().decode("utf-8", "replace"), str(p)),
                     _write(tmp_path, "p.toml", blob))


@FUZZ
@given(data=st.data(), kind=st.sampled_from(["png", "jpeg"]))
def test_image_and_mask_loaders(tmp_path: Path, valid_files: dict[str, bytes], data: st.DataObject,
                                kind: str) -> None:
    path = _write(tmp_path, f"x.{kind}", data.draw(fuzz_bytes(valid_files[kind])))
    only_user_errors(read_image, path)
    only_user_errors(lambda p: read_mask(p, (4, 4)), path)


@FUZZ
@given(data=st.data())
def test_bundle_manifest_loader(tmp_path_factory: pytest.TempPathFactory, valid_files: dict[str, bytes],
                                data: st.DataObject) -> None:
    import shutil

    source = Path(valid_files["bundle_dir"].decode())
    bundle = tmp_path_factory.mktemp("bundle") / "b"
    shutil.copytree(source, bundle)
    manifest = json.loads(valid_files["manifest"])
    choice = data.draw(st.sampled_from(["bytes", "field"]))
    if choice == "bytes":
        (bundle / MANIFEST_FILE).write_bytes(data.draw(fuzz_bytes(valid_files["manifest"])))
    else:
        key = data.draw(st.sampled_from(sorted(manifest)))
        manifest[key] = data.draw(JSONISH)
        if data.draw(st.booleans()):  # re-signed, so that the checks behind the digest are fuzzed too
            manifest[DIGEST_FIELD] = manifest_digest(manifest)
        (bundle / MANIFEST_FILE).write_text(json.dumps(manifest, allow_nan=True))

    def load_everything(path: Path) -> None:
        loaded = Bundle.load(path)
        loaded.segment_layers  # noqa: B018 - reading segment_0.net is part of loading
        bundle_host_cnn(loaded)

    only_user_errors(load_everything, bundle)
