"""Zero-shot chain of thought: "Let's think step by step.", then answer extraction.

Kojima et al., "Large Language Models are Zero-Shot Reasoners" (arXiv:2205.11916).
Two prompts, as in the paper: reasoning extraction (the question followed by
"Let's think step by step.") and answer extraction (the reasoning followed by
"Therefore, the answer (arabic numerals) is"). No instruction and no examples,
unlike ``cot``. The second call is a follow-up turn of the same chat, so the
embedded backend serves the whole first exchange from its prefix cache.
"""

from __future__ import annotations

from dataclasses import dataclass

from ponder.backends.base import Completion, Message
from ponder.errors import BudgetExceeded, ConfigError
from ponder.strategies import prompts
from ponder.strategies.base import Answer, Candidate, Problem, RunContext, Strategy
from ponder.verifiers.answers import AnswerKind, extract_answer


def answer_trigger(kind: AnswerKind) -> str:
    """The paper's answer-extraction prompt for this kind of answer."""
    return "Therefore, the answer (arabic numerals) is" if kind == "math" \
        else "Therefore, the answer is"


@dataclass(frozen=True, slots=True)
class ZeroShotCoTParams:
    temperature: float = 0.0
    max_tokens: int | None = None
    """Cap of the reasoning call; None uses the request's max_tokens."""
    answer_extraction: bool = True
    """Run the paper's second prompt; off reads the answer from the reasoning."""
    answer_max_tokens: int = 24
    """Cap of the answer-extraction call, >= 1."""

    def __post_init__(self) -> None:
        if not isinstance(self.answer_max_tokens, int) or self.answer_max_tokens < 1:
            raise ConfigError("zero-shot-cot answer_max_tokens must be an integer >= 1, "
                              f"got {self.answer_max_tokens!r}")


def reasoning_messages(problem: Problem) -> list[Message]:
    """The problem's chat with the trigger appended to its last user turn."""
    chat = problem.chat()
    for message in reversed(chat):
        if message.get("role") == "user":
            message["content"] = f"{message.get('content') or ''}{prompts.ZERO_SHOT_COT_SUFFIX}"
            break
    return chat


def read_extraction(reply: str, kind: AnswerKind) -> str | None:
    """The answer in the extraction reply ("12.", "$12", "Paris")."""
    first = reply.strip().splitlines()[0] if reply.strip() else ""
    return extract_answer(f"Answer: {first}", kind)


class ZeroShotCoT(Strategy[ZeroShotCoTParams]):
    name = "zero-shot-cot"
    summary = "\"Let's think step by step.\" then an answer-extraction prompt"
    paper = "arXiv:2205.11916"
    Params = ZeroShotCoTParams

    async def run(self, problem: Problem, ctx: RunContext) -> Answer:
        chat = reasoning_messages(problem)
        params = self.sampling(ctx, temperature=self.params.temperature,
                               max_tokens=self.params.max_tokens, n=1)
        [[reasoning]] = await ctx.generate([chat], params, strategy=self.name)
        candidate = Candidate.from_completion(reasoning, problem.kind)
        extracted = None
        if self.params.answer_extraction:
            extracted = await self._extract(chat, reasoning, problem, ctx)
        answer = read_extraction(extracted.text, problem.kind) if extracted else None
        if answer is not None:
            candidate = Candidate(candidate.text, answer, finish_reason=candidate.finish_reason,
                                  tokens=candidate.tokens)
        return Answer(reasoning.text, candidate.answer, self.name, [candidate],
                      ledger=ctx.ledger,
                      info={"extraction": extracted.text if extracted else None,
                            "answer_from": "extraction" if answer is not None else "reasoning"})

    async def _extract(self, chat: list[Message], reasoning: Completion, problem: Problem,
                       ctx: RunContext) -> Completion | None:
        """The second prompt; None when the budget has no room left for it."""
        follow_up = [*chat, {"role": "assistant", "content": reasoning.text},
                     {"role": "user", "content": answer_trigger(problem.kind)}]
        params = self.sampling(ctx, temperature=0.0, max_tokens=self.params.answer_max_tokens,
                               n=1, min_tokens=0)
        try:
            [[extracted]] = await ctx.generate([follow_up], params, strategy=self.name)
        except BudgetExceeded:
            return None
        return extracted
