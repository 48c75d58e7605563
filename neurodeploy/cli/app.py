"""The ``neurodeploy`` Typer app and its consoles; every command module registers on :data:`app`."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Deploy the spiking stage of a hybrid SNN-CNN trained with Norse onto Lava / Loihi 2.",
)
# Piped into a file or a log, rich would assume 80 columns and cut the tables' columns to "…";
# 160 keeps every table a command prints whole.
PIPED_WIDTH = 160
console = Console(width=None if sys.stdout.isatty() else PIPED_WIDTH)


@app.callback()
def _root() -> None:
    """Deploy the spiking stage of a hybrid SNN-CNN trained with Norse onto Lava / Loihi 2."""
err_console = Console(stderr=True)
