"""``ponder strategies``: every registered strategy, where it comes from, its params."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from ponder.strategies.registry import Registry

console = Console()


def strategies() -> None:
    """List strategies with their source package, summary and default parameters."""
    table = Table(show_edge=False)
    for column in ("name", "source", "summary", "params (defaults)"):
        table.add_column(column)
    for info in Registry.from_entry_points():
        params = ", ".join(f"{k}={v}" for k, v in info.params().items())
        table.add_row(info.name, info.source, info.cls.summary, params)
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command()(strategies)
