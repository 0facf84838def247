"""``ponder eval`` as a real subprocess on the real embedded tiny model (SmolLM2-135M).

SmolLM2 cannot do arithmetic, so these tests check mechanics: cells, rows, ledgers
within budget, resume, the report. Accuracy is checked on the scripted backend.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ponder.evals.metrics import phase_tokens
from ponder.evals.results import RESULTS_FILE, SPEC_FILE


def ponder(*args: str, home: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PONDER_HOME": str(home), "COLUMNS": "200",
           "PONDER_THREADS": os.environ.get("PONDER_THREADS", "1")}
    return subprocess.run([sys.executable, "-m", "ponder.cli", *args], capture_output=True,
                          text=True, env=env, timeout=timeout, check=False)


def rows(cell: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (cell / RESULTS_FILE).read_text().splitlines()]


def test_run_resume_and_report_on_the_tiny_model(ponder_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs" / "tiny"
    args = ("eval", "run", "--dataset", "gen,per_bin=1", "--strategy", "cot",
            "--budgets", "8,16", "--limit", "3", "--seed", "1", "--model", "smollm2-135m",
            "--out", str(out))
    run = ponder(*args, home=ponder_home)
    assert run.returncode == 0, run.stderr
    cells = sorted(p.parent for p in out.glob(f"*/{SPEC_FILE}"))
    assert [c.name for c in cells] == ["gen_per_bin=1__cot__b16__s1", "gen_per_bin=1__cot__b8__s1"]
    for cell, budget in zip(cells, (16, 8), strict=True):
        got = rows(cell)
        assert [r["index"] for r in got] == [0, 1, 2]
        for row in got:
            usage = row["usage"]
            assert 0 < usage["completion_tokens"] <= budget  # the budget is max_tokens
            assert usage["entries"][0]["backend"] == "embedded"
            assert usage["entries"][0]["model"] == "smollm2-135m"
            assert row["gold"] and isinstance(row["correct"], bool)
    assert "cot" in run.stdout and "report: ponder eval report" in run.stdout

    again = ponder(*args, home=ponder_home)  # resume: everything is done, nothing is redone
    assert again.returncode == 0, again.stderr
    assert [len(rows(c)) for c in cells] == [3, 3]

    html = tmp_path / "report.html"
    report = ponder("eval", "report", str(out), "--out", str(html), home=ponder_home)
    assert report.returncode == 0, report.stderr
    text = html.read_text()
    marker = '<img alt="accuracy_vs_tokens" src="data:image/png;base64,'
    assert marker in text
    encoded = text.split(marker, 1)[1].split('"', 1)[0]
    assert base64.b64decode(encoded).startswith(b"\x89PNG\r\n\x1a\n")
    assert text.count("<table>") == 3 and "gen,per_bin=1" in text


@pytest.mark.parametrize(("args", "message"), [
    (["--budgets", "8,x"], "--budgets must be comma-separated integers"),
    (["--budget-mode", "both"], "--budget-mode must be one of sample, total"),
    (["--dataset", "nope"], "unknown dataset 'nope'"),
    (["--param", "n=0"], "n must be an integer >= 1"),
    (["--param", "beams=2"], "no strategy among cot, self-consistency has a parameter"),
    (["--param", "tpo.n=2"], "'tpo' is not one of the strategies being run"),
    (["--limit", "0"], "limit must be >= 1"),
    (["--sleep", "maybe"], "--sleep must be off, on or both"),
    (["--sleep-param", "rounds=1"], "--sleep-param needs --sleep on or --sleep both"),
    (["--sleep", "on", "--sleep-param", "naps=2"], "sleep parameter 'naps' is unknown"),
])
def test_bad_options_fail_in_one_line_before_loading_a_model(
        args: list[str], message: str, ponder_home: Path, tmp_path: Path) -> None:
    run = ponder("eval", "run", "--dataset", "gen", "--strategy", "cot", "--strategy",
                 "self-consistency", "--model", "/nonexistent.gguf", "--out",
                 str(tmp_path / "x"), *args, home=ponder_home, timeout=60)
    assert run.returncode != 0
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), run.stderr
    assert message in lines[0]


def test_datasets_and_compare_commands(ponder_home: Path, tmp_path: Path) -> None:
    listing = ponder("eval", "datasets", home=ponder_home, timeout=60)
    assert listing.returncode == 0
    for name in ("gen", "multi-query", "gsm8k", "math500", "stateful-gsm-symbolic", "jsonl"):
        assert name in listing.stdout
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, correct in ((a, [True, False, False]), (b, [True, True, True])):
        folder.mkdir()
        (folder / RESULTS_FILE).write_text("".join(
            json.dumps({"id": f"i{i}", "correct": c}) + "\n" for i, c in enumerate(correct)))
    compare = ponder("eval", "compare", str(a), str(b), home=ponder_home, timeout=60)
    assert compare.returncode == 0, compare.stderr
    assert "33.3%" in compare.stdout and "100.0%" in compare.stdout
    assert "0.5" in compare.stdout  # McNemar p for 0 vs 2 discordant pairs


def test_sleep_both_runs_paired_cells_and_reports_amortisation(ponder_home: Path,
                                                              tmp_path: Path) -> None:
    out = tmp_path / "runs" / "sleep"
    run = ponder("eval", "run", "--dataset", "multi-query,bins=0,per_bin=1,queries=2",
                 "--strategy", "direct", "--param", "max_tokens=8", "--budgets", "8",
                 "--sleep", "both", "--sleep-param", "rounds=1", "--sleep-param",
                 "max_tokens=16", "--model", "smollm2-135m", "--out", str(out),
                 home=ponder_home)
    assert run.returncode == 0, run.stderr
    cells = {p.parent.name: p.parent for p in out.glob(f"*/{SPEC_FILE}")}
    assert len(cells) == 2
    [slept] = [c for name, c in cells.items() if "sleep" in name]
    [plain] = [c for name, c in cells.items() if "sleep" not in name]
    assert list(out.glob("_sleep/*/contexts.db"))
    assert {r["id"] for r in rows(slept)} == {r["id"] for r in rows(plain)}
    assert sum(phase_tokens(r, "sleep") for r in rows(slept)) > 0
    assert sum(phase_tokens(r, "sleep") for r in rows(plain)) == 0
    assert "sleep tok/item" in run.stdout
    html = tmp_path / "report.html"
    report = ponder("eval", "report", str(out), "--out", str(html), home=ponder_home)
    assert report.returncode == 0, report.stderr
    assert 'alt="amortized_cost"' in html.read_text()


def test_recipes_run_in_quick_mode_and_write_results(ponder_home: Path, tmp_path: Path) -> None:
    listing = ponder("eval", "recipe", home=ponder_home, timeout=60)
    assert listing.returncode == 0
    names = ("sleep-pareto", "sleep-scaling", "amortisation", "predictability",
             "search-equal-budget")
    assert all(name in listing.stdout for name in names)
    bad = ponder("eval", "recipe", "nap", home=ponder_home, timeout=60)
    assert bad.returncode != 0 and "unknown recipe 'nap'" in bad.stderr
    runs, out = tmp_path / "runs", tmp_path / "results"
    run = ponder("eval", "recipe", "all", "--quick", "--model", "smollm2-135m", "--runs",
                 str(runs), "--out", str(out), home=ponder_home, timeout=600)
    assert run.returncode == 0, run.stderr
    for name in names:
        folder = out / name
        assert (folder / f"{name}.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        readme = (folder / "README.md").read_text()
        assert "Quick mode" in readme and "smollm2-135m" in readme and "cores" in readme
        assert "ponder eval recipe all --quick" in readme
        data = json.loads((folder / "results.json").read_text())
        assert data["quick"] is True and data["table"] and data["findings"]
    # Cells shared between recipes ran once: the predictability recipe reran nothing.
    pareto = json.loads((out / "sleep-pareto" / "results.json").read_text())
    assert len(pareto["table"]) == 4
    shared = [c for c in json.loads((out / "predictability" / "results.json").read_text())[
        "cells"] if c["dataset"].endswith("queries=2")]
    assert len(shared) == 2
    assert len(list(runs.glob(f"*/{SPEC_FILE}"))) == 4 + 1 + 2 + 3  # unique cells only
