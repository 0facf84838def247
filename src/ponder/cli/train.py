"""``ponder train``: training recipes (needs the ``train`` extra: torch + transformers)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from ponder.errors import ConfigError, ModelError
from ponder.model_files import TINY_MODEL

if TYPE_CHECKING:
    from ponder.train.sft import TrainReport

console = Console()
train_app = typer.Typer(help="Training recipes (need the train extra: torch, transformers).",
                        no_args_is_help=True)


@train_app.command("ibpo")
def ibpo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Where the checkpoint, ibpo.json "
                                      "and the eval cells go.")],
    model: Annotated[str, typer.Option(
        "--model", "-m", help="A known model name, a .gguf path or a transformers "
                              "checkpoint directory.")] = TINY_MODEL,
    problems: Annotated[int, typer.Option(help="Generated problems to train on.")] = 32,
    eval_problems: Annotated[int, typer.Option(
        help="Held-out problems, evaluated before and after.")] = 32,
    dataset: Annotated[str, typer.Option(
        help="Where problems come from (an eval dataset spec); default: the generator's "
             "easiest bin.")] = "gen,bins=0",
    iterations: Annotated[int, typer.Option(help="Rounds of sample, select, SFT.")] = 2,
    cap: Annotated[float, typer.Option(
        help="q: the largest share of long responses among the training targets.")] = 0.3,
    long_tokens: Annotated[int, typer.Option(
        help="A response with more completion tokens than this is long.")] = 32,
    max_tokens: Annotated[int, typer.Option(help="Cap on a long response.")] = 160,
    samples_short: Annotated[int, typer.Option(
        help="Responses per problem with the answer-directly instruction.")] = 2,
    samples_policy: Annotated[int, typer.Option(
        help="Responses per problem with the policy's (chain-of-thought) prompt.")] = 2,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 0.7,
    epochs: Annotated[int, typer.Option(help="SFT passes per iteration.")] = 2,
    batch_size: Annotated[int, typer.Option(help="Responses per optimizer step.")] = 8,
    lr: Annotated[float, typer.Option(help="AdamW learning rate.")] = 5e-5,
    seed: Annotated[int, typer.Option(help="Seeds data, sampling and shuffling.")] = 0,
    threads: Annotated[int | None, typer.Option(
        help="torch threads (default: PONDER_THREADS, else every core).")] = None,
    max_batch: Annotated[int, typer.Option(
        help="Sequences decoded together while sampling.")] = 32,
) -> None:
    """IBPO (arXiv:2501.17974): weighted SFT on ILP-selected responses, long share <= cap."""
    _require_extra()
    from ponder.train.ibpo import IBPOConfig
    from ponder.train.sft import train_ibpo

    if (out / "ibpo.json").exists():
        raise ConfigError(f"{out} already holds a run (ibpo.json); choose another --out")
    config = IBPOConfig(cap=cap, long_tokens=long_tokens, max_tokens=max_tokens,
                        iterations=iterations, samples_short=samples_short,
                        samples_policy=samples_policy, temperature=temperature,
                        epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    view = _ProgressView()
    with view.progress:
        report = train_ibpo(model, out, config, dataset=dataset, problems=problems,
                            eval_problems=eval_problems, n_threads=threads,
                            max_batch=max_batch, on_progress=view.update)
    console.print(_iterations_table(report))
    console.print(_result_table(report))
    console.print(f"checkpoint: {escape(report.checkpoint)}  ({report.seconds:.0f} s)\n"
                  f"[dim]evaluate it: ponder eval run --backend transformers --model "
                  f"{escape(report.checkpoint)} --strategy cot ...[/]")


def _require_extra() -> None:
    missing = [name for name in ("torch", "transformers", "gguf", "accelerate", "scipy")
               if importlib.util.find_spec(name) is None]
    if missing:
        raise ModelError(f"{', '.join(missing)} not installed: install ponder[train] "
                         "(pip install 'ponder[train]')")


class _ProgressView:
    """One bar per stage of the recipe."""

    def __init__(self) -> None:
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), console=console)
        self._tasks: dict[str, TaskID] = {}

    def update(self, stage: str, done: int, total: int) -> None:
        if stage not in self._tasks:
            self._tasks[stage] = self.progress.add_task(escape(stage), total=total or None)
        self.progress.update(self._tasks[stage], completed=done, total=total or None)


def _iterations_table(report: TrainReport) -> Table:
    table = Table(title="IBPO iterations (training targets: long share <= cap)",
                  show_edge=False)
    for column in ("iter", "short acc", "long acc", "policy long", "targets", "long",
                   "share", "steps", "loss"):
        table.add_column(column, justify="right")
    for it in report.iterations:
        sel = it.selection
        table.add_row(str(it.iteration), _acc(it.groups["short"]), _acc(it.groups["long"]),
                      f"{it.policy_long_share:.0%}", str(sel["trained_prompts"]),
                      str(sel["long_prompts"]), f"{sel['long_share']:.0%}",
                      str(it.sft_steps), "-" if it.mean_loss is None else f"{it.mean_loss:.3f}")
    return table


def _acc(group: dict[str, float]) -> str:
    return f"{group['accuracy']:.0%} of {int(group['responses'])}"


def _result_table(report: TrainReport) -> Table:
    table = Table(title=f"{escape(report.model)}: held-out, greedy cot "
                        f"({report.eval_problems} problems)", show_edge=False)
    for column in ("", "accuracy", "mean tokens", "long share", "cap", "within cap"):
        table.add_column(column, justify="left" if not column else "right")
    for name, metrics in (("before", report.before), ("after", report.after)):
        if metrics is None:
            continue
        table.add_row(name, f"{metrics.accuracy:.1%}", f"{metrics.mean_tokens:.1f}",
                      f"{metrics.long_share:.0%}", f"{metrics.cap:g}",
                      "yes" if metrics.within_cap else "no")
    return table


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")
