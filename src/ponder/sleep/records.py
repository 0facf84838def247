"""What the store hands out: frozen snapshots of rows, never live objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ponder.ledger import DEFAULT_TEST_TIME_WEIGHT, Usage
from ponder.sleep.triggers import Triggers

JobStatus = Literal["pending", "running", "done", "failed"]
LearnedStatus = Literal["fresh", "stale"]
"""fresh: built from the raw revision that was current when it was stored;
stale: the raw context changed while it was being built (kept, never used)."""


@dataclass(frozen=True, slots=True)
class ContextRecord:
    id: int
    name: str | None
    raw_text: str
    revision: int
    """Bumped by every change to ``raw_text``."""
    meta: dict[str, Any]
    triggers: Triggers
    turns_since_job: int
    created_at: float
    updated_at: float
    last_activity_at: float


@dataclass(frozen=True, slots=True)
class LearnedContext:
    """One version of c′, the context the sleep agent wrote from the raw context c."""

    context_id: int
    version: int
    text: str
    model: str
    strategy: str
    raw_revision: int
    status: LearnedStatus
    rounds: int
    samples: int
    sleep_usage: Usage
    seconds: float
    job_id: int | None
    created_at: float


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: int
    context_id: int
    trigger: str
    status: JobStatus
    attempts: int
    max_attempts: int
    raw_revision: int | None
    lease_owner: str | None
    lease_expires_at: float | None
    not_before: float
    error: str | None
    learned_version: int | None
    created_at: float
    started_at: float | None
    finished_at: float | None


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """A job this worker holds the lease on, with the raw context as of the claim."""

    job: JobRecord
    owner: str
    raw_text: str
    raw_revision: int
    examples: tuple[str, ...] = ()
    """Recent questions asked about the context: hints of what to prepare for."""

    @property
    def id(self) -> int:
        return self.job.id

    @property
    def context_id(self) -> int:
        return self.job.context_id

    @property
    def attempt(self) -> int:
        return self.job.attempts


@dataclass(frozen=True, slots=True)
class LearnedDraft:
    """A sleep agent's result, before the store gives it a version."""

    text: str
    model: str
    strategy: str
    rounds: int
    samples: int
    usage: Usage
    seconds: float


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """What became of a processed job."""

    job_id: int
    context_id: int
    status: Literal["fresh", "stale", "retry", "failed", "lost"]
    """fresh/stale: a learned version was stored; retry: queued again after a failure;
    failed: out of attempts (or a permanent error); lost: the lease or context was gone,
    so the result was dropped."""
    learned_version: int | None = None
    requeued_job_id: int | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class QueryRecord:
    id: int
    context_id: int
    question: str
    answer: str | None
    learned_version: int | None
    strategy: str
    test_usage: Usage
    seconds: float
    question_logprob: float | None
    question_tokens: int | None
    created_at: float

    @property
    def logprob_per_token(self) -> float | None:
        """Predictability: mean log p(question token | context, earlier tokens)."""
        if self.question_logprob is None or not self.question_tokens:
            return None
        return self.question_logprob / self.question_tokens


@dataclass(frozen=True, slots=True)
class QueryDraft:
    question: str
    answer: str | None
    learned_version: int | None
    strategy: str
    test_usage: Usage
    seconds: float
    question_logprob: float | None = None
    question_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Amortisation:
    """The paper's cost model for one context: sleep tokens shared by its queries.

    Costs count completion tokens, as ``Ledger.cost`` does: a sleep-time token
    costs 1 and a test-time token ``test_time_weight`` (10 in the paper).
    """

    context_id: int
    sleep_usage: Usage
    """All sleep runs on this context (every learned version, fresh or stale)."""
    queries: int
    test_usage: Usage
    """All queries answered against this context."""
    test_time_weight: float = DEFAULT_TEST_TIME_WEIGHT
    test_tokens_per_query: tuple[int, ...] = field(default=(), repr=False)
    """Completion tokens of each query, oldest first (for the per-query history)."""

    @property
    def sleep_tokens(self) -> int:
        return self.sleep_usage.completion_tokens

    @property
    def test_tokens(self) -> int:
        return self.test_usage.completion_tokens

    @property
    def cost_per_query(self) -> float | None:
        """sleep tokens / queries + weight x test tokens per query (None before a query)."""
        if self.queries == 0:
            return None
        return (self.sleep_tokens + self.test_time_weight * self.test_tokens) / self.queries

    def history(self) -> list[float]:
        """The amortised cost per query after 1, 2, ... of the queries served so far."""
        out, spent = [], 0
        for q, tokens in enumerate(self.test_tokens_per_query, start=1):
            spent += tokens
            out.append((self.sleep_tokens + self.test_time_weight * spent) / q)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "context_id": self.context_id,
            "sleep_tokens": self.sleep_tokens,
            "sleep_prompt_tokens": self.sleep_usage.prompt_tokens,
            "queries": self.queries,
            "test_tokens": self.test_tokens,
            "test_prompt_tokens": self.test_usage.prompt_tokens,
            "test_time_weight": self.test_time_weight,
            "cost_per_query": self.cost_per_query,
            "history": self.history(),
        }


@dataclass(frozen=True, slots=True)
class ContextSummary:
    """One line of ``ponder contexts list``."""

    id: int
    name: str | None
    chars: int
    revision: int
    triggers: Triggers
    learned_version: int | None
    """The newest fresh learned version (None: not slept on yet)."""
    learned_revision: int | None
    """The raw revision that version was built from."""
    queries: int
    open_jobs: int
    """Pending or running sleep jobs."""
    updated_at: float
