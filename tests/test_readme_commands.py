"""Every shell command of README.md's ```sh blocks, and every whole command its prose shows in `code`, runs
as written, so the README cannot rot.

The commands run in README order in one folder (the later ones use what the earlier ones wrote:
model.pt, scnn.bundle, net.bundle, sweep-out/), with small files standing in for the user's:
a photo and its hole, folders of them, ``~/LSDIR/train`` (HOME is the folder), and NIR graphs
written by the libraries' own exporters (``net.nir`` snnTorch's, ``frames.nir`` Sinabs's,
``rockpool.nir`` Rockpool's, ``norse.nir`` Norse's). A command fails on a non-zero exit, a
traceback on stderr, or an output it names (``-o``, ``--out``, ``--json``, ``--report``,
``--results``, and the files of :data:`PROMISES`) that it did not write.

A command is run as written unless :data:`SKIPPED` names it with the reason; :data:`SHRUNK`
appends options to long ones (training, sweeps) and says why; :data:`ALTERNATIVE` names the
files a command starts without because the README shows it as another way to do what the
one before did. A README command that is in none of the tables runs; a table key that is no
README command fails (:func:`test_the_tables_name_only_readme_commands`).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import nir
import numpy as np
import pytest
import torch
from PIL import Image

from neurodeploy.inpainter.model import ModelConfig
from tests.netx_export import write_slayer_net
from tests.test_convert import write_nir_graph

ROOT = Path(__file__).resolve().parents[1]


def readme_commands(text: str) -> list[str]:
    """The distinct shell commands of the ```sh blocks, in order: continuation lines joined, comments dropped."""
    commands: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            command = " ".join(re.sub(r"(^|\s)#.*$", "", line).split())
            if command and command not in commands:
                commands.append(command)
    return commands


def inline_commands(text: str) -> list[str]:
    """The whole commands the prose shows in `code` (those that start with the program itself: `neurodeploy
    --version`, not fragments such as `convert model.pt --calibrate PHOTOS`)."""
    prose = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    spans = re.findall(r"`((?:\.venv/bin/)?neurodeploy [^`]+)`", prose)
    return list(dict.fromkeys(" ".join(span.split()) for span in spans))


README = (ROOT / "README.md").read_text()
COMMANDS = readme_commands(README) + [c for c in inline_commands(README) if c not in readme_commands(README)]

# Not run here, and why.
SKIPPED = {
    "make demo": "runs `neurodeploy demo`, which tests/test_simulate_demo.py runs (every output checked)",
    "make test": "the test suite this test is part of",
    "make test-all": "the test suite with the slow tests",
    "make lint": "`ruff check .`, which `make test` runs first",
    "make bench": "the benchmarks of docs/BENCHMARKS.md: an hour on 2 cores",
    "torchrun --nproc_per_node 4 -m neurodeploy train --data ~/LSDIR/train --out model.pt":
        "needs 4 GPUs (nccl); tests/test_cuda.py runs the GPU training where torch sees a GPU",
    "torchrun --nnodes 2 --node_rank 0 --master_addr HOST --nproc_per_node 8 -m neurodeploy train ...":
        "needs 2 nodes of 8 GPUs; `...` stands for train's options",
    "scripts/wallpapers.sh ~/wallpapers": "downloads two Debian packages (115 MB, a minute); tests/test_wallpapers.py "
                                          "runs it in `make test-all` (here a folder of photos stands in for it)",
    "neurodeploy simulate scnn.bundle --image photo.png --mask hole.png --backend loihi2":
        "needs lava-loihi and a Loihi 2 (tests/test_new_user.py checks the one-line refusal without them)",
    "neurodeploy simulate scnn.bundle --image photos/ --random-mask 3 -o out/ --backend torch --cluster ray "
    "--results items.jsonl": "starts a Ray cluster (tens of seconds on 2 cores); tests/test_cluster.py runs "
                             "`simulate --cluster ray --results` on a small bundle",
    "neurodeploy profile pilotnet_snn.net --image astronaut.png --hw loihi2,loihi2_kapoho":
        "needs Lava-DL's PilotNet LIF file (lava-dl's tutorials; not shipped here): benchmarks/validate_hw.py --cli "
        "runs this command on it, and the netx section's `profile network.net --image frame.png ...` runs here",
    "neurodeploy simulate net.net --input X.npy": "X.npy here holds the NIR graph's samples; tests/test_netx_in.py "
                                                  "(test_simulate_takes_spikes_for_a_network_without_input_neurons) "
                                                  "runs this command on a netx file whose input layer has no neurons",
    "neurodeploy profile net.bundle --input X.npy --backend torch --cluster ray --results samples.jsonl "
    "--json profile.json": "starts a Ray cluster (tens of seconds on 2 cores); tests/test_cluster.py runs a "
                           "graph's samples on Ray",
}

# Options appended to long commands (a later option overrides an earlier one): the README's line, smaller.
_TINY_TRAIN = " --epochs 1 --samples-per-epoch 8 --crop 32 --batch-size 4 --device cpu"
_TINY_SWEEP = (" --variants 0,1 --seeds 1 --samples-per-epoch 4 --crop 32 --batch-size 4 --data ~/LSDIR/train"
               " --device cpu --backend reference --hw loihi2")
SHRUNK = {
    "neurodeploy train --out model.pt": _TINY_TRAIN,  # 40 epochs of 256 128-px crops
    "neurodeploy train --data ~/LSDIR/train --out model.pt": _TINY_TRAIN,
    "neurodeploy train --out model.pt --resume": _TINY_TRAIN.replace("--epochs 1", "--epochs 2"),  # one more
    "neurodeploy train --data ~/wallpapers --val-data builtin --out model.pt": _TINY_TRAIN,
    # the builtin validation photos, whole and in crops, deployed: the same protocol on three small photos
    "neurodeploy evaluate examples/models/scnn_inpaint.pt --json eval.json": " --data ~/LSDIR/train --crop 32",
    "neurodeploy sweep --out sweep-out --config examples/configs/full_resolution_residual.json --epochs 32 "
    "--crop 64 --samples-per-epoch 256 --seeds 2 --backend reference":
        _TINY_SWEEP + " --epochs 1",  # 3 hours of one core
    "neurodeploy sweep --out sweep-smoke --epochs 2 --crop 64 --samples-per-epoch 128 --seeds 2":
        _TINY_SWEEP + " --epochs 1 --variants 1",  # the twin's comparison is the sweep's above
}

# The README shows these as another way to do what the command before did: they start without these files.
ALTERNATIVE = {
    "neurodeploy train --data ~/LSDIR/train --out model.pt": ["model.pt"],
    "neurodeploy train --data ~/wallpapers --val-data builtin --out model.pt": ["model.pt"],
}

# What a command writes beyond the paths of its output options.
PROMISES = {
    "neurodeploy train --out model.pt": ["model.pt"],
    "neurodeploy convert examples/models/scnn_inpaint.pt -o scnn.bundle":
        ["scnn.bundle/manifest.json", "scnn.bundle/segment_0.net", "scnn.bundle/host.pt", "scnn.bundle/graph.nir"],
    "neurodeploy convert net.nir -o net.bundle --dt 1e-4": ["net.bundle/manifest.json", "net.bundle/graph.nir"],
    "neurodeploy simulate scnn.bundle --image photos/ --mask masks/ -o out/ --skip-existing":
        ["out/a.png", "out/b.png", "out/c.png"],
    "neurodeploy sweep --out sweep-out --config examples/configs/full_resolution_residual.json --epochs 32 "
    "--crop 64 --samples-per-epoch 256 --seeds 2 --backend reference":
        ["sweep-out/sweep.json", "sweep-out/sweep.png", "sweep-out/learning_curves.png", "sweep-out/report.html"],
    "neurodeploy sweep --out sweep-smoke --epochs 2 --crop 64 --samples-per-epoch 128 --seeds 2":
        ["sweep-smoke/sweep.json", "sweep-smoke/sweep.png", "sweep-smoke/learning_curves.png",
         "sweep-smoke/report.html"],
    "neurodeploy profile scnn.bundle --image photo.png --random-mask 3 --report report/ --json profile.json":
        ["report/report.html"],
}

OUTPUT_OPTIONS = ("-o", "--out", "--json", "--report", "--results")


def outputs_of(command: str) -> list[str]:
    """The paths a command names as its outputs, and those :data:`PROMISES` adds."""
    words = shlex.split(command)
    named = [words[i + 1] for i, word in enumerate(words[:-1]) if word in OUTPUT_OPTIONS]
    return named + PROMISES.get(command, [])


# -- the user's files ------------------------------------------------------------------------------------

def _photo(seed: int, size: tuple[int, int]) -> np.ndarray:
    """A crop of a scikit-image photo (a real image, not noise), seeded."""
    from skimage import data

    source = data.astronaut()
    rng = np.random.default_rng(seed)
    top, left = rng.integers(0, source.shape[0] - size[0]), rng.integers(0, source.shape[1] - size[1])
    return np.ascontiguousarray(source[top:top + size[0], left:left + size[1]])


def _hole(size: tuple[int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mask = np.zeros(size, np.uint8)
    top, left = rng.integers(4, size[0] // 2), rng.integers(4, size[1] // 2)
    mask[top:top + size[0] // 4, left:left + size[1] // 3] = 255
    return mask


def snntorch_mlp_graph(beta: float = 0.9) -> nir.NIRGraph:
    """snnTorch's own export of an MLP (fc1 -> lif1 -> fc2 -> lif2, reset to zero): the README's net.nir."""
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = torch.nn.Linear(20, 16)
            self.lif1 = snn.Leaky(beta=torch.full((16,), beta), threshold=torch.ones(16), init_hidden=True,
                                  reset_mechanism="zero")
            self.fc2 = torch.nn.Linear(16, 5)
            self.lif2 = snn.Leaky(beta=torch.full((5,), beta), threshold=torch.ones(5), init_hidden=True,
                                  reset_mechanism="zero", output=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.lif2(self.fc2(self.lif1(self.fc1(x))))[0]

    torch.manual_seed(0)
    net = Net()
    with torch.no_grad():
        net.fc1.weight.mul_(3.0)
    return export_to_nir(net, torch.rand(20))


def _sinabs_frames_graph() -> nir.NIRGraph:
    """Sinabs's own export of a conv net of IAF neurons (no time constant): the README's frames.nir."""
    import sinabs
    import sinabs.layers as sl

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1, bias=False), sl.IAFSqueeze(batch_size=1),
                              torch.nn.Flatten(), torch.nn.Linear(4 * 8 * 8, 5, bias=False),
                              sl.IAFSqueeze(batch_size=1))
    graph = sinabs.to_nir(net, torch.rand(1, 2, 8, 8))
    graph.infer_types()
    return graph


def _rockpool_graph() -> nir.NIRGraph:
    """Rockpool 3.1's own export (LinearTorch -> LIFTorch, dt = 1e-3): the README's rockpool.nir."""
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFTorch, LinearTorch
    from rockpool.nn.modules.torch.nir import to_nir

    torch.manual_seed(0)
    return to_nir(Sequential(LinearTorch((20, 8)), LIFTorch(8, tau_mem=0.02, tau_syn=0.01, dt=1e-3)))


def norse_graph() -> nir.NIRGraph:
    """Norse 1.1's own export (Conv2d -> LIFCell, dt = 1e-3, tau stored as dt·tau): the README's norse.nir."""
    import norse.torch as norse

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 5, 3, padding=1), norse.LIFCell())  # its export needs a bias
    with torch.no_grad():
        net[0].bias.zero_()
    return norse.to_nir(net, torch.zeros(1, 2, 12, 10), dt=1e-3)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder the commands run in, holding what the README's commands read."""
    home = tmp_path_factory.mktemp("readme")
    (home / "examples").symlink_to(ROOT / "examples")
    (home / ".venv").symlink_to(Path(sys.executable).parents[1])  # `.venv/bin/neurodeploy`: the one under test
    (home / "path" / "to").mkdir(parents=True)
    shutil.copy(ROOT / "hw_profiles" / "loihi2.toml", home / "path" / "to" / "mychip.toml")  # the user's profile
    Image.fromarray(_photo(0, (96, 112))).save(home / "photo.png")
    Image.fromarray(_hole((96, 112), 0)).save(home / "hole.png")
    for folder in ("photos", "masks", "LSDIR/train", "wallpapers"):
        (home / folder).mkdir(parents=True)
    for k, name in enumerate("abc"):
        Image.fromarray(_photo(k + 1, (64, 80))).save(home / "photos" / f"{name}.png")
        Image.fromarray(_hole((64, 80), k + 1)).save(home / "masks" / f"{name}.png")
        Image.fromarray(_photo(k + 10, (136, 136))).save(home / "LSDIR" / "train" / f"{name}.jpg")
        Image.fromarray(_photo(k + 30, (136, 136))).save(home / "wallpapers" / f"plasma-{name}.jpg")
    nir.write(home / "net.nir", snntorch_mlp_graph())
    nir.write(home / "frames.nir", _sinabs_frames_graph())
    nir.write(home / "rockpool.nir", _rockpool_graph())
    write_nir_graph(norse_graph(), home / "norse.nir")  # Norse 1.1 leaves fields nir.write needs unset
    x = (np.random.default_rng(0).random((4, 12, 20)) < 0.3).astype(np.float32)  # (N, T, 20) events
    np.save(home / "X.npy", x)
    _norse_model(home)
    write_slayer_net(home / "network.net", seed=3)  # a Lava-DL netx file as SLAYER's export_hdf5 lays it out
    (home / "frames").mkdir()
    for k, path in enumerate(("frame.png", "frames/a.png", "frames/b.png")):
        Image.fromarray(_photo(k + 20, (48, 64))).save(home / path)
    return home


NORSE_MODELS = {  # the README's Norse section: a file that builds the module, and its trained state
    "model.py": "import norse.torch as norse\nimport torch\n\n\ndef build():\n"
                "    return norse.SequentialState(norse.LIFRecurrentCell(20, 16), torch.nn.Linear(16, 5, bias=False),\n"
                "                                 norse.LIFCell())\n",
    "cnn.py": "import norse.torch as norse\nimport torch\n\n\ndef build():\n"
              "    return norse.SequentialState(torch.nn.Conv2d(1, 4, 3, padding=1, bias=False), norse.LIFBoxCell(),\n"
              "                                 torch.nn.Flatten(), torch.nn.Linear(4 * 8 * 8, 5, bias=False),\n"
              "                                 norse.LIFCell())\n",
}


def _norse_model(home: Path) -> None:
    """model.py and cnn.py with their state dicts (state.pt, cnn.pt), as a Norse user keeps a model."""
    for (name, source), state in zip(NORSE_MODELS.items(), ("state.pt", "cnn.pt"), strict=True):
        (home / name).write_text(source)
        scope: dict = {}
        exec(compile(source, name, "exec"), scope)
        torch.manual_seed(0)
        torch.save(scope["build"]().state_dict(), home / state)


def _run(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(cwd), "COLUMNS": "160",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(["bash", "-c", command + SHRUNK.get(command, "")], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_the_readme_has_shell_commands() -> None:
    assert len(COMMANDS) > 20
    assert "neurodeploy convert examples/models/scnn_inpaint.pt --chip all -o all.bundle" in COMMANDS  # issue 33
    assert {"neurodeploy --version", ".venv/bin/neurodeploy doctor",
            "neurodeploy hw show path/to/mychip.toml"} <= set(COMMANDS)  # from the prose


def test_the_tables_name_only_readme_commands() -> None:
    """A table entry whose command the README no longer shows is stale: it would hide a changed command."""
    for table in (SKIPPED, SHRUNK, ALTERNATIVE, PROMISES):
        assert set(table) <= set(COMMANDS), set(table) - set(COMMANDS)
    assert not set(SKIPPED) & set(SHRUNK)
    unknown = [c for c in COMMANDS if not c.startswith(("neurodeploy ", ".venv/bin/neurodeploy ")) and c not in SKIPPED]
    assert not unknown, f"README commands neither run nor listed in SKIPPED with a reason: {unknown}"


@pytest.mark.parametrize("command", COMMANDS, ids=[f"{k:02d} {' '.join(c.split()[:2])}"
                                                    for k, c in enumerate(COMMANDS)])
def test_readme_command_runs(workspace: Path, command: str) -> None:
    if command in SKIPPED:
        pytest.skip(SKIPPED[command])
    for name in ALTERNATIVE.get(command, ()):
        (workspace / name).unlink(missing_ok=True)
    outputs = outputs_of(command)
    for name in outputs:  # so that a file an earlier command wrote does not stand in for this one's
        target = workspace / name
        if target.is_file() and not name.endswith(".pt"):  # a checkpoint stays: `--resume` goes on from it
            target.unlink()
    run = _run(command, workspace)
    assert run.returncode == 0, f"{command}: exit {run.returncode}\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    assert "Traceback" not in run.stderr, f"{command}:\n{run.stderr[-3000:]}"
    missing = [name for name in outputs if not (workspace / name).exists()]
    assert not missing, f"{command} did not write {missing}\n{run.stdout[-2000:]}"
    if command == "neurodeploy train --out model.pt":  # train's default is the shipped model's configuration
        config = torch.load(workspace / "model.pt", weights_only=True)["model_config"]
        shipped = ModelConfig.from_json((ROOT / "examples/configs/full_resolution_residual.json").read_text())
        assert ModelConfig.from_dict(dict(config)) == shipped
    if "--plan" in command:
        assert "nothing written" in run.stdout


def test_a_readme_command_that_fails_is_caught(workspace: Path) -> None:
    """The checks above can fail: a command that exits 2 is seen as such, and the outputs a command names are
    read from its options."""
    refused = _run("neurodeploy convert missing.nir -o missing.bundle --dt 1e-4", workspace)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert not (workspace / "missing.bundle").exists()
    assert outputs_of("neurodeploy x --json a.json -o b/") == ["a.json", "b/"]
    shutil.rmtree(workspace / "missing.bundle", ignore_errors=True)
