"""End to end on the real embedded model and a real SQLite file: add, sleep, ask five times."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from ponder.ledger import Ledger
from ponder.sleep import SleepAgent, SleepParams, SleepService
from ponder.strategies.base import RunContext

CONTEXT = ("Ava has 12 apples. Ben has 5 more apples than Ava. Then Ava buys 8 more apples. "
           "Then Ben gives 3 apples to Ava.")
QUESTIONS = (
    "How many apples does Ava have now?",
    "How many apples does Ben have now?",
    "How many apples do Ava and Ben have together?",
    "How many more apples does Ava have than Ben?",
    "How many apples did Ben have at the start?",
)


def test_add_sleep_ask_five_questions(default_backend: Any, tmp_path: Path) -> None:
    db = tmp_path / "ponder.db"
    ledger = Ledger()
    with SleepService.open(f"sqlite:///{db}", backend=default_backend) as service:
        ctx = service.add_context(CONTEXT, name="apples")
        report = service.sleep_now(ctx.id, params=SleepParams(rounds=2, max_tokens=128),
                                   ledger=ledger)
        learned = report.learned
        assert report.outcome.status == "fresh" and learned is not None
        assert (learned.version, learned.raw_revision, learned.model) == (
            1, 1, default_backend.model)
        assert learned.text.strip() and len(learned.text) <= 5000
        sleep_rows = ledger.snapshot()
        assert len(sleep_rows) == learned.rounds  # one call per rethink round
        assert {(e.phase, e.strategy) for e in sleep_rows} == {("sleep", "sleep-agent")}
        assert learned.sleep_usage == ledger.total("sleep")

        costs = []
        for question in QUESTIONS:
            answer = service.ask(question, ctx.id, strategy="direct", budget=16, ledger=ledger)
            assert answer.info["learned_version"] == 1
            assert answer.info["logprob_per_token"] < 0
            rows = answer.ledger.snapshot()
            assert [(e.phase, e.strategy) for e in rows] == [("test", "predictability"),
                                                             ("test", "direct")]
            assert 0 < answer.ledger.total("test").completion_tokens <= 16
            costs.append(service.amortisation(ctx.id).cost_per_query)

        # the sleep tokens were paid once; every question added its own test tokens
        assert ledger.snapshot()[:len(sleep_rows)] == sleep_rows
        assert sum(e.phase == "sleep" for e in ledger.snapshot()) == len(sleep_rows)
        assert sum(e.phase == "test" for e in ledger.snapshot()) == 2 * len(QUESTIONS)
        asked = service.store.queries(ctx.id)
        assert [q.question for q in asked] == list(QUESTIONS)
        assert all(q.learned_version == 1 and q.question_tokens for q in asked)
        amortisation = service.amortisation(ctx.id)
        assert amortisation.sleep_tokens == ledger.total("sleep").completion_tokens
        assert amortisation.test_tokens == ledger.total("test").completion_tokens
        assert amortisation.queries == 5
        # amortised cost per query falls as questions are added
        assert costs == amortisation.history()
        assert all(a > b for a, b in itertools.pairwise(costs)), costs
        with service.store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    assert db.is_file()


def test_parallel_sleep_agents_selected_by_self_check_on_the_tiny_model(
        tiny_backend: Any) -> None:
    """Sleep-time scaling mechanics on a real model: k agents decode together (one shared
    prefill), the self-check verifier reads P(Yes) from real logprobs, the best is kept."""
    ledger = Ledger()
    ctx = RunContext(tiny_backend, ledger, phase="sleep")
    agent = SleepAgent(SleepParams(rounds=1, samples=3, max_tokens=32, seed=1))
    result = tiny_backend.run_sync(agent.run(CONTEXT, ctx))
    assert result.samples == 3 and result.scores is not None and len(result.scores) == 3
    assert all(0.0 <= s <= 1.0 for s in result.scores)
    assert result.chosen == max(range(3), key=lambda i: (result.scores[i], -i))
    assert result.memory == result.memories[result.chosen]
    first, check = ledger.snapshot()
    assert (first.strategy, first.completions) == ("sleep-agent", 3)
    # the 3 samples share one prefill: at least 2 of the 3 prompts come from the cache
    # (more when an earlier test left a common prefix in the shared backend's cache)
    assert first.usage.cached_prompt_tokens >= 2 * (first.usage.prompt_tokens // 3)
    assert (check.phase, check.strategy, check.completions) == ("sleep", "self-check", 3)


@pytest.mark.slow
def test_tool_calling_protocol_on_the_default_model(default_backend: Any) -> None:
    ledger = Ledger()
    agent = SleepAgent(SleepParams(rounds=2, protocol="tools", max_tokens=160))
    result = default_backend.run_sync(agent.run(CONTEXT, RunContext(default_backend, ledger,
                                                                    phase="sleep")))
    assert result.protocol == "tools" and result.memory.strip()
    assert {e.strategy for e in ledger.snapshot()} == {"sleep-agent"}
