"""What a paper-reproduction recipe is, and how one is run and written up.

A recipe is a list of eval cells plus an analysis of their rows. Running it
goes through the ordinary resumable runner into a shared runs folder (cells
that two recipes share are run once), then writes ``docs/results/NAME/``:
``README.md`` (claim, command, model, hardware, table, findings), the plot
PNG and ``results.json``. ``quick`` shrinks every recipe to a mechanics check
(for the tiny model in tests); its numbers mean nothing.
"""

from __future__ import annotations

import contextlib
import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from ponder.engine import Engine
from ponder.evals.datasets import Dataset, load_dataset
from ponder.evals.results import RESULTS_FILE, read_rows, write_json_atomic
from ponder.evals.runner import CellSpec, RowCallback, arun_sweep

Rows = list[dict[str, Any]]


@dataclass
class Findings:
    """What a recipe's analysis reports."""

    headers: Sequence[str]
    table: list[Sequence[object]]
    lines: list[str]
    """Plain-language findings: measured numbers, and how they compare with the paper."""
    figure: Figure
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Recipe:
    name: str
    title: str
    claim: str
    """What the paper reports, to compare against."""
    cells: Callable[[bool], list[CellSpec]]
    """The cells to run (``quick``: a tiny mechanics-sized version)."""
    analyse: Callable[[Mapping[CellSpec, Rows]], Findings]


@dataclass(frozen=True)
class RecipeRun:
    recipe: Recipe
    findings: Findings
    directory: Path
    seconds: float


async def arun_recipe(engine: Engine, recipe: Recipe, runs: Path, out: Path, *,
                      quick: bool = False, command: str = "",
                      on_row: RowCallback | None = None,
                      on_cell: Callable[[CellSpec, Dataset], None] | None = None) -> RecipeRun:
    """Run (or resume) the recipe's cells under ``runs`` and write its results to ``out``."""
    started = time.perf_counter()
    cells = recipe.cells(quick)
    loaded = {(c.dataset, c.seed): load_dataset(c.dataset, c.seed) for c in cells}
    await arun_sweep(engine, cells, runs, datasets=loaded, on_row=on_row, on_cell=on_cell)
    rows = {}
    for spec in cells:
        by_id = read_rows(runs / spec.slug() / RESULTS_FILE)
        rows[spec] = [by_id[item.id] for item in loaded[(spec.dataset, spec.seed)].items
                      if item.id in by_id]
    findings = recipe.analyse(rows)
    seconds = time.perf_counter() - started
    item_seconds = sum(float(r.get("wall_seconds") or 0) for got in rows.values() for r in got)
    write_results(recipe, findings, out, engine=engine, command=command, quick=quick,
                  seconds=item_seconds, cells=cells)
    return RecipeRun(recipe, findings, out, seconds)


def write_results(recipe: Recipe, findings: Findings, out: Path, *, engine: Engine,
                  command: str, quick: bool, seconds: float,
                  cells: Sequence[CellSpec]) -> None:
    """``README.md``, ``<name>.png`` and ``results.json`` under ``out``.

    ``seconds`` is the model time of the cells' items (whichever run made them)."""
    out.mkdir(parents=True, exist_ok=True)
    png = out / f"{recipe.name}.png"
    findings.figure.savefig(png, dpi=110, bbox_inches="tight")
    machine = machine_description(engine)
    write_json_atomic(out / "results.json", {
        "recipe": recipe.name, "title": recipe.title, "claim": recipe.claim,
        "command": command, "quick": quick, "machine": machine,
        "item_seconds": round(seconds, 1),
        "cells": [c.to_dict() for c in cells],
        "headers": list(findings.headers), "table": [list(map(_json, r)) for r in findings.table],
        "findings": findings.lines, "data": findings.data,
    })
    table = [f"| {' | '.join(findings.headers)} |",
             f"|{'|'.join('---' for _ in findings.headers)}|"]
    table += [f"| {' | '.join(str(c) for c in row)} |" for row in findings.table]
    text = [
        f"# {recipe.title}", "",
        f"**Paper:** {recipe.claim}", "",
        "**Command** (resumable; cells shared with other recipes run once):", "",
        "```", command or f"ponder eval recipe {recipe.name}", "```", "",
        f"**Model:** {machine['model']} ({machine['backend']}). "
        f"**Hardware:** {machine['hardware']}. **Software:** {machine['software']}. "
        f"Run on {machine['date']}; the items took {seconds / 60:.1f} min of wall time "
        "in all (sum over the cells, shared cells included).", "",
    ]
    if quick:
        text += ["**Quick mode: a mechanics check, the numbers mean nothing.**", ""]
    text += [*table, "", f"![{recipe.title}]({png.name})", "", "## What it shows", ""]
    text += [f"- {line}" for line in findings.lines]
    (out / "README.md").write_text("\n".join(text) + "\n", encoding="utf-8")


def machine_description(engine: Engine) -> dict[str, str]:
    """Model, backend, hardware and software, as the results files state them."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    threads = os.environ.get("PONDER_THREADS", "default")
    software = [f"Python {platform.python_version()}"]
    for package in ("ponder", "llama-cpp-python"):
        with contextlib.suppress(PackageNotFoundError):
            software.append(f"{package} {version(package)}")
    return {
        "model": str(getattr(engine.backend, "model", "?")),
        "backend": f"{engine.backend.kind}, PONDER_THREADS={threads}",
        "hardware": f"{platform.machine()} {cpu}, {os.cpu_count()} cores, no GPU",
        "software": ", ".join(software),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }


def accuracy_of(rows: Rows) -> float:
    return sum(bool(r.get("correct")) for r in rows) / len(rows) if rows else 0.0


def by_id(rows: Rows) -> dict[str, dict[str, Any]]:
    return {str(r["id"]): r for r in rows}


def _json(value: object) -> object:
    return value if isinstance(value, int | float | str | bool) or value is None else str(value)
