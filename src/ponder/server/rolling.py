"""The server's online mode: a rolling token budget picks the level of requests that pick none.

With ``ServerSettings.token_budget`` set, ``create_app`` puts one ``OnlineBudget``
on ``app.state.token_budget``. It is shared by every request on purpose: it is a
rate budget (completion tokens per ``token_budget_window`` seconds), so it lives
on the app, never in a module global, and ``RollingBudget`` locks its own state.

* ``apply(spec)``: a request that names no strategy (no ``ponder.strategy``, no
  ``<strategy>/<model>`` prefix, no ``reasoning_effort``, no ``ponder.params``)
  and is not raw continuation or tool calling gets the most expensive level whose
  expected tokens (per choice, times its choices) fit the budget's share of what
  is left; when none fits, the cheapest. Other requests keep their strategy.
* ``bill(choices)``: every admitted request, whichever strategy it ran, is billed
  its completion tokens from its ledgers once it ends (success, error, timeout or
  disconnect). Calls still running when a request is cancelled never reach its
  ledger, so they are not billed.

Requests in flight are not counted until they end; ``token_budget_share`` bounds
what one request's level may expect, so a burst overshoots by at most about
``max_concurrency x share`` of what was left.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from ponder.budget.allocate import BudgetLevel
from ponder.budget.online import RollingBudget
from ponder.errors import ConfigError
from ponder.server.errors import ApiError
from ponder.server.protocol import RunSpec
from ponder.server.settings import ServerSettings, check_param_caps
from ponder.strategies.base import RunContext
from ponder.strategies.registry import Registry


def check_levels(settings: ServerSettings, registry: Registry) -> None:
    """Every level names a known strategy with valid parameters within the server's caps
    (at startup, so a typo fails before any request)."""
    for level in settings.budget_levels:
        where = f"budget level {level.name!r}"
        try:
            strategy = registry.get(level.strategy).cls.from_options(dict(level.params))
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        try:
            check_param_caps(strategy.params, settings)
        except ApiError as exc:
            raise ConfigError(f"{where}: {exc.message}") from None


class OnlineBudget:
    """One ``RollingBudget`` and its ladder of levels, for one app."""

    def __init__(self, budget: RollingBudget, levels: Sequence[BudgetLevel]) -> None:
        if not levels:
            raise ConfigError("the online budget needs at least one level")
        self.budget = budget
        self.levels = tuple(levels)
        self._chosen = [0] * len(self.levels)
        self._billed_requests = 0
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: ServerSettings, registry: Registry, *,
                      clock: Callable[[], float] = time.monotonic) -> OnlineBudget | None:
        """The app's online budget, or None when ``token_budget`` is off."""
        if settings.token_budget is None:
            return None
        check_levels(settings, registry)
        return cls(RollingBudget(settings.token_budget, settings.token_budget_window,
                                 share=settings.token_budget_share, clock=clock),
                   settings.budget_levels)

    def apply(self, spec: RunSpec) -> RunSpec:
        """``spec`` with a level's strategy when it names none; otherwise ``spec`` itself."""
        if spec.mode != "strategy" or spec.strategy_from_request:
            return spec
        index = self.budget.choose([lv.expected_tokens * spec.choices for lv in self.levels])
        level = self.levels[index]
        sampling = spec.sampling
        if level.max_tokens is not None and "max_tokens" not in spec.overrides:
            sampling = sampling.with_(max_tokens=level.max_tokens)
        return dataclasses.replace(spec, strategy=level.strategy, params=dict(level.params),
                                   sampling=sampling, budget_level=index)

    def record(self, tokens: int, level: int | None) -> None:
        """Bill one finished request (``level``: the one chosen for it, if any)."""
        self.budget.record(tokens)
        with self._lock:
            self._billed_requests += 1
            if level is not None:
                self._chosen[level] += 1

    def state(self) -> dict[str, Any]:
        """The window now: for /health and each response's ``usage.ponder``."""
        spent = self.budget.spent()
        return {"tokens_per_window": self.budget.tokens_per_window,
                "window_seconds": self.budget.window_seconds, "share": self.budget.share,
                "spent": spent, "available": max(0, self.budget.tokens_per_window - spent)}

    def metric_lines(self) -> list[str]:
        """Prometheus series (see ``ponder.server.metrics``)."""
        state = self.state()
        with self._lock:
            chosen, billed = list(self._chosen), self._billed_requests
        lines = []
        for name, kind, help_, value in (
                ("tokens", "gauge", "Completion tokens allowed per rolling window.",
                 state["tokens_per_window"]),
                ("window_seconds", "gauge", "Length of the rolling window.",
                 state["window_seconds"]),
                ("spent_tokens", "gauge", "Completion tokens billed in the current window.",
                 state["spent"]),
                ("available_tokens", "gauge", "Completion tokens left in the current window.",
                 state["available"]),
                ("billed_requests_total", "counter", "Requests billed to the rolling budget.",
                 billed)):
            lines += [f"# HELP ponder_token_budget_{name} {help_}",
                      f"# TYPE ponder_token_budget_{name} {kind}",
                      f"ponder_token_budget_{name} {value:g}"]
        lines += ["# HELP ponder_token_budget_level_requests_total Billed requests the "
                  "budget gave each level.",
                  "# TYPE ponder_token_budget_level_requests_total counter"]
        lines += [f'ponder_token_budget_level_requests_total{{level="{i}",name="{lv.name}",'
                  f'strategy="{lv.strategy}"}} {n}'
                  for i, (lv, n) in enumerate(zip(self.levels, chosen, strict=True))]
        return lines


class Bill:
    """One request's completion tokens, billed to the online budget exactly once.

    ``settle`` runs where the request ends: after its answers (so the response can
    report the window after it), and again where its slot is freed (errors,
    timeouts, disconnects), where it does nothing the second time.
    """

    def __init__(self, online: OnlineBudget | None, level: int | None,
                 contexts: Sequence[RunContext]) -> None:
        self.online = online
        self.level = level
        self.contexts = tuple(contexts)
        self.tokens: int | None = None

    def settle(self) -> None:
        if self.online is None or self.tokens is not None:
            return
        self.tokens = sum(c.ledger.total().completion_tokens for c in self.contexts)
        self.online.record(self.tokens, self.level)

    def report(self) -> dict[str, Any]:
        """``usage.ponder.token_budget``: the level chosen (None: the request chose) and
        the window after this request; {} when the online mode is off."""
        if self.online is None:
            return {}
        self.settle()
        level = None if self.level is None else self.online.levels[self.level]
        return {"token_budget": {
            "level": self.level, "level_name": level.name if level else None,
            "billed": self.tokens, **self.online.state()}}
