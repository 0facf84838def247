"""``ponder eval``: run sweeps (resumable), report them, compare two runs, list datasets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

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
    TimeRemainingColumn,
)
from rich.table import Table

from ponder.cli.options import (
    ApiKeyOpt,
    BackendOpt,
    BaseUrlOpt,
    ModelOpt,
    backend_kind,
    engine_from_options,
    parse_key_values,
)
from ponder.errors import ConfigError
from ponder.evals.datasets import Dataset, available_datasets, load_dataset
from ponder.evals.metrics import paired_comparison, phase_tokens, summarize
from ponder.evals.results import RESULTS_FILE, read_rows
from ponder.evals.runner import BUDGET_MODES, BudgetMode, CellSpec, arun_sweep, sweep
from ponder.ledger import DEFAULT_TEST_TIME_WEIGHT
from ponder.strategies.registry import Registry

console = Console()
err_console = Console(stderr=True)
eval_app = typer.Typer(help="Evaluate strategies: sweeps, reports, comparisons, datasets.",
                       no_args_is_help=True)


@eval_app.command("run")
def run(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder, e.g. runs/NAME. "
                                      "Running again with the same options resumes it.")],
    dataset: Annotated[list[str], typer.Option(
        "--dataset", "-d", help="NAME[:SOURCE][,key=value...] (repeatable); see "
                                "`ponder eval datasets`.")],
    strategy: Annotated[list[str], typer.Option(
        "--strategy", "-s", help="Strategy name (repeatable).")],
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-p", help="key=value for every strategy that has it, or "
                              "STRATEGY.key=value (repeatable).")] = None,
    budgets: Annotated[str, typer.Option(
        help="Comma-separated budgets in tokens; see --budget-mode.")] = "512",
    budget_mode: Annotated[str, typer.Option(
        help="sample: the budget is max_tokens per sample; total: it caps the completion "
             "tokens of the whole request (max_total_tokens).")] = "sample",
    sleep: Annotated[str, typer.Option(
        help="Sleep-time compute: off (test-time only), on (sleep on each context first, "
             "then answer from the learned context), or both (each cell twice, to "
             "compare). Needs stateful items (gen, multi-query, gsm-symbolic).")] = "off",
    sleep_param: Annotated[list[str] | None, typer.Option(
        "--sleep-param", help="Sleep-agent key=value: rounds, samples, max_tokens, "
                              "select, protocol (repeatable).")] = None,
    limit: Annotated[int | None, typer.Option(help="Use the first K items.")] = None,
    seed: Annotated[int, typer.Option(help="Seeds data generation and sampling.")] = 0,
    concurrency: Annotated[int | None, typer.Option(
        help="Items in flight at once. Default: 1 embedded, 8 remote.")] = None,
    use_ray: Annotated[bool, typer.Option("--ray", help="Run the cells as Ray tasks "
                                          "(local Ray unless --ray-address).")] = False,
    ray_address: Annotated[str | None, typer.Option(help="Ray cluster address.")] = None,
    ray_cpus: Annotated[float, typer.Option(help="CPUs per Ray task.")] = 1.0,
    backend: BackendOpt = None,
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Run every dataset x strategy x budget cell, streaming one JSON row per item to OUT."""
    if budget_mode not in BUDGET_MODES:
        raise ConfigError(f"--budget-mode must be one of {', '.join(BUDGET_MODES)}, "
                          f"got {budget_mode!r}")
    for name, value in (("--limit", limit), ("--concurrency", concurrency)):
        if value is not None and value < 1:
            raise ConfigError(f"{name} must be >= 1, got {value}")
    registry = Registry.from_entry_points()
    params = strategy_params(strategy, parse_key_values(param), registry)
    cells = sweep(dataset, strategy, params, parse_budgets(budgets),
                  budget_mode=_mode(budget_mode), seed=seed,
                  sleep=sleep_settings(sleep, parse_key_values(sleep_param)))
    loaded = {(d, seed): load_dataset(d, seed) for d in dict.fromkeys(dataset)}
    for (name, _), data in loaded.items():
        err_console.print(f"[dim]{escape(name)}: {len(data)} items from "
                          f"{escape(data.source)} ({escape(data.licence)})[/]")
    view = ProgressView(out, limit)
    with view.progress:
        if use_ray:
            _run_ray(cells, out, loaded, view, backend, base_url, model, api_key, limit,
                     concurrency, ray_address, ray_cpus)
        else:
            with engine_from_options(backend, base_url, model, api_key) as engine:
                engine.backend.run_sync(arun_sweep(
                    engine, cells, out, limit=limit, concurrency=concurrency,
                    datasets=loaded, on_row=view.on_row, on_cell=view.on_cell))
    print_cells(cells, out, limit, loaded)
    console.print(f"[dim]report: ponder eval report {escape(str(out))} "
                  f"--out {escape(str(out / 'report.html'))}[/]")


@eval_app.command("report")
def report(
    runs: Annotated[list[Path], typer.Argument(help="Run folders (or cell folders).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The HTML file to write.")
                   ] = Path("report.html"),
    title: Annotated[str, typer.Option(help="Report title.")] = "ponder evaluation",
    png_dir: Annotated[Path | None, typer.Option(
        help="Also write the plots as PNG files here.")] = None,
    test_time_weight: Annotated[float, typer.Option(
        help="Price of a test-time token in sleep-time tokens.")] = DEFAULT_TEST_TIME_WEIGHT,
) -> None:
    """Write a self-contained HTML report: tables, Pareto curves, accuracy by difficulty."""
    from ponder.evals.report import write_report

    cells = write_report(runs, out, title=title, png_dir=png_dir,
                         test_time_weight=test_time_weight)
    console.print(f"wrote {escape(str(out))} ({len(cells)} cells)")


@eval_app.command("compare")
def compare(a: Annotated[Path, typer.Argument(help="Cell folder A (baseline).")],
            b: Annotated[Path, typer.Argument(help="Cell folder B.")]) -> None:
    """Paired comparison of two cells on their common items (McNemar's exact test)."""
    rows = [read_rows(p / RESULTS_FILE) for p in (a, b)]
    if not all(rows):
        raise ConfigError(f"both folders need a {RESULTS_FILE} with rows")
    result = paired_comparison(rows[0], rows[1])
    if result.n == 0:
        raise ConfigError("the two cells have no item in common")
    table = Table(show_edge=False)
    for column in ("items", "accuracy A", "accuracy B", "B - A (95% CI)", "only A right",
                   "only B right", "McNemar p"):
        table.add_column(column, justify="right")
    table.add_row(str(result.n), f"{result.accuracy_a:.1%}", f"{result.accuracy_b:.1%}",
                  f"{result.accuracy_b - result.accuracy_a:+.1%} "
                  f"({result.difference_low:+.1%} – {result.difference_high:+.1%})",
                  str(result.only_a), str(result.only_b), f"{result.p_value:.3g}")
    console.print(table)


@eval_app.command("recipe")
def recipe(
    names: Annotated[list[str] | None, typer.Argument(
        help="Recipe names, or 'all'. Omit to list them.")] = None,
    runs: Annotated[Path, typer.Option(help="Where the cells run (resumable; shared by "
                                            "the recipes).")] = Path("runs/recipes"),
    out: Annotated[Path, typer.Option("--out", "-o", help="Results folder: one "
                                      "subfolder per recipe.")] = Path("docs/results"),
    quick: Annotated[bool, typer.Option(help="A tiny mechanics-sized version (for the "
                                        "tiny model); its numbers mean nothing.")] = False,
    backend: BackendOpt = None,
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Reproduce a paper's experiment in one command; writes OUT/NAME/{README.md,png,json}."""
    import sys

    from ponder.evals.recipes import RECIPES, arun_recipe

    if not names:
        table = Table(show_edge=False)
        table.add_column("recipe")
        table.add_column("reproduces")
        for item in RECIPES.values():
            table.add_row(item.name, escape(item.title))
        console.print(table)
        return
    chosen = list(RECIPES) if names == ["all"] else names
    unknown = [n for n in chosen if n not in RECIPES]
    if unknown:
        raise ConfigError(f"unknown recipe {unknown[0]!r} (available: all, "
                          f"{', '.join(RECIPES)})")
    command = " ".join(["ponder", *sys.argv[1:]]) if sys.argv[1:2] == ["eval"] else ""
    with engine_from_options(backend, base_url, model, api_key) as engine:
        for name in chosen:
            view = ProgressView(runs, None)
            with view.progress:
                done = engine.backend.run_sync(arun_recipe(
                    engine, RECIPES[name], runs, out / name, quick=quick,
                    command=command or f"ponder eval recipe {name}",
                    on_row=view.on_row, on_cell=view.on_cell))
            console.print(f"[bold]{escape(done.recipe.title)}[/]")
            for line in done.findings.lines:
                console.print(f"  - {escape(line)}")
            console.print(f"[dim]{escape(str(done.directory / 'README.md'))} "
                          f"({done.seconds / 60:.1f} min)[/]")


@eval_app.command("datasets")
def datasets() -> None:
    """List the dataset names `--dataset` accepts, with licences."""
    table = Table(show_edge=False)
    for column in ("name", "source", "summary", "licence"):
        table.add_column(column)
    for info in available_datasets():
        table.add_row(info.name, info.source, info.summary, info.licence)
    console.print(table)
    console.print("[dim]Spec: NAME[:SOURCE][,key=value...], e.g. gen,bins=0-2,per_bin=10 | "
                  "gsm8k:path/test.jsonl | gsm8k:hub:openai/gsm8k,split=test | "
                  "stateful-gsm-symbolic:path/templates | jsonl:f.jsonl,question=q,answer=a[/]")


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")


# -- helpers ----------------------------------------------------------------------------

def parse_budgets(text: str) -> list[int]:
    try:
        budgets = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--budgets must be comma-separated integers, got {text!r}") from None
    if not budgets or min(budgets) < 1:
        raise ConfigError(f"--budgets must be integers >= 1, got {text!r}")
    return list(dict.fromkeys(budgets))


def strategy_params(strategies: Sequence[str], pairs: Mapping[str, str],
                    registry: Registry) -> dict[str, dict[str, str]]:
    """Assign ``--param`` values to strategies and validate them (before any model loads)."""
    fields = {s: set(registry.get(s).params()) for s in strategies}
    params: dict[str, dict[str, str]] = {s: {} for s in strategies}
    for key, value in pairs.items():
        owner, dot, name = key.rpartition(".")
        if dot:
            if owner not in params:
                raise ConfigError(f"--param {key}: {owner!r} is not one of the strategies "
                                  f"being run ({', '.join(strategies)})")
            params[owner][name] = value
            continue
        takers = [s for s in strategies if key.replace("-", "_") in fields[s]]
        if not takers:
            raise ConfigError(f"--param {key}: no strategy among {', '.join(strategies)} "
                              f"has a parameter {key!r}")
        for s in takers:
            params[s][key] = value
    for s in strategies:
        registry.create(s, params[s])
    return params


def sleep_settings(mode: str, pairs: Mapping[str, str]) -> list[Mapping[str, str] | None]:
    """The sweep's sleep axis from ``--sleep`` and ``--sleep-param``."""
    choices: dict[str, list[Mapping[str, str] | None]] = {
        "off": [None], "on": [dict(pairs)], "both": [None, dict(pairs)]}
    if mode not in choices:
        raise ConfigError(f"--sleep must be off, on or both, got {mode!r}")
    if pairs and mode == "off":
        raise ConfigError("--sleep-param needs --sleep on or --sleep both")
    return choices[mode]


def _mode(text: str) -> BudgetMode:
    return "total" if text == "total" else "sample"


def _run_ray(cells: list[CellSpec], out: Path, loaded: Mapping[tuple[str, int], Dataset],
             view: ProgressView, backend: str | None, base_url: str | None,
             model: str | None, api_key: str | None, limit: int | None,
             concurrency: int | None, address: str | None, cpus: float) -> None:
    from ponder.evals.ray_sweep import BackendConfig, run_on_ray

    config = BackendConfig(backend_kind(backend, base_url), model, base_url, api_key)
    for spec in cells:
        view.on_cell(spec, loaded[(spec.dataset, spec.seed)])
    run_on_ray(cells, out, config, limit=limit, concurrency=concurrency, address=address,
               cpus_per_task=cpus, on_poll=view.refresh_from_disk)


class ProgressView:
    """One progress bar per cell, with live accuracy and tokens per item."""

    def __init__(self, out: Path, limit: int | None) -> None:
        self.out = out
        self.limit = limit
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("acc {task.fields[acc]}"), TextColumn("{task.fields[tok]} tok/item"),
            TimeElapsedColumn(), TimeRemainingColumn(), console=err_console)
        self._tasks: dict[CellSpec, TaskID] = {}
        self._items: dict[CellSpec, set[str]] = {}
        self._rows: dict[CellSpec, dict[str, Mapping[str, Any]]] = {}

    def on_cell(self, spec: CellSpec, dataset: Dataset) -> None:
        ids = {item.id for item in dataset.items[:self.limit]}
        self._items[spec] = ids
        self._tasks[spec] = self.progress.add_task(
            escape(f"{spec.dataset} {spec.label} @{spec.budget}"), total=len(ids), acc="-",
            tok="-")
        self._rows[spec] = {}
        self._load(spec)

    def on_row(self, spec: CellSpec, row: Mapping[str, Any]) -> None:
        self._rows[spec][str(row["id"])] = row
        self._update(spec)

    def refresh_from_disk(self) -> None:
        for spec in self._tasks:
            self._load(spec)

    def _load(self, spec: CellSpec) -> None:
        rows = read_rows(self.out / spec.slug() / RESULTS_FILE)
        self._rows[spec].update({k: v for k, v in rows.items() if k in self._items[spec]})
        self._update(spec)

    def _update(self, spec: CellSpec) -> None:
        rows = list(self._rows[spec].values())
        if not rows:
            return
        correct = sum(bool(r.get("correct")) for r in rows)
        tokens = sum(phase_tokens(r, "test") for r in rows) / len(rows)
        self.progress.update(self._tasks[spec], completed=len(rows),
                             acc=f"{correct / len(rows):.0%}", tok=f"{tokens:.0f}")


def print_cells(cells: Sequence[CellSpec], out: Path, limit: int | None,
                loaded: Mapping[tuple[str, int], Dataset]) -> None:
    table = Table(show_edge=False, title=str(out))
    for column in ("dataset", "strategy", "budget", "n", "accuracy", "95% CI", "tok/item",
                   "sleep tok/item", "s/item"):
        left = column in ("dataset", "strategy")
        table.add_column(column, justify="left" if left else "right",
                         overflow="fold" if left else "ellipsis")
    for spec in cells:
        ids = [item.id for item in loaded[(spec.dataset, spec.seed)].items[:limit]]
        rows = read_rows(out / spec.slug() / RESULTS_FILE)
        m = summarize([rows[i] for i in ids if i in rows])
        a = m.accuracy
        table.add_row(escape(spec.dataset), escape(spec.label), str(spec.budget), str(a.n),
                      f"{a.value:.1%}", f"{a.low:.0%}–{a.high:.0%}", f"{m.test_tokens:.0f}",
                      f"{m.sleep_tokens:.0f}" if spec.sleep is not None else "-",
                      f"{m.seconds:.1f}")
    console.print(table)
