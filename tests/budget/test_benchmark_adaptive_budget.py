"""benchmarks/adaptive_budget.py end to end on the tiny model (mechanics, not accuracy):
calibration and test splits, the cache, uniform vs adaptive, and one live answer_batch."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

from ponder.budget.allocate import BudgetLevel
from ponder.engine import Engine

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "adaptive_budget.py"
LEVELS = [BudgetLevel("direct", "direct", {"max_tokens": "6"}, expected_tokens=6, max_tokens=6),
          BudgetLevel("cot", "cot", {}, expected_tokens=16, max_tokens=16),
          BudgetLevel("sc2", "self-consistency", {"n": "2", "early_stop": "false"},
                      expected_tokens=24, max_tokens=12)]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("adaptive_budget_bench", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


def test_text_features_need_no_model_and_grow_with_the_story() -> None:
    bench = _load()
    short = bench.text_features("Ava has 3 apples.\n\nHow many apples does Ava have now?")
    long = bench.text_features("Ava has 3 apples. Ben has 2 more apples than Ava. Then Ava "
                               "buys 12 more apples.\n\nHow many apples do Ava and Ben have "
                               "together?")
    assert len(short) == len(long)
    assert long[0] > short[0] and long[1] > short[1] and long[3] > short[3]


def test_tiny_model_run_stays_within_every_budget(tiny_backend: object, tmp_path: Path) -> None:
    bench = _load()
    cache = tmp_path / "outcomes.jsonl"
    config = bench.Config(LEVELS, bins="0-2", test_per_bin=1, calib_per_bin=1, cache=cache,
                          log=lambda line: None)
    report = bench.run(Engine(tiny_backend), config, "smollm2-135m")  # type: ignore[arg-type]

    assert report["test"]["n"] == 3 and report["calibration"]["n"] == 3
    assert len(cache.read_text().splitlines()) == 6 * len(LEVELS)  # every (item, level) once
    for item in report["items"]:
        assert len(item["predicted"]) == len(LEVELS)
        for outcome, level in zip(item["outcomes"], LEVELS, strict=True):
            assert 0 < outcome["tokens"] <= level.expected_tokens  # ledger tokens, capped
    assert [p["policy"] for p in report["uniform"]] == ["uniform direct", "uniform cot",
                                                        "uniform sc2"]
    assert report["adaptive"], "no feasible adaptive budget on the grid"
    for p in report["adaptive"]:
        assert p["tokens"] <= p["budget"]
        assert sum(p["mix"].values()) == 3
    assert {r["uniform"] for r in report["ratios"]} == {p["policy"] for p in report["uniform"]}
    live = report["live"]
    assert live is not None and 0 < live["tokens"] <= live["budget"]
    assert live["plan_matches_simulation"]
    assert live["max_query_over_cap"] <= 0

    saved = json.loads(json.dumps(report | {"model": "smollm2-135m", "hardware": "test",
                                            "config": {"bins": "0-2", "top_share": 1.0}}))
    assert bench.reanalyse(saved)["ratios"] == saved["ratios"]  # --reanalyse repeats it
    bench.print_report(saved)
    bench.plot(saved, tmp_path / "plot.png")
    assert (tmp_path / "plot.png").read_bytes()[:4] == b"\x89PNG"
    # a rerun reads every outcome from the cache: no new rows
    bench.measure(Engine(tiny_backend), bench.splits(config)[1], config,  # type: ignore[arg-type]
                  "smollm2-135m", "test")
    assert len(cache.read_text().splitlines()) == 6 * len(LEVELS)
