"""The ``neurodeploy`` Typer app and its consoles; every command module registers on :data:`app`."""

from __future__ import annotations

import typer
from rich.console import Console

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
