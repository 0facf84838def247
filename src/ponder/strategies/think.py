"""Think toggle: one ``reasoning_effort`` knob mapped to a prompt and a token budget.

The OpenAI-style ``reasoning_effort`` (none / low / medium / high) chooses how
much a single sample may think:

======  ======================================  ==========
effort  prompt                                  max tokens
======  ======================================  ==========
none    answer directly, no reasoning           64
low     a few short steps                       192
medium  step by step (``cot``'s prompt)         512
high    step by step, then check the work       1024
======  ======================================  ==========

Models with a thinking switch in their chat template (Qwen3's
``enable_thinking``) should be switched through the template: on vLLM pass
``chat_template_kwargs={"enable_thinking": false}``; the embedded backend
renders the GGUF's template without extra variables, so there the switch is
best effort: ``soft_switch=true`` appends Qwen3's documented ``/think`` or
``/no_think`` tag to the user's turn. The models shipped with ponder
(Qwen2.5-Coder, SmolLM2) have no thinking template, so the prompt and the
budget do the work.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from ponder.backends.base import Message
from ponder.errors import ConfigError
from ponder.strategies import prompts
from ponder.strategies.base import Answer, Candidate, Problem, RunContext, StreamingStrategy

Effort = Literal["none", "low", "medium", "high"]


@dataclass(frozen=True, slots=True)
class EffortLevel:
    instruction: str
    max_tokens: int
    thinking: bool
    """Whether a model with a thinking switch should think at this level."""


LEVELS: MappingProxyType[str, EffortLevel] = MappingProxyType({
    "none": EffortLevel(prompts.DIRECT, 64, thinking=False),
    "low": EffortLevel("Think briefly, in a few short steps. Then give the final answer on the "
                       "last line in the form: Answer: <answer>", 192, thinking=True),
    "medium": EffortLevel(prompts.COT, 512, thinking=True),
    "high": EffortLevel("Solve the problem carefully step by step. Then check each step and "
                        "fix any mistake. Give the final answer on the last line in the form: "
                        "Answer: <answer>", 1024, thinking=True),
})


@dataclass(frozen=True, slots=True)
class ThinkParams:
    reasoning_effort: Effort = "medium"
    """none, low, medium or high."""
    max_tokens: int | None = None
    """Overrides the effort's token budget when set."""
    temperature: float = 0.0
    soft_switch: bool = False
    """Append Qwen3's /think or /no_think tag to the user's turn."""

    def __post_init__(self) -> None:
        if self.reasoning_effort not in LEVELS:
            raise ConfigError(f"think reasoning_effort must be one of {', '.join(LEVELS)}, "
                              f"got {self.reasoning_effort!r}")


class Think(StreamingStrategy[ThinkParams]):
    name = "think"
    summary = "reasoning_effort none/low/medium/high as prompt + budget"
    Params = ThinkParams

    @property
    def level(self) -> EffortLevel:
        return LEVELS[self.params.reasoning_effort]

    def messages(self, problem: Problem) -> list[Message]:
        chat = problem.chat(self.level.instruction)
        if self.params.soft_switch:
            tag = "/think" if self.level.thinking else "/no_think"
            for message in reversed(chat):
                if message.get("role") == "user":
                    message["content"] = f"{message.get('content') or ''} {tag}"
                    break
        return chat

    async def stream(self, problem: Problem, ctx: RunContext) -> AsyncIterator[str | Answer]:
        budget = self.params.max_tokens or self.level.max_tokens
        params = self.sampling(ctx, temperature=self.params.temperature, max_tokens=budget,
                               n=1, min_tokens=0)
        async for chunk in ctx.stream(self.messages(problem), params, strategy=self.name):
            if chunk.text:
                yield chunk.text
            if chunk.completion is not None:
                candidate = Candidate.from_completion(chunk.completion, problem.kind)
                if candidate.answer is None and self.params.reasoning_effort == "none":
                    candidate = Candidate(candidate.text, chunk.completion.text.strip() or None,
                                          tokens=candidate.tokens)
                yield Answer(chunk.completion.text, candidate.answer, self.name, [candidate],
                             ledger=ctx.ledger,
                             info={"reasoning_effort": self.params.reasoning_effort,
                                   "max_tokens": budget})
