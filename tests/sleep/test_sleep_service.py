"""The service's test-time path on a scripted backend: prompt layout, budget, bookkeeping."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sleep_helpers import turn_counter

from ponder.backends.scripted import ScriptedBackend
from ponder.errors import ConfigError
from ponder.sleep import SleepParams, SleepService
from ponder.sleep.store import ContextNotFound, ContextStore
from ponder.sleep.triggers import Triggers

PARAMS = SleepParams(rounds=2)


def service(store: ContextStore, replies: Any) -> SleepService:
    return SleepService(store, ScriptedBackend(replies))


def test_ask_puts_the_learned_context_first_and_records_the_query(store: ContextStore) -> None:
    answers: list[Any] = []

    def respond(prompt: Any, params: Any) -> list[str]:
        if prompt[0]["content"].startswith("You prepare for questions"):
            return turn_counter()(prompt, params)
        answers.append((prompt, params))
        return ["Answer: 2"]

    svc = service(store, respond)
    ctx = svc.add_context("turn 0\nturn 1", triggers="none")
    assert svc.sleep_now(ctx.id, params=PARAMS).learned.text == "last=turn 1 count=2"  # type: ignore[union-attr]
    answer = svc.ask("How many turns?", ctx.id, strategy="cot", budget=40)
    [(prompt, params)] = answers
    system, user = prompt
    assert "Notes prepared in advance" in system["content"]
    assert "last=turn 1 count=2" in system["content"]
    assert user["content"] == "turn 0\nturn 1\n\nHow many turns?"
    assert params.max_tokens == 40  # the budget caps the answer
    assert answer.answer == "2"
    assert (answer.info["learned_version"], answer.info["raw_revision"]) == (1, 1)
    assert answer.info["logprob_per_token"] is None  # the scripted backend cannot score
    [query] = svc.store.queries(ctx.id)
    assert (query.answer, query.learned_version, query.strategy) == ("2", 1, "cot")
    assert query.test_usage == answer.ledger.total("test")
    svc.ask("How many turns?", ctx.id, strategy="cot", include_raw=False)
    assert answers[-1][0][-1]["content"] == "How many turns?"


def test_ask_without_a_learned_context_uses_the_raw_one(store: ContextStore) -> None:
    seen: list[Any] = []
    svc = service(store, lambda prompt, params: seen.append(prompt) or ["3"])
    ctx = svc.add_context("Ava has 3 apples.")
    answer = svc.ask("How many apples?", ctx.id, strategy="direct", include_raw=False)
    assert answer.info["learned_version"] is None
    assert seen[0][-1]["content"] == "Ava has 3 apples.\n\nHow many apples?"
    assert svc.store.queries(ctx.id)[0].learned_version is None


def test_a_stale_learned_context_is_not_served(store: ContextStore) -> None:
    sleeper = turn_counter()
    svc = service(store, lambda prompt, params: sleeper(prompt, params)
                  if "Situation:" in prompt[-1]["content"] else ["1"])
    ctx = svc.add_context("turn 0", triggers="none")
    claimed = store.claim_job("w", 60, context_id=ctx.id, create=True)
    assert claimed is not None
    svc.append(ctx.id, "turn 1")
    outcome = svc.worker(agent=None).process(claimed)
    assert outcome.status == "stale"
    assert svc.learned(ctx.id)[0].status == "stale"
    answer = svc.ask("q?", ctx.id, strategy="direct")
    assert answer.info["learned_version"] is None


def test_queries_fire_the_every_n_trigger(store: ContextStore) -> None:
    svc = service(store, ["1", "2"])
    ctx = svc.add_context("c", triggers=Triggers(on_ingest=False, every=2))
    svc.ask("a?", ctx.id, strategy="direct")
    assert store.jobs(ctx.id) == []
    svc.ask("b?", ctx.id, strategy="direct")
    [job] = store.jobs(ctx.id)
    assert job.trigger == "turns"


def test_asked_questions_are_hints_for_the_next_sleep(store: ContextStore) -> None:
    prompts: list[str] = []

    def respond(prompt: Any, params: Any) -> list[str]:
        if prompt[0]["content"].startswith("You prepare"):
            prompts.append(prompt[-1]["content"])
            return ["notes"] if len(prompts) == 1 else ["FINISH"]
        return ["7"]

    svc = service(store, respond)
    ctx = svc.add_context("c", triggers="none")
    svc.ask("How many pears?", ctx.id, strategy="direct")
    svc.sleep_now(ctx.id, params=PARAMS)
    assert "Questions already asked about it" in prompts[0]
    assert "- How many pears?" in prompts[0]


def test_bad_input_is_refused_clearly(store: ContextStore) -> None:
    svc = service(store, ["x"])
    with pytest.raises(ConfigError, match="context text is empty"):
        svc.add_context("")
    with pytest.raises(ConfigError, match="cannot read 'sometimes'"):
        svc.add_context("c", triggers="sometimes")
    ctx = svc.add_context("c")
    with pytest.raises(ContextNotFound, match="unknown context id 99"):
        svc.ask("q?", 99)
    with pytest.raises(ContextNotFound, match="unknown context id 99"):
        svc.sleep_now(99)
    with pytest.raises(ConfigError, match="question is empty"):
        svc.ask(" ", ctx.id)
    with pytest.raises(ConfigError, match="budget must be an integer >= 1"):
        svc.ask("q?", ctx.id, budget=0)
    with pytest.raises(ConfigError, match="unknown strategy 'nope'"):
        svc.ask("q?", ctx.id, strategy="nope")
    with pytest.raises(ConfigError, match="needs a model"):
        SleepService(store).ask("q?", ctx.id)
    assert store.queries(ctx.id) == []


def test_sleep_now_refuses_a_context_another_worker_holds(store: ContextStore) -> None:
    svc = service(store, ["x"])
    ctx = svc.add_context("c")
    assert store.claim_job("busy-worker", 60) is not None
    with pytest.raises(ConfigError, match="being slept on by busy-worker"):
        svc.sleep_now(ctx.id)


def test_sleep_now_reports_a_failure_and_leaves_the_job_for_retry(store: ContextStore) -> None:
    svc = service(store, ["", "", ""])
    ctx = svc.add_context("c")
    with pytest.raises(Exception, match="wrote no memory block"):
        svc.sleep_now(ctx.id, params=SleepParams(rounds=3))
    [job] = store.jobs(ctx.id)
    assert (job.status, job.attempts) == ("pending", 1)
    assert "SleepFailed" in (job.error or "")


def test_async_sleep_now_runs_in_a_thread(store: ContextStore) -> None:
    svc = service(store, turn_counter())
    ctx = svc.add_context("turn 0\nturn 1", triggers="none")
    report = asyncio.run(svc.asleep_now(ctx.id, params=PARAMS))
    assert report.learned is not None and report.learned.text == "last=turn 1 count=2"
    assert report.ledger.total("sleep").completion_tokens > 0
