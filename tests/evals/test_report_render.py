"""The HTML report renders: its structure, parsed strictly, and a real headless Chromium.

``ponder eval report`` promises one self-contained file a user opens in a
browser. The default test parses that file with the stdlib HTML parser and
holds it to what a browser needs: every element closed in order, a title,
tables with one header row and one row per cell, PNG images inlined as data
URIs, nothing fetched from elsewhere, and table numbers equal to each cell's
``summary.json``. The slow test loads the same file in headless Chromium (the
Debian ``chromium`` package): the DOM after load must hold the tables and
decoded images, a strict Content-Security-Policy must block nothing, and a
screenshot must show the plots painted.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import struct
import subprocess
from collections.abc import Iterable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.image import imread
from PIL import Image
from typer.testing import CliRunner

from ponder.backends.base import Prompt
from ponder.backends.scripted import ScriptedBackend
from ponder.cli import app
from ponder.engine import Engine
from ponder.evals.datasets import load_dataset
from ponder.evals.results import SPEC_FILE, SUMMARY_FILE
from ponder.evals.runner import CellSpec, run_cell
from ponder.ledger import DEFAULT_TEST_TIME_WEIGHT
from ponder.params import SamplingParams

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DATA_PNG = "data:image/png;base64,"
VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                  "source", "track", "wbr"})
URL_ATTRS = frozenset({"src", "href", "srcset", "action", "formaction", "poster", "data",
                       "background", "cite", "manifest", "xlink:href"})
DATASET = "gen,per_bin=2"
TITLE = "render <check> & co"
CHROMIUM = "/usr/bin/chromium"


class Table:
    """One ``<table>``: rows of (tag, text) cells."""

    def __init__(self) -> None:
        self.rows: list[list[tuple[str, str]]] = []

    @property
    def header(self) -> list[str]:
        return [text for _, text in self.rows[0]]

    def records(self) -> list[dict[str, str]]:
        """The body rows, keyed by the header cells."""
        return [dict(zip(self.header, (text for _, text in row), strict=True))
                for row in self.rows[1:]]


class StrictPage(HTMLParser):
    """Parses a page and records what a browser would have had to repair or fetch."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.doctype = ""
        self.title = ""
        self.tables: list[Table] = []
        self.images: list[dict[str, str]] = []
        self.urls: list[tuple[str, str, str]] = []
        self.styles: list[str] = []
        self.body: dict[str, str] = {}
        self.tags: list[str] = []
        self._open: list[str] = []
        self._cell: list[str] | None = None

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.tags.append(tag)
        self.urls += [(tag, k, v) for k, v in values.items() if k in URL_ATTRS]
        if "style" in values:
            self.styles.append(values["style"])
        if tag == "img":
            self.images.append(values)
        elif tag == "body":
            self.body = values
        elif tag == "table":
            self.tables.append(Table())
        elif tag == "tr":
            self._table("<tr>").rows.append([])
        elif tag in ("th", "td"):
            if self._cell is not None:
                self.problems.append(f"<{tag}> inside an open cell")
            self._cell = []
        if tag not in VOID:
            self._open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID:
            self.problems.append(f"self-closed non-void <{tag}/>")
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self._open.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            self.problems.append(f"end tag for void element </{tag}>")
            return
        if not self._open or self._open[-1] != tag:
            self.problems.append(f"</{tag}> closes {self._open[-1:] or 'nothing'}")
            return
        self._open.pop()
        if tag in ("th", "td") and self._cell is not None:
            rows = self._table(f"<{tag}>").rows
            if not rows:
                self.problems.append(f"<{tag}> outside a <tr>")
            else:
                rows[-1].append((tag, "".join(self._cell).strip()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._open and self._open[-1] == "title":
            self.title += data
        elif self._open and self._open[-1] == "style":
            self.styles.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def close(self) -> None:
        super().close()
        if self._open:
            self.problems.append(f"unclosed at the end: {self._open}")

    def _table(self, where: str) -> Table:
        if not self.tables or "table" not in self._open:
            self.problems.append(f"{where} outside a <table>")
            self.tables.append(Table())
        return self.tables[-1]


def parse(text: str) -> StrictPage:
    page = StrictPage()
    page.feed(text)
    page.close()
    return page


def oracle(dataset_spec: str, right: Iterable[int], words: int) -> Engine:
    """A scripted engine that answers the items in ``right`` correctly, the others "-1"."""
    data = load_dataset(dataset_spec)
    gold = {item.full_question: (i, item.answer) for i, item in enumerate(data.items)}
    good = set(right)

    def respond(prompt: Prompt, params: SamplingParams) -> list[str]:
        assert not isinstance(prompt, str)
        i, answer = gold[str(prompt[-1]["content"])]
        return [" ".join(["step"] * words) + f" Answer: {answer if i in good else '-1'}"] \
            * params.n

    return Engine(ScriptedBackend(respond))


@pytest.fixture
def runs(tmp_path: Path) -> list[Path]:
    """Two run folders, as ``runs/*`` would name them: three cells on 10 generated items."""
    sweep, extra = tmp_path / "runs" / "sweep", tmp_path / "runs" / "extra"
    run_cell(oracle(DATASET, range(3), 4), CellSpec(DATASET, "cot", budget=16), sweep)
    run_cell(oracle(DATASET, range(6), 12), CellSpec(DATASET, "cot", budget=64), sweep)
    run_cell(oracle(DATASET, range(5), 20),
             CellSpec(DATASET, "self-consistency", (("n", "2"),), 64), extra)
    return [sweep, extra]


@pytest.fixture
def report(runs: list[Path], tmp_path: Path) -> Path:
    """The report, written by the real command line: ``ponder eval report runs/*``."""
    out = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["eval", "report", *map(str, runs), "--out", str(out),
                                      "--title", TITLE])
    assert result.exit_code == 0, result.output
    return out


def summaries(runs: list[Path]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Each cell's ``summary.json``, keyed as the table names the cell."""
    found = {}
    for spec_file in sorted(p for run in runs for p in run.rglob(SPEC_FILE)):
        summary = json.loads((spec_file.parent / SUMMARY_FILE).read_text())
        spec = CellSpec.from_dict(summary["spec"])
        found[(spec.dataset, spec.label, str(spec.budget))] = summary
    return found


def decode_png(src: str) -> bytes:
    assert src.startswith(DATA_PNG), src[:60]
    try:
        png = base64.b64decode(src.removeprefix(DATA_PNG), validate=True)
    except binascii.Error as exc:  # pragma: no cover - the failure message is the point
        pytest.fail(f"image data is not valid base64: {exc}")
    assert png.startswith(PNG_SIGNATURE)
    return png


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which must come first."""
    assert png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def test_report_structure_is_well_formed_and_self_contained(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    page = parse(text)
    assert page.problems == []
    assert page.doctype.lower() == "doctype html"
    assert page.title == TITLE  # escaped in the source, the same text once parsed
    assert len(page.tables) == 3  # cells, accuracy by difficulty, data sources
    for table in page.tables:
        assert table.rows and all(tag == "th" for tag, _ in table.rows[0])
        assert all(tag == "td" for row in table.rows[1:] for tag, _ in row)
        assert {len(row) for row in table.rows} == {len(table.header)}
    assert len(page.images) == 3  # tokens, budget, difficulty (no sleep tokens: no cost plot)
    for image in page.images:
        assert image.get("alt", "").strip()
        png = decode_png(image["src"])
        with Image.open(io.BytesIO(png)) as pil:
            pil.verify()  # checks the chunks' CRCs
        pixels = imread(io.BytesIO(png))
        assert pixels.shape[:2] == png_size(png)[::-1]
        assert pixels.shape[0] > 200 and float(pixels[..., :3].std()) > 0.05  # not blank
    assert [u for u in page.urls if not u[2].startswith((DATA_PNG, "#"))] == []
    assert not any(marker in style.lower() for style in page.styles
                   for marker in ("url(", "@import"))
    assert "<script" not in text.lower() and "<link" not in text.lower()


def test_report_tables_match_each_cells_summary(runs: list[Path], report: Path) -> None:
    page = parse(report.read_text(encoding="utf-8"))
    cells, bins, sources = (t.records() for t in page.tables)
    expected = summaries(runs)
    assert len(expected) == 3 and len(cells) == 3 and len(bins) == 3  # one row per cell
    assert {(r["dataset"], r["strategy"], r["budget"]) for r in cells} == set(expected)
    accuracy = {}
    for row in cells:
        s = expected[(row["dataset"], row["strategy"], row["budget"])]
        low, high = s["accuracy_ci95"]
        cost = s["sleep_tokens_per_item"] + DEFAULT_TEST_TIME_WEIGHT * s["test_tokens_per_item"]
        assert row["n"] == str(s["items"]) == "10"
        assert row["accuracy"] == f"{s['accuracy']:.1%}"
        assert row["95% CI"] == f"{low:.1%} – {high:.1%}"
        assert row["test tok/item"] == f"{s['test_tokens_per_item']:.0f}"
        assert row["sleep tok/item"] == f"{s['sleep_tokens_per_item']:.0f}"
        assert row["cost/item"] == f"{cost:.0f}"
        assert row["s/item"] == f"{s['seconds_per_item']:.1f}"
        assert row["errors"] == str(s["errors"])
        accuracy[row["strategy"], row["budget"]] = row["accuracy"]
    assert accuracy == {("cot", "16"): "30.0%", ("cot", "64"): "60.0%",
                        ("self-consistency[n=2]", "64"): "50.0%"}
    assert [r["Pareto"] for r in cells] == ["✓", "✓", ""]  # sc@64: worse than cot@64, dearer
    for row in bins:
        s = expected[(row["dataset"], row["strategy"], row["budget"])]
        assert s["by_difficulty"]
        for b, acc in s["by_difficulty"].items():
            assert row[f"bin {b}"].startswith(f"{acc['accuracy']:.0%} ({acc['correct']}/"
                                              f"{acc['n']}, ")
    assert [r["dataset"] for r in sources] == [DATASET]
    assert sources[0]["licence"]


def test_the_strict_parser_catches_what_it_claims() -> None:
    """The structure checks above can fail: broken pages are reported."""
    assert parse("<html><body><p>open</body></html>").problems == [
        "</body> closes ['p']", "</html> closes ['p']", "unclosed at the end: "
        "['html', 'body', 'p']"]
    assert parse("<table><tr><td>1</tr></table>").problems[0] == "</tr> closes ['td']"
    assert parse("<div/><tr></tr>").problems == ["self-closed non-void <div/>",
                                                 "<tr> outside a <table>"]
    page = parse('<img src="https://example.com/x.png"><a href="#top">t</a>')
    assert page.urls == [("img", "src", "https://example.com/x.png"), ("a", "href", "#top")]


# -- headless Chromium -------------------------------------------------------------------

PROBE = """<meta http-equiv="Content-Security-Policy" content="default-src 'none'; \
img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<script>
const blocked = [];
document.addEventListener("securitypolicyviolation", e => blocked.push(e.blockedURI));
addEventListener("load", () => {
  for (const img of document.images) {
    const box = img.getBoundingClientRect();
    img.dataset.natural = img.naturalWidth + "x" + img.naturalHeight;
    img.dataset.box = Math.round(box.width) + "x" + Math.round(box.height);
  }
  document.body.dataset.blocked = blocked.join(" ");
  document.body.dataset.probed = "yes";
});
</script>"""
"""Injected into a copy of the report: any fetch from elsewhere is blocked and recorded,
and each image's decoded and laid-out size is written into the DOM for --dump-dom."""


def chromium(profile: Path, *args: str) -> str:
    """Run headless Chromium once, with no network side traffic; returns its stdout."""
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
               f"--user-data-dir={profile}", "--virtual-time-budget=2000", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "HOME": str(profile)})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.slow
@pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                    reason=f"{CHROMIUM} not found: apt-get install -y chromium")
def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    source = parse(report.read_text(encoding="utf-8"))
    pngs = [decode_png(i["src"]) for i in source.images]
    dom = parse(chromium(tmp_path / "profile", "--dump-dom", report.as_uri()))
    assert [t for t in dom.tags if t != "tbody"] == source.tags  # Chromium repaired nothing
    assert dom.title == TITLE
    assert [len(t.rows) for t in dom.tables] == [4, 4, 2]  # header + 3 cells, ..., 1 dataset
    assert "30.0%" in dom.tables[0].records()[0].values()
    assert len(dom.images) == 3

    probe = tmp_path / "probe.html"
    probe.write_text(report.read_text(encoding="utf-8").replace("<head>", "<head>" + PROBE, 1),
                     encoding="utf-8")
    probed = parse(chromium(tmp_path / "profile", "--dump-dom", probe.as_uri()))
    assert probed.body.get("data-probed") == "yes"  # the load handler ran
    assert probed.body["data-blocked"] == ""  # a strict CSP blocked nothing: no external fetch
    for image, png in zip(probed.images, pngs, strict=True):
        width, height = png_size(png)
        assert image["data-natural"] == f"{width}x{height}"  # Chromium decoded the PNG
        shown_w, shown_h = map(int, image["data-box"].split("x"))
        assert shown_w > 100 and shown_h > 100  # and laid it out visibly

    shot = tmp_path / "shot.png"
    chromium(tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,1400",
             "--hide-scrollbars", report.as_uri())
    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (1400, 1280)
    assert float((pixels.min(axis=-1) < 0.9).mean()) > 0.02  # not a blank page
    blue = np.array([31, 119, 180]) / 255  # matplotlib's first colour: the plot was painted
    assert int((np.abs(pixels - blue).max(axis=-1) < 0.06).sum()) > 50

