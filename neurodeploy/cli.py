"""The ``neurodeploy`` command: a thin layer over the Python API.

Each command parses its options, calls one API function and prints. A
:class:`~neurodeploy.errors.UserError` becomes one line on stderr and exit
status 2; nothing else is caught.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from neurodeploy.errors import EXIT_USER_ERROR, UserError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Deploy the spiking stage of a hybrid SNN-CNN trained with Norse onto Lava / Loihi 2.",
)
console = Console()


@app.callback()
def _root() -> None:
    """Deploy the spiking stage of a hybrid SNN-CNN trained with Norse onto Lava / Loihi 2."""
err_console = Console(stderr=True)


@app.command()
def doctor() -> None:
    """Report versions, the Lava compatibility layer, Loihi 2 support, and run a Lava smoke test."""
    from neurodeploy import _lava_compat, doctor as doc

    found = doc.versions()
    smoke = doc.lava_smoke(steps=10)
    table = Table(title="neurodeploy doctor", show_header=False)
    for name, version in found.items():
        table.add_row(name, version)
    applied = [k for k, v in _lava_compat.APPLIED.items() if v]
    table.add_row("lava compat layer", ", ".join(applied) if applied else "not needed")
    table.add_row("Loihi 2 hardware (lava-loihi)", "installed" if doc.loihi_installed() else "not installed")
    verdict = "[green]pass[/green]" if smoke.passed else "[red]FAIL[/red]"
    detail = f"{smoke.spikes} spikes (expected {smoke.expected}) in {smoke.seconds:.2f} s"
    if smoke.error:
        detail = smoke.error
    table.add_row(f"Lava LIF smoke run ({smoke.steps} steps)", f"{verdict} {detail}")
    console.print(table)
    required_missing = [k for k in ("torch", "norse", "lava-nc", "lava-dl", "numpy") if found[k] == "missing"]
    if required_missing or not smoke.passed:
        raise typer.Exit(1)


def main() -> None:
    """Entry point: run the app, turning UserError into one line and exit code 2."""
    try:
        app()
    except UserError as exc:
        err_console.print(f"[bold red]error:[/bold red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_USER_ERROR)
