"""benchmarks/adaptive_budget.py end to end on the tiny model (mechanics, not accuracy):
calibration and test splits, the cache, uniform vs adaptive, and one live answer_batch per
planning mode (caps, and the post-hoc calibration means)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

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


def test_mean_planning_keeps_the_caps_and_plans_with_calibration_means() -> None:
    bench = _load()
    planned = bench.planning(LEVELS, [3.5, 14.25, 0.0], "mean")
    assert [lv.expected_tokens for lv in planned] == [3.5, 14.25, 1.0]  # floor: cost > 0
    assert [lv.hard_cap for lv in planned] == [6, 16, 24]
    assert bench.planning(LEVELS, [3.5, 14.25, 0.0], "cap") == LEVELS
    with pytest.raises(ValueError, match="plan"):
        bench.planning(LEVELS, [1.0, 1.0, 1.0], "median")


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
    again = bench.reanalyse(saved)  # --reanalyse repeats both analyses
    assert again["ratios"] == saved["ratios"]
    assert again["plan_mean"]["ratios"] == saved["plan_mean"]["ratios"]
    bench.print_report(saved)
    bench.plot(saved, tmp_path / "plot.png")
    assert (tmp_path / "plot.png").read_bytes()[:4] == b"\x89PNG"
    # a rerun reads every outcome from the cache: no new rows
    bench.measure(Engine(tiny_backend), bench.splits(config)[1], config,  # type: ignore[arg-type]
                  "smollm2-135m", "test")
    assert len(cache.read_text().splitlines()) == 6 * len(LEVELS)

    # --plan mean: same cache (same caps), planned with the calibration split's mean spend
    mean_config = bench.Config(LEVELS, bins="0-2", test_per_bin=1, calib_per_bin=1,
                               cache=cache, plan="mean", log=lambda line: None)
    mean_report = bench.run(Engine(tiny_backend), mean_config,  # type: ignore[arg-type]
                            "smollm2-135m")
    assert len(cache.read_text().splitlines()) == 6 * len(LEVELS)  # no new (item, level) run
    assert mean_report["ratios"] == report["ratios"] and mean_report["live"] is None
    section = mean_report["plan_mean"]
    assert "post hoc" in section["note"] and "calibration split" in section["note"]
    calib_means = mean_report["calibration"]["mean_tokens"]
    assert [lv["expected_tokens"] for lv in section["levels"]] == [max(m, 1.0)
                                                                   for m in calib_means]
    assert [lv["cap"] for lv in section["levels"]] == [lv.hard_cap for lv in LEVELS]
    outcomes = [item["outcomes"] for item in mean_report["items"]]
    for p in section["adaptive"]:  # actual spend from the cache, whatever the budget
        assert p["tokens"] == sum(outcomes[i][lv]["tokens"] for i, lv in enumerate(p["plan"]))
    mean_live = section["live"]
    assert mean_live is not None and mean_live["planning"] == "mean"
    assert mean_live["plan_matches_simulation"] and mean_live["max_query_over_cap"] <= 0
    assert 0 < mean_live["tokens"] <= sum(LEVELS[lv].hard_cap for lv in mean_live["plan"])
    mean_saved = json.loads(json.dumps(mean_report | {
        "model": "smollm2-135m", "hardware": "test",
        "config": {"bins": "0-2", "top_share": 1.0}}))
    assert bench.reanalyse(mean_saved)["plan_mean"]["live"] == mean_live  # kept
    bench.print_report(mean_saved)
    bench.plot(mean_saved, tmp_path / "plot_mean.png")
    assert (tmp_path / "plot_mean.png").read_bytes()[:4] == b"\x89PNG"
