"""The sleep worker: claim a job under a lease, run the sleep agent, store c′.

* **Leases.** A claim sets ``lease_expires_at``; a heartbeat thread renews it
  every third of the lease while the agent runs. A worker that dies (even by
  SIGKILL) stops renewing, the lease expires, and the next worker to poll
  claims the job again; nothing it wrote is visible, because the learned
  context and the job's completion are one transaction at the end.
* **Retries.** Any error but a permanent one (``ConfigError``: the context
  cannot fit the window) sends the job back to pending after an exponential
  backoff, until ``max_attempts``; the worker itself never stops on a job's
  error.
* **Optimistic versioning** is the store's: see ``ContextStore.complete_job``.

``run`` is the blocking loop of ``ponder sleep worker``; ``arun`` is the same
loop as an asyncio task (for the server), with the blocking work in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from ponder.backends.base import Backend
from ponder.errors import ConfigError
from ponder.ledger import Ledger
from ponder.sleep.agent import SleepAgent, SleepEvent, SleepInterrupted, SleepResult
from ponder.sleep.records import ClaimedJob, JobOutcome, LearnedDraft
from ponder.sleep.store import ContextStore
from ponder.strategies.base import RunContext

log = logging.getLogger("ponder.sleep.worker")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry n (1-based): ``base * factor**(n-1)``, at most ``cap`` seconds."""

    base: float = 5.0
    factor: float = 2.0
    cap: float = 600.0

    def delay(self, attempt: int) -> float:
        return min(self.cap, self.base * self.factor ** max(0, attempt - 1))


def worker_id() -> str:
    """host:pid:random, unique per worker instance."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class SleepWorker:
    """Processes sleep jobs from one store with one backend."""

    def __init__(self, store: ContextStore, backend: Backend, agent: SleepAgent | None = None,
                 *, lease_seconds: float = 120.0, poll_seconds: float = 2.0,
                 backoff: Backoff | None = None, owner: str | None = None) -> None:
        if lease_seconds <= 0 or poll_seconds <= 0:
            raise ConfigError(f"lease_seconds and poll_seconds must be > 0, got "
                              f"{lease_seconds!r} and {poll_seconds!r}")
        self.store = store
        self.backend = backend
        self.agent = agent or SleepAgent()
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.backoff = backoff or Backoff()
        self.owner = owner or worker_id()

    # -- one job ------------------------------------------------------------

    def run_once(self, on_event: Callable[[SleepEvent], None] | None = None
                 ) -> JobOutcome | None:
        """Claim and process one due job; None when there is none."""
        self.store.queue_idle_jobs()
        claimed = self.store.claim_job(self.owner, self.lease_seconds)
        return self.process(claimed, on_event) if claimed is not None else None

    def process(self, claimed: ClaimedJob, on_event: Callable[[SleepEvent], None] | None = None,
                ledger: Ledger | None = None, *, reraise: bool = False) -> JobOutcome:
        """Run the agent on a claimed job and store the outcome.

        A failure is recorded on the job (retry or failed) and, unless
        ``reraise`` (for a user waiting on ``sleep_now``), not raised.
        """
        ledger = ledger if ledger is not None else Ledger()
        with _Heartbeat(self.store, claimed, self.lease_seconds) as beat:
            try:
                result = self._sleep(claimed, ledger, on_event, beat.lost.is_set)
            except SleepInterrupted:
                if reraise:
                    raise
                return JobOutcome(claimed.id, claimed.context_id, "lost")
            except Exception as exc:  # recorded on the job; the worker goes on
                outcome = self._failed(claimed, exc)
                if reraise:
                    raise
                return outcome
        draft = LearnedDraft(result.memory, self.backend.model, result.strategy, result.rounds,
                             result.samples, result.usage, result.seconds)
        return self.store.complete_job(claimed, draft)

    def _failed(self, claimed: ClaimedJob, exc: Exception) -> JobOutcome:
        if isinstance(exc, ConfigError):  # permanent (e.g. too long): retrying cannot help
            return self.store.fail_job(claimed, _describe(exc), retry_in=None)
        log.warning("sleep job %s attempt %s failed: %s", claimed.id, claimed.attempt,
                    _describe(exc))
        return self.store.fail_job(claimed, _describe(exc),
                                   retry_in=self.backoff.delay(claimed.attempt))

    def _sleep(self, claimed: ClaimedJob, ledger: Ledger,
               on_event: Callable[[SleepEvent], None] | None,
               should_stop: Callable[[], bool]) -> SleepResult:
        ctx = RunContext(backend=self.backend, ledger=ledger, phase="sleep")
        return self.backend.run_sync(self.agent.run(
            claimed.raw_text, ctx, examples=claimed.examples, on_event=on_event,
            should_stop=should_stop))

    # -- loops --------------------------------------------------------------

    def run(self, stop: threading.Event | None = None, *, max_jobs: int | None = None,
            exit_when_idle: bool = False,
            on_outcome: Callable[[JobOutcome], None] | None = None) -> int:
        """Poll and process jobs until ``stop`` is set; returns how many were processed."""
        stop = stop or threading.Event()
        done = 0
        while not stop.is_set() and (max_jobs is None or done < max_jobs):
            try:
                outcome = self.run_once()
            except Exception as exc:  # the database hiccuped: log, wait, go on
                log.warning("sleep worker poll failed: %s", _describe(exc))
                outcome = None
            if outcome is None:
                if exit_when_idle:
                    break
                stop.wait(self.poll_seconds)
                continue
            done += 1
            if on_outcome is not None:
                on_outcome(outcome)
        return done

    async def arun(self, stop: asyncio.Event) -> None:
        """The worker loop as an asyncio task; each job runs in a thread."""
        while not stop.is_set():
            try:
                outcome = await asyncio.to_thread(self.run_once)
            except Exception as exc:
                log.warning("sleep worker poll failed: %s", _describe(exc))
                outcome = None
            if outcome is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.poll_seconds)


class _Heartbeat:
    """Renews a lease in a background thread; sets ``lost`` if renewal fails."""

    def __init__(self, store: ContextStore, claimed: ClaimedJob, lease_seconds: float) -> None:
        self.store, self.claimed, self.lease_seconds = store, claimed, lease_seconds
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{claimed.id}",
                                        daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            try:
                renewed = self.store.renew_lease(self.claimed, self.lease_seconds)
            except Exception as exc:  # a transient DB error: try again next beat
                log.warning("lease renewal for job %s failed: %s", self.claimed.id, exc)
                continue
            if not renewed:
                self.lost.set()
                return


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
