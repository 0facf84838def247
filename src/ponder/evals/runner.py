"""Run a strategy over a dataset at a budget, one durable JSON row per item.

A *cell* is one (dataset, strategy with params, budget) triple; a sweep is a
list of cells. Each cell lives in its own folder under the run directory
(``spec.json``, ``results.jsonl``, ``summary.json``), so a killed run resumes
where it stopped: items already in ``results.jsonl`` are skipped.

**Budgets.** ``budget_mode="sample"`` (the default) sets the request's
``max_tokens``: each sample a strategy draws may be that long, so n-sample
strategies may spend up to n x budget. ``budget_mode="total"`` caps the whole
run's completion tokens (``RunContext.max_total_tokens``; strategies' calls are
trimmed to fit, then refused), so strategies compete at equal spend. Either
way the rows record the tokens actually spent, which is what reports plot.

Items run concurrently up to ``concurrency`` (an asyncio semaphore): useful
with remote engines; the embedded backend serializes calls anyway.

**Sleep-time cells** (``CellSpec.sleep`` set) sleep on each item's context once
and answer from the learned context (``ponder.evals.sleep_mode``); rows then
carry sleep-time tokens (once per context) and the question's predictability.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import os
import re
import socket
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ponder.engine import Engine
from ponder.errors import BudgetExceeded, ConfigError
from ponder.evals.datasets import Dataset, EvalItem, load_dataset
from ponder.evals.metrics import summarize
from ponder.evals.results import SUMMARY_FILE, ResultsLog, write_json_atomic
from ponder.evals.sleep_mode import (
    SLEEP_STORES,
    SleepSide,
    first_items,
    predictability_of,
    sleep_params,
)
from ponder.ledger import Ledger
from ponder.params import SamplingParams
from ponder.strategies.base import Answer, RunContext, Strategy

BudgetMode = Literal["sample", "total"]
BUDGET_MODES: tuple[BudgetMode, ...] = ("sample", "total")
RESPONSE_CHARS = 4000
"""Responses are kept in the rows up to this length (enough to see what went wrong)."""

RowCallback = Callable[["CellSpec", Mapping[str, Any]], None]


@dataclass(frozen=True, slots=True)
class CellSpec:
    """One cell of a sweep. Equal specs resume each other's results."""

    dataset: str
    strategy: str
    params: tuple[tuple[str, str], ...] = ()
    """Strategy parameters as sorted (name, value) strings, as given on the command line."""
    budget: int = 512
    budget_mode: BudgetMode = "sample"
    seed: int = 0
    sleep: tuple[tuple[str, str], ...] | None = None
    """Sleep-time compute: sleep-agent parameters as (name, value) strings; None: off."""

    def __post_init__(self) -> None:
        if not isinstance(self.budget, int) or self.budget < 1:
            raise ConfigError(f"budget must be an integer >= 1, got {self.budget!r}")
        if self.budget_mode not in BUDGET_MODES:
            raise ConfigError(f"budget_mode must be one of {', '.join(BUDGET_MODES)}, "
                              f"got {self.budget_mode!r}")
        object.__setattr__(self, "params", tuple(sorted((str(k), str(v))
                                                        for k, v in self.params)))
        if self.sleep is not None:
            object.__setattr__(self, "sleep", tuple(sorted((str(k), str(v))
                                                           for k, v in self.sleep)))
            sleep_params(self.sleep)  # fail early on a bad parameter

    @property
    def label(self) -> str:
        """The strategy with its params, as plots and tables name it."""
        params = ",".join(f"{k}={v}" for k, v in self.params)
        label = f"{self.strategy}[{params}]" if params else self.strategy
        if self.sleep is None:
            return label
        knobs = ",".join(f"{k}={v}" for k, v in self.sleep)
        return f"sleep[{knobs}]:{label}" if knobs else f"sleep:{label}"

    def slug(self) -> str:
        """A folder name for this cell."""
        mode = "" if self.budget_mode == "sample" else "t"
        return _folder_name(f"{self.dataset}__{self.label}__b{mode}{self.budget}__s{self.seed}")

    def sleep_store(self) -> str | None:
        """The folder of the context store this cell's sleep setting shares with every
        other cell of the same dataset, sleep setting and seed (one c′ per context serves
        all their questions and budgets); None for test-time-only cells."""
        if self.sleep is None:
            return None
        knobs = ",".join(f"{k}={v}" for k, v in self.sleep)
        return _folder_name(f"{self.dataset}__sleep[{knobs}]__s{self.seed}")

    def request(self, item: EvalItem) -> tuple[SamplingParams, int | None]:
        """Sampling defaults and the total-token cap for one item (seeded per item)."""
        seed = zlib.crc32(f"{self.seed}:{item.id}".encode())
        sampling = SamplingParams(max_tokens=self.budget, seed=seed)
        return sampling, self.budget if self.budget_mode == "total" else None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"dataset": self.dataset, "strategy": self.strategy,
                                "params": dict(self.params), "budget": self.budget,
                                "budget_mode": self.budget_mode, "seed": self.seed}
        if self.sleep is not None:
            data["sleep"] = dict(self.sleep)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CellSpec:
        sleep = data.get("sleep")
        return cls(str(data["dataset"]), str(data["strategy"]),
                   tuple((data.get("params") or {}).items()), int(data["budget"]),
                   data.get("budget_mode", "sample"), int(data.get("seed", 0)),
                   tuple(sleep.items()) if sleep is not None else None)


@dataclass
class CellResult:
    spec: CellSpec
    directory: Path
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    resumed: int = 0
    """Rows that were already on disk when the cell started."""
    repaired_bytes: int = 0


def _folder_name(raw: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.=+-]+", "_", raw).strip("_")
    if len(safe) > 120:
        safe = f"{safe[:100]}-{zlib.crc32(raw.encode()):08x}"
    return safe


def sweep(datasets: Sequence[str], strategies: Sequence[str],
          params: Mapping[str, Mapping[str, str]], budgets: Sequence[int], *,
          budget_mode: BudgetMode = "sample", seed: int = 0,
          sleep: Sequence[Mapping[str, str] | None] = (None,)) -> list[CellSpec]:
    """Every (dataset, strategy, budget, sleep) cell; ``params`` maps a strategy to its
    params; ``sleep`` lists sleep settings (None: test-time only)."""
    if not datasets or not strategies or not budgets or not sleep:
        raise ConfigError("a sweep needs at least one dataset, strategy and budget")
    return [CellSpec(d, s, tuple(params.get(s, {}).items()), b, budget_mode, seed,
                     tuple(z.items()) if z is not None else None)
            for d in datasets for z in sleep for s in strategies for b in budgets]


async def arun_cell(engine: Engine, spec: CellSpec, out: Path, *,
                    dataset: Dataset | None = None, limit: int | None = None,
                    concurrency: int = 1, on_row: RowCallback | None = None) -> CellResult:
    """Run (or resume) one cell under ``out``; rows are on disk as soon as each item ends."""
    if concurrency < 1:
        raise ConfigError(f"concurrency must be >= 1, got {concurrency}")
    if limit is not None and limit < 1:
        raise ConfigError(f"limit must be >= 1, got {limit}")
    dataset = dataset if dataset is not None else load_dataset(spec.dataset, spec.seed)
    strategy = engine.registry.create(spec.strategy, dict(spec.params))
    log = ResultsLog(out / spec.slug())
    done = log.open(spec.to_dict(), {"dataset_source": dataset.source,
                                     "licence": dataset.licence})
    items = list(enumerate(dataset.items[:limit]))
    result = CellResult(spec, log.directory, dict(done), len(done), log.repaired_bytes)
    pending = [(i, item) for i, item in items if item.id not in done]
    gate = asyncio.Semaphore(concurrency)
    store = spec.sleep_store()
    side = SleepSide(out / SLEEP_STORES / store, engine.backend, engine.registry,
                     sleep_params(spec.sleep)) if store is not None and pending else None
    firsts = first_items([item for _, item in items]) if side is not None else set()

    async def one(index: int, item: EvalItem) -> dict[str, Any]:
        async with gate:
            return await solve(engine, strategy, dataset, spec, index, item, sleep=side,
                               charge_sleep=item.id in firsts)

    tasks = [asyncio.ensure_future(one(i, item)) for i, item in pending]
    try:
        for next_done in asyncio.as_completed(tasks):
            row = await next_done
            log.append(row)
            result.rows[row["id"]] = row
            if on_row is not None:
                on_row(spec, row)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if side is not None:
            side.close()
    write_summary(result, [item.id for _, item in items])
    return result


def run_cell(engine: Engine, spec: CellSpec, out: Path, **kwargs: Any) -> CellResult:
    """Sync facade of ``arun_cell`` (runs on the backend's own event loop)."""
    return engine.backend.run_sync(arun_cell(engine, spec, out, **kwargs))


async def solve(engine: Engine, strategy: Strategy[Any], dataset: Dataset, spec: CellSpec,
                index: int, item: EvalItem, *, sleep: SleepSide | None = None,
                charge_sleep: bool = False) -> dict[str, Any]:
    """Answer one item and grade it; a budget that runs out is a wrong answer, not a crash.

    With ``sleep``, the item is answered from its context's learned version, and
    ``charge_sleep`` puts that context's sleep-time usage in this row's ledger."""
    sampling, max_total = spec.request(item)
    ledger = Ledger()
    ctx = RunContext(backend=engine.backend, ledger=ledger, sampling=sampling,
                     max_total_tokens=max_total, registry=engine.registry)
    started = time.perf_counter()
    error = None
    try:
        if sleep is not None:
            answer = await sleep.answer(item, strategy, ledger, charge_sleep=charge_sleep,
                                        budget=max_total, sampling=sampling)
        else:
            answer = await strategy.run(dataset.problem(item), ctx)
    except BudgetExceeded as exc:
        answer, error = Answer("", None, spec.strategy, ledger=ledger), f"BudgetExceeded: {exc}"
    correct = False
    if error is None:
        graded = dataset.grade(item, answer)
        correct = bool(await graded if inspect.isawaitable(graded) else graded)
    extra: dict[str, Any] = {}
    if sleep is not None:
        extra = {"sleep": dict(answer.info.get("sleep") or {}, charged=charge_sleep),
                 "predictability": predictability_of(answer)}
    return extra | {
        "id": item.id, "index": index, "difficulty": item.difficulty, "group": item.group,
        "prediction": answer.answer, "gold": item.answer, "correct": correct, "error": error,
        "confidence": answer.confidence, "votes": answer.votes,
        "response": answer.text[:RESPONSE_CHARS], "meta": dict(item.meta),
        "usage": ledger.summary(), "wall_seconds": round(time.perf_counter() - started, 4),
        "worker": f"{socket.gethostname()}:{os.getpid()}",
    }


def write_summary(result: CellResult, item_ids: Sequence[str]) -> None:
    """``summary.json``: the cell's metrics over the items of this run's limit."""
    rows = [result.rows[i] for i in item_ids if i in result.rows]
    metrics = summarize(rows)
    write_json_atomic(result.directory / SUMMARY_FILE, {
        "spec": result.spec.to_dict(), "items": len(rows),
        "accuracy": metrics.accuracy.value,
        "accuracy_ci95": [metrics.accuracy.low, metrics.accuracy.high],
        "completion_tokens_per_item": metrics.completion_tokens,
        "test_tokens_per_item": metrics.test_tokens,
        "sleep_tokens_per_item": metrics.sleep_tokens,
        "seconds_per_item": metrics.seconds, "errors": metrics.errors,
        "by_difficulty": {str(b): dataclasses.asdict(a) | {"accuracy": a.value}
                          for b, a in metrics.by_difficulty.items()},
    })


def default_concurrency(engine: Engine) -> int:
    """1 for the embedded backend (it serializes anyway), 8 for remote engines."""
    return 1 if engine.backend.kind in ("embedded", "scripted") else 8


async def arun_sweep(engine: Engine, cells: Sequence[CellSpec], out: Path, *,
                     limit: int | None = None, concurrency: int | None = None,
                     datasets: Mapping[tuple[str, int], Dataset] | None = None,
                     on_row: RowCallback | None = None,
                     on_cell: Callable[[CellSpec, Dataset], None] | None = None
                     ) -> list[CellResult]:
    """Run the cells one after another on one engine (datasets are loaded once each).

    ``datasets`` may hold datasets already loaded, by (spec, seed).
    """
    loaded: dict[tuple[str, int], Dataset] = dict(datasets or {})
    results = []
    for spec in cells:
        key = (spec.dataset, spec.seed)
        if key not in loaded:
            loaded[key] = load_dataset(spec.dataset, spec.seed)
        if on_cell is not None:
            on_cell(spec, loaded[key])
        results.append(await arun_cell(
            engine, spec, out, dataset=loaded[key], limit=limit, on_row=on_row,
            concurrency=concurrency or default_concurrency(engine)))
    return results
