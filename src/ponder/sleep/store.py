"""The context store: raw contexts, learned versions, sleep jobs and queries.

One class over SQLAlchemy 2.x Core. SQLite (a file in ``$PONDER_HOME``, WAL
mode) by default; PostgreSQL when ``PONDER_DATABASE_URL`` (or ``url``) says
``postgresql+psycopg://...``.

Every logical write is one transaction, and every transaction that touches a
context first locks its row (``SELECT ... FOR UPDATE`` on PostgreSQL; on
SQLite each transaction begins IMMEDIATE, which serialises writers). So an
append, a trigger firing, a job claim and a job completion on the same
context never interleave: claims are exclusive, the raw snapshot a job works
on matches the revision it records, and a result is checked against the
current revision in the same transaction that stores it (optimistic
versioning: a raced result is stored as ``stale`` and a new job is queued).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row

from ponder.errors import ConfigError
from ponder.ledger import DEFAULT_TEST_TIME_WEIGHT, Usage
from ponder.model_files import ponder_home
from ponder.sleep.migrations import migrate, schema_version
from ponder.sleep.records import (
    Amortisation,
    ClaimedJob,
    ContextRecord,
    ContextSummary,
    JobOutcome,
    JobRecord,
    LearnedContext,
    LearnedDraft,
    QueryDraft,
    QueryRecord,
)
from ponder.sleep.schema import contexts, learned_contexts, queries, sleep_jobs
from ponder.sleep.triggers import Triggers

MAX_CONTEXT_CHARS = 1_000_000
"""Raw contexts beyond this are refused at the door (no model window comes close)."""

EXAMPLE_QUESTIONS = 5
"""How many recent questions a claimed job carries as hints for the sleep agent."""

_OPEN = ("pending", "running")


class ContextNotFound(ConfigError):
    """No context has this id (it never existed or was deleted)."""

    def __init__(self, context_id: int) -> None:
        super().__init__(f"unknown context id {context_id!r} (see `ponder contexts list`)")
        self.context_id = context_id


def default_database_url() -> str:
    """``$PONDER_DATABASE_URL``, else the SQLite file ``$PONDER_HOME/ponder.db``."""
    url = os.environ.get("PONDER_DATABASE_URL")
    return url or f"sqlite:///{ponder_home() / 'ponder.db'}"


def make_engine(url: str) -> sa.Engine:
    """An engine with ponder's settings: WAL and IMMEDIATE transactions on SQLite."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"database URL {url!r} is not valid: {exc}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed)
    if backend != "postgresql":
        raise ConfigError(f"database URL must be sqlite:///PATH or postgresql+psycopg://..., "
                          f"got {parsed.render_as_string()!r}")
    try:
        return sa.create_engine(parsed, pool_pre_ping=True)
    except ImportError as exc:
        raise ConfigError(f"PostgreSQL needs a driver: pip install 'ponder[postgres]' ({exc})"
                          ) from None


def _sqlite_engine(url: sa.URL) -> sa.Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_conn.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON",
                       "busy_timeout=30000"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # IMMEDIATE takes the write lock up front: no deadlock upgrading a read lock.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class ContextStore:
    """Contexts, their learned versions, sleep jobs and queries, in one database."""

    def __init__(self, url: str | None = None, *, clock: Callable[[], float] = time.time,
                 max_attempts: int = 3) -> None:
        if max_attempts < 1:
            raise ConfigError(f"max_attempts must be >= 1, got {max_attempts!r}")
        self.url = url or default_database_url()
        self.clock = clock
        self.max_attempts = max_attempts
        self.engine = make_engine(self.url)
        try:
            migrate(self.engine)
        except sa.exc.OperationalError as exc:
            self.engine.dispose()
            raise ConfigError(f"cannot open the database {self.display_url}: "
                              f"{str(exc.orig).strip()}") from None
        except BaseException:
            self.engine.dispose()
            raise

    @property
    def display_url(self) -> str:
        """The URL with any password hidden."""
        return sa.make_url(self.url).render_as_string(hide_password=True)

    def schema_version(self) -> int:
        return schema_version(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> ContextStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sa.Connection]:
        with self.engine.begin() as conn:
            yield conn

    # -- contexts -----------------------------------------------------------

    def add_context(self, text: str, *, name: str | None = None,
                    meta: dict[str, Any] | None = None,
                    triggers: Triggers | None = None) -> ContextRecord:
        """Store a raw context; queues a sleep job if its triggers fire on ingest."""
        text = _check_text(text, "context text")
        if name is not None and (not name.strip() or len(name) > 200):
            raise ConfigError(f"name must be 1 to 200 characters, got {name!r}")
        triggers = triggers or Triggers()
        now = self.clock()
        with self._tx() as conn:
            context_id = conn.execute(contexts.insert().values(
                name=name, raw_text=text, revision=1, meta=dict(meta or {}),
                triggers=triggers.to_json(), turns_since_job=0, created_at=now,
                updated_at=now, last_activity_at=now)).inserted_primary_key[0]
            if triggers.on_ingest:
                self._enqueue(conn, context_id, "ingest", now)
            return _context(self._lock(conn, context_id))

    def append(self, context_id: int, text: str, *, separator: str = "\n") -> ContextRecord:
        """Add a turn to the raw context (a new revision); may fire the every-N trigger."""
        text = _check_text(text, "appended text")
        now = self.clock()
        with self._tx() as conn:
            row = self._lock(conn, context_id)
            raw = f"{row.raw_text}{separator}{text}"
            if len(raw) > MAX_CONTEXT_CHARS:
                raise ConfigError(f"context {context_id} would exceed {MAX_CONTEXT_CHARS:,} "
                                  "characters")
            conn.execute(contexts.update().where(contexts.c.id == context_id).values(
                raw_text=raw, revision=row.revision + 1, updated_at=now, last_activity_at=now))
            self._count_turn(conn, context_id, row.turns_since_job, row.triggers, now)
            return _context(self._lock(conn, context_id))

    def get_context(self, context_id: int) -> ContextRecord:
        with self._tx() as conn:
            return _context(self._lock(conn, context_id))

    def delete_context(self, context_id: int) -> None:
        """Delete a context with its learned versions, jobs and queries."""
        with self._tx() as conn:
            self._lock(conn, context_id)
            for table in (queries, sleep_jobs, learned_contexts):
                conn.execute(table.delete().where(table.c.context_id == context_id))
            conn.execute(contexts.delete().where(contexts.c.id == context_id))

    def list_contexts(self) -> list[ContextSummary]:
        with self._tx() as conn:
            rows = conn.execute(sa.select(contexts).order_by(contexts.c.id)).all()
            return [self._summary(conn, row) for row in rows]

    # -- learned contexts ---------------------------------------------------

    def learned_versions(self, context_id: int) -> list[LearnedContext]:
        """Every learned version of a context, oldest first."""
        with self._tx() as conn:
            self._lock(conn, context_id)
            rows = conn.execute(sa.select(learned_contexts)
                                .where(learned_contexts.c.context_id == context_id)
                                .order_by(learned_contexts.c.version)).all()
            return [_learned(row) for row in rows]

    def current_learned(self, context_id: int) -> LearnedContext | None:
        """The newest fresh learned version (stale ones are kept but never served)."""
        with self._tx() as conn:
            self._lock(conn, context_id)
            row = self._newest_fresh(conn, context_id)
            return _learned(row) if row is not None else None

    # -- jobs ---------------------------------------------------------------

    def enqueue(self, context_id: int, trigger: str = "manual") -> JobRecord:
        """Queue a sleep job, or return the context's pending one (one pending per context)."""
        with self._tx() as conn:
            self._lock(conn, context_id)
            return self._enqueue(conn, context_id, trigger, self.clock())

    def jobs(self, context_id: int | None = None,
             status: str | Sequence[str] | None = None) -> list[JobRecord]:
        query = sa.select(sleep_jobs).order_by(sleep_jobs.c.id)
        if context_id is not None:
            query = query.where(sleep_jobs.c.context_id == context_id)
        if status is not None:
            wanted = [status] if isinstance(status, str) else list(status)
            query = query.where(sleep_jobs.c.status.in_(wanted))
        with self._tx() as conn:
            return [_job(row) for row in conn.execute(query).all()]

    def claim_job(self, owner: str, lease_seconds: float, *, context_id: int | None = None,
                  create: bool = False) -> ClaimedJob | None:
        """Lease the oldest runnable job: pending and due, or running with an expired lease.

        With ``context_id``, only that context's jobs (due or not); with
        ``create`` too, a manual job is queued first if none is pending.
        Never hands out a job whose context another live lease is working on.
        """
        if lease_seconds <= 0:
            raise ConfigError(f"lease_seconds must be > 0, got {lease_seconds!r}")
        now = self.clock()
        with self._tx() as conn:
            if context_id is not None:
                self._lock(conn, context_id)
                if create and not self._busy(conn, context_id, now, None):
                    self._enqueue(conn, context_id, "manual", now)
            for row in conn.execute(self._runnable(now, context_id)).all():
                claimed = self._try_claim(conn, row, owner, lease_seconds, now)
                if claimed is not None:
                    return claimed
        return None

    def renew_lease(self, claimed: ClaimedJob, lease_seconds: float) -> bool:
        """Extend our lease; False if it was lost (expired and taken, or the job is gone)."""
        with self._tx() as conn:
            result = conn.execute(sleep_jobs.update().where(*_ours(claimed)).values(
                lease_expires_at=self.clock() + lease_seconds))
            return result.rowcount == 1

    def complete_job(self, claimed: ClaimedJob, draft: LearnedDraft) -> JobOutcome:
        """Store the learned context and finish the job, in one transaction.

        If the raw context changed since the claim, the version is stored as
        ``stale`` and a new job is queued; it never replaces newer state.
        """
        now = self.clock()
        with self._tx() as conn:
            row = self._context_row(conn, claimed.context_id, lock=True)
            job = conn.execute(sa.select(sleep_jobs.c.id).where(*_ours(claimed))).first()
            if row is None or job is None:
                return JobOutcome(claimed.id, claimed.context_id, "lost")
            status = "fresh" if row.revision == claimed.raw_revision else "stale"
            version = self._insert_learned(conn, claimed, draft, status, now)
            conn.execute(sleep_jobs.update().where(sleep_jobs.c.id == claimed.id).values(
                status="done", finished_at=now, learned_version=version,
                lease_expires_at=None, error=None))
            requeued = self._enqueue(conn, row.id, "stale", now) if status == "stale" else None
            return JobOutcome(claimed.id, claimed.context_id, status, version,
                              requeued.id if requeued else None)

    def fail_job(self, claimed: ClaimedJob, error: str, *,
                 retry_in: float | None) -> JobOutcome:
        """Record a failed attempt: back to pending after ``retry_in`` s, or failed for good."""
        now = self.clock()
        with self._tx() as conn:
            self._context_row(conn, claimed.context_id, lock=True)
            job = conn.execute(sa.select(sleep_jobs).where(*_ours(claimed))).first()
            if job is None:
                return JobOutcome(claimed.id, claimed.context_id, "lost", error=error)
            if retry_in is None or job.attempts >= job.max_attempts:
                self._finish_failed(conn, job.id, error, now)
                return JobOutcome(claimed.id, claimed.context_id, "failed", error=error)
            pending = self._pending(conn, job.context_id)
            if pending is not None:  # a newer trigger already queued one: it is the retry
                self._finish_failed(conn, job.id, f"{error} (retry in job {pending.id})", now)
                return JobOutcome(claimed.id, claimed.context_id, "retry",
                                  requeued_job_id=pending.id, error=error)
            conn.execute(sleep_jobs.update().where(sleep_jobs.c.id == job.id).values(
                status="pending", not_before=now + retry_in, lease_owner=None,
                lease_expires_at=None, error=error))
            return JobOutcome(claimed.id, claimed.context_id, "retry",
                              requeued_job_id=job.id, error=error)

    def queue_idle_jobs(self) -> list[JobRecord]:
        """Queue jobs for contexts idle past their ``idle`` trigger and not slept on since."""
        now = self.clock()
        with self._tx() as conn:
            rows = conn.execute(sa.select(contexts.c.id, contexts.c.triggers,
                                          contexts.c.last_activity_at)).all()
        queued = []
        for row in rows:
            idle = Triggers.from_json(row.triggers).idle
            if idle is None or row.last_activity_at + idle > now:
                continue
            with self._tx() as conn:
                fresh = self._context_row(conn, row.id, lock=True)
                if fresh is not None and not self._slept_since(conn, fresh):
                    queued.append(self._enqueue(conn, fresh.id, "idle", now))
        return queued

    # -- queries and amortisation --------------------------------------------

    def record_query(self, context_id: int, draft: QueryDraft) -> QueryRecord:
        """Log an answered query; it counts as a turn for the every-N trigger."""
        now = self.clock()
        usage = draft.test_usage
        with self._tx() as conn:
            row = self._lock(conn, context_id)
            query_id = conn.execute(queries.insert().values(
                context_id=context_id, question=draft.question, answer=draft.answer,
                learned_version=draft.learned_version, strategy=draft.strategy,
                test_prompt_tokens=usage.prompt_tokens,
                test_cached_tokens=usage.cached_prompt_tokens,
                test_completion_tokens=usage.completion_tokens, seconds=draft.seconds,
                question_logprob=draft.question_logprob, question_tokens=draft.question_tokens,
                created_at=now)).inserted_primary_key[0]
            conn.execute(contexts.update().where(contexts.c.id == context_id)
                         .values(last_activity_at=now))
            self._count_turn(conn, context_id, row.turns_since_job, row.triggers, now)
            return _query(conn.execute(sa.select(queries).where(queries.c.id == query_id)).one())

    def queries(self, context_id: int) -> list[QueryRecord]:
        with self._tx() as conn:
            self._lock(conn, context_id)
            rows = conn.execute(sa.select(queries).where(queries.c.context_id == context_id)
                                .order_by(queries.c.id)).all()
            return [_query(row) for row in rows]

    def amortisation(self, context_id: int,
                     test_time_weight: float = DEFAULT_TEST_TIME_WEIGHT) -> Amortisation:
        """Sleep tokens of every learned version, shared by the context's queries."""
        learned = self.learned_versions(context_id)
        asked = self.queries(context_id)
        return Amortisation(
            context_id=context_id,
            sleep_usage=Usage.sum(v.sleep_usage for v in learned),
            queries=len(asked),
            test_usage=Usage.sum(q.test_usage for q in asked),
            test_time_weight=test_time_weight,
            test_tokens_per_query=tuple(q.test_usage.completion_tokens for q in asked),
        )

    # -- internals ----------------------------------------------------------

    def _context_row(self, conn: sa.Connection, context_id: int, *,
                     lock: bool) -> Row[Any] | None:
        query = sa.select(contexts).where(contexts.c.id == context_id)
        return conn.execute(query.with_for_update() if lock else query).first()

    def _lock(self, conn: sa.Connection, context_id: int) -> Row[Any]:
        if not isinstance(context_id, int) or isinstance(context_id, bool):
            raise ContextNotFound(context_id)
        row = self._context_row(conn, context_id, lock=True)
        if row is None:
            raise ContextNotFound(context_id)
        return row

    def _count_turn(self, conn: sa.Connection, context_id: int, turns: int,
                    triggers_json: dict[str, Any], now: float) -> None:
        turns += 1
        if Triggers.from_json(triggers_json).fires_after_turns(turns):
            self._enqueue(conn, context_id, "turns", now)
            turns = 0
        conn.execute(contexts.update().where(contexts.c.id == context_id)
                     .values(turns_since_job=turns))

    def _pending(self, conn: sa.Connection, context_id: int) -> Row[Any] | None:
        return conn.execute(sa.select(sleep_jobs).where(
            sleep_jobs.c.context_id == context_id, sleep_jobs.c.status == "pending")).first()

    def _enqueue(self, conn: sa.Connection, context_id: int, trigger: str,
                 now: float) -> JobRecord:
        existing = self._pending(conn, context_id)
        if existing is not None:
            return _job(existing)
        job_id = conn.execute(sleep_jobs.insert().values(
            context_id=context_id, trigger=trigger, status="pending", attempts=0,
            max_attempts=self.max_attempts, not_before=now, created_at=now)
        ).inserted_primary_key[0]
        return _job(conn.execute(sa.select(sleep_jobs).where(sleep_jobs.c.id == job_id)).one())

    def _busy(self, conn: sa.Connection, context_id: int, now: float,
              except_job: int | None) -> bool:
        """Whether a live lease is working on this context."""
        query = sa.select(sleep_jobs.c.id).where(
            sleep_jobs.c.context_id == context_id, sleep_jobs.c.status == "running",
            sleep_jobs.c.lease_expires_at >= now)
        if except_job is not None:
            query = query.where(sleep_jobs.c.id != except_job)
        return conn.execute(query.limit(1)).first() is not None

    def _runnable(self, now: float, context_id: int | None) -> sa.Select[Any]:
        pending = sleep_jobs.c.status == "pending"
        if context_id is None:
            pending = sa.and_(pending, sleep_jobs.c.not_before <= now)
        expired = sa.and_(sleep_jobs.c.status == "running", sleep_jobs.c.lease_expires_at < now)
        query = sa.select(sleep_jobs).where(sa.or_(pending, expired))
        if context_id is not None:
            query = query.where(sleep_jobs.c.context_id == context_id)
        return query.order_by(sleep_jobs.c.id).limit(50)

    def _try_claim(self, conn: sa.Connection, job: Row[Any], owner: str,
                   lease_seconds: float, now: float) -> ClaimedJob | None:
        row = self._context_row(conn, job.context_id, lock=True)
        if row is None or self._busy(conn, job.context_id, now, job.id):
            return None
        if job.attempts >= job.max_attempts:  # an expired lease with no attempts left
            self._finish_failed(conn, job.id, f"{job.error or 'lease expired'} "
                                f"(gave up after {job.attempts} attempts)", now)
            return None
        result = conn.execute(sleep_jobs.update().where(
            sleep_jobs.c.id == job.id, sleep_jobs.c.status == job.status,
            sleep_jobs.c.attempts == job.attempts,
        ).values(status="running", lease_owner=owner, lease_expires_at=now + lease_seconds,
                 attempts=job.attempts + 1, started_at=now, raw_revision=row.revision))
        if result.rowcount != 1:  # another worker got there first
            return None
        claimed = conn.execute(sa.select(sleep_jobs).where(sleep_jobs.c.id == job.id)).one()
        examples = conn.execute(sa.select(queries.c.question)
                                .where(queries.c.context_id == job.context_id)
                                .order_by(queries.c.id.desc()).limit(EXAMPLE_QUESTIONS)).scalars()
        return ClaimedJob(_job(claimed), owner, row.raw_text, row.revision,
                          tuple(reversed(list(examples))))

    def _finish_failed(self, conn: sa.Connection, job_id: int, error: str, now: float) -> None:
        conn.execute(sleep_jobs.update().where(sleep_jobs.c.id == job_id).values(
            status="failed", finished_at=now, error=error[:4000], lease_expires_at=None))

    def _insert_learned(self, conn: sa.Connection, claimed: ClaimedJob, draft: LearnedDraft,
                        status: str, now: float) -> int:
        latest = conn.execute(sa.select(sa.func.max(learned_contexts.c.version))
                              .where(learned_contexts.c.context_id == claimed.context_id))
        version = (latest.scalar() or 0) + 1
        usage = draft.usage
        conn.execute(learned_contexts.insert().values(
            context_id=claimed.context_id, version=version, text=draft.text, model=draft.model,
            strategy=draft.strategy, raw_revision=claimed.raw_revision, status=status,
            rounds=draft.rounds, samples=draft.samples,
            sleep_prompt_tokens=usage.prompt_tokens,
            sleep_cached_tokens=usage.cached_prompt_tokens,
            sleep_completion_tokens=usage.completion_tokens, seconds=draft.seconds,
            job_id=claimed.id, created_at=now))
        return version

    def _newest_fresh(self, conn: sa.Connection, context_id: int) -> Row[Any] | None:
        return conn.execute(sa.select(learned_contexts).where(
            learned_contexts.c.context_id == context_id, learned_contexts.c.status == "fresh",
        ).order_by(learned_contexts.c.version.desc()).limit(1)).first()

    def _slept_since(self, conn: sa.Connection, row: Row[Any]) -> bool:
        """An open job, or any job queued since the context's last activity."""
        query = sa.select(sleep_jobs.c.id).where(
            sleep_jobs.c.context_id == row.id,
            sa.or_(sleep_jobs.c.status.in_(_OPEN),
                   sleep_jobs.c.created_at >= row.last_activity_at))
        return conn.execute(query.limit(1)).first() is not None

    def _summary(self, conn: sa.Connection, row: Row[Any]) -> ContextSummary:
        fresh = self._newest_fresh(conn, row.id)
        count = sa.select(sa.func.count()).select_from(queries).where(
            queries.c.context_id == row.id)
        open_jobs = sa.select(sa.func.count()).select_from(sleep_jobs).where(
            sleep_jobs.c.context_id == row.id, sleep_jobs.c.status.in_(_OPEN))
        return ContextSummary(
            id=row.id, name=row.name, chars=len(row.raw_text), revision=row.revision,
            triggers=Triggers.from_json(row.triggers),
            learned_version=fresh.version if fresh is not None else None,
            learned_revision=fresh.raw_revision if fresh is not None else None,
            queries=int(conn.execute(count).scalar_one()),
            open_jobs=int(conn.execute(open_jobs).scalar_one()), updated_at=row.updated_at)


def _ours(claimed: ClaimedJob) -> tuple[sa.ColumnElement[bool], ...]:
    """The job is still running under our lease, in the attempt we claimed."""
    return (sleep_jobs.c.id == claimed.id, sleep_jobs.c.status == "running",
            sleep_jobs.c.lease_owner == claimed.owner,
            sleep_jobs.c.attempts == claimed.attempt)


def _check_text(text: object, what: str) -> str:
    if not isinstance(text, str):
        raise ConfigError(f"{what} must be a string, got {type(text).__name__}")
    if not text.strip():
        raise ConfigError(f"{what} is empty")
    if len(text) > MAX_CONTEXT_CHARS:
        raise ConfigError(f"{what} has {len(text):,} characters; the limit is "
                          f"{MAX_CONTEXT_CHARS:,}")
    return text


def _context(row: Row[Any]) -> ContextRecord:
    return ContextRecord(
        id=row.id, name=row.name, raw_text=row.raw_text, revision=row.revision,
        meta=dict(row.meta or {}), triggers=Triggers.from_json(row.triggers),
        turns_since_job=row.turns_since_job, created_at=row.created_at,
        updated_at=row.updated_at, last_activity_at=row.last_activity_at)


def _learned(row: Row[Any]) -> LearnedContext:
    usage = Usage(row.sleep_prompt_tokens, row.sleep_completion_tokens, row.sleep_cached_tokens)
    return LearnedContext(
        context_id=row.context_id, version=row.version, text=row.text, model=row.model,
        strategy=row.strategy, raw_revision=row.raw_revision, status=row.status,
        rounds=row.rounds, samples=row.samples, sleep_usage=usage, seconds=row.seconds,
        job_id=row.job_id, created_at=row.created_at)


def _job(row: Row[Any]) -> JobRecord:
    return JobRecord(
        id=row.id, context_id=row.context_id, trigger=row.trigger, status=row.status,
        attempts=row.attempts, max_attempts=row.max_attempts, raw_revision=row.raw_revision,
        lease_owner=row.lease_owner, lease_expires_at=row.lease_expires_at,
        not_before=row.not_before, error=row.error, learned_version=row.learned_version,
        created_at=row.created_at, started_at=row.started_at, finished_at=row.finished_at)


def _query(row: Row[Any]) -> QueryRecord:
    usage = Usage(row.test_prompt_tokens, row.test_completion_tokens, row.test_cached_tokens)
    return QueryRecord(
        id=row.id, context_id=row.context_id, question=row.question, answer=row.answer,
        learned_version=row.learned_version, strategy=row.strategy, test_usage=usage,
        seconds=row.seconds, question_logprob=row.question_logprob,
        question_tokens=row.question_tokens, created_at=row.created_at)
