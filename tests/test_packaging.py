"""A built wheel carries neurodeploy.converters and the hardware profiles."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_installs_and_ships_converters_and_profiles(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(dist), str(ROOT)], check=True, capture_output=True, text=True, timeout=300)
    wheel = next(dist.glob("neurodeploy-*.whl"))
    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True, text=True, timeout=300)
    code = (
        "import importlib.resources as r, importlib.util as u\n"
        "import neurodeploy.converters, neurodeploy.hw_profiles\n"
        "assert 'site-packages' in neurodeploy.converters.__file__\n"
        "assert u.find_spec('neurodeploy.converters.netx_io') is not None\n"
        "assert u.find_spec('neurodeploy.inpainter.nir_stack') is not None\n"
        "assert u.find_spec('neurodeploy.converters.netx_sdnn') is not None\n"
        "assert u.find_spec('neurodeploy.chip.sigma_delta') is not None\n"
        "files = sorted(p.name for p in r.files('neurodeploy.hw_profiles').iterdir() if p.name.endswith('.toml'))\n"
        "text = r.files('neurodeploy.hw_profiles').joinpath(files[0]).read_text()\n"
        "print(len(files), len(text))\n"
    )
    out = subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True, cwd=tmp_path,
                         timeout=120)
    count, size = map(int, out.stdout.split())
    assert count >= 4 and size > 0
