"""The package's architecture, measured from its own imports (read with ``ast``, nothing imported).

The layers, lowest first, are declared once in :data:`LAYERS`; a module may import
from its own layer and from the layers below it, never from one above. Every
import counts, at module top, inside a function or under ``TYPE_CHECKING``: a lazy
import is still a dependency. docs/ARCHITECTURE.md draws the same layers.
"""

from __future__ import annotations

import ast
import re
import subprocess
from functools import cache
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]

# Lowest first. A "unit" is a folder of neurodeploy/ (or converters/) or one of the root's modules.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "io", "text", "spike_metrics"),  # shared by every layer
    ("ir",),  # the normalized graph, its op and neuron tables, float execution
    ("converters",),  # the netx file format (reads and writes chip segments)
    ("chip",),  # partition, layers, neuron mapping, fixed-point arithmetic, quantization, calibration
    ("bundle",),  # the bundle format and its manifest
    ("runtime",),  # backends: reference, torch, Lava; graph runs, cluster, run options
    ("cost",),  # counting, energy, mapping, latency, NeuroBench metrics, hardware profiles, profile, report
    ("inpainter",),  # the application: imports the toolkit, never imported by it
    ("cli",),  # the commands, thin over the API
    ("__init__", "__main__"),  # the package's face
)
ROOT_MODULES = {"__init__", "__main__", "errors", "io", "text", "spike_metrics"}
MAX_LEVELS = 11
MAX_LINES = 500


def _sources() -> dict[str, Path]:
    """Dotted module name -> file, for neurodeploy/ and converters/ (installed as neurodeploy.converters)."""
    out: dict[str, Path] = {}
    for base, package in ((ROOT / "neurodeploy", "neurodeploy"), (ROOT / "converters", "neurodeploy.converters")):
        for path in sorted(base.rglob("*.py")):
            parts = path.relative_to(base).with_suffix("").parts
            name = ".".join((package, *parts))
            out[name.removesuffix(".__init__") if parts[-1] == "__init__" else name] = path
    return out


def _unit(module: str) -> str:
    """The folder or root module a dotted name belongs to (``neurodeploy.chip.cuba`` -> ``chip``)."""
    parts = module.split(".")
    if len(parts) == 1:
        return "__init__"
    return parts[1]


def _imported(module: str, path: Path, known: set[str]) -> set[str]:
    """The neurodeploy modules ``module`` imports, anywhere in its file."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        out.update(name for name in names if name.split(".")[0] == "neurodeploy")
    return {_known(name, known) for name in out} - {module}


def _known(name: str, known: set[str]) -> str:
    while name not in known and "." in name:
        name = name.rpartition(".")[0]
    return name


@cache
def module_graph() -> nx.DiGraph:
    sources = _sources()
    graph = nx.DiGraph()
    for module, path in sources.items():
        graph.add_node(module)
        for target in _imported(module, path, set(sources)):
            graph.add_edge(module, target)
    return graph


def unit_graph() -> nx.DiGraph:
    graph = nx.DiGraph()
    for a, b in module_graph().edges:
        if _unit(a) != _unit(b):
            graph.add_edge(_unit(a), _unit(b))
    return graph


def test_every_unit_has_a_layer() -> None:
    layered = {unit for layer in LAYERS for unit in layer}
    units = {_unit(module) for module in module_graph()}
    assert units <= layered, f"not in LAYERS: {sorted(units - layered)}"
    root = {p.stem for p in (ROOT / "neurodeploy").glob("*.py")}
    assert root <= ROOT_MODULES, f"the root holds only the face and shared modules, not {sorted(root - ROOT_MODULES)}"


def test_no_import_circle() -> None:
    assert nx.is_directed_acyclic_graph(module_graph()), list(nx.simple_cycles(module_graph()))[:3]
    assert nx.is_directed_acyclic_graph(unit_graph()), list(nx.simple_cycles(unit_graph()))[:3]


def test_no_import_from_a_lower_layer_to_a_higher_one() -> None:
    rank = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}
    upward = [f"{a} -> {b}" for a, b in module_graph().edges if rank[_unit(a)] < rank[_unit(b)]]
    assert not upward, upward


def test_import_levels_between_units() -> None:
    levels = nx.dag_longest_path_length(unit_graph()) + 1
    assert levels <= MAX_LEVELS, nx.dag_longest_path(unit_graph())


@pytest.mark.parametrize("path", sorted(_sources().values()), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_over_500_lines(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)}: {lines} lines"


def test_the_readme_layout_paragraph_names_every_folder_and_only_folders_that_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    paragraph = readme[readme.index("\nLayout: "):].split("\n\n")[0]
    named = set(re.findall(r"`([\w/]+/)`", paragraph))
    package = ROOT / "neurodeploy"
    folders = {f"{p.parent.relative_to(package).as_posix()}/" for p in package.rglob("__init__.py")} - {"./"}
    # the repository's own folders (git's list, not the disk: outputs and venvs are not part of the layout)
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    top = {f"{f.split('/')[0]}/" for f in files if "/" in f and not f.startswith(".")}
    examples = {f"{f.split('/')[1]}/" for f in files if f.startswith("examples/") and f.count("/") >= 2}
    wanted = folders | top | examples
    assert wanted <= named, sorted(wanted - named)
    for name in named:
        assert any((base / name).is_dir() for base in (ROOT, package, ROOT / "examples")), name
