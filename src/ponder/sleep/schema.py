"""The current shape of the sleep tables, for queries. Migrations create them.

Times are Unix seconds (floats), so leases compare the same way on SQLite and
PostgreSQL. ``contexts.revision`` counts changes to the raw text: a learned
context records the revision it was built from, which is how a result that
raced with an append is recognised as stale.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

migrations_table = sa.Table(
    "_migrations", metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("applied_at", sa.Float, nullable=False),
)

contexts = sa.Table(
    "contexts", metadata,
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

learned_contexts = sa.Table(
    "learned_contexts", metadata,
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

sleep_jobs = sa.Table(
    "sleep_jobs", metadata,
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
    sa.Index("uq_one_pending_job", "context_id", unique=True,
             sqlite_where=sa.text("status = 'pending'"),
             postgresql_where=sa.text("status = 'pending'")),
)

queries = sa.Table(
    "queries", metadata,
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
