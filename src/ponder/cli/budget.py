"""``ponder budget``: fit a compute-optimal policy (strategy and budget per difficulty bin)
from eval runs, for ``ponder ask --policy``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ponder.budget.policy import DEFAULT_TOKEN_COST, Policy, fit_policy

console = Console()
budget_app = typer.Typer(help="Adaptive budgets: fit per-difficulty strategy policies.",
                         no_args_is_help=True)


@budget_app.command("fit")
def fit(
    runs: Annotated[list[Path], typer.Argument(help="Eval run folders (`ponder eval run --out`).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the policy JSON.")],
    token_cost: Annotated[float, typer.Option(
        help="Accuracy traded per completion token (0.0005: 2,000 tokens = one answer).")
    ] = DEFAULT_TOKEN_COST,
) -> None:
    """Pick, per difficulty bin, the cell with the best accuracy - token_cost x tokens."""
    policy = fit_policy(runs, token_cost=token_cost)
    policy.save(out)
    console.print(_table(policy))
    console.print(f"policy written to {escape(str(out))}")


def _table(policy: Policy) -> Table:
    table = Table(title=f"policy (token cost {policy.token_cost:g})", show_edge=False)
    for column in ("bin", "strategy", "params", "budget", "accuracy", "tokens", "items"):
        table.add_column(column, justify="left" if column in ("strategy", "params") else "right")
    for index, choice in sorted(policy.bins.items()):
        params = ",".join(f"{k}={v}" for k, v in choice.params.items()) or "-"
        table.add_row(str(index), escape(choice.strategy), escape(params), str(choice.budget),
                      f"{choice.accuracy:.0%}", f"{choice.tokens:.0f}", str(choice.items))
    return table


def register(app: typer.Typer) -> None:
    app.add_typer(budget_app, name="budget")
