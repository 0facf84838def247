"""Sleep-time cells: each context is slept on once (S(c) -> c′), then its questions are
answered against the learned context.

Sleep cells keep their contexts in a real store under the run folder
(``_sleep/<dataset, sleep setting, seed>/contexts.db``, SQLite), shared by every
cell with the same dataset, sleep setting and seed: one c′ per context serves
all their questions and budgets, and a killed run resumes without sleeping
again. The sleep-time tokens of a context are charged once, to the row of the context's
first item (by dataset order), read back from the store: whichever run did the
sleeping, ``summarize`` and ``amortized_cost`` count every context exactly once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ponder.backends.base import Backend
from ponder.errors import ConfigError
from ponder.evals.datasets import EvalItem
from ponder.ledger import Ledger
from ponder.sleep import SleepParams, SleepService
from ponder.sleep.records import LearnedContext
from ponder.strategies.base import Answer, Strategy
from ponder.strategies.registry import Registry

CONTEXTS_FILE = "contexts.db"
SLEEP_STORES = "_sleep"
"""The run folder's subfolder that holds the shared context stores."""
WAIT_SECONDS = 0.5
SLEEP_STRATEGY = "sleep-agent"


def sleep_params(pairs: Sequence[tuple[str, str]]) -> SleepParams:
    """``SleepParams`` from ``key=value`` strings (``rounds=2``, ``samples=4``, ...)."""
    hints = typing.get_type_hints(SleepParams)
    known = {f.name for f in dataclasses.fields(SleepParams)}
    values: dict[str, Any] = {}
    for key, raw in pairs:
        name = key.replace("-", "_")
        if name not in known:
            raise ConfigError(f"sleep parameter {key!r} is unknown "
                              f"(known: {', '.join(sorted(known))})")
        hint = str(hints[name])
        try:
            if raw.lower() == "none" and "None" in hint:
                values[name] = None
            elif "int" in hint:
                values[name] = int(raw)
            elif "float" in hint:
                values[name] = float(raw)
            else:
                values[name] = raw
        except ValueError:
            raise ConfigError(f"sleep parameter {key}: bad value {raw!r}") from None
    return SleepParams(**values)


def context_key(item: EvalItem) -> str:
    """The context an item's question is about: its group, else the item itself."""
    return item.group or item.id


def first_items(items: Sequence[EvalItem]) -> set[str]:
    """Ids of the first item of every context (they carry the context's sleep tokens)."""
    seen: dict[str, str] = {}
    for item in items:
        seen.setdefault(context_key(item), item.id)
    return set(seen.values())


class SleepSide:
    """The store, the contexts slept on so far, and one lock per context."""

    def __init__(self, directory: Path, backend: Backend, registry: Registry,
                 params: SleepParams) -> None:
        self.params = params
        self.backend = backend
        directory.mkdir(parents=True, exist_ok=True)
        self.service = SleepService.open(f"sqlite:///{directory / CONTEXTS_FILE}", backend,
                                         registry=registry)
        self._ids = {s.name: s.id for s in self.service.list() if s.name}
        self._locks: dict[str, asyncio.Lock] = {}

    def close(self) -> None:
        self.service.close()

    async def learned(self, item: EvalItem) -> tuple[int, LearnedContext]:
        """The context id and its learned version, sleeping on it first if needed."""
        if not item.context:
            raise ConfigError(f"sleep mode needs stateful items (a context and a question); "
                              f"item {item.id!r} has no context")
        key = context_key(item)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if key not in self._ids:  # another process (Ray) may have added it meanwhile
                self._ids.update({s.name: s.id for s in self.service.list() if s.name})
            if key not in self._ids:
                self._ids[key] = self.service.add_context(item.context, name=key).id
            context_id = self._ids[key]
            learned = self.service.store.current_learned(context_id)
            deadline = time.monotonic() + self.service.lease_seconds
            while learned is None and self.service.store.jobs(context_id, "running") \
                    and time.monotonic() < deadline:  # another process is sleeping on it
                await asyncio.sleep(WAIT_SECONDS)
                learned = self.service.store.current_learned(context_id)
            if learned is None:
                learned = (await self.service.asleep_now(context_id, params=self.params)).learned
            if learned is None:
                raise ConfigError(f"sleeping on context {key!r} stored no learned context")
            return context_id, learned

    async def answer(self, item: EvalItem, strategy: Strategy[Any], ledger: Ledger, *,
                     charge_sleep: bool, **options: Any) -> Answer:
        """Answer ``item`` from its learned context; ``ledger`` gets the test-time calls
        and, if ``charge_sleep``, the context's sleep-time usage as one sleep entry."""
        context_id, learned = await self.learned(item)
        if charge_sleep:
            with Ledger.scope(phase="sleep", strategy=SLEEP_STRATEGY):
                ledger.record(backend=self.backend.kind, model=learned.model,
                              usage=learned.sleep_usage, seconds=learned.seconds)
        answer = await self.service.aask(item.question, context_id, strategy=strategy,
                                         kind=item.kind, ledger=ledger, **options)
        answer.info["sleep"] = {"context": context_key(item),
                                "learned_version": learned.version,
                                "memory_chars": len(learned.text)}
        return answer


def predictability_of(answer: Answer) -> float | None:
    """log p(question | context) per token, as ``aask`` measured it."""
    value = answer.info.get("logprob_per_token")
    return float(value) if isinstance(value, int | float) else None

