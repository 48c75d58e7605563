"""``neurodeploy hw list`` and ``neurodeploy hw show``: the hardware profiles."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from neurodeploy.cli.app import app, console
from neurodeploy.cost.hw import list_profiles, load_profile, unit_of

hw_app = typer.Typer(help="List and show hardware profiles.", no_args_is_help=True)
app.add_typer(hw_app, name="hw")


@hw_app.command("list")
def hw_list() -> None:
    """List the shipped hardware profiles."""

    table = Table(title="hardware profiles (hw_profiles/*.toml)")
    for col in ("name", "kind", "description"):
        table.add_column(col)
    for p in list_profiles():
        table.add_row(p.name, p.kind, p.description)
    console.print(table)


@hw_app.command("show")
def hw_show(name: Annotated[str, typer.Argument(help="A profile name or a path to a .toml file.")]) -> None:
    """Show every figure of a profile with its unit, kind and source."""

    p = load_profile(name)
    table = Table(title=f"{p.name} ({p.kind}): {p.description}", show_lines=True)
    for col in ("figure", "value", "unit", "kind", "source / derivation"):
        table.add_column(col)
    for section, figures in (("energy", p.energy), ("latency", p.latency), ("resources", p.resources)):
        for key, f in figures.items():
            note = f.source + (f" | {f.kind}: {f.derivation}" if f.derivation else "")
            value = f"{f.value:.4g}" + (f" ({f.band[0]:.3g}-{f.band[1]:.3g})" if f.band else "")
            table.add_row(f"{section}.{key}", value, unit_of(key), f.kind, note)
    console.print(table)
