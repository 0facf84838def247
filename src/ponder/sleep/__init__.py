"""Sleep-time compute: think about a context before the questions arrive.

Lin et al., "Sleep-time Compute: Beyond Inference Scaling at Test-time"
(arXiv:2504.13171; reference code letta-ai/sleep-time-compute, MIT). A raw
context c is stored; offline, a sleep agent rewrites it into a learned
context c′ of precomputed quantities and inferences; at test time the
question is answered with c′ (and c) in the prompt and a small budget. The
sleep tokens are paid once and shared by every question about c.

Design::

    add_context / append ──► contexts (raw text, revision) ──triggers──► sleep_jobs
                                    │                                       │ claim (lease)
                                    │                                       ▼
    ask(q, id, budget) ◄── learned_contexts (version, fresh|stale) ◄── worker: SleepAgent
          │                                                              S(c) -> c′
          ▼
       queries (learned version used, test tokens, log p(q|c)) ──► amortisation

* ``store.py`` — ``ContextStore``, SQLAlchemy 2.x Core. SQLite file
  ``$PONDER_HOME/ponder.db`` in WAL mode by default, PostgreSQL via
  ``PONDER_DATABASE_URL``. Schema changes are numbered functions in
  ``migrations.py`` recorded in ``_migrations`` (schema version = count).
  Every logical write is one transaction that first locks the context's row
  (SQLite: BEGIN IMMEDIATE; PostgreSQL: SELECT ... FOR UPDATE).
* ``agent.py`` — ``SleepAgent``: up to ``rounds`` rethink rounds, each
  replacing the whole memory block (capped at ``max_memory_chars``).
  ``protocols.py`` has the two ways to talk to the model: OpenAI tool calls
  ``rethink_memory(new_memory)`` / ``finish_rethinking_memory()``, and a plain
  text protocol for models without tool calling (the embedded default).
  ``samples`` = k agents run in lockstep, one batched backend call per round,
  then ``selection.py`` picks one by a self-check verifier or merges them.
* ``worker.py`` — ``SleepWorker``: claims a job under a lease (renewed by a
  heartbeat), resumes jobs whose lease expired (a crashed worker), retries
  failures with exponential backoff up to ``max_attempts``, and never dies on
  a job's error. The learned context and the job's completion are written in
  one transaction, so a killed worker leaves nothing half-written.
  Optimistic versioning: a job records the raw revision it read; if the
  context changed before the result is stored, the result is kept as
  ``stale`` (never served, never overwriting newer state) and a new job is
  queued.
* ``triggers.py`` — per-context ``Triggers``: on ingest, after every N
  appended turns or answered queries, after T idle seconds (the worker polls).
* ``service.py`` — ``SleepService``, the Python API behind the CLI and the
  server: ``add_context``, ``append``, ``sleep_now``, ``ask`` (any registered
  strategy, a small ``budget``, records the learned version used),
  ``amortisation``.
* ``predictability.py`` — log p(question | context) per token, from prompt
  logprobs (embedded) or ``/v1/completions`` echo (remote); None otherwise.

Accounting: sleep-agent calls are recorded in the ledger with phase "sleep",
answers with phase "test". Per context, the amortised cost per query is
``sleep tokens / queries + w x test tokens per query`` (completion tokens,
``w = ponder.ledger.DEFAULT_TEST_TIME_WEIGHT = 10`` as in the paper).

Contexts too long for the model's window are refused with a clear
``ConfigError`` before any model call; they are not chunked.
"""

from ponder.sleep.agent import SleepAgent, SleepEvent, SleepFailed, SleepParams, SleepResult
from ponder.sleep.records import (
    Amortisation,
    ContextRecord,
    ContextSummary,
    JobOutcome,
    JobRecord,
    LearnedContext,
    QueryRecord,
)
from ponder.sleep.service import SleepReport, SleepService
from ponder.sleep.store import ContextNotFound, ContextStore, default_database_url
from ponder.sleep.triggers import Triggers
from ponder.sleep.worker import Backoff, SleepWorker

__all__ = [
    "Amortisation",
    "Backoff",
    "ContextNotFound",
    "ContextRecord",
    "ContextStore",
    "ContextSummary",
    "JobOutcome",
    "JobRecord",
    "LearnedContext",
    "QueryRecord",
    "SleepAgent",
    "SleepEvent",
    "SleepFailed",
    "SleepParams",
    "SleepReport",
    "SleepResult",
    "SleepService",
    "SleepWorker",
    "Triggers",
    "default_database_url",
]
