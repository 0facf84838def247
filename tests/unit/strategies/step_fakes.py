"""Fakes for the step-search tests: a scripted backend that renders chats, a table PRM."""

from __future__ import annotations

from collections.abc import Sequence

from ponder.backends.base import Message
from ponder.backends.scripted import ScriptedBackend
from ponder.strategies.base import Problem, RunContext

ASSISTANT = "<assistant>"


class ChatScripted(ScriptedBackend):
    """A scripted backend whose chat template is ``<role>content...<assistant>``."""

    def render_chat(self, messages: Sequence[Message], *, add_generation_prompt: bool = True
                    ) -> str:
        return "".join(f"<{m['role']}>{m['content']}" for m in messages) + ASSISTANT


def steps_in(prompt: str) -> list[str]:
    """The steps a raw continuation prompt carries after the rendered chat."""
    tail = prompt.split(ASSISTANT, 1)[1]
    return [s for s in tail.split("\n\n") if s]


class TablePRM:
    """A step verifier that scores a step by looking its text up in a table."""

    name = "table-prm"

    def __init__(self, table: dict[str, float], default: float = 0.0) -> None:
        self.table = table
        self.default = default
        self.calls: list[list[list[str]]] = []

    async def score_steps(self, problem: Problem, steps: Sequence[Sequence[str]],
                          ctx: RunContext) -> list[list[float]]:
        self.calls.append([list(s) for s in steps])
        return [[self.table.get(step, self.default) for step in s] for s in steps]

    async def score(self, problem: Problem, candidates: Sequence[str],
                    ctx: RunContext) -> list[float]:
        return [self.table.get(c.split("\n\n")[-1], self.default) for c in candidates]


def run(strategy: object, backend: ScriptedBackend, verifier: object, *,
        max_total_tokens: int | None = None, problem: Problem | None = None) -> object:
    """Run ``strategy`` on the scripted backend with ``verifier`` as the request's verifier."""
    ctx = RunContext(backend=backend, verifier=verifier,  # type: ignore[arg-type]
                     max_total_tokens=max_total_tokens)
    return backend.run_sync(strategy.run(problem or Problem("q"), ctx))  # type: ignore[attr-defined]
