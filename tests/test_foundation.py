"""The foundation: Lava runs on this Python through the compat layer, untouched site-packages."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np

from neurodeploy.cli.doctor import expected_smoke_spikes, lava_smoke
from neurodeploy.runtime.lava import compat as _lava_compat

from .conftest import run_cli


def test_lava_lif_runs_ten_steps_with_the_hand_computed_spike_count() -> None:
    result = lava_smoke(steps=10)
    assert result.error is None
    # bias 3<<6 = 192 per step, threshold 10<<6 = 640: v = 192, 384, 576, 768 > 640 -> spike
    # every 4th step, so 10 steps give spikes at steps 4 and 8.
    assert expected_smoke_spikes(10) == 2
    assert result.spikes == 2


def test_netx_loads_and_runs_a_tiny_conv_network(tmp_path: Path) -> None:
    from lava.lib.dl.netx.hdf5 import Network
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    from neurodeploy.converters.netx_io import FixedPointLayer, write_segment

    rng = np.random.default_rng(0)
    weight = rng.integers(-20, 60, size=(3, 2, 3, 3)).astype(np.int8)
    path = tmp_path / "tiny.net"
    write_segment(path, [FixedPointLayer("conv", (2, 5, 4), (3, 5, 4), weight, None, None, (1, 1), (1, 1),
                                         i_decay=4096, v_decay=1024, vth_mant=40)])
    net = Network(str(path))
    steps = 4
    spikes_in = (rng.random((*net.inp.shape, steps)) < 0.6).astype(np.int8)
    source, sink = Source(data=spikes_in), Sink(shape=net.out.shape, buffer=steps)
    source.s_out.connect(net.inp)
    net.out.connect(sink.a_in)
    try:
        net.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        out = sink.data.get()  # 60 elements: Var.get() is fine at this size
    finally:
        net.stop()
    assert net.out.shape == (4, 5, 3)  # netx orders shapes W, H, C
    assert out.shape == (4, 5, 3, steps)
    assert out[..., 0].sum() == 0  # the conv synapse delays by one step
    assert out[..., 1:].sum() > 0


def _site_packages_hashes() -> dict[str, str]:
    import lava

    roots = [Path(p) for p in lava.__path__]  # a namespace package: lava-nc and lava-dl
    files = {p: root for root in roots for p in root.rglob("*.py")}
    assert any(p.name == "var_model.py" for p in files)
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(files)}


def test_compat_layer_leaves_site_packages_unchanged() -> None:
    before = _site_packages_hashes()
    code = ("import neurodeploy.runtime.lava.compat as c; c.import_lava(); "
            "import lava.lib.dl.netx.hdf5; print(c.APPLIED)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "var_model_default_factory" in out.stdout
    assert _site_packages_hashes() == before


def test_lava_runs_after_the_process_has_used_multiprocessing() -> None:
    """Lava sets the start method when imported, which fails once a process has started a worker."""
    code = ("import multiprocessing as mp\n"
            "if __name__ == '__main__':\n"
            "    worker = mp.get_context('spawn').Process(target=print); worker.start(); worker.join()\n"
            "    from neurodeploy.cli.doctor import lava_smoke\n"
            "    import neurodeploy.runtime.lava.compat as c\n"
            "    print(lava_smoke(), c.APPLIED['fork_start_method'])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("True")


def test_rewrite_targets_only_mutable_dataclass_defaults() -> None:
    src = "from __future__ import annotations\n@dataclass\nclass A:\n    x: Enc = Enc()\n    n: int = 3\n"
    fixed = _lava_compat.rewrite_mutable_defaults(src)
    assert "x: Enc = __import__('dataclasses').field(default_factory=Enc)" in fixed
    assert "n: int = 3" in fixed
    assert fixed.startswith("from __future__")
    assert _lava_compat.rewrite_mutable_defaults(fixed) == fixed


def test_doctor_exits_zero_and_reports_the_smoke_run() -> None:
    result = run_cli("doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pass" in result.stdout and "2 spikes (expected 2)" in result.stdout
