"""``ponder ask``: answer one question with a strategy, and show what it cost."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ponder.budget.policy import Policy, arun_with_policy
from ponder.cli.contexts import DatabaseOpt, ask_with_context, check_context
from ponder.cli.options import (
    ApiKeyOpt,
    BackendOpt,
    BaseUrlOpt,
    ModelOpt,
    engine_from_options,
    parse_key_values,
)
from ponder.engine import DEFAULT_STRATEGY
from ponder.params import SamplingParams
from ponder.strategies.base import Answer, Problem
from ponder.strategies.registry import Registry

console = Console()
err_console = Console(stderr=True)


def ask(
    question: Annotated[str, typer.Argument(help="The question to answer.")],
    strategy: Annotated[str, typer.Option("--strategy", "-s",
                                          help="Strategy name (see `ponder strategies`).")
                        ] = DEFAULT_STRATEGY,
    n: Annotated[int | None, typer.Option("-n", help="Samples, for strategies with an n.")
                 ] = None,
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-p", help="Strategy parameter key=value (repeatable).")] = None,
    max_tokens: Annotated[int, typer.Option(help="Max completion tokens per sample.")] = 512,
    max_total_tokens: Annotated[int | None, typer.Option(
        help="Completion-token budget for the whole request.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for reproducible sampling.")] = None,
    system: Annotated[str | None, typer.Option(help="System prompt.")] = None,
    kind: Annotated[str, typer.Option(help="Answer kind: math or text.")] = "math",
    backend: BackendOpt = None,
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")
                       ] = False,
    context: Annotated[int | None, typer.Option(
        "--context", help="Answer about a stored context, with what sleep-time compute learned "
                          "about it (see `ponder contexts`).")] = None,
    database_url: DatabaseOpt = None,
    policy: Annotated[Path | None, typer.Option(
        "--policy", help="A policy from `ponder budget fit`: probe the question's difficulty "
                         "and use the strategy and budget fitted for its bin.")] = None,
) -> None:
    """Answer QUESTION with a test-time strategy and print the answer, votes and compute."""
    options = parse_key_values(param)
    if n is not None:
        options["n"] = str(n)
    # Validate everything cheap before loading a model.
    runner = Registry.from_entry_points().create(strategy, options)
    sampling = SamplingParams(max_tokens=max_tokens, seed=seed)
    problem = Problem(question, system=system, kind="text" if kind == "text" else "math")
    if context is not None:
        check_context(context, database_url)
    fitted = Policy.load(policy) if policy is not None else None
    with engine_from_options(backend, base_url, model, api_key) as engine:
        started = time.perf_counter()
        with err_console.status(f"thinking ({strategy} on {engine.backend.model})…"):
            if context is not None:
                answer = ask_with_context(engine, problem, runner, context, sampling,
                                          max_total_tokens, database_url)
            elif fitted is not None:
                answer = engine.backend.run_sync(arun_with_policy(
                    engine, problem, fitted, sampling=sampling,
                    max_total_tokens=max_total_tokens))
            else:
                answer = engine.ask(problem, strategy=runner, sampling=sampling,
                                    max_total_tokens=max_total_tokens)
        wall = time.perf_counter() - started
        if as_json:
            out = answer.to_dict() | {"backend": engine.backend.kind,
                                      "model": engine.backend.model, "wall_seconds": wall}
            console.print_json(json.dumps(out))
        else:
            _print_answer(answer, engine.backend.model, wall)
            if context is not None:
                learned = answer.info.get("learned_version")
                console.print(f"[dim]context {context}, learned version "
                              f"{learned if learned else 'none (not slept on yet)'}[/]")


def _print_answer(answer: Answer, model: str, wall: float) -> None:
    shown = escape(answer.answer) if answer.answer is not None else "(none)"
    console.print(f"[bold]Answer:[/] {shown}")
    if answer.confidence is not None:
        console.print(f"[dim]confidence {answer.confidence:.0%}[/]")
    if answer.votes:
        votes = Table(title="votes", show_edge=False)
        votes.add_column("answer")
        votes.add_column("votes", justify="right")
        for value, count in answer.votes.items():
            votes.add_row(escape(value), str(count))
        unanswered = answer.info.get("unanswered")
        if unanswered:
            votes.add_row("[dim](no answer)[/]", str(unanswered))
        console.print(votes)
    elif answer.text and answer.text.strip() != (answer.answer or ""):
        console.print(f"[dim]{escape(answer.text.strip())}[/]")
    console.print(_compute_table(answer, model, wall))


def _compute_table(answer: Answer, model: str, wall: float) -> Table:
    total = answer.ledger.total()
    model_seconds = answer.ledger.seconds()
    table = Table(title=f"compute ({answer.strategy} on {model})", show_edge=False)
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("backend calls", str(answer.ledger.calls)),
        ("prompt tokens", f"{total.prompt_tokens:,}"),
        ("  of which cached", f"{total.cached_prompt_tokens:,}"),
        ("  prefilled", f"{total.prefill_tokens:,}"),
        ("completion tokens", f"{total.completion_tokens:,}"),
        ("model seconds", f"{model_seconds:.2f}"),
        ("wall seconds", f"{wall:.2f}"),
        ("completion tokens/s", f"{total.completion_tokens / model_seconds:.1f}"
         if model_seconds else "-"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def register(app: typer.Typer) -> None:
    app.command()(ask)
