"""Online mode: a rolling token budget that lowers levels as it drains and raises them
as it refills (for the server, where queries arrive one at a time).

``RollingBudget(tokens_per_window=6000, window_seconds=60)`` allows 6,000
completion tokens in any 60-second window. ``choose`` picks the most expensive
level whose expected tokens fit within ``share`` of what is left now, so one
query never takes the whole window; when nothing fits it returns the cheapest
level (0) rather than refusing: the server degrades, it does not fail.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from ponder.errors import ConfigError


class RollingBudget:
    """Tokens spent in the last ``window_seconds``, against ``tokens_per_window``."""

    def __init__(self, tokens_per_window: int, window_seconds: float = 60.0, *,
                 share: float = 0.25, clock: Callable[[], float] = time.monotonic) -> None:
        if not isinstance(tokens_per_window, int) or tokens_per_window < 1:
            raise ConfigError(f"tokens_per_window must be an integer >= 1, "
                              f"got {tokens_per_window!r}")
        if not window_seconds > 0:
            raise ConfigError(f"window_seconds must be > 0, got {window_seconds!r}")
        if not 0 < share <= 1:
            raise ConfigError(f"share must be in (0, 1], got {share!r}")
        self.tokens_per_window = tokens_per_window
        self.window_seconds = window_seconds
        self.share = share
        self._clock = clock
        self._spent: deque[tuple[float, int]] = deque()
        self._lock = threading.Lock()

    def record(self, tokens: int) -> None:
        """Bill ``tokens`` (a finished request's completion tokens) at the current time."""
        if tokens < 0:
            raise ConfigError(f"tokens must be >= 0, got {tokens!r}")
        with self._lock:
            self._spent.append((self._clock(), tokens))

    def spent(self) -> int:
        """Tokens billed within the current window."""
        with self._lock:
            horizon = self._clock() - self.window_seconds
            while self._spent and self._spent[0][0] <= horizon:
                self._spent.popleft()
            return sum(tokens for _, tokens in self._spent)

    def available(self) -> int:
        return max(0, self.tokens_per_window - self.spent())

    def choose(self, level_tokens: Sequence[float]) -> int:
        """The index of the most expensive level that fits ``share`` of what is left
        (levels ordered by cost); 0 when none fits."""
        if not level_tokens:
            raise ConfigError("level_tokens must list at least one level")
        allowance = self.available() * self.share
        fitting = [i for i, cost in enumerate(level_tokens) if cost <= allowance]
        return fitting[-1] if fitting else 0
