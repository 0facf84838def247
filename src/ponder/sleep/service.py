"""The Python API of sleep-time compute: contexts in, learned contexts, answers out.

    from ponder.sleep import SleepService
    with SleepService.open(backend=engine.backend) as sleep:
        ctx = sleep.add_context("Mia has 12 apples. She buys 3 bags of 4 apples.")
        sleep.sleep_now(ctx.id)                       # S(c) -> c′, offline
        answer = sleep.ask("How many apples does Mia have?", ctx.id, budget=64)
        print(answer.answer, answer.info["learned_version"], sleep.amortisation(ctx.id))

Test time puts the learned context (and, by default, the raw context) before
the question and answers with any registered strategy under a small token
budget. Each answer is logged as a query with the learned version it used,
its test-time tokens and its predictability, which feed the amortisation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ponder.backends.base import Backend
from ponder.errors import ConfigError
from ponder.ledger import DEFAULT_TEST_TIME_WEIGHT, Ledger
from ponder.params import SamplingParams
from ponder.sleep import prompts
from ponder.sleep.agent import SleepAgent, SleepEvent, SleepParams, check_window
from ponder.sleep.predictability import PredictabilityScorer
from ponder.sleep.records import (
    Amortisation,
    ContextRecord,
    ContextSummary,
    JobOutcome,
    LearnedContext,
    QueryDraft,
)
from ponder.sleep.store import ContextStore
from ponder.sleep.triggers import Triggers
from ponder.sleep.worker import SleepWorker
from ponder.strategies.base import Answer, Problem, RunContext, Strategy
from ponder.strategies.registry import Registry
from ponder.verifiers.answers import AnswerKind

DEFAULT_TEST_BUDGET = 256
"""Completion tokens a question against a learned context may use, by default."""

DEFAULT_ASK_STRATEGY = "cot"


@dataclass(frozen=True, slots=True)
class SleepReport:
    """What ``sleep_now`` did."""

    outcome: JobOutcome
    learned: LearnedContext | None
    """The version stored (fresh, or stale if the context changed meanwhile)."""
    ledger: Ledger = field(repr=False)


class SleepService:
    """Contexts, sleep and asking against learned contexts, over one store and one backend."""

    def __init__(self, store: ContextStore, backend: Backend | None = None, *,
                 registry: Registry | None = None, agent: SleepAgent | None = None,
                 test_time_weight: float = DEFAULT_TEST_TIME_WEIGHT,
                 lease_seconds: float = 120.0) -> None:
        self.store = store
        self.backend = backend
        self.registry = registry
        self.agent = agent or SleepAgent()
        self.test_time_weight = test_time_weight
        self.lease_seconds = lease_seconds
        self._scorer = PredictabilityScorer()

    @classmethod
    def open(cls, url: str | None = None, backend: Backend | None = None,
             **options: Any) -> SleepService:
        """A service over the store at ``url`` (default: ``$PONDER_DATABASE_URL`` or SQLite)."""
        return cls(ContextStore(url), backend, **options)

    def close(self) -> None:
        self._scorer.close()
        self.store.close()

    def __enter__(self) -> SleepService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- contexts (no model needed) -----------------------------------------

    def add_context(self, text: str, *, name: str | None = None,
                    triggers: Triggers | str | None = None,
                    meta: dict[str, Any] | None = None) -> ContextRecord:
        if isinstance(triggers, str):
            triggers = Triggers.parse(triggers)
        return self.store.add_context(text, name=name, triggers=triggers, meta=meta)

    def append(self, context_id: int, text: str) -> ContextRecord:
        return self.store.append(context_id, text)

    def get(self, context_id: int) -> ContextRecord:
        return self.store.get_context(context_id)

    def list(self) -> list[ContextSummary]:
        return self.store.list_contexts()

    def delete(self, context_id: int) -> None:
        self.store.delete_context(context_id)

    def learned(self, context_id: int) -> list[LearnedContext]:
        return self.store.learned_versions(context_id)

    def amortisation(self, context_id: int) -> Amortisation:
        return self.store.amortisation(context_id, self.test_time_weight)

    # -- sleep ----------------------------------------------------------------

    def worker(self, agent: SleepAgent | None = None, **options: Any) -> SleepWorker:
        options.setdefault("lease_seconds", self.lease_seconds)
        return SleepWorker(self.store, self._need_backend(), agent or self.agent, **options)

    def sleep_now(self, context_id: int, *, params: SleepParams | None = None,
                  on_event: Callable[[SleepEvent], None] | None = None,
                  ledger: Ledger | None = None) -> SleepReport:
        """Run the sleep agent on a context now (claiming its pending job, if any).

        Errors reach the caller (and are recorded on the job). Sleep-time
        tokens go to ``ledger`` (a new one by default) with phase "sleep".
        """
        agent = SleepAgent(params, self.agent.verifier) if params is not None else self.agent
        worker = self.worker(agent)
        claimed = self.store.claim_job(worker.owner, worker.lease_seconds,
                                       context_id=context_id, create=True)
        if claimed is None:
            running = self.store.jobs(context_id, "running")
            owner = running[0].lease_owner if running else "another worker"
            raise ConfigError(f"context {context_id} is being slept on by {owner}; wait for "
                              "it or let `ponder sleep worker` finish it")
        ledger = ledger if ledger is not None else Ledger()
        outcome = worker.process(claimed, on_event, ledger, reraise=True)
        learned = None
        if outcome.learned_version is not None:
            learned = next(v for v in self.store.learned_versions(context_id)
                           if v.version == outcome.learned_version)
        return SleepReport(outcome, learned, ledger)

    async def asleep_now(self, context_id: int, **options: Any) -> SleepReport:
        """``sleep_now`` for async callers (the server): the run happens in a thread."""
        return await asyncio.to_thread(self.sleep_now, context_id, **options)

    # -- test time -------------------------------------------------------------

    async def aask(self, question: str, context_id: int, *,
                   strategy: str | Strategy[Any] = DEFAULT_ASK_STRATEGY,
                   params: Mapping[str, Any] | None = None,
                   budget: int | None = DEFAULT_TEST_BUDGET, include_raw: bool = True,
                   sampling: SamplingParams | None = None, system: str | None = None,
                   kind: AnswerKind = "math", predictability: bool = True,
                   ledger: Ledger | None = None) -> Answer:
        """Answer ``question`` about a context, with its newest fresh learned version.

        ``budget`` caps the completion tokens of the whole answer (None: no cap).
        The answer's ``info`` names the context, the learned version used (None
        if it was never slept on), the query id and the predictability.
        """
        if not isinstance(question, str) or not question.strip():
            raise ConfigError("question is empty")
        if budget is not None and (not isinstance(budget, int) or budget < 1):
            raise ConfigError(f"budget must be an integer >= 1 or None, got {budget!r}")
        backend = self._need_backend()
        record = self.store.get_context(context_id)
        learned = self.store.current_learned(context_id)
        problem = answer_problem(question, record.raw_text, learned, include_raw=include_raw,
                                    system=system, kind=kind)
        runner = strategy if isinstance(strategy, Strategy) \
            else self._registry().create(strategy, dict(params or {}))
        sampling = sampling or SamplingParams(max_tokens=min(budget or 512, 512))
        check_window(backend, problem.chat(), sampling.max_tokens, f"context {context_id}'s "
                     "test-time prompt")
        ctx = RunContext(backend=backend, ledger=Ledger(), sampling=sampling,
                         max_total_tokens=budget, registry=self.registry, phase="test")
        started = time.perf_counter()
        score = await self._scorer.score(ctx, record.raw_text, question) if predictability \
            else None
        try:
            answer = await runner.run(problem, ctx)
        finally:  # the caller's ledger sees the tokens even when the budget ran out
            if ledger is not None:
                ledger.extend(ctx.ledger)
        query = self.store.record_query(context_id, QueryDraft(
            question=question, answer=answer.answer,
            learned_version=learned.version if learned else None, strategy=runner.name,
            test_usage=ctx.ledger.total("test"), seconds=time.perf_counter() - started,
            question_logprob=score.logprob if score else None,
            question_tokens=score.tokens if score else None))
        answer.info.update(context_id=context_id, query_id=query.id,
                           learned_version=learned.version if learned else None,
                           learned_revision=learned.raw_revision if learned else None,
                           raw_revision=record.revision,
                           logprob_per_token=query.logprob_per_token)
        return answer

    def ask(self, question: str, context_id: int, **options: Any) -> Answer:
        """Sync facade of ``aask``."""
        return self._need_backend().run_sync(self.aask(question, context_id, **options))

    # -- internals ----------------------------------------------------------

    def _need_backend(self) -> Backend:
        if self.backend is None:
            raise ConfigError("this needs a model: build the service with a backend")
        return self.backend

    def _registry(self) -> Registry:
        if self.registry is None:
            self.registry = Registry.from_entry_points()
        return self.registry


def answer_problem(question: str, raw: str, learned: LearnedContext | None, *,
                      include_raw: bool = True, system: str | None = None,
                      kind: AnswerKind = "math") -> Problem:
    """The test-time prompt: learned context (system), then raw context and question (user)."""
    notes = prompts.ANSWER_WITH_NOTES.format(memory=learned.text) if learned else None
    head = "\n\n".join(s for s in (system, notes) if s) or None
    user = f"{raw.strip()}\n\n{question.strip()}" if include_raw or learned is None \
        else question.strip()
    return Problem(user, system=head, kind=kind)
