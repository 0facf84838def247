"""Numbered schema migrations, recorded in the ``_migrations`` table (llm's pattern).

Each migration is a function of a connection, named ``mNNN_what``, and runs in
the same transaction as the row that records it, so a crash leaves it either
applied and recorded or neither. A migration's DDL is frozen once released:
to change a table, append a new migration (and update ``schema.py``, which a
test checks against the migrated database). The schema version of a database
is the number of migrations applied to it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlalchemy as sa

from ponder.errors import ConfigError
from ponder.sleep.schema import migrations_table

Migration = Callable[[sa.Connection], None]

_PG_LOCK_KEY = 0x706F6E646572  # "ponder": one advisory lock for all migrating processes


def m001_contexts(conn: sa.Connection) -> None:
    meta = sa.MetaData()
    sa.Table(
        "contexts", meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200)),
        sa.Column("raw_text", sa.Text, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("meta", sa.JSON, nullable=False),
        sa.Column("triggers", sa.JSON, nullable=False),
        sa.Column("turns_since_job", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("last_activity_at", sa.Float, nullable=False),
    )
    meta.create_all(conn)


def m002_learned_contexts(conn: sa.Connection) -> None:
    meta = sa.MetaData()
    sa.Table("contexts", meta, sa.Column("id", sa.Integer, primary_key=True))
    sa.Table(
        "learned_contexts", meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("context_id", sa.Integer, sa.ForeignKey("contexts.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("strategy", sa.String(100), nullable=False),
        sa.Column("raw_revision", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("rounds", sa.Integer, nullable=False),
        sa.Column("samples", sa.Integer, nullable=False),
        sa.Column("sleep_prompt_tokens", sa.Integer, nullable=False),
        sa.Column("sleep_cached_tokens", sa.Integer, nullable=False),
        sa.Column("sleep_completion_tokens", sa.Integer, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("job_id", sa.Integer),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("context_id", "version", name="uq_learned_version"),
    )
    meta.tables["learned_contexts"].create(conn)


def m003_sleep_jobs(conn: sa.Connection) -> None:
    meta = sa.MetaData()
    sa.Table("contexts", meta, sa.Column("id", sa.Integer, primary_key=True))
    sa.Table(
        "sleep_jobs", meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("context_id", sa.Integer, sa.ForeignKey("contexts.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("raw_revision", sa.Integer),
        sa.Column("lease_owner", sa.String(200)),
        sa.Column("lease_expires_at", sa.Float),
        sa.Column("not_before", sa.Float, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("learned_version", sa.Integer),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float),
        sa.Column("finished_at", sa.Float),
        sa.Index("ix_sleep_jobs_status", "status", "not_before"),
        # At most one pending job per context: triggers that fire while one waits join it.
        sa.Index("uq_one_pending_job", "context_id", unique=True,
                 sqlite_where=sa.text("status = 'pending'"),
                 postgresql_where=sa.text("status = 'pending'")),
    )
    meta.tables["sleep_jobs"].create(conn)


def m004_queries(conn: sa.Connection) -> None:
    meta = sa.MetaData()
    sa.Table("contexts", meta, sa.Column("id", sa.Integer, primary_key=True))
    sa.Table(
        "queries", meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("context_id", sa.Integer, sa.ForeignKey("contexts.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("answer", sa.Text),
        sa.Column("learned_version", sa.Integer),
        sa.Column("strategy", sa.String(100), nullable=False),
        sa.Column("test_prompt_tokens", sa.Integer, nullable=False),
        sa.Column("test_cached_tokens", sa.Integer, nullable=False),
        sa.Column("test_completion_tokens", sa.Integer, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("question_logprob", sa.Float),
        sa.Column("question_tokens", sa.Integer),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Index("ix_queries_context", "context_id"),
    )
    meta.tables["queries"].create(conn)


MIGRATIONS: tuple[Migration, ...] = (
    m001_contexts,
    m002_learned_contexts,
    m003_sleep_jobs,
    m004_queries,
)


def migrate(engine: sa.Engine, migrations: tuple[Migration, ...] = MIGRATIONS) -> list[str]:
    """Apply the migrations not yet recorded, in order; returns the names applied.

    Safe when several processes open the same database at once: SQLite
    serialises the transaction (it begins IMMEDIATE), PostgreSQL takes an
    advisory lock.
    """
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        migrations_table.create(conn, checkfirst=True)
        done = set(conn.execute(sa.select(migrations_table.c.name)).scalars())
        unknown = done - {m.__name__ for m in migrations}
        if unknown:
            raise ConfigError(f"the database at {engine.url.render_as_string()} has migrations "
                              f"this ponder does not know ({', '.join(sorted(unknown))}); "
                              "upgrade ponder")
        applied: list[str] = []
        for migration in migrations:
            if migration.__name__ in done:
                continue
            migration(conn)
            conn.execute(migrations_table.insert().values(name=migration.__name__,
                                                          applied_at=time.time()))
            applied.append(migration.__name__)
        return applied


def schema_version(engine: sa.Engine) -> int:
    """How many migrations this database has applied (0 for an empty database)."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(migrations_table.name):
            return 0
        count = conn.execute(sa.select(sa.func.count()).select_from(migrations_table))
        return int(count.scalar_one())
