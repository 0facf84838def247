"""Sleep-time cells of the runner on the real tiny model: one sleep per context,
charged once, kept in a real SQLite store, not redone on resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from ponder.engine import Engine
from ponder.errors import ConfigError
from ponder.evals.datasets import load_dataset
from ponder.evals.metrics import amortized_cost, phase_tokens, summarize
from ponder.evals.results import RESULTS_FILE, SPEC_FILE
from ponder.evals.runner import CellSpec, run_cell, sweep
from ponder.evals.sleep_mode import CONTEXTS_FILE, SLEEP_STORES, sleep_params

DATA = "multi-query,bins=0,per_bin=2,queries=2"  # 2 contexts x 2 questions
SLEEP = (("max_tokens", "24"), ("rounds", "1"))


def rows_of(directory: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (directory / RESULTS_FILE).read_text().splitlines()]


def learned_versions(out: Path, spec: CellSpec) -> int:
    store = out / SLEEP_STORES / str(spec.sleep_store()) / CONTEXTS_FILE
    engine = sa.create_engine(f"sqlite:///{store}")
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM learned_contexts")).scalar())
    finally:
        engine.dispose()


def test_sleep_cell_sleeps_once_per_context_and_resumes(tiny_backend: object,
                                                        tmp_path: Path) -> None:
    engine = Engine(tiny_backend)  # type: ignore[arg-type]
    data = load_dataset(DATA)
    assert len(data) == 4 and len({item.group for item in data}) == 2
    spec = CellSpec(DATA, "direct", (("max_tokens", "8"),), budget=8, sleep=SLEEP)
    assert spec.label == "sleep[max_tokens=24,rounds=1]:direct[max_tokens=8]"
    result = run_cell(engine, spec, tmp_path, dataset=data)
    rows = rows_of(result.directory)
    assert len(rows) == 4
    charged = [r for r in rows if r["sleep"]["charged"]]  # type: ignore[index]
    assert sorted(r["group"] for r in charged) == sorted({i.group for i in data})  # type: ignore[misc]
    for row in rows:
        sleep_tokens = phase_tokens(row, "sleep")
        assert (sleep_tokens > 0) == row["sleep"]["charged"]  # type: ignore[index]
        assert 0 < sleep_tokens <= 24 or not row["sleep"]["charged"]  # type: ignore[index]
        assert 0 < phase_tokens(row, "test") <= 8
        assert isinstance(row["predictability"], float) and row["predictability"] < 0
    assert learned_versions(tmp_path, spec) == 2
    assert json.loads((result.directory / SPEC_FILE).read_text())["sleep"] == dict(SLEEP)

    metrics = summarize(rows)
    total_sleep = sum(phase_tokens(r, "sleep") for r in rows)
    assert metrics.sleep_tokens == pytest.approx(total_sleep / 4)
    test = metrics.test_tokens
    assert amortized_cost(rows, 1) == pytest.approx(total_sleep / 2 + 10 * test)
    assert amortized_cost(rows, 2) < amortized_cost(rows, 1)

    # Resume after losing the last two rows: answered again, never slept on again.
    path = result.directory / RESULTS_FILE
    path.write_text("".join(line + "\n" for line in path.read_text().splitlines()[:2]))
    again = run_cell(engine, spec, tmp_path, dataset=data)
    assert again.resumed == 2 and len(rows_of(again.directory)) == 4
    assert learned_versions(tmp_path, spec) == 2
    charged_again = [r for r in rows_of(again.directory) if r["sleep"]["charged"]]  # type: ignore[index]
    assert sum(phase_tokens(r, "sleep") for r in charged_again) == total_sleep


def test_sleep_cell_needs_stateful_items(tiny_backend: object, tmp_path: Path) -> None:
    engine = Engine(tiny_backend)  # type: ignore[arg-type]
    spec = CellSpec("gsm8k", "direct", budget=4, sleep=())
    with pytest.raises(ConfigError, match="needs stateful items"):
        run_cell(engine, spec, tmp_path, limit=1)


def test_sleep_specs_validate_and_round_trip() -> None:
    spec = CellSpec(DATA, "cot", budget=64, sleep=(("samples", "2"), ("rounds", "1")))
    assert CellSpec.from_dict(spec.to_dict()) == spec
    assert CellSpec.from_dict(CellSpec(DATA, "cot").to_dict()).sleep is None
    assert spec.slug() != CellSpec(DATA, "cot", budget=64).slug()
    assert sleep_params((("samples", "4"), ("temperature", "none"))).samples == 4
    with pytest.raises(ConfigError, match="unknown"):
        CellSpec(DATA, "cot", sleep=(("bogus", "1"),))
    with pytest.raises(ConfigError, match="bad value"):
        CellSpec(DATA, "cot", sleep=(("rounds", "two"),))
    with pytest.raises(ConfigError, match="rounds"):
        CellSpec(DATA, "cot", sleep=(("rounds", "0"),))
    cells = sweep([DATA], ["cot"], {}, [16, 32], sleep=[None, {"rounds": "1"}])
    assert [(c.sleep, c.budget) for c in cells] == [
        (None, 16), (None, 32), ((("rounds", "1"),), 16), ((("rounds", "1"),), 32)]


def test_cells_of_one_sleep_setting_share_the_learned_contexts(tiny_backend: object,
                                                               tmp_path: Path) -> None:
    engine = Engine(tiny_backend)  # type: ignore[arg-type]
    data = load_dataset(DATA)
    small = CellSpec(DATA, "direct", (("max_tokens", "4"),), budget=4, sleep=SLEEP)
    large = CellSpec(DATA, "direct", (("max_tokens", "8"),), budget=8, sleep=SLEEP)
    assert small.sleep_store() == large.sleep_store() and small.slug() != large.slug()
    first = run_cell(engine, small, tmp_path, dataset=data)
    second = run_cell(engine, large, tmp_path, dataset=data)
    assert learned_versions(tmp_path, small) == 2  # slept once per context, not per cell
    sleep = [sum(phase_tokens(r, "sleep") for r in rows_of(c.directory))
             for c in (first, second)]
    assert sleep[0] == sleep[1] > 0  # each cell still accounts for the sleep it used
