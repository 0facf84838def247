"""``ponder eval report``: tables, Pareto curves and one self-contained HTML file.

Reads the cells under the given run folders, computes their metrics
(``metrics.summarize``), draws PNG plots with matplotlib's object API (Agg; no
pyplot state, no display) and writes an HTML page with the plots inlined as
``data:image/png;base64`` URIs, so the report is one file to open or send.

Plots: accuracy vs test-time tokens per item (with the Pareto front), accuracy
vs budget per strategy, accuracy by difficulty bin, and the amortised cost per
query vs queries per context (when any cell spent sleep-time tokens).
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter, ScalarFormatter

from ponder.errors import ConfigError
from ponder.evals.metrics import CellMetrics, amortized_cost, pareto_front, summarize
from ponder.evals.results import RESULTS_FILE, SPEC_FILE, read_rows
from ponder.evals.runner import CellSpec
from ponder.ledger import DEFAULT_TEST_TIME_WEIGHT

QUERIES_PER_CONTEXT = (1, 2, 5, 10)


@dataclass(frozen=True)
class RunCell:
    """One cell read back from disk, with its metrics."""

    spec: CellSpec
    directory: Path
    rows: tuple[dict[str, Any], ...]
    metrics: CellMetrics
    dataset_source: str = ""
    licence: str = ""


@dataclass(frozen=True)
class Plot:
    name: str
    title: str
    png: bytes


def load_cells(paths: Sequence[Path], *,
               test_time_weight: float = DEFAULT_TEST_TIME_WEIGHT) -> list[RunCell]:
    """Every cell (a folder with ``spec.json``) at or under ``paths``, with rows."""
    folders: dict[Path, None] = {}
    for path in paths:
        if not path.exists():
            raise ConfigError(f"run folder not found: {path}")
        found = [path / SPEC_FILE] if (path / SPEC_FILE).is_file() \
            else sorted(path.rglob(SPEC_FILE))
        for spec_file in found:
            folders[spec_file.parent.resolve()] = None
    cells = []
    for folder in folders:
        raw = json.loads((folder / SPEC_FILE).read_text(encoding="utf-8"))
        rows = tuple(sorted(read_rows(folder / RESULTS_FILE).values(),
                            key=lambda r: r.get("index", 0)))
        if rows:
            cells.append(RunCell(CellSpec.from_dict(raw), folder, rows,
                                 summarize(rows, test_time_weight=test_time_weight),
                                 str(raw.get("dataset_source", "")), str(raw.get("licence", ""))))
    if not cells:
        raise ConfigError(f"no results under {', '.join(map(str, paths))} "
                          f"(expected folders with {SPEC_FILE} and {RESULTS_FILE})")
    return sorted(cells, key=lambda c: (c.spec.dataset, c.spec.label, c.spec.budget))


def pareto_cells(cells: Sequence[RunCell]) -> set[Path]:
    """Cells on their dataset's accuracy-vs-test-tokens Pareto front."""
    on_front: set[Path] = set()
    for group in _by_dataset(cells).values():
        points = [(c.metrics.test_tokens, c.metrics.accuracy.value) for c in group]
        on_front.update(group[i].directory for i in pareto_front(points))
    return on_front


def make_plots(cells: Sequence[RunCell], *,
               test_time_weight: float = DEFAULT_TEST_TIME_WEIGHT) -> list[Plot]:
    plots = [
        Plot("accuracy_vs_tokens", "Accuracy vs test-time tokens per item (Pareto front dashed)",
             _figure(cells, _draw_tokens)),
        Plot("accuracy_vs_budget", "Accuracy vs budget, per strategy",
             _figure(cells, _draw_budget)),
    ]
    if any(c.metrics.by_difficulty for c in cells):
        plots.append(Plot("accuracy_by_difficulty", "Accuracy by difficulty bin",
                          _figure([c for c in cells if c.metrics.by_difficulty],
                                  _draw_difficulty)))
    sleeping = [c for c in cells if c.metrics.sleep_tokens > 0]
    if sleeping:
        plots.append(Plot("amortized_cost", f"Cost per query vs queries per context "
                                            f"(test token = {test_time_weight:g} sleep tokens)",
                          _figure(sleeping, lambda ax, g: _draw_amortized(
                              ax, g, test_time_weight))))
    return plots


def write_report(paths: Sequence[Path], out: Path, *, title: str = "ponder evaluation",
                 png_dir: Path | None = None,
                 test_time_weight: float = DEFAULT_TEST_TIME_WEIGHT) -> list[RunCell]:
    """Write the HTML report (and the PNGs into ``png_dir`` when given)."""
    cells = load_cells(paths, test_time_weight=test_time_weight)
    plots = make_plots(cells, test_time_weight=test_time_weight)
    if png_dir is not None:
        png_dir.mkdir(parents=True, exist_ok=True)
        for plot in plots:
            (png_dir / f"{plot.name}.png").write_bytes(plot.png)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(cells, plots, title=title, test_time_weight=test_time_weight),
                   encoding="utf-8")
    return cells


# -- drawing ----------------------------------------------------------------------------

def _figure(cells: Sequence[RunCell], draw: Callable[[Axes, list[RunCell]], None]) -> bytes:
    groups = _by_dataset(cells)
    fig = Figure(figsize=(5.2 * len(groups), 3.8), dpi=110, layout="constrained")
    axes = fig.subplots(1, len(groups), squeeze=False)[0]
    for ax, (dataset, group) in zip(axes, groups.items(), strict=True):
        draw(ax, group)
        ax.set_title(dataset, fontsize=9)
        ax.grid(alpha=0.3)
        if ax.get_ylabel() == "accuracy":
            ax.set_ylim(-0.03, 1.03)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _draw_tokens(ax: Axes, cells: list[RunCell]) -> None:
    for label, group in _by_label(cells).items():
        group.sort(key=lambda c: c.metrics.test_tokens)
        xs = [c.metrics.test_tokens for c in group]
        ys = [c.metrics.accuracy.value for c in group]
        err = _errors(group)
        ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=label)
    points = [(c.metrics.test_tokens, c.metrics.accuracy.value) for c in cells]
    front = [points[i] for i in pareto_front(points)]
    ax.plot([p[0] for p in front], [p[1] for p in front], "k--", lw=1, alpha=0.6,
            label="Pareto front")
    xs = [p[0] for p in points if p[0] > 0]
    if xs and max(xs) / min(xs) > 8:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("test-time completion tokens per item")
    ax.set_ylabel("accuracy")


def _draw_budget(ax: Axes, cells: list[RunCell]) -> None:
    for label, group in _by_label(cells).items():
        group.sort(key=lambda c: (c.spec.budget_mode, c.spec.budget))
        mode = "" if group[0].spec.budget_mode == "sample" else " (total)"
        ax.errorbar([c.spec.budget for c in group], [c.metrics.accuracy.value for c in group],
                    yerr=_errors(group), marker="o", capsize=3, label=label + mode)
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("budget (max tokens)")
    ax.set_ylabel("accuracy")


def _draw_difficulty(ax: Axes, cells: list[RunCell]) -> None:
    for cell in cells:
        bins = sorted(cell.metrics.by_difficulty)
        ax.plot(bins, [cell.metrics.by_difficulty[b].value for b in bins], marker="o",
                label=f"{cell.spec.label} @{cell.spec.budget}")
        ax.set_xticks(bins)
    ax.set_xlabel("difficulty bin")
    ax.set_ylabel("accuracy")


def _draw_amortized(ax: Axes, cells: list[RunCell], weight: float) -> None:
    for cell in cells:
        costs = [amortized_cost(cell.rows, q, test_time_weight=weight)
                 for q in QUERIES_PER_CONTEXT]
        ax.plot(QUERIES_PER_CONTEXT, costs, marker="o",
                label=f"{cell.spec.label} @{cell.spec.budget}")
    ax.set_xlabel("queries per context")
    ax.set_ylabel("cost per query (weighted tokens)")


def _errors(group: Sequence[RunCell]) -> list[list[float]]:
    return [[max(0.0, c.metrics.accuracy.value - c.metrics.accuracy.low) for c in group],
            [max(0.0, c.metrics.accuracy.high - c.metrics.accuracy.value) for c in group]]


def _by_dataset(cells: Sequence[RunCell]) -> dict[str, list[RunCell]]:
    groups: dict[str, list[RunCell]] = defaultdict(list)
    for cell in cells:
        groups[cell.spec.dataset].append(cell)
    return dict(groups)


def _by_label(cells: Sequence[RunCell]) -> dict[str, list[RunCell]]:
    groups: dict[str, list[RunCell]] = defaultdict(list)
    for cell in cells:
        groups[cell.spec.label].append(cell)
    return dict(groups)


# -- HTML -------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1400px;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:1em 0;font-size:13px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right;white-space:nowrap}
th{background:#f3f3f3}td.l,th.l{text-align:left;white-space:normal;overflow-wrap:anywhere}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}
.note{color:#666;font-size:12px}
"""


def render_html(cells: Sequence[RunCell], plots: Sequence[Plot], *, title: str,
                test_time_weight: float = DEFAULT_TEST_TIME_WEIGHT) -> str:
    e = html.escape
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    figures = "\n".join(
        f'<h2>{e(p.title)}</h2>\n<img alt="{e(p.name)}" '
        f'src="data:image/png;base64,{base64.b64encode(p.png).decode()}">' for p in plots)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>
<style>{_CSS}</style></head><body>
<h1>{e(title)}</h1>
<p class="note">{len(cells)} cells, {sum(c.metrics.accuracy.n for c in cells)} item runs;
generated {e(when)}. Accuracy intervals are 95% bootstrap intervals over items. Tokens are
completion tokens per item from each request's ledger; cost = sleep tokens +
{test_time_weight:g} x test tokens.</p>
<h2>Cells</h2>
{_cells_table(cells)}
{figures}
<h2>Accuracy by difficulty bin</h2>
{_difficulty_table(cells)}
<h2>Data</h2>
{_sources_table(cells)}
</body></html>
"""


def _cells_table(cells: Sequence[RunCell]) -> str:
    front = pareto_cells(cells)
    head = ("dataset", "strategy", "budget", "n", "accuracy", "95% CI", "test tok/item",
            "sleep tok/item", "prefill tok/item", "cost/item", "s/item", "errors", "Pareto")
    body = []
    for c in cells:
        m, a = c.metrics, c.metrics.accuracy
        budget = f"{c.spec.budget}" + (" total" if c.spec.budget_mode == "total" else "")
        body.append([c.spec.dataset, c.spec.label, budget, str(a.n), f"{a.value:.1%}",
                     f"{a.low:.1%} – {a.high:.1%}", f"{m.test_tokens:.0f}",
                     f"{m.sleep_tokens:.0f}", f"{m.prefill_tokens:.0f}", f"{m.cost:.0f}",
                     f"{m.seconds:.1f}", str(m.errors), "✓" if c.directory in front else ""])
    return _table(head, body, left=2)


def _difficulty_table(cells: Sequence[RunCell]) -> str:
    bins = sorted({b for c in cells for b in c.metrics.by_difficulty})
    if not bins:
        return '<p class="note">No item in these runs has a difficulty bin.</p>'
    head = ("dataset", "strategy", "budget", *(f"bin {b}" for b in bins))
    body = []
    for c in cells:
        row = [c.spec.dataset, c.spec.label, str(c.spec.budget)]
        for b in bins:
            acc = c.metrics.by_difficulty.get(b)
            tokens = c.metrics.tokens_by_difficulty.get(b, 0.0)
            row.append(f"{acc.value:.0%} ({acc.correct}/{acc.n}, {tokens:.0f} tok)"
                       if acc else "–")
        body.append(row)
    return _table(head, body, left=2)


def _sources_table(cells: Sequence[RunCell]) -> str:
    seen = {c.spec.dataset: (c.dataset_source, c.licence) for c in cells}
    body = [[name, source, licence] for name, (source, licence) in sorted(seen.items())]
    return _table(("dataset", "source", "licence"), body, left=3)


def _table(head: Sequence[str], body: Sequence[Sequence[str]], *, left: int) -> str:
    e = html.escape

    def cls(i: int) -> str:
        return ' class="l"' if i < left else ""

    header = "".join(f"<th{cls(i)}>{e(h)}</th>" for i, h in enumerate(head))
    rows = "\n".join("<tr>" + "".join(f"<td{cls(i)}>{e(v)}</td>" for i, v in enumerate(r))
                     + "</tr>" for r in body)
    return f"<table>\n<tr>{header}</tr>\n{rows}\n</table>"
