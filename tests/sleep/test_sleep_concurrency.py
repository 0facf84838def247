"""Two workers and a writer on one context, in parallel, each with its own connections."""

from __future__ import annotations

import threading
import time
from collections import Counter

from sleep_helpers import turn_counter

from ponder.backends.scripted import ScriptedBackend
from ponder.sleep import ContextStore, JobOutcome, SleepAgent, SleepParams, SleepWorker
from ponder.sleep.triggers import Triggers

TURNS = 15


def test_two_workers_and_a_writer(db_url: str) -> None:
    with ContextStore(db_url) as setup:
        ctx = setup.add_context("turn 0", triggers=Triggers(on_ingest=True, every=3))
    stop = threading.Event()
    outcomes: dict[str, list[JobOutcome]] = {}
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            with ContextStore(db_url) as store:
                worker = SleepWorker(store, ScriptedBackend(turn_counter(delay=0.03)),
                                     SleepAgent(SleepParams(rounds=2)), lease_seconds=60,
                                     poll_seconds=0.02, owner=name)
                outcomes[name] = []
                worker.run(stop, on_outcome=outcomes[name].append)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    def write() -> None:
        try:
            with ContextStore(db_url) as store:
                for k in range(1, TURNS + 1):
                    store.append(ctx.id, f"turn {k}")
                    time.sleep(0.02)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"worker-{i}",)) for i in (1, 2)]
    writer = threading.Thread(target=write)
    for thread in [*threads, writer]:
        thread.start()
    writer.join(60)
    with ContextStore(db_url) as store:
        deadline = time.monotonic() + 60
        while store.jobs(ctx.id, status=("pending", "running")) and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        for thread in threads:
            thread.join(30)
        assert not errors, errors

        # no lost update: every turn is in the raw context once, in order
        final = store.get_context(ctx.id)
        assert final.raw_text == "\n".join(f"turn {k}" for k in range(TURNS + 1))
        assert final.revision == TURNS + 1

        # no job processed twice
        processed = [o.job_id for runs in outcomes.values() for o in runs]
        assert processed and len(processed) == len(set(processed))
        jobs = store.jobs(ctx.id)
        assert all(j.status == "done" and j.attempts == 1 for j in jobs), jobs
        assert sorted(processed) == [j.id for j in jobs]
        learned = store.learned_versions(ctx.id)
        assert Counter(v.job_id for v in learned) == Counter(j.id for j in jobs)
        assert [v.version for v in learned] == list(range(1, len(learned) + 1))

        # the learned context in use was built from the latest raw context
        current = store.current_learned(ctx.id)
        assert current is not None and current.raw_revision == final.revision
        assert current.text == f"last=turn {TURNS} count={TURNS + 1}"
        assert all(v.raw_revision < final.revision for v in learned if v.status == "stale")
