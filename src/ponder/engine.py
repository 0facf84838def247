"""The engine: one backend and one strategy registry, built once, used per request.

The CLI builds its own engine; the server keeps one on ``app.state``. Per
request state (ledger, budget, sampling defaults) travels in a fresh
``RunContext``, never on the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ponder.backends import make_backend
from ponder.backends.base import Backend
from ponder.ledger import Ledger
from ponder.model_files import Progress
from ponder.params import SamplingParams
from ponder.strategies.base import Answer, Problem, RunContext, Strategy
from ponder.strategies.registry import Registry

DEFAULT_STRATEGY = "cot"


class Engine:
    """Answers problems with a named strategy on one backend."""

    def __init__(self, backend: Backend, registry: Registry | None = None) -> None:
        self.backend = backend
        self.registry = registry if registry is not None else Registry.from_entry_points()

    @classmethod
    def create(cls, backend: str = "embedded", *, model: str | None = None,
               base_url: str | None = None, api_key: str | None = None,
               progress: Progress | None = None, **options: Any) -> Engine:
        """Build the backend by name (see ``ponder.backends.make_backend``)."""
        return cls(make_backend(backend, model=model, base_url=base_url, api_key=api_key,
                                progress=progress, **options))

    async def aask(self, problem: str | Problem, *,
                   strategy: str | Strategy[Any] = DEFAULT_STRATEGY,
                   params: Mapping[str, Any] | None = None,
                   sampling: SamplingParams | None = None,
                   max_total_tokens: int | None = None) -> Answer:
        """Run ``strategy`` on ``problem``; the answer carries its own ledger."""
        if isinstance(problem, str):
            problem = Problem(problem)
        runner = strategy if isinstance(strategy, Strategy) \
            else self.registry.create(strategy, dict(params or {}))
        ctx = RunContext(backend=self.backend, ledger=Ledger(),
                         sampling=sampling or SamplingParams(),
                         max_total_tokens=max_total_tokens, registry=self.registry)
        return await runner.run(problem, ctx)

    def ask(self, problem: str | Problem, **kwargs: Any) -> Answer:
        """Sync facade of ``aask``."""
        return self.backend.run_sync(self.aask(problem, **kwargs))

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
