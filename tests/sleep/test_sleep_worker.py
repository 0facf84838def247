"""The worker: leases, heartbeats, retries with backoff, errors that never stop it."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from sleep_helpers import Clock, turn_counter

from ponder.backends.base import Completion, Prompt
from ponder.backends.scripted import ScriptedBackend
from ponder.errors import BackendError, ConfigError
from ponder.ledger import Usage
from ponder.params import SamplingParams
from ponder.sleep.agent import SleepAgent, SleepParams
from ponder.sleep.store import ContextStore
from ponder.sleep.triggers import Triggers
from ponder.sleep.worker import Backoff, SleepWorker

PARAMS = SleepParams(rounds=2, protocol="tools")


def good_tools(prompt: Prompt, params: SamplingParams) -> list[Completion]:
    call = '{"name": "rethink_memory", "arguments": {"new_memory": "Ben = 5"}}'
    if len(prompt) > 2:  # after the first exchange: done
        call = '{"name": "finish_rethinking_memory", "arguments": {}}'
    return [Completion(f"<tool_call>{call}</tool_call>", "stop", Usage(20, 9))]


def test_a_queued_job_is_processed(store: ContextStore) -> None:
    ctx = store.add_context("Ava has 3 apples.")
    worker = SleepWorker(store, ScriptedBackend(good_tools), SleepAgent(PARAMS))
    outcome = worker.run_once()
    assert outcome is not None and (outcome.status, outcome.learned_version) == ("fresh", 1)
    [learned] = store.learned_versions(ctx.id)
    assert (learned.text, learned.model, learned.rounds) == ("Ben = 5", "scripted", 2)
    assert learned.sleep_usage == Usage(40, 18)
    assert learned.strategy == "sleep-agent:tools:k=1"
    assert worker.run_once() is None


def test_malformed_model_output_is_retried_with_backoff_and_never_stops_the_worker(
        store: ContextStore, clock: Clock) -> None:
    """A model that first answers with broken tool calls: the job fails, is retried later,
    and the worker keeps serving other contexts meanwhile."""
    broken = store.add_context("Ava has 3 apples.")
    attempts = {"n": 0}

    def flaky(prompt: Prompt, params: SamplingParams) -> list[Completion]:
        if "Ava" in prompt[1]["content"] and attempts["n"] < 2:
            attempts["n"] += 1
            return [Completion('<tool_call>{"name": "rethink_memory", "arguments": '
                               '{"new_memory": </tool_call>', "stop", Usage(20, 9))]
        return good_tools(prompt, params)

    worker = SleepWorker(store, ScriptedBackend(flaky),
                         SleepAgent(SleepParams(rounds=1, protocol="tools")),
                         backoff=Backoff(base=30, factor=2))
    first = worker.run_once()
    assert first is not None and first.status == "retry"
    assert "SleepFailed" in (first.error or "") and "not a valid JSON object" in (first.error or "")
    [job] = store.jobs(broken.id)
    assert (job.status, job.not_before) == ("pending", clock.now + 30)
    other = store.add_context("Ben has 2 pears.")
    served = worker.run_once()
    assert served is not None and (served.context_id, served.status) == (other.id, "fresh")
    clock.advance(30)
    assert worker.run_once().status == "retry"  # type: ignore[union-attr]
    assert store.jobs(broken.id)[0].not_before == clock.now + 60
    clock.advance(60)
    last = worker.run_once()
    assert last is not None and (last.context_id, last.status) == (broken.id, "fresh")
    assert store.jobs(broken.id)[0].attempts == 3


def test_a_crashing_backend_is_retried_then_failed(db_url: str, clock: Clock) -> None:
    def boom(prompt: Prompt, params: SamplingParams) -> list[str]:
        raise RuntimeError("segfault-ish")

    with ContextStore(db_url, clock=clock, max_attempts=2) as store:
        ctx = store.add_context("c")
        worker = SleepWorker(store, ScriptedBackend(boom), backoff=Backoff(base=1))
        assert worker.run_once().status == "retry"  # type: ignore[union-attr]
        clock.advance(1)
        outcome = worker.run_once()
        assert outcome is not None and outcome.status == "failed"
        assert outcome.error == "RuntimeError: segfault-ish"
        assert store.jobs(ctx.id)[0].status == "failed"


def test_a_context_too_long_fails_at_once(store: ContextStore) -> None:
    class Small(ScriptedBackend):
        n_ctx = 64

        def render_chat(self, messages: Any, *, add_generation_prompt: bool = True) -> str:
            return " ".join(m["content"] for m in messages)

        def tokenize(self, text: str) -> list[int]:
            return [0] * len(text.split())

    ctx = store.add_context("word " * 200)
    backend = Small(["never used"])
    outcome = SleepWorker(store, backend).run_once()
    assert outcome is not None and outcome.status == "failed"
    assert "too long for the model's window" in (outcome.error or "")
    assert store.jobs(ctx.id)[0].attempts == 1 and backend.calls == []


def test_the_heartbeat_keeps_a_long_job_and_a_lost_lease_drops_the_result(
        db_url: str) -> None:
    """Real time: a 0.3 s lease outlives a 1 s job thanks to renewals; when another worker
    takes the job over anyway, the first one's result is dropped."""
    with ContextStore(db_url) as store:
        ctx = store.add_context("turn 0")
        gate = threading.Event()

        def slow(prompt: Prompt, params: SamplingParams) -> Any:
            gate.wait(5)
            return turn_counter()(prompt, params)

        worker = SleepWorker(store, ScriptedBackend(slow),
                             SleepAgent(SleepParams(rounds=1)), lease_seconds=0.3)
        result: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: result.update(out=worker.run_once()))
        thread.start()
        time.sleep(1.0)
        assert store.claim_job("intruder", 10) is None  # renewed, never expired
        with store.engine.begin() as conn:  # simulate a lease that expired and was taken
            conn.exec_driver_sql("UPDATE sleep_jobs SET lease_owner = 'intruder'")
        gate.set()
        thread.join(10)
        assert result["out"].status == "lost"
        assert store.learned_versions(ctx.id) == []


def test_arun_processes_jobs_until_stopped(store: ContextStore) -> None:
    store.add_context("turn 0")
    store.add_context("turn 0\nturn 1", triggers=Triggers(on_ingest=True))
    worker = SleepWorker(store, ScriptedBackend(turn_counter()),
                         SleepAgent(SleepParams(rounds=1)), poll_seconds=0.05)

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(worker.arun(stop))
        for _ in range(200):
            if not store.jobs(status=("pending", "running")):
                break
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(main())
    assert [j.status for j in store.jobs()] == ["done", "done"]
    assert [v.text for c in (1, 2) for v in store.learned_versions(c)] == [
        "last=turn 0 count=1", "last=turn 1 count=2"]


def test_backoff_and_worker_settings() -> None:
    assert [Backoff(5, 2, 30).delay(n) for n in (1, 2, 3, 4, 5)] == [5, 10, 20, 30, 30]
    with pytest.raises(ConfigError, match="lease_seconds and poll_seconds must be > 0"):
        SleepWorker(None, ScriptedBackend([]), lease_seconds=0)  # type: ignore[arg-type]
    assert issubclass(BackendError, Exception)
