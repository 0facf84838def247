"""The context store on a real SQLite file (and on PostgreSQL when one is configured)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sleep_helpers import Clock

from ponder.errors import ConfigError
from ponder.ledger import Usage
from ponder.sleep.migrations import MIGRATIONS, migrate, schema_version
from ponder.sleep.records import LearnedDraft, QueryDraft
from ponder.sleep.schema import metadata
from ponder.sleep.store import ContextNotFound, ContextStore, make_engine
from ponder.sleep.triggers import Triggers

DRAFT = LearnedDraft("notes", "m", "sleep-agent:text:k=1", 1, 1, Usage(100, 40), 0.5)


def test_migrations_build_the_current_schema(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert schema_version(engine) == 0
        assert migrate(engine) == [m.__name__ for m in MIGRATIONS]
        assert migrate(engine) == []  # idempotent
        assert schema_version(engine) == len(MIGRATIONS) == 4
        inspector = sa.inspect(engine)
        for table in metadata.sorted_tables:
            columns = {c["name"] for c in inspector.get_columns(table.name)}
            assert columns == {c.name for c in table.columns}, table.name
    finally:
        engine.dispose()


def test_an_older_database_is_upgraded_and_a_newer_one_refused(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert migrate(engine, MIGRATIONS[:2]) == ["m001_contexts", "m002_learned_contexts"]
        assert schema_version(engine) == 2
        with ContextStore(db_url) as store:
            assert store.schema_version() == 4
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO _migrations (name, applied_at) "
                                 "VALUES ('m999_future', 0)"))
        with pytest.raises(ConfigError, match="m999_future"):
            ContextStore(db_url)
    finally:
        engine.dispose()


def test_sqlite_file_is_in_wal_mode(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/sub/dir/ponder.db"
    with ContextStore(url) as store, store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_default_url_is_a_file_in_ponder_home(ponder_home: object,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PONDER_DATABASE_URL", raising=False)
    with ContextStore() as store:
        assert store.url == f"sqlite:///{ponder_home}/ponder.db"
        store.add_context("x")
    monkeypatch.setenv("PONDER_DATABASE_URL", "mysql://nope")
    with pytest.raises(ConfigError, match="sqlite:///PATH or postgresql"):
        ContextStore()


def test_add_get_list_delete(store: ContextStore) -> None:
    a = store.add_context("Ava has 3 apples.", name="ava", meta={"source": "test"})
    b = store.add_context("Ben has 4 pears.", triggers=Triggers(on_ingest=False))
    assert store.get_context(a.id).raw_text == "Ava has 3 apples."
    assert store.get_context(a.id).meta == {"source": "test"}
    assert [(s.id, s.name, s.revision, s.open_jobs) for s in store.list_contexts()] == [
        (a.id, "ava", 1, 1), (b.id, None, 1, 0)]
    store.delete_context(a.id)
    assert [s.id for s in store.list_contexts()] == [b.id]
    assert store.jobs(a.id) == []
    with pytest.raises(ContextNotFound, match=f"unknown context id {a.id}"):
        store.get_context(a.id)


@pytest.mark.parametrize(("text", "message"), [
    ("", "context text is empty"), ("  \n ", "context text is empty"),
    (None, "context text must be a string"), ("x" * 1_000_001, "the limit is 1,000,000"),
])
def test_bad_context_text_is_refused(store: ContextStore, text: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        store.add_context(text)  # type: ignore[arg-type]
    assert store.list_contexts() == []


def test_unknown_ids_are_a_clear_error(store: ContextStore) -> None:
    for call in (lambda: store.get_context(42), lambda: store.append(42, "x"),
                 lambda: store.delete_context(42), lambda: store.enqueue(42),
                 lambda: store.learned_versions(42), lambda: store.queries(42),
                 lambda: store.amortisation(42), lambda: store.get_context("7"),
                 lambda: store.claim_job("w", 10, context_id=42, create=True)):
        with pytest.raises(ContextNotFound, match="unknown context id"):
            call()  # type: ignore[no-untyped-call]


def test_append_makes_a_new_revision_and_fires_every_n(store: ContextStore) -> None:
    ctx = store.add_context("turn 0", triggers=Triggers(on_ingest=False, every=2))
    store.append(ctx.id, "turn 1")
    assert store.jobs(ctx.id) == []
    record = store.append(ctx.id, "turn 2")
    assert record.raw_text == "turn 0\nturn 1\nturn 2" and record.revision == 3
    [job] = store.jobs(ctx.id)
    assert (job.trigger, job.status) == ("turns", "pending")
    for k in range(3, 7):  # more triggers while one job is pending join it
        store.append(ctx.id, f"turn {k}")
    assert len(store.jobs(ctx.id)) == 1
    with pytest.raises(ConfigError, match="appended text is empty"):
        store.append(ctx.id, " ")


def test_queries_count_as_turns(store: ContextStore) -> None:
    ctx = store.add_context("c", triggers=Triggers(on_ingest=False, every=2))
    draft = QueryDraft("q?", "1", None, "cot", Usage(10, 5), 0.1)
    store.record_query(ctx.id, draft)
    assert store.jobs(ctx.id) == []
    store.record_query(ctx.id, draft)
    assert [j.trigger for j in store.jobs(ctx.id)] == ["turns"]


def test_idle_trigger_fires_once_per_quiet_period(store: ContextStore, clock: Clock) -> None:
    ctx = store.add_context("c", triggers=Triggers(on_ingest=False, idle=60))
    clock.advance(59)
    assert store.queue_idle_jobs() == []
    clock.advance(2)
    [job] = store.queue_idle_jobs()
    assert job.trigger == "idle"
    claimed = store.claim_job("w", 30)
    assert claimed is not None and claimed.id == job.id
    store.complete_job(claimed, DRAFT)
    clock.advance(600)
    assert store.queue_idle_jobs() == []  # slept since the last activity
    store.append(ctx.id, "more")
    clock.advance(61)
    assert [j.trigger for j in store.queue_idle_jobs()] == ["idle"]


def test_claim_is_exclusive_and_expired_leases_are_resumed(store: ContextStore,
                                                           clock: Clock) -> None:
    ctx = store.add_context("Ava has 3 apples.")
    first = store.claim_job("worker-a", 30)
    assert first is not None
    assert (first.raw_text, first.raw_revision, first.attempt) == ("Ava has 3 apples.", 1, 1)
    assert store.claim_job("worker-b", 30) is None
    clock.advance(20)
    assert store.renew_lease(first, 30)
    clock.advance(29)
    assert store.claim_job("worker-b", 30) is None  # renewed: still ours
    clock.advance(2)
    second = store.claim_job("worker-b", 30)  # expired: resumed by another worker
    assert second is not None and second.id == first.id and second.attempt == 2
    assert not store.renew_lease(first, 30)
    assert store.complete_job(first, DRAFT).status == "lost"
    assert store.learned_versions(ctx.id) == []
    outcome = store.complete_job(second, DRAFT)
    assert (outcome.status, outcome.learned_version) == ("fresh", 1)
    [job] = store.jobs(ctx.id)
    assert (job.status, job.attempts, job.lease_owner) == ("done", 2, "worker-b")


def test_result_raced_by_an_append_is_stale_and_requeued(store: ContextStore) -> None:
    ctx = store.add_context("turn 0")
    claimed = store.claim_job("w", 30)
    assert claimed is not None
    store.append(ctx.id, "turn 1")
    outcome = store.complete_job(claimed, DRAFT)
    assert (outcome.status, outcome.learned_version) == ("stale", 1)
    assert store.current_learned(ctx.id) is None  # stale versions are never served
    [_, again] = store.jobs(ctx.id)
    assert (again.id, again.trigger, again.status) == (outcome.requeued_job_id, "stale",
                                                       "pending")
    claimed = store.claim_job("w", 30)
    assert claimed is not None and claimed.raw_text == "turn 0\nturn 1"
    assert store.complete_job(claimed, DRAFT).status == "fresh"
    current = store.current_learned(ctx.id)
    assert current is not None and (current.version, current.raw_revision) == (2, 2)
    assert [v.status for v in store.learned_versions(ctx.id)] == ["stale", "fresh"]


def test_completion_is_one_transaction(store: ContextStore,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure after the learned row is inserted leaves no trace of it."""
    ctx = store.add_context("turn 0")
    claimed = store.claim_job("w", 30)
    assert claimed is not None
    store.append(ctx.id, "turn 1")  # forces the stale path, which enqueues last

    def boom(*args: object) -> None:
        raise RuntimeError("crash between writes")

    monkeypatch.setattr(store, "_enqueue", boom)
    with pytest.raises(RuntimeError, match="crash between writes"):
        store.complete_job(claimed, DRAFT)
    monkeypatch.undo()
    assert store.learned_versions(ctx.id) == []
    [job] = store.jobs(ctx.id)
    assert (job.status, job.learned_version) == ("running", None)


def test_failures_back_off_then_give_up(store: ContextStore, clock: Clock) -> None:
    ctx = store.add_context("c")
    for attempt in (1, 2):
        claimed = store.claim_job("w", 30)
        assert claimed is not None and claimed.attempt == attempt
        outcome = store.fail_job(claimed, "BackendError: boom", retry_in=10.0 * attempt)
        assert outcome.status == "retry"
        assert store.claim_job("w", 30) is None  # not due yet
        clock.advance(10.0 * attempt)
    claimed = store.claim_job("w", 30)
    assert claimed is not None and claimed.attempt == 3
    assert store.fail_job(claimed, "BackendError: boom", retry_in=40).status == "failed"
    [job] = store.jobs(ctx.id)
    assert (job.status, job.attempts, job.error) == ("failed", 3, "BackendError: boom")
    assert store.claim_job("w", 30) is None


def test_an_expired_lease_with_no_attempts_left_fails(clock: Clock, db_url: str) -> None:
    with ContextStore(db_url, clock=clock, max_attempts=1) as store:
        ctx = store.add_context("c")
        assert store.claim_job("crashed", 5) is not None
        clock.advance(6)
        assert store.claim_job("w", 5) is None
        [job] = store.jobs(ctx.id)
        assert job.status == "failed" and "gave up after 1 attempts" in (job.error or "")


def test_a_manual_claim_ignores_backoff_and_respects_live_leases(store: ContextStore) -> None:
    ctx = store.add_context("c", triggers=Triggers(on_ingest=False))
    claimed = store.claim_job("cli", 30, context_id=ctx.id, create=True)
    assert claimed is not None and claimed.job.trigger == "manual"
    assert store.claim_job("cli-2", 30, context_id=ctx.id, create=True) is None
    store.fail_job(claimed, "x", retry_in=1000)
    again = store.claim_job("cli", 30, context_id=ctx.id, create=True)
    assert again is not None and again.id == claimed.id


def test_amortisation_shares_sleep_tokens_over_queries(store: ContextStore) -> None:
    ctx = store.add_context("c")
    claimed = store.claim_job("w", 30)
    assert claimed is not None
    store.complete_job(claimed, DRAFT)  # 40 sleep completion tokens
    amortisation = store.amortisation(ctx.id)
    assert amortisation.queries == 0 and amortisation.cost_per_query is None
    for tokens in (5, 7, 6):
        store.record_query(ctx.id, QueryDraft("q?", "1", 1, "cot", Usage(50, tokens), 0.1,
                                              -4.0, 2))
    amortisation = store.amortisation(ctx.id, test_time_weight=10)
    assert (amortisation.sleep_tokens, amortisation.test_tokens) == (40, 18)
    assert amortisation.cost_per_query == pytest.approx((40 + 10 * 18) / 3)
    assert amortisation.history() == pytest.approx([90.0, 80.0, 220 / 3])
    [query, *_] = store.queries(ctx.id)
    assert (query.learned_version, query.logprob_per_token) == (1, -2.0)


def test_triggers_parse() -> None:
    assert Triggers.parse("ingest,every=5,idle=300") == Triggers(True, 5, 300.0)
    assert Triggers.parse("every=3") == Triggers(False, 3, None)
    assert Triggers.parse("none") == Triggers(on_ingest=False)
    assert Triggers.parse("ingest,every=5,idle=300").describe() == "ingest,every=5,idle=300"
    for bad, message in (("every=0", "every must be an integer >= 1"),
                         ("idle=-1", "idle must be a number of seconds > 0"),
                         ("often", "cannot read 'often'"), ("every=x", "needs a number")):
        with pytest.raises(ConfigError, match=message):
            Triggers.parse(bad)
