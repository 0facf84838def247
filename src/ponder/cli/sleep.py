"""``ponder sleep ID`` (think about a context now) and ``ponder sleep worker`` (process jobs)."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from typer.core import TyperGroup

from ponder.cli.contexts import DatabaseOpt, open_store
from ponder.cli.options import ApiKeyOpt, BackendOpt, BaseUrlOpt, ModelOpt, engine_from_options

if TYPE_CHECKING:  # ponder.sleep (and SQLAlchemy) load only when a command runs
    from ponder.sleep.agent import SleepEvent, SleepParams
    from ponder.sleep.records import JobOutcome
    from ponder.sleep.service import SleepReport

console = Console()
err_console = Console(stderr=True)


class _SleepGroup(TyperGroup):
    """``ponder sleep ID`` means ``ponder sleep now ID``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["now", *args]
        return super().parse_args(ctx, args)


sleep_app = typer.Typer(cls=_SleepGroup, no_args_is_help=True,
                        help="Sleep-time compute: think about stored contexts before questions "
                             "arrive. `ponder sleep ID` runs now; `ponder sleep worker` "
                             "processes queued jobs.")

RoundsOpt = Annotated[int, typer.Option(help="Rethink rounds per agent (k).")]
SamplesOpt = Annotated[int, typer.Option("--sleep-samples", "--samples",
                                         help="Parallel sleep agents, selected or merged.")]
ProtocolOpt = Annotated[str, typer.Option(help="auto, text or tools.")]
SelectOpt = Annotated[str, typer.Option(help="With several agents: self-check, merge or first.")]
MaxTokensOpt = Annotated[int, typer.Option(help="Completion tokens per rethink round.")]
MaxCharsOpt = Annotated[int, typer.Option(help="Cap on the learned context, in characters.")]


def _params(rounds: int, samples: int, protocol: str, select: str, max_tokens: int,
            max_chars: int) -> SleepParams:
    from ponder.sleep.agent import SleepParams

    return SleepParams(rounds=rounds, samples=samples, protocol=protocol,  # type: ignore[arg-type]
                       select=select, max_tokens=max_tokens,  # type: ignore[arg-type]
                       max_memory_chars=max_chars)


@sleep_app.command("now")
def now(context_id: Annotated[int, typer.Argument(help="The context id.")],
        rounds: RoundsOpt = 3, samples: SamplesOpt = 1, protocol: ProtocolOpt = "auto",
        select: SelectOpt = "self-check", max_tokens: MaxTokensOpt = 512,
        max_chars: MaxCharsOpt = 5000, backend: BackendOpt = None, base_url: BaseUrlOpt = None,
        model: ModelOpt = None, api_key: ApiKeyOpt = None, database_url: DatabaseOpt = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Run the sleep agent on context ID now, showing its rethink rounds and tokens."""
    from ponder.sleep.service import SleepService

    params = _params(rounds, samples, protocol, select, max_tokens, max_chars)
    with open_store(database_url) as store:
        store.get_context(context_id)  # fail on a bad id before loading a model
        with engine_from_options(backend, base_url, model, api_key) as engine:
            service = SleepService(store, engine.backend, registry=engine.registry)
            with _progress(params, quiet=as_json) as on_event:
                report = service.sleep_now(context_id, params=params, on_event=on_event)
    if as_json:
        console.print_json(json.dumps(_report_json(report)))
    else:
        _print_report(report)


@sleep_app.command("worker")
def worker(lease: Annotated[float, typer.Option(help="Lease seconds (renewed while working).")
                            ] = 120.0,
           poll: Annotated[float, typer.Option(help="Seconds between polls when idle.")] = 2.0,
           max_jobs: Annotated[int | None, typer.Option(help="Stop after this many jobs.")
                               ] = None,
           exit_when_idle: Annotated[bool, typer.Option(
               "--exit-when-idle", help="Stop when no job is due.")] = False,
           rounds: RoundsOpt = 3, samples: SamplesOpt = 1, protocol: ProtocolOpt = "auto",
           select: SelectOpt = "self-check", max_tokens: MaxTokensOpt = 512,
           max_chars: MaxCharsOpt = 5000, backend: BackendOpt = None,
           base_url: BaseUrlOpt = None, model: ModelOpt = None, api_key: ApiKeyOpt = None,
           database_url: DatabaseOpt = None) -> None:
    """Process queued sleep jobs until stopped (SIGINT/SIGTERM finish the current job)."""
    from ponder.sleep.agent import SleepAgent
    from ponder.sleep.worker import SleepWorker

    params = _params(rounds, samples, protocol, select, max_tokens, max_chars)
    with open_store(database_url) as store, \
            engine_from_options(backend, base_url, model, api_key) as engine:
        runner = SleepWorker(store, engine.backend, SleepAgent(params), lease_seconds=lease,
                             poll_seconds=poll)
        err_console.print(f"sleep worker {runner.owner} on {store.display_url} "
                          f"({engine.backend.model})")
        stop = threading.Event()
        with _stop_on_signals(stop):
            done = runner.run(stop, max_jobs=max_jobs, exit_when_idle=exit_when_idle,
                              on_outcome=_print_outcome)
        err_console.print(f"processed {done} job(s)")


@contextmanager
def _progress(params: SleepParams, *, quiet: bool) -> Iterator[Any]:
    """A live display of each agent's rounds; yields the agent's event callback."""
    columns = (TextColumn("[bold]agent {task.fields[sample]}"), BarColumn(),
               MofNCompleteColumn(), TextColumn("rounds  {task.fields[action]:<9}"),
               TextColumn("{task.fields[chars]:>6} chars"),
               TextColumn("{task.fields[tokens]:>6} sleep tokens"), TimeElapsedColumn())
    with Progress(*columns, console=err_console, disable=quiet) as bar:
        tasks = [bar.add_task("sleep", total=params.rounds, sample=i, action="thinking",
                              chars=0, tokens=0) for i in range(params.samples)]

        def on_event(event: SleepEvent) -> None:
            if event.action == "select" or not 0 <= event.sample < len(tasks):
                return
            bar.update(tasks[event.sample], completed=event.round, action=event.action,
                       chars=event.memory_chars, tokens=event.completion_tokens)
            if event.action == "finish":
                bar.update(tasks[event.sample], completed=params.rounds)
            for task in tasks:
                bar.update(task, tokens=event.completion_tokens)

        yield on_event


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    def handler(signum: int, _frame: object) -> None:
        if stop.is_set():  # a second signal: stop now (the lease will expire)
            raise KeyboardInterrupt
        err_console.print(f"signal {signum}: finishing the current job, then stopping")
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _print_outcome(outcome: JobOutcome) -> None:
    what = {"fresh": f"learned v{outcome.learned_version}",
            "stale": f"learned v{outcome.learned_version} is stale (context changed); "
                     f"job {outcome.requeued_job_id} queued",
            "retry": f"failed, will retry: {outcome.error}",
            "failed": f"failed: {outcome.error}",
            "lost": "lease lost; result dropped"}[outcome.status]
    console.print(f"job {outcome.job_id} (context {outcome.context_id}): {escape(what)}")


def _print_report(report: SleepReport) -> None:
    learned = report.learned
    sleep = report.ledger.total("sleep")
    if learned is None:
        console.print(f"[red]{report.outcome.status}[/]: {escape(report.outcome.error or '')}")
        return
    note = " — the context changed meanwhile; a new job is queued" \
        if learned.status == "stale" else ""
    console.print(Panel(escape(learned.text), title=f"learned v{learned.version} of context "
                        f"{learned.context_id} ({learned.status}{note})", title_align="left"))
    console.print(f"{learned.rounds} round(s), {learned.samples} agent(s), "
                  f"{sleep.prompt_tokens:,} prompt + {sleep.completion_tokens:,} completion "
                  f"sleep-time tokens, {learned.seconds:.1f} s ({learned.model})")


def _report_json(report: SleepReport) -> dict[str, Any]:
    learned = report.learned
    return {"job_id": report.outcome.job_id, "status": report.outcome.status,
            "learned_version": learned.version if learned else None,
            "text": learned.text if learned else None,
            "rounds": learned.rounds if learned else None,
            "usage": report.ledger.summary()}


def register(app: typer.Typer) -> None:
    app.add_typer(sleep_app, name="sleep")
