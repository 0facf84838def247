"""``ponder contexts``: store raw contexts for sleep-time compute, inspect what was learned."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from ponder.errors import ConfigError

if TYPE_CHECKING:  # ponder.sleep (and SQLAlchemy) load only when a command needs them
    from ponder.engine import Engine
    from ponder.params import SamplingParams
    from ponder.sleep.records import Amortisation, ContextRecord, LearnedContext
    from ponder.sleep.store import ContextStore
    from ponder.strategies.base import Answer, Problem, Strategy

console = Console()

DatabaseOpt = Annotated[str | None, typer.Option(
    "--database-url", envvar="PONDER_DATABASE_URL",
    help="sqlite:///PATH or postgresql+psycopg://USER@HOST/DB. Default: $PONDER_HOME/ponder.db.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]

contexts_app = typer.Typer(help="Store contexts for sleep-time compute and see what was learned.",
                           no_args_is_help=True)


def open_store(url: str | None) -> ContextStore:
    from ponder.sleep.store import ContextStore

    return ContextStore(url)


def read_source(source: str) -> str:
    """The text of FILE, or of stdin for ``-``."""
    if source == "-":
        return sys.stdin.read()
    try:
        return Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {source!r}: {exc}") from None


@contexts_app.command("add")
def add(source: Annotated[str, typer.Argument(help="A text file, or - to read stdin.")],
        name: Annotated[str | None, typer.Option(help="A name to recognise it by.")] = None,
        triggers: Annotated[str, typer.Option(
            help="When to sleep on it: comma list of ingest, every=N (turns/queries), "
                 "idle=SECONDS; or none.")] = "ingest",
        database_url: DatabaseOpt = None, as_json: JsonOpt = False) -> None:
    """Store a raw context; its triggers decide when a sleep job is queued."""
    from ponder.sleep.triggers import Triggers

    parsed = Triggers.parse(triggers)
    text = read_source(source)
    with open_store(database_url) as store:
        record = store.add_context(text, name=name, triggers=parsed)
    if as_json:
        console.print_json(json.dumps(_context_json(record)))
        return
    console.print(f"context [bold]{record.id}[/] added ({len(record.raw_text):,} characters, "
                  f"triggers: {parsed.describe()})")
    if parsed.on_ingest:
        console.print(f"[dim]a sleep job is queued: run `ponder sleep {record.id}` now, or "
                      "`ponder sleep worker`[/]")


@contexts_app.command("append")
def append(context_id: Annotated[int, typer.Argument(help="The context id.")],
           source: Annotated[str, typer.Argument(help="A text file, or - to read stdin.")],
           database_url: DatabaseOpt = None) -> None:
    """Append a turn to a context (a new revision; may fire its every-N trigger)."""
    text = read_source(source)
    with open_store(database_url) as store:
        record = store.append(context_id, text)
    console.print(f"context {record.id} is at revision {record.revision} "
                  f"({len(record.raw_text):,} characters)")


@contexts_app.command("list")
def list_(database_url: DatabaseOpt = None, as_json: JsonOpt = False) -> None:
    """Every stored context, with its learned version, queries and open jobs."""
    with open_store(database_url) as store:
        rows = store.list_contexts()
    if as_json:
        console.print_json(json.dumps([{
            "id": r.id, "name": r.name, "chars": r.chars, "revision": r.revision,
            "triggers": r.triggers.describe(), "learned_version": r.learned_version,
            "learned_revision": r.learned_revision, "queries": r.queries,
            "open_jobs": r.open_jobs, "updated_at": r.updated_at} for r in rows]))
        return
    table = Table(show_edge=False)
    for column in ("id", "name", "chars", "revision", "learned", "queries", "open jobs",
                   "triggers", "updated"):
        table.add_column(column, justify="right" if column in ("id", "chars") else "left")
    for r in rows:
        learned = f"v{r.learned_version} (rev {r.learned_revision})" if r.learned_version \
            else "-"
        table.add_row(str(r.id), escape(r.name or ""), f"{r.chars:,}", str(r.revision), learned,
                      str(r.queries), str(r.open_jobs), r.triggers.describe(), _when(r.updated_at))
    console.print(table if rows else "[dim]no contexts yet: ponder contexts add FILE[/]")


@contexts_app.command("show")
def show(context_id: Annotated[int, typer.Argument(help="The context id.")],
         database_url: DatabaseOpt = None, as_json: JsonOpt = False) -> None:
    """A context: raw text, learned versions, amortisation, jobs and recent queries."""
    with open_store(database_url) as store:
        record = store.get_context(context_id)
        learned = store.learned_versions(context_id)
        amortisation = store.amortisation(context_id)
        jobs = store.jobs(context_id)
        asked = store.queries(context_id)
    if as_json:
        console.print_json(json.dumps({
            **_context_json(record), "raw_text": record.raw_text,
            "learned": [_learned_json(v) for v in learned],
            "amortisation": amortisation.to_dict(),
            "jobs": [{"id": j.id, "trigger": j.trigger, "status": j.status,
                      "attempts": j.attempts, "learned_version": j.learned_version,
                      "error": j.error} for j in jobs],
            "queries": [{"id": q.id, "question": q.question, "answer": q.answer,
                         "learned_version": q.learned_version,
                         "test_completion_tokens": q.test_usage.completion_tokens,
                         "logprob_per_token": q.logprob_per_token} for q in asked]}))
        return
    title = f"context {record.id}" + (f" ({escape(record.name)})" if record.name else "")
    console.print(Panel(escape(_preview(record.raw_text)),
                        title=f"{title}, revision {record.revision}", title_align="left"))
    console.print(_learned_table(learned, record.revision))
    if learned:
        newest = learned[-1]
        console.print(Panel(escape(_preview(newest.text)), title=f"learned v{newest.version}",
                            title_align="left"))
    console.print(_amortisation_table(amortisation))
    if jobs:
        console.print(_jobs_line(jobs))


@contexts_app.command("delete")
def delete(context_id: Annotated[int, typer.Argument(help="The context id.")],
           database_url: DatabaseOpt = None) -> None:
    """Delete a context with its learned versions, jobs and queries."""
    with open_store(database_url) as store:
        store.delete_context(context_id)
    console.print(f"context {context_id} deleted")


def _learned_table(learned: list[LearnedContext], revision: int) -> Table:
    table = Table(title="learned contexts", show_edge=False)
    for column in ("version", "status", "from rev", "model", "strategy", "rounds",
                   "sleep prompt", "sleep completion", "seconds", "chars"):
        table.add_column(column, justify="left" if column in ("status", "model", "strategy")
                         else "right")
    for v in learned:
        status = v.status if v.raw_revision == revision or v.status == "stale" \
            else "fresh (older rev)"
        table.add_row(f"v{v.version}", status, str(v.raw_revision), escape(v.model),
                      v.strategy, str(v.rounds), f"{v.sleep_usage.prompt_tokens:,}",
                      f"{v.sleep_usage.completion_tokens:,}", f"{v.seconds:.1f}",
                      f"{len(v.text):,}")
    if not learned:
        table.caption = "not slept on yet: ponder sleep ID"
    return table


def _amortisation_table(a: Amortisation) -> Table:
    table = Table(title=f"amortisation (test-time weight {a.test_time_weight:g})",
                  show_edge=False)
    table.add_column("metric")
    table.add_column("value", justify="right")
    cost = a.cost_per_query
    for name, value in (
        ("sleep-time tokens (completion)", f"{a.sleep_tokens:,}"),
        ("queries served", str(a.queries)),
        ("test-time tokens (completion)", f"{a.test_tokens:,}"),
        ("test-time tokens per query", f"{a.test_tokens / a.queries:.1f}" if a.queries else "-"),
        ("amortised cost per query", f"{cost:,.1f}" if cost is not None else "-"),
    ):
        table.add_row(name, value)
    return table


def _jobs_line(jobs: list[Any]) -> str:
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job.status] = counts.get(job.status, 0) + 1
    errors = [j for j in jobs if j.error and j.status in ("failed", "pending")]
    line = "jobs: " + ", ".join(f"{n} {s}" for s, n in counts.items())
    if errors:
        line += f"\n[red]last error:[/] {escape(errors[-1].error or '')}"
    return line


def _context_json(record: ContextRecord) -> dict[str, Any]:
    return {"id": record.id, "name": record.name, "chars": len(record.raw_text),
            "revision": record.revision, "triggers": record.triggers.describe(),
            "created_at": record.created_at, "updated_at": record.updated_at}


def _learned_json(v: LearnedContext) -> dict[str, Any]:
    return {"version": v.version, "status": v.status, "raw_revision": v.raw_revision,
            "model": v.model, "strategy": v.strategy, "rounds": v.rounds,
            "samples": v.samples, "sleep_prompt_tokens": v.sleep_usage.prompt_tokens,
            "sleep_completion_tokens": v.sleep_usage.completion_tokens,
            "seconds": v.seconds, "text": v.text}


def _preview(text: str, limit: int = 1500) -> str:
    return text if len(text) <= limit else text[:limit] + f"… ({len(text) - limit:,} more)"


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def register(app: typer.Typer) -> None:
    app.add_typer(contexts_app, name="contexts")


def ask_with_context(engine: Engine, problem: Problem, runner: Strategy[Any], context_id: int,
                     sampling: SamplingParams, budget: int | None,
                     database_url: str | None) -> Answer:
    """``ponder ask --context ID``: answer with the context's learned version (if any)."""
    from ponder.sleep.service import DEFAULT_TEST_BUDGET, SleepService

    with open_store(database_url) as store:
        service = SleepService(store, engine.backend, registry=engine.registry)
        return service.ask(problem.question, context_id, strategy=runner, sampling=sampling,
                           budget=budget or DEFAULT_TEST_BUDGET, system=problem.system,
                           kind=problem.kind)


def check_context(context_id: int, database_url: str | None) -> None:
    """Fail on an unknown context id before a model is loaded."""
    with open_store(database_url) as store:
        store.get_context(context_id)
