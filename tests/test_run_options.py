"""--threads and --fidelity (neurodeploy.runtime.run_options): checked before any work, recorded in the JSON, the
check really skipped, and the outputs the same whatever they say."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from neurodeploy.errors import UserError
from neurodeploy.runtime.run_options import checked, fidelity_mode, plan_threads, sized_threads

from .conftest import run_cli
from .test_simulate_demo import _image, _mask, _one_line_error


def test_the_default_threads_leave_a_core_free_and_one_more_beside_lava() -> None:
    assert [plan_threads(b, cores=2).threads for b in ("reference", "torch", "lava", "loihi2")] == [1, 1, 1, 1]
    assert [plan_threads(b, cores=8).threads for b in ("reference", "torch", "lava")] == [7, 7, 6]
    assert plan_threads("torch", cores=1).threads == 1
    assert plan_threads("lava", 3, cores=2).as_dict() == {"threads": 3, "cores": 2, "chosen_by": "--threads",
                                                          "check_thread": False}
    # the core left free takes the fidelity check's thread, except beside Lava's process
    assert [plan_threads(b, cores=2).check_thread for b in ("reference", "torch", "lava", "loihi2")] == [
        True, True, False, False]
    assert not plan_threads("torch", cores=1).check_thread and not plan_threads("torch", 2, cores=2).check_thread
    with pytest.raises(UserError, match="at least one thread"):
        plan_threads("torch", 0)
    assert [fidelity_mode(v) for v in ("all", "first", "none", True, False)] == ["all", "first", "none", "all", "none"]
    with pytest.raises(UserError, match="all, first, none"):
        fidelity_mode("some")
    assert [checked(m, i) for m in ("all", "first", "none") for i in (0, 1)] == [True, True, True, False,
                                                                                 False, False]


def test_sized_threads_sets_torch_and_restores_it() -> None:
    before = torch.get_num_threads()
    with sized_threads(plan_threads("torch", 3)):
        assert torch.get_num_threads() == 3
    assert torch.get_num_threads() == before


def test_bad_threads_and_fidelity_are_one_line_before_any_work(tmp_path: Path, tiny_bundle: Path) -> None:
    image, mask, out = _image(tmp_path / "a.png"), _mask(tmp_path / "m.png"), tmp_path / "out.png"
    common = ("simulate", str(tiny_bundle), "--image", str(image), "--mask", str(mask), "-o", str(out))
    _one_line_error(run_cli(*common, "--threads", "0"), "--threads 0")
    _one_line_error(run_cli(*common, "--fidelity", "some"), "--fidelity some", "all, first, none")
    _one_line_error(run_cli(*common, "--fidelity", "first", "--results", str(tmp_path / "r.jsonl")),
                    "--fidelity first")
    _one_line_error(run_cli("profile", str(tiny_bundle), "--image", str(image), "--mask", str(mask),
                            "--threads", "-1"), "--threads -1")
    assert not out.exists() and not (tmp_path / "r.jsonl").exists()


def test_fidelity_first_and_none_skip_the_check_and_change_no_output(tmp_path: Path, tiny_bundle: Path) -> None:
    """Two images on the torch backend: --fidelity first checks the first only, none neither; the PNGs are
    byte for byte the same whatever --threads and --fidelity say; the JSON records both (and profile's its
    threads). (The shipped model's larger host CNN blocks can round a pixel differently at another thread
    count: oneDNN's float sums; docs/BENCHMARKS.md section 15.)"""
    photos, masks = tmp_path / "photos", tmp_path / "masks"
    photos.mkdir()
    masks.mkdir()
    for name, size in (("a", (40, 30)), ("b", (28, 36))):
        _image(photos / f"{name}.png", size=size)
        _mask(masks / f"{name}.png", size=size)
    runs = {}
    for label, extra in (("default", ()), ("first", ("--fidelity", "first", "--threads", "2")),
                         ("none", ("--fidelity", "none", "--threads", "1"))):
        result = run_cli("simulate", str(tiny_bundle), "--image", str(photos), "--mask", str(masks), "--backend",
                         "torch", "-o", str(tmp_path / label), "--json", str(tmp_path / f"{label}.json"), *extra)
        assert result.returncode == 0, result.stderr
        runs[label] = json.loads((tmp_path / f"{label}.json").read_text())
    default, first, none = runs["default"], runs["first"], runs["none"]
    assert default["fidelity_check"] == "all" and default["threads"]["chosen_by"] == "default"
    assert first["fidelity_check"] == "first" and first["threads"] == {**first["threads"], "threads": 2,
                                                                      "chosen_by": "--threads"}
    assert none["fidelity_check"] == "none" and none["threads"]["threads"] == 1
    assert all(r["fidelity"]["exact_vs_reference"] and "fidelity" in r["seconds"] for r in default["results"])
    assert first["results"][0]["fidelity"] == default["results"][0]["fidelity"]
    assert first["results"][1]["fidelity"] == {} and "fidelity" not in first["results"][1]["seconds"]
    assert all(r["fidelity"] == {} and "fidelity" not in r["seconds"] for r in none["results"])
    for name in ("a", "b"):
        want = (tmp_path / "default" / f"{name}.png").read_bytes()
        assert all((tmp_path / label / f"{name}.png").read_bytes() == want for label in ("first", "none"))
    assert np.asarray(Image.open(tmp_path / "none" / "b.png")).shape == (36, 28, 3)
    result = run_cli("profile", str(tiny_bundle), "--image", str(photos), "--mask", str(masks), "--backend",
                     "reference", "--threads", "2", "--json", str(tmp_path / "profile.json"))
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "profile.json").read_text())["threads"] == {**first["threads"], "threads": 2}


def test_a_graphs_fidelity_first_checks_one_sample_and_none_none(tmp_path: Path) -> None:
    import nir

    from neurodeploy.inpainter.conversion import convert

    from .test_chip_segments import _mlp_net

    _, graph = _mlp_net()
    graph.infer_types()
    nir.write(tmp_path / "mlp.nir", graph)
    convert(tmp_path / "mlp.nir", tmp_path / "mlp.bundle", dt=1e-4)
    np.save(tmp_path / "x.npy", (np.random.default_rng(0).random((5, 8, 20)) < 0.4).astype(np.float32))
    docs, outputs = {}, {}
    for mode in ("all", "first", "none"):
        result = run_cli("simulate", str(tmp_path / "mlp.bundle"), "--input", str(tmp_path / "x.npy"), "--backend",
                         "torch", "--fidelity", mode, "-o", str(tmp_path / f"{mode}.npz"), "--json",
                         str(tmp_path / f"{mode}.json"), "--threads", "2" if mode == "first" else "1")
        assert result.returncode == 0, result.stderr
        docs[mode] = json.loads((tmp_path / f"{mode}.json").read_text())
        outputs[mode] = np.load(tmp_path / f"{mode}.npz")["output"]
    assert [docs[m]["fidelity_check"] for m in docs] == ["all", "first", "none"]
    assert docs["all"]["fidelity"]["output_samples"] == 5 and docs["first"]["fidelity"]["output_samples"] == 1
    assert docs["first"]["fidelity"]["exact_vs_reference"] is True and docs["none"]["fidelity"] == {}
    assert docs["first"]["threads"]["threads"] == 2
    assert outputs["all"].any() and all(np.array_equal(outputs["all"], o) for o in outputs.values())
