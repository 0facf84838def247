"""Server limits and defaults, in the style of httpx's ``Limits``: a few fields, no I/O.

::

    settings = ServerSettings(max_concurrency=2, max_n=4)
    app = create_app(engine, settings)

``ServerSettings.from_env()`` is the only place that reads the environment
(``PONDER_SERVER_API_KEY``: the key clients must send; ``PONDER_API_KEY`` is
the key ponder sends to a remote engine, never accepted from clients). Every
cap is checked before any token is generated, and a request beyond a cap gets
a 400 that names the parameter.

Online mode: with ``token_budget`` set, requests that pick no strategy get one
of ``budget_levels`` (cheapest first) from a rolling budget of completion
tokens per ``token_budget_window`` seconds (see ``ponder.server.rolling``)::

    ServerSettings(token_budget=6000, token_budget_window=60)
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ponder.budget.allocate import BudgetLevel
from ponder.errors import ConfigError
from ponder.server.errors import ApiError

LOOPBACK = "127.0.0.1"

DEFAULT_EFFORT_STRATEGIES: Mapping[str, str | None] = {
    "none": "direct", "minimal": "direct", "low": "direct",
    "medium": None, "high": "self-consistency", "xhigh": "self-consistency",
    "max": "self-consistency",
}
"""``reasoning_effort`` -> strategy when none is named (None: the server default)."""

DEFAULT_BUDGET_LEVELS: tuple[BudgetLevel, ...] = (
    BudgetLevel("direct", "direct", {"max_tokens": 64}, expected_tokens=32),
    BudgetLevel("cot", "cot", {}, expected_tokens=256),
    BudgetLevel("sc4", "self-consistency", {"n": 4}, expected_tokens=1000),
)
"""The online mode's ladder, cheapest first. ``expected_tokens`` are rough means per
choice (a direct answer, one chain of thought, four chains with early stopping); the
rolling budget bills what requests actually spend, so an estimate that is off only
shifts when levels change."""

SERVER_API_KEY_ENV = "PONDER_SERVER_API_KEY"
"""The key clients must send (separate from the remote engine's ``PONDER_API_KEY``)."""


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Limits and defaults of one server. Frozen; make variants with ``with_``."""

    api_key: str | None = None
    """Clients must send ``Authorization: Bearer <api_key>``; None turns auth off."""
    default_strategy: str | None = None
    """Strategy for requests that name none; None uses the engine's default ("cot")."""
    default_max_tokens: int = 512
    """Per-answer max_tokens when a request gives none."""
    max_body_bytes: int = 1_000_000
    """Larger request bodies get a 413."""
    max_n: int = 8
    """Cap on ``n`` (choices per request)."""
    max_tokens: int = 4096
    """Cap on ``max_tokens`` / ``max_completion_tokens``."""
    max_request_tokens: int = 32_768
    """Completion-token budget of one request (all choices, hidden samples included).
    Also the budget of requests that set none."""
    param_caps: Mapping[str, float] = field(
        default_factory=lambda: {"n": 64, "k": 64, "beam_width": 64, "depth": 64,
                                 "rounds": 64, "iterations": 256})
    """Caps on strategy parameters, by name, for every strategy that has them. A strategy's
    ``max_tokens`` parameter is capped by ``max_tokens``."""
    max_concurrency: int = 4
    """Generating requests admitted at once; more get a 429 with ``Retry-After``."""
    retry_after: int = 1
    """Seconds suggested to a rejected client."""
    request_timeout: float = 300.0
    """Seconds a request may run; then 504 (or an error event when streaming)."""
    progress_interval: float = 5.0
    """Seconds between SSE progress comments while a multi-sample strategy works."""
    effort_strategies: Mapping[str, str | None] = field(
        default_factory=lambda: dict(DEFAULT_EFFORT_STRATEGIES))
    contexts: bool = True
    """Serve the contexts API (sleep-time compute) from a context store."""
    database_url: str | None = None
    """The context store; None: ``$PONDER_DATABASE_URL`` or SQLite in ``$PONDER_HOME``."""
    sleep_worker: bool = True
    """Run the sleep-time compute worker inside the server process."""
    sleep_interval: float = 2.0
    """Seconds between polls of the sleep worker."""
    token_budget: int | None = None
    """Online mode: completion tokens all requests may spend per ``token_budget_window``;
    requests that pick no strategy get the dearest of ``budget_levels`` that fits. None: off."""
    token_budget_window: float = 60.0
    """Seconds of the rolling window (tokens leave the budget this long after they are spent)."""
    token_budget_share: float = 0.25
    """Most of what is left in the window one request's level may expect to spend, in (0, 1]."""
    budget_levels: tuple[BudgetLevel, ...] = DEFAULT_BUDGET_LEVELS
    """Levels for the online mode, cheapest first (strictly rising ``expected_tokens``, per
    choice). A level's ``max_tokens`` is the per-answer cap when the request sets none."""

    def __post_init__(self) -> None:
        positive = {"default_max_tokens": self.default_max_tokens,
                    "max_body_bytes": self.max_body_bytes, "max_n": self.max_n,
                    "max_tokens": self.max_tokens, "max_request_tokens": self.max_request_tokens,
                    "max_concurrency": self.max_concurrency,
                    "request_timeout": self.request_timeout,
                    "progress_interval": self.progress_interval,
                    "sleep_interval": self.sleep_interval}
        for name, value in positive.items():
            if not isinstance(value, int | float) or value <= 0:
                raise ConfigError(f"server setting {name} must be > 0, got {value!r}")
        if self.default_max_tokens > self.max_tokens:
            raise ConfigError(f"server setting default_max_tokens ({self.default_max_tokens}) "
                              f"exceeds max_tokens ({self.max_tokens})")
        if self.retry_after < 0:
            raise ConfigError(f"server setting retry_after must be >= 0, got {self.retry_after}")
        if self.api_key == "":
            object.__setattr__(self, "api_key", None)
        self._check_token_budget()

    def _check_token_budget(self) -> None:
        """The online mode's settings: checked here, strategy names in ``create_app``."""
        budget = self.token_budget
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int)
                                   or budget < 1):
            raise ConfigError(f"server setting token_budget must be an integer >= 1 "
                              f"(or None: off), got {budget!r}")
        if not isinstance(self.token_budget_window, int | float) or \
                not self.token_budget_window > 0:
            raise ConfigError(f"server setting token_budget_window must be > 0 seconds, "
                              f"got {self.token_budget_window!r}")
        if not isinstance(self.token_budget_share, int | float) or \
                not 0 < self.token_budget_share <= 1:
            raise ConfigError(f"server setting token_budget_share must be in (0, 1], "
                              f"got {self.token_budget_share!r}")
        levels = tuple(self.budget_levels)
        object.__setattr__(self, "budget_levels", levels)
        if not levels or not all(isinstance(lv, BudgetLevel) for lv in levels):
            raise ConfigError("server setting budget_levels must list at least one "
                              "BudgetLevel(name, strategy, params, expected_tokens)")
        names = [lv.name for lv in levels]
        if len(set(names)) != len(names):
            raise ConfigError(f"server setting budget_levels: level names repeat: {names}")
        costs = [lv.expected_tokens for lv in levels]
        if any(a >= b for a, b in itertools.pairwise(costs)):
            ladder = ", ".join(f"{n}={c:g}" for n, c in zip(names, costs, strict=True))
            raise ConfigError(f"server setting budget_levels must go cheapest first (strictly "
                              f"rising expected_tokens), got {ladder}")
        for lv in levels:
            if lv.max_tokens is not None and not 1 <= lv.max_tokens <= self.max_tokens:
                raise ConfigError(f"budget level {lv.name!r}: max_tokens={lv.max_tokens} must "
                                  f"be in [1, max_tokens={self.max_tokens}]")

    @classmethod
    def from_env(cls, **overrides: Any) -> ServerSettings:
        """Settings with the clients' API key from ``PONDER_SERVER_API_KEY``."""
        overrides.setdefault("api_key", os.environ.get(SERVER_API_KEY_ENV) or None)
        return cls(**overrides)

    def with_(self, **changes: Any) -> ServerSettings:
        return dataclasses.replace(self, **changes)


class Slot:
    """One admitted request; ``release`` is idempotent."""

    __slots__ = ("_gate",)

    def __init__(self, gate: Gate) -> None:
        self._gate: Gate | None = gate

    def release(self) -> None:
        if self._gate is not None:
            self._gate.active -= 1
            self._gate = None


class Gate:
    """Admits at most ``limit`` generating requests at once and never queues them.

    Used from the event loop only. The embedded backend decodes one call at a
    time anyway; admitting more would only grow a hidden queue and time out.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0

    def try_enter(self) -> Slot | None:
        if self.active >= self.limit:
            return None
        self.active += 1
        return Slot(self)


def check_param_caps(params: Any, settings: ServerSettings) -> None:
    """Refuse strategy parameters beyond the server's caps (before anything runs)."""
    caps = {**settings.param_caps, "max_tokens": settings.max_tokens}
    for field_ in dataclasses.fields(params):
        cap = caps.get(field_.name)
        value = getattr(params, field_.name)
        if cap is not None and isinstance(value, int | float) and value > cap:
            raise ApiError(f"ponder.params.{field_.name}={value} exceeds this server's "
                           f"cap of {cap:g}", param=f"ponder.params.{field_.name}",
                           code="above_cap")
