"""The report: cells read back from run folders, PNG plots, one self-contained HTML file."""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from eval_helpers import oracle_engine
from matplotlib.image import imread

from ponder.errors import ConfigError
from ponder.evals.datasets import load_dataset
from ponder.evals.report import load_cells, pareto_cells, write_report
from ponder.evals.runner import CellSpec, run_cell

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Page(HTMLParser):
    """Collects the tags a reader of the report depends on."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.tables = 0
        self.cells: list[str] = []
        self._in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs).get("src") or "")
        self.tables += tag == "table"
        self._in_cell = tag == "td"

    def handle_data(self, data: str) -> None:
        if self._in_cell:
            self.cells.append(data)


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """Two strategies x two budgets on 10 generated items, with known accuracies."""
    spec = "gen,per_bin=2"
    data = load_dataset(spec)
    out = tmp_path / "runs" / "demo"
    for budget, right in ((16, lambda i: i < 3), (64, lambda i: i < 6)):
        engine, _ = oracle_engine(data, right=right, words=budget // 4)
        run_cell(engine, CellSpec(spec, "cot", budget=budget), out)
        engine, _ = oracle_engine(data, right=lambda i, r=right: r(i) or i == 9,
                                  words=budget // 2)
        run_cell(engine, CellSpec(spec, "self-consistency", (("n", "2"),), budget), out)
    return out


def test_report_is_one_self_contained_html_file(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    cells = write_report([runs], out, title="demo <sweep>", png_dir=tmp_path / "png")
    assert len(cells) == 4
    page = Page()
    text = out.read_text()
    page.feed(text)
    assert "<title>demo &lt;sweep&gt;</title>" in text
    assert page.tables == 3
    assert len(page.images) == 3  # tokens, budget, difficulty (no sleep tokens: no cost plot)
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1])
        assert png.startswith(PNG_SIGNATURE)
        assert imread(io.BytesIO(png)).shape[0] > 200
    assert not re.search(r"""(src|href)=["']https?://""", text)  # nothing external
    for name in ("accuracy_vs_tokens", "accuracy_vs_budget", "accuracy_by_difficulty"):
        assert (tmp_path / "png" / f"{name}.png").read_bytes().startswith(PNG_SIGNATURE)
    assert "30.0%" in page.cells and "60.0%" in page.cells  # cot @16 and @64
    assert "self-consistency[n=2]" in page.cells


def test_cells_metrics_and_pareto(runs: Path) -> None:
    cells = {(c.spec.strategy, c.spec.budget): c for c in load_cells([runs])}
    assert cells[("cot", 16)].metrics.accuracy.value == pytest.approx(0.3)
    assert cells[("self-consistency", 64)].metrics.accuracy.value == pytest.approx(0.7)
    assert cells[("cot", 16)].metrics.test_tokens == 6  # 4 words + "Answer: N"
    assert cells[("self-consistency", 64)].metrics.test_tokens == 2 * 34
    front = pareto_cells(list(cells.values()))
    assert cells[("cot", 16)].directory in front and cells[("cot", 64)].directory in front
    assert cells[("self-consistency", 16)].directory not in front  # cot@64 is cheaper, better
    one = load_cells([cells[("cot", 16)].directory])
    assert len(one) == 1


def test_sleep_tokens_add_the_amortisation_plot(runs: Path, tmp_path: Path) -> None:
    results = next(runs.glob("*cot__b16*")) / "results.jsonl"
    text = results.read_text().replace('"sleep":{"prompt_tokens":0,"completion_tokens":0',
                                       '"sleep":{"prompt_tokens":0,"completion_tokens":300')
    results.write_text(text)
    write_report([runs], tmp_path / "r.html", png_dir=tmp_path / "png")
    assert (tmp_path / "png" / "amortized_cost.png").read_bytes().startswith(PNG_SIGNATURE)


def test_report_without_results_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        write_report([tmp_path / "nope"], tmp_path / "r.html")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no results under"):
        write_report([tmp_path / "empty"], tmp_path / "r.html")
