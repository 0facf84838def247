"""The runner on the scripted backend: exact accuracy, durable rows, resume, budgets."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import pytest
from eval_helpers import oracle_engine, question_of

from ponder.backends.base import Prompt
from ponder.backends.scripted import ScriptedBackend
from ponder.engine import Engine
from ponder.errors import BackendError, ConfigError
from ponder.evals.datasets import load_dataset
from ponder.evals.results import RESULTS_FILE, SPEC_FILE, SUMMARY_FILE
from ponder.evals.runner import BudgetMode, CellSpec, run_cell, sweep
from ponder.params import SamplingParams

DATA = "gen,per_bin=2"  # 10 items, bins 0-4 interleaved


def sc(n: int, budget: int, mode: BudgetMode = "sample") -> CellSpec:
    """Self-consistency without early stopping: each item is exactly one n-sample call."""
    return CellSpec(DATA, "self-consistency", (("n", str(n)), ("early_stop", "false")), budget,
                    mode)


def lines(cell_dir: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (cell_dir / RESULTS_FILE).read_text().splitlines()]


def test_accuracy_is_exact_and_rows_are_complete(tmp_path: Path) -> None:
    data = load_dataset(DATA)
    engine, backend = oracle_engine(data, right=lambda i: i % 3 == 0)
    spec = CellSpec(DATA, "cot", budget=64)
    result = run_cell(engine, spec, tmp_path)
    rows = lines(result.directory)
    assert len(rows) == 10 and len(backend.calls) == 10
    assert sum(bool(r["correct"]) for r in rows) == 4  # items 0, 3, 6, 9
    for row in rows:
        assert row["gold"] == data.items[row["index"]].answer
        assert row["prediction"] == (row["gold"] if row["index"] % 3 == 0 else "-1")
        assert row["usage"]["completion_tokens"] == 7  # "step x5 Answer: N" is 7 words
        assert row["usage"]["entries"][0]["strategy"] == "cot"
        assert row["difficulty"] == row["index"] % 5
    summary = json.loads((result.directory / SUMMARY_FILE).read_text())
    assert summary["accuracy"] == pytest.approx(0.4) and summary["items"] == 10
    assert summary["test_tokens_per_item"] == 7
    spec_file = json.loads((result.directory / SPEC_FILE).read_text())
    assert spec_file["strategy"] == "cot" and spec_file["licence"].startswith("generated")


def test_self_consistency_votes_are_recorded(tmp_path: Path) -> None:
    data = load_dataset(DATA)
    gold = {item.full_question: item.answer for item in data}

    def respond(prompt: Prompt, params: SamplingParams) -> Iterable[str]:
        right = f"Answer: {gold[question_of(prompt)]}"
        return [right, "Answer: -1", right][:params.n]

    result = run_cell(Engine(ScriptedBackend(respond)), sc(3, 32), tmp_path)
    rows = lines(result.directory)
    assert all(r["correct"] for r in rows)
    assert all(r["votes"] == {r["gold"]: 2, "-1": 1} for r in rows)
    assert all(r["usage"]["entries"][0]["completions"] == 3 for r in rows)


def test_resume_after_a_limit_skips_done_items(tmp_path: Path) -> None:
    data = load_dataset(DATA)
    engine, backend = oracle_engine(data)
    spec = CellSpec(DATA, "cot", budget=64)
    first = run_cell(engine, spec, tmp_path, limit=4)
    assert len(first.rows) == 4 and first.resumed == 0
    second = run_cell(engine, spec, tmp_path)
    assert second.resumed == 4 and len(second.rows) == 10
    assert len(backend.calls) == 10  # the 4 done items were not asked again
    ids = [r["id"] for r in lines(second.directory)]
    assert len(ids) == len(set(ids)) == 10
    third = run_cell(engine, spec, tmp_path)
    assert third.resumed == 10 and len(backend.calls) == 10


def test_a_crash_keeps_earlier_rows_and_the_rerun_finishes(tmp_path: Path) -> None:
    data = load_dataset(DATA)
    engine, _ = oracle_engine(data)
    gold = {item.full_question: item.answer for item in data}
    asked: list[str] = []

    def dies_on_the_sixth(prompt: Prompt, params: SamplingParams) -> Iterable[str]:
        asked.append(question_of(prompt))
        if len(asked) == 6:
            raise BackendError("engine went away")
        return [f"Answer: {gold[question_of(prompt)]}"]

    spec = CellSpec(DATA, "cot", budget=64)
    with pytest.raises(BackendError, match="went away"):
        run_cell(Engine(ScriptedBackend(dies_on_the_sixth)), spec, tmp_path)
    cell = tmp_path / spec.slug()
    assert len(lines(cell)) == 5
    assert not (cell / SUMMARY_FILE).exists()
    result = run_cell(engine, spec, tmp_path)
    assert result.resumed == 5 and len(lines(cell)) == 10
    assert all(r["correct"] for r in lines(cell))


def test_a_torn_last_line_is_cut_off_and_redone(tmp_path: Path) -> None:
    data = load_dataset(DATA)
    engine, backend = oracle_engine(data)
    spec = CellSpec(DATA, "cot", budget=64)
    run_cell(engine, spec, tmp_path, limit=3)
    results = tmp_path / spec.slug() / RESULTS_FILE
    whole = results.read_bytes()
    torn = b'{"id":"' + data.items[3].id.encode() + b'","correct":tr'
    results.write_bytes(whole + torn)  # a kill in the middle of a write
    result = run_cell(engine, spec, tmp_path, limit=5)
    assert result.repaired_bytes == len(torn) and result.resumed == 3
    assert results.read_bytes().startswith(whole)
    rows = lines(result.directory)
    assert [r["index"] for r in rows] == [0, 1, 2, 3, 4] and len(backend.calls) == 5


def test_a_corrupt_middle_line_is_an_error_not_a_silent_skip(tmp_path: Path) -> None:
    data = load_dataset(DATA)
    engine, _ = oracle_engine(data)
    spec = CellSpec(DATA, "cot", budget=64)
    run_cell(engine, spec, tmp_path, limit=2)
    results = tmp_path / spec.slug() / RESULTS_FILE
    results.write_text("not json\n" + results.read_text())
    with pytest.raises(ConfigError, match=r"results.jsonl:1: corrupt result row"):
        run_cell(engine, spec, tmp_path)


def test_a_changed_spec_does_not_mix_into_an_old_run(tmp_path: Path) -> None:
    data = load_dataset(DATA)
    engine, _ = oracle_engine(data)
    spec = CellSpec(DATA, "cot", budget=64)
    run_cell(engine, spec, tmp_path, limit=2)
    spec_path = tmp_path / spec.slug() / SPEC_FILE
    changed = json.loads(spec_path.read_text()) | {"seed": 99}
    spec_path.write_text(json.dumps(changed))
    with pytest.raises(ConfigError, match=r"different spec.*seed"):
        run_cell(engine, spec, tmp_path)


def test_sample_budget_sets_max_tokens_per_sample(tmp_path: Path) -> None:
    data = load_dataset(DATA)
    engine, backend = oracle_engine(data, words=50)
    run_cell(engine, sc(2, 16), tmp_path, limit=2)
    assert [params.max_tokens for _, params in backend.calls] == [16, 16]
    rows = lines(tmp_path / sc(2, 16).slug())
    assert all(r["usage"]["completion_tokens"] == 32 for r in rows)  # 2 samples x 16, cut
    assert not any(r["correct"] for r in rows)  # the answers were cut off


def test_total_budget_caps_the_whole_request(tmp_path: Path) -> None:
    data = load_dataset(DATA)
    engine, backend = oracle_engine(data, words=50)
    spec = sc(4, 40, "total")
    run_cell(engine, spec, tmp_path, limit=2)
    assert [params.max_tokens for _, params in backend.calls] == [10, 10]  # 40 / 4 samples
    rows = lines(tmp_path / spec.slug())
    assert all(r["usage"]["completion_tokens"] == 40 for r in rows)
    starved = sc(8, 4, "total")
    result = run_cell(engine, starved, tmp_path, limit=2)
    for row in result.rows.values():
        assert row["correct"] is False and row["error"].startswith("BudgetExceeded")
        assert row["usage"]["completion_tokens"] == 0


def test_concurrency_bounds_the_items_in_flight(tmp_path: Path) -> None:
    data = load_dataset(DATA)
    gold = {item.full_question: item.answer for item in data}
    lock = threading.Lock()
    active, peak = [0], [0]

    def slow(prompt: Prompt, params: SamplingParams) -> Iterable[str]:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1
        return [f"Answer: {gold[question_of(prompt)]}"]

    result = run_cell(Engine(ScriptedBackend(slow)), CellSpec(DATA, "cot", budget=8), tmp_path,
                      concurrency=3)
    assert len(result.rows) == 10 and 1 < peak[0] <= 3


def test_sweep_and_bad_specs() -> None:
    cells = sweep(["gen", "gsm8k"], ["cot", "self-consistency"],
                  {"self-consistency": {"n": "4"}}, [128, 256])
    assert len(cells) == 8 and len({c.slug() for c in cells}) == 8
    assert cells[2].label == "self-consistency[n=4]"
    assert CellSpec.from_dict(cells[3].to_dict()) == cells[3]
    with pytest.raises(ConfigError, match="budget must be an integer >= 1"):
        CellSpec("gen", "cot", budget=0)
    with pytest.raises(ConfigError, match="budget_mode"):
        CellSpec("gen", "cot", budget_mode="both")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="at least one"):
        sweep([], ["cot"], {}, [1])
