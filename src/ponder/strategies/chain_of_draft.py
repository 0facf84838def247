"""Chain of Draft: reason in minimal drafts of at most ~5 words per step.

Xu et al., "Chain of Draft: Thinking Faster by Writing Less" (arXiv:2502.18600).
The system prompt is the paper's; the answer follows the separator ``####``.
The paper finds zero-shot drafting weak on small models, so one worked example
(the paper's GSM8K one) is shown by default. Greedy, one sample: it is cot's
cheap sibling, and its ledger shows the saving.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from ponder.backends.base import Completion, Message
from ponder.strategies.base import Answer, Candidate, Problem, RunContext, StreamingStrategy
from ponder.verifiers.answers import AnswerKind, extract_answer

SEPARATOR = "####"
INSTRUCTION = ("Think step by step, but only keep a minimum draft for each thinking step, "
               f"with 5 words at most. Return the answer at the end of the response after a "
               f"separator {SEPARATOR}.")
EXAMPLE: tuple[Message, ...] = (
    {"role": "user", "content": "Jason had 20 lollipops. He gave Denny some lollipops. Now "
                                "Jason has 12 lollipops. How many lollipops did Jason give to "
                                "Denny?"},
    {"role": "assistant", "content": f"20 - x = 12; x = 20 - 12 = 8. {SEPARATOR} 8"},
)


@dataclass(frozen=True, slots=True)
class ChainOfDraftParams:
    temperature: float = 0.0
    max_tokens: int | None = None
    """Per-answer cap; None uses the request's max_tokens."""
    few_shot: bool = True
    """Show the paper's worked example before the question."""


def extract_after_separator(text: str, kind: AnswerKind = "math") -> str | None:
    """The answer written after the last ``####``; else the usual extraction of ``text``."""
    head, sep, tail = text.rpartition(SEPARATOR)
    if sep:
        lines = tail.strip().splitlines()
        if lines:
            found = extract_answer(f"Answer: {lines[0]}", kind)
            if found is not None:
                return found
        text = head
    return extract_answer(text, kind)


class ChainOfDraft(StreamingStrategy[ChainOfDraftParams]):
    name = "chain-of-draft"
    summary = "one sample, <=5-word draft steps, answer after ####"
    paper = "arXiv:2502.18600"
    Params = ChainOfDraftParams

    def messages(self, problem: Problem) -> list[Message]:
        chat = problem.chat(INSTRUCTION)
        if not self.params.few_shot:
            return chat
        at = 1 if chat and chat[0].get("role") == "system" else 0
        return [*chat[:at], *(dict(m) for m in EXAMPLE), *chat[at:]]

    async def stream(self, problem: Problem, ctx: RunContext) -> AsyncIterator[str | Answer]:
        params = self.sampling(ctx, temperature=self.params.temperature,
                               max_tokens=self.params.max_tokens, n=1)
        async for chunk in ctx.stream(self.messages(problem), params, strategy=self.name):
            if chunk.text:
                yield chunk.text
            if chunk.completion is not None:
                yield self._answer(chunk.completion, problem, ctx)

    def _answer(self, completion: Completion, problem: Problem, ctx: RunContext) -> Answer:
        candidate = Candidate(completion.text,
                              extract_after_separator(completion.text, problem.kind),
                              finish_reason=completion.finish_reason,
                              tokens=completion.usage.completion_tokens)
        return Answer(completion.text, candidate.answer, self.name, [candidate],
                      ledger=ctx.ledger,
                      info={"separator_found": SEPARATOR in completion.text})
