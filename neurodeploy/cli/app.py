"""The ``neurodeploy`` Typer app and its consoles; every command module registers on :data:`app`."""

from __future__ import annotations

from importlib.metadata import version
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Deploy the spiking stage of a hybrid SNN-CNN trained with Norse onto Lava / Loihi 2.",
)
console = Console()


def _print_version(value: bool) -> None:
    if value:
        console.print(f"neurodeploy {version('neurodeploy')}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                               help="Print neurodeploy's version and exit.")] = False,
) -> None:
    """Deploy the spiking stage of a hybrid SNN-CNN trained with Norse onto Lava / Loihi 2."""


err_console = Console(stderr=True)
