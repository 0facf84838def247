"""Compute-optimal policies fitted on eval runs (scripted runner output), used by
``ponder ask --policy`` (the real tiny model, mechanics only)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

from ponder.backends.base import Prompt
from ponder.backends.scripted import ScriptedBackend
from ponder.budget.policy import Policy, arun_with_policy, fit_policy
from ponder.engine import Engine
from ponder.errors import ConfigError
from ponder.evals.datasets import load_dataset
from ponder.evals.runner import CellSpec, run_cell
from ponder.params import SamplingParams
from ponder.strategies.base import Problem

DATA = "gen,per_bin=3,bins=0-1"
SC = (("n", "3"), ("early_stop", "false"))


def _engine() -> Engine:
    """cot (one sample) is right only on bin 0; three samples are right everywhere."""
    items = {item.full_question: item for item in load_dataset(DATA).items}

    def respond(prompt: Prompt, params: SamplingParams) -> Iterable[str]:
        assert not isinstance(prompt, str)
        item = items[str(prompt[-1]["content"])]
        right = params.n > 1 or item.difficulty == 0
        return [f"step step step step step Answer: {item.answer if right else -1}"] * params.n

    return Engine(ScriptedBackend(respond))


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    engine = _engine()
    for spec in (CellSpec(DATA, "cot", budget=64), CellSpec(DATA, "self-consistency", SC, 64)):
        run_cell(engine, spec, tmp_path / "runs")
    return tmp_path / "runs"


def test_fit_picks_the_cheap_strategy_where_it_suffices(runs: Path) -> None:
    policy = fit_policy([runs], token_cost=0.001)
    assert policy.bins[0].strategy == "cot" and policy.bins[0].accuracy == 1.0
    assert policy.bins[1].strategy == "self-consistency"
    assert policy.bins[1].params == {"early_stop": "false", "n": "3"}
    assert policy.bins[1].tokens == 3 * policy.bins[0].tokens == 21
    assert {len(cells) for cells in policy.cells.values()} == {2}


def test_a_high_token_cost_prefers_the_cheap_strategy_everywhere(runs: Path) -> None:
    policy = fit_policy([runs], token_cost=0.1)
    assert {c.strategy for c in policy.bins.values()} == {"cot"}


def test_policy_round_trips_and_maps_probe_difficulty_to_bins(runs: Path,
                                                               tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    fit_policy([runs], token_cost=0.001).save(path)
    policy = Policy.load(path)
    assert policy == fit_policy([runs], token_cost=0.001)
    assert [policy.bin_for(d) for d in (0.0, 0.49, 0.5, 1.0)] == [0, 0, 1, 1]
    assert policy.choose(7).strategy == "self-consistency"  # nearest fitted bin


def test_run_with_policy_probes_then_runs_the_bins_strategy(runs: Path) -> None:
    policy = fit_policy([runs], token_cost=0.001)
    replies = ["Answer: 1", "Answer: 2", "Answer: 3", "Answer: 4"] + ["Answer: 9"] * 3
    engine = Engine(ScriptedBackend(replies))
    answer = asyncio.run(arun_with_policy(engine, Problem("hard?"), policy))
    assert answer.info["policy"]["bin"] == 1 and answer.info["policy"]["difficulty"] == 0.75
    assert answer.answer == "9" and answer.strategy == "self-consistency"
    assert [e.strategy for e in answer.ledger.entries] == ["probe", "self-consistency"]


def test_fit_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        fit_policy([tmp_path / "nope"])
    with pytest.raises(ConfigError, match="no eval cells"):
        fit_policy([tmp_path])
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ConfigError, match="cannot be read"):
        Policy.load(tmp_path / "bad.json")


def _ponder(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PONDER_HOME": str(home), "COLUMNS": "200",
           "PONDER_THREADS": os.environ.get("PONDER_THREADS", "1")}
    return subprocess.run([sys.executable, "-m", "ponder.cli", *args], capture_output=True,
                          text=True, env=env, timeout=300, check=False)


def test_cli_fit_then_ask_with_the_policy_on_the_tiny_model(runs: Path, tmp_path: Path,
                                                            ponder_home: Path) -> None:
    out = tmp_path / "policy.json"
    fitted = _ponder("budget", "fit", str(runs), "--out", str(out), "--token-cost", "0.001",
                     home=ponder_home)
    assert fitted.returncode == 0, fitted.stderr
    assert "self-consistency" in fitted.stdout
    assert set(json.loads(out.read_text())["bins"]) == {"0", "1"}
    asked = _ponder("ask", "What is 2 + 3?", "--policy", str(out), "--model", "smollm2-135m",
                    "--max-tokens", "16", "--seed", "1", "--json", home=ponder_home)
    assert asked.returncode == 0, asked.stderr
    result = json.loads(asked.stdout)
    chosen = result["info"]["policy"]
    assert chosen["strategy"] == result["strategy"] in ("cot", "self-consistency")
    assert chosen["bin"] in (0, 1)
    strategies = [e["strategy"] for e in result["usage"]["entries"]]
    assert strategies[0] == "probe" and strategies[1:] and set(strategies[1:]) == {
        chosen["strategy"]}
    assert result["usage"]["completion_tokens"] <= 4 * 48 + 3 * 64
