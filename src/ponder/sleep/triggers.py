"""When a context gets a sleep job: on ingest, after N turns, after T idle seconds.

Each context carries its own ``Triggers`` (stored with it as JSON). The store
applies them inside the transaction that changes the context, so a trigger
never fires twice for one event; the worker polls for idle contexts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ponder.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Triggers:
    """Per-context sleep triggers. ``Triggers.parse("ingest,every=5,idle=300")``."""

    on_ingest: bool = True
    """Queue a job when the context is added."""
    every: int | None = None
    """Queue a job after this many appended turns or answered queries (>= 1); None: off."""
    idle: float | None = None
    """Queue a job when the context has had no activity for this many seconds (> 0); None: off."""

    def __post_init__(self) -> None:
        if not isinstance(self.on_ingest, bool):
            raise ConfigError(f"triggers.on_ingest must be true or false, got {self.on_ingest!r}")
        if self.every is not None and (not isinstance(self.every, int) or isinstance(
                self.every, bool) or self.every < 1):
            raise ConfigError(f"triggers.every must be an integer >= 1 or None, got {self.every!r}")
        if self.idle is not None and (not isinstance(self.idle, int | float) or isinstance(
                self.idle, bool) or not self.idle > 0):
            raise ConfigError(f"triggers.idle must be a number of seconds > 0 or None, "
                              f"got {self.idle!r}")

    @classmethod
    def parse(cls, spec: str) -> Triggers:
        """Read ``"ingest,every=5,idle=300"``; ``"none"`` turns every trigger off."""
        spec = spec.strip()
        if spec.lower() in ("", "none", "off", "manual"):
            return cls(on_ingest=False)
        on_ingest, every, idle = False, None, None
        for item in (part.strip() for part in spec.split(",")):
            key, _, value = item.partition("=")
            key = key.strip().lower()
            if key == "ingest" and not value:
                on_ingest = True
            elif key == "every" and value:
                every = _number(int, value, item)
            elif key == "idle" and value:
                idle = _number(float, value, item)
            else:
                raise ConfigError(f"--triggers: cannot read {item!r}; use a comma list of "
                                  "ingest, every=N, idle=SECONDS (or none)")
        return cls(on_ingest, every, idle)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Triggers:
        return cls(**data) if data else cls()

    def describe(self) -> str:
        parts = ["ingest"] if self.on_ingest else []
        if self.every is not None:
            parts.append(f"every={self.every}")
        if self.idle is not None:
            parts.append(f"idle={self.idle:g}")
        return ",".join(parts) or "none"

    def fires_after_turns(self, turns: int) -> bool:
        """Whether ``turns`` turns/queries since the last queued job reach the threshold."""
        return self.every is not None and turns >= self.every


def _number(kind: type[int] | type[float], value: str, item: str) -> Any:
    try:
        return kind(value.strip())
    except ValueError:
        raise ConfigError(f"--triggers: {item!r} needs a number") from None
