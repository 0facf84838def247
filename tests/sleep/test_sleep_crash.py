"""Crash safety: SIGKILL a worker in the middle of a sleep job; a new worker resumes it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa
from sleep_helpers import turn_counter

from ponder.backends.scripted import ScriptedBackend
from ponder.sleep import ContextStore, SleepAgent, SleepParams, SleepWorker

HELPER = Path(__file__).with_name("blocking_worker.py")


def wait_for(path: Path, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "the worker never started the job"
        time.sleep(0.05)


def test_sigkill_mid_job_then_a_new_worker_resumes(db_url: str, tmp_path: Path) -> None:
    marker = tmp_path / "started"
    with ContextStore(db_url) as store:
        ctx = store.add_context("turn 0\nturn 1")
        proc = subprocess.Popen([sys.executable, str(HELPER), db_url, str(marker)],
                                stderr=subprocess.PIPE)
        try:
            wait_for(marker, proc)
            time.sleep(1.5)  # longer than the 1 s lease: only its heartbeat keeps the job
            [job] = store.jobs(ctx.id)
            assert (job.status, job.lease_owner, job.attempts) == ("running", "doomed-worker", 1)
            assert store.claim_job("early-bird", 5) is None
        finally:
            proc.kill()
            proc.wait(10)
        assert proc.returncode == -9
        assert store.learned_versions(ctx.id) == []  # nothing half-written

        worker = SleepWorker(store, ScriptedBackend(turn_counter()),
                             SleepAgent(SleepParams(rounds=2)))
        outcome, deadline = None, time.monotonic() + 30
        while outcome is None and time.monotonic() < deadline:
            outcome = worker.run_once()  # None until the dead worker's lease expires
            time.sleep(0.1)
        assert outcome is not None and (outcome.status, outcome.learned_version) == ("fresh", 1)

        [job] = store.jobs(ctx.id)
        assert (job.status, job.attempts, job.lease_owner) == ("done", 2, worker.owner)
        [learned] = store.learned_versions(ctx.id)
        assert (learned.text, learned.raw_revision, learned.status, learned.job_id) == (
            "last=turn 1 count=2", 1, "fresh", job.id)
        _assert_consistent(store)


def _assert_consistent(store: ContextStore) -> None:
    with store.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        orphans = conn.execute(sa.text(
            "SELECT count(*) FROM learned_contexts l LEFT JOIN sleep_jobs j ON j.id = l.job_id "
            "WHERE j.id IS NULL OR j.status <> 'done' OR j.learned_version <> l.version"))
        assert orphans.scalar() == 0
