"""Token accounting: ``Usage`` per completion, ``Ledger`` per request.

Every backend call records one ``LedgerEntry`` into the ledger that is current
for the running request (a ``contextvars`` value, so concurrent requests and
asyncio tasks never mix counts). Strategies label their calls with
``ledger.scope(phase=..., strategy=...)``.

Token semantics follow the OpenAI API: ``prompt_tokens`` counts every prompt
token the model attended to, and ``cached_prompt_tokens`` is the part of it
served from a cache instead of being prefilled again. So when n samples share
one prompt, the prompt is prefilled once and counted as cached n-1 times.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Literal

Phase = Literal["test", "sleep"]
PHASES: tuple[Phase, ...] = ("test", "sleep")

DEFAULT_TEST_TIME_WEIGHT = 10.0
"""The sleep-time compute paper prices one test-time token at 10 sleep-time tokens."""


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens used by one completion (or a sum of them)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0

    def __post_init__(self) -> None:
        if min(self.prompt_tokens, self.completion_tokens, self.cached_prompt_tokens) < 0:
            raise ValueError(f"token counts cannot be negative: {self}")
        if self.cached_prompt_tokens > self.prompt_tokens:
            raise ValueError(f"cached_prompt_tokens exceeds prompt_tokens: {self}")

    @property
    def prefill_tokens(self) -> int:
        """Prompt tokens actually computed (not served from a cache)."""
        return self.prompt_tokens - self.cached_prompt_tokens

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cached_prompt_tokens + other.cached_prompt_tokens,
        )

    @staticmethod
    def sum(usages: Iterable[Usage]) -> Usage:
        total = Usage()
        for usage in usages:
            total = total + usage
        return total


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One backend call: who made it, what it cost."""

    phase: Phase
    strategy: str
    backend: str
    model: str
    usage: Usage
    seconds: float
    completions: int = 1

    def to_dict(self) -> dict[str, object]:
        row = asdict(self)
        row.update(row.pop("usage"))
        return row


@dataclass(frozen=True, slots=True)
class _Scope:
    phase: Phase = "test"
    strategy: str = "-"


@dataclass
class Ledger:
    """The compute bill of one request.

    Safe to share between threads (a backend running in a worker thread
    records into it). Use ``with ledger.activate():`` to make it current.
    """

    entries: list[LedgerEntry] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, *, backend: str, model: str, usage: Usage, seconds: float,
               completions: int = 1) -> LedgerEntry:
        scope = _current_scope.get()
        entry = LedgerEntry(scope.phase, scope.strategy, backend, model, usage, seconds,
                            completions)
        with self._lock:
            self.entries.append(entry)
        return entry

    @contextlib.contextmanager
    def activate(self) -> Iterator[Ledger]:
        """Make this the ledger that backend calls in this context record into."""
        token = _current_ledger.set(self)
        try:
            yield self
        finally:
            _current_ledger.reset(token)

    @staticmethod
    @contextlib.contextmanager
    def scope(*, phase: Phase | None = None, strategy: str | None = None) -> Iterator[None]:
        """Label the calls made inside this block (nested scopes override)."""
        outer = _current_scope.get()
        if phase is not None and phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
        inner = _Scope(phase or outer.phase, strategy or outer.strategy)
        token = _current_scope.set(inner)
        try:
            yield
        finally:
            _current_scope.reset(token)

    def snapshot(self) -> list[LedgerEntry]:
        with self._lock:
            return list(self.entries)

    def total(self, phase: Phase | None = None) -> Usage:
        return Usage.sum(e.usage for e in self.snapshot() if phase in (None, e.phase))

    def seconds(self, phase: Phase | None = None) -> float:
        return sum(e.seconds for e in self.snapshot() if phase in (None, e.phase))

    @property
    def calls(self) -> int:
        return len(self.snapshot())

    def cost(self, test_time_weight: float = DEFAULT_TEST_TIME_WEIGHT, *,
             include_prompt: bool = False) -> float:
        """Weighted token cost: sleep tokens count 1, test tokens ``test_time_weight``.

        Counts completion tokens, plus prefilled (uncached) prompt tokens when
        ``include_prompt`` is set.
        """

        def tokens(usage: Usage) -> int:
            return usage.completion_tokens + (usage.prefill_tokens if include_prompt else 0)

        return tokens(self.total("sleep")) + test_time_weight * tokens(self.total("test"))

    def by_strategy(self) -> dict[tuple[str, str], Usage]:
        """Usage per (phase, strategy)."""
        out: dict[tuple[str, str], Usage] = {}
        for e in self.snapshot():
            key = (e.phase, e.strategy)
            out[key] = out.get(key, Usage()) + e.usage
        return out

    def extend(self, other: Ledger) -> None:
        """Append another ledger's entries (e.g. a sub-request's)."""
        rows = other.snapshot()
        with self._lock:
            self.entries.extend(rows)

    def summary(self) -> dict[str, object]:
        """A JSON-ready summary: totals, per phase, per strategy, seconds, cost."""
        total = self.total()
        return {
            "calls": self.calls,
            "prompt_tokens": total.prompt_tokens,
            "cached_prompt_tokens": total.cached_prompt_tokens,
            "prefill_tokens": total.prefill_tokens,
            "completion_tokens": total.completion_tokens,
            "total_tokens": total.total_tokens,
            "seconds": round(self.seconds(), 4),
            "phases": {p: asdict(self.total(p)) for p in PHASES},
            "strategies": {f"{ph}/{st}": asdict(u) for (ph, st), u in self.by_strategy().items()},
            "cost": self.cost(),
            "test_time_weight": DEFAULT_TEST_TIME_WEIGHT,
            "entries": [e.to_dict() for e in self.snapshot()],
        }


_current_ledger: contextvars.ContextVar[Ledger | None] = contextvars.ContextVar(
    "ponder_ledger", default=None)
_current_scope: contextvars.ContextVar[_Scope] = contextvars.ContextVar(
    "ponder_ledger_scope", default=_Scope())  # noqa: B039 - _Scope is frozen


def current_ledger() -> Ledger | None:
    """The ledger of the running request, if any."""
    return _current_ledger.get()
