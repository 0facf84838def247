"""Budget forcing: control how long the model thinks by editing its raw continuation.

Muennighoff et al., "s1: Simple test-time scaling" (arXiv:2501.19393).

* Minimum: when the model tries to end its thinking (it writes the
  end-of-thinking delimiter, or ends its turn) before ``min_thinking_tokens``,
  the delimiter is dropped and "Wait" is appended, at most ``max_waits`` times
  (the paper's k), so the model re-examines its reasoning.
* Maximum: at ``max_thinking_tokens`` the thinking is cut, the delimiter and
  "Final Answer:" are appended, and the model writes only the answer.

Every step continues one raw string: the chat rendered with the model's own
template, the opening delimiter, and the thinking so far. That needs a
backend with ``supports_raw_completion``: the embedded one, whose prefix cache
makes each continuation prefill only the appended words, or any engine with
``/v1/completions``. A remote engine does not show ponder its chat template, so
there the conversation is written as a plain "Role: text" transcript instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ponder.errors import BudgetExceeded, CapabilityError, ConfigError
from ponder.strategies.base import Answer, Candidate, Problem, RunContext, Strategy
from ponder.verifiers.answers import extract_answer

ANSWER_CUE = "Final Answer:"


@dataclass(frozen=True, slots=True)
class BudgetForcingParams:
    min_thinking_tokens: int = 128
    """Below this many thinking tokens an attempt to stop is replaced by "Wait", >= 0."""
    max_thinking_tokens: int = 512
    """Thinking is cut here and the answer forced, >= 1."""
    max_waits: int = 2
    """How many times "Wait" may be appended (s1's k), >= 0."""
    wait: str = "Wait"
    """The word appended to keep the model thinking."""
    think_start: str = "<think>\n"
    """Opens the thinking; appended after the assistant's turn header."""
    think_end: str = "</think>"
    """Ends the thinking; a stop string while thinking, appended before the answer."""
    answer_max_tokens: int = 64
    """Cap of the answer after "Final Answer:", >= 1 (reserved from the budget)."""
    temperature: float = 0.0

    def __post_init__(self) -> None:
        for name, minimum in (("min_thinking_tokens", 0), ("max_thinking_tokens", 1),
                              ("max_waits", 0), ("answer_max_tokens", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise ConfigError(f"budget-forcing {name} must be an integer >= {minimum}, "
                                  f"got {value!r}")
        if not self.think_end.strip():
            raise ConfigError("budget-forcing think_end must be a non-blank delimiter")


@dataclass
class _Thinking:
    text: str = ""
    tokens: int = 0
    waits: int = 0
    calls: int = 0
    cut: bool = False
    """The thinking was cut at max_thinking_tokens (or by the request's budget)."""
    attempts_to_stop: list[int] = field(default_factory=list)
    """Thinking tokens at each point where the model tried to stop."""


def instruction(think_start: str, think_end: str) -> str:
    return (f"Think step by step between {think_start.strip()} and {think_end.strip()}. "
            "Then give the final answer.")


def with_wait(text: str, wait: str) -> str:
    """Append the wait word as s1 does, keeping a word boundary."""
    return text + ("" if not text or text[-1].isspace() else " ") + wait


class BudgetForcing(Strategy[BudgetForcingParams]):
    name = "budget-forcing"
    summary = "s1: 'Wait' below a minimum, forced answer at a maximum thinking length"
    paper = "arXiv:2501.19393"
    Params = BudgetForcingParams

    async def run(self, problem: Problem, ctx: RunContext) -> Answer:
        prefix = self.prefix(problem, ctx)
        thinking = _Thinking()
        exhausted = False
        try:
            await self._think(prefix, thinking, ctx)
        except BudgetExceeded:
            if not thinking.calls:
                raise
            exhausted = True
        reply, answer_tokens = "", 0
        if not exhausted:
            try:
                reply, answer_tokens = await self._answer(prefix, thinking.text, ctx)
            except BudgetExceeded:
                if not thinking.calls:
                    raise
                exhausted = True
        return self._result(problem, ctx, thinking, reply, answer_tokens, exhausted)

    def prefix(self, problem: Problem, ctx: RunContext) -> str:
        """The rendered chat plus the opening delimiter."""
        if not ctx.backend.supports_raw_completion:
            raise CapabilityError(
                f"budget-forcing needs raw continuation, which the {ctx.backend.kind} backend "
                "does not offer; use the embedded backend or an engine with /v1/completions")
        p = self.params
        messages = problem.chat(instruction(p.think_start, p.think_end))
        rendered = ctx.render(messages)
        if p.think_start.strip() and rendered.rstrip().endswith(p.think_start.strip()):
            return rendered
        return rendered + p.think_start

    async def _think(self, prefix: str, thinking: _Thinking, ctx: RunContext) -> None:
        p = self.params
        while True:
            room = p.max_thinking_tokens - thinking.tokens
            remaining = ctx.remaining_tokens()
            if remaining is not None:
                room = min(room, remaining - p.answer_max_tokens)
            if room < 1:
                thinking.cut = True
                return
            params = self.sampling(ctx, temperature=p.temperature, max_tokens=room, n=1,
                                   min_tokens=0, stop=(p.think_end,))
            [[step]] = await ctx.generate([prefix + thinking.text], params, strategy=self.name)
            thinking.text += step.text
            thinking.tokens += step.usage.completion_tokens
            thinking.calls += 1
            if step.finish_reason == "length":
                thinking.cut = True
                return
            thinking.attempts_to_stop.append(thinking.tokens)
            if thinking.tokens >= p.min_thinking_tokens or thinking.waits >= p.max_waits:
                return
            thinking.text = with_wait(thinking.text, p.wait)
            thinking.waits += 1

    async def _answer(self, prefix: str, thinking: str, ctx: RunContext) -> tuple[str, int]:
        """Close the thinking, cue the answer, and let the model write only that."""
        p = self.params
        closed = f"{thinking.rstrip()}\n{p.think_end}\n\n{ANSWER_CUE}"
        params = self.sampling(ctx, temperature=p.temperature, max_tokens=p.answer_max_tokens,
                               n=1, min_tokens=0, stop=())
        [[reply]] = await ctx.generate([prefix + closed], params, strategy=self.name)
        return reply.text, reply.usage.completion_tokens

    def _result(self, problem: Problem, ctx: RunContext, thinking: _Thinking, reply: str,
                answer_tokens: int, exhausted: bool) -> Answer:
        p = self.params
        answer = extract_answer(f"{ANSWER_CUE} {reply.strip()}", problem.kind) \
            if reply.strip() else None
        if answer is None:
            answer = extract_answer(thinking.text, problem.kind)
        text = f"{p.think_start}{thinking.text}" if exhausted else \
            f"{p.think_start}{thinking.text.rstrip()}\n{p.think_end}\n\n{ANSWER_CUE}{reply}"
        candidate = Candidate(text, answer, finish_reason="length" if exhausted else "stop",
                              tokens=thinking.tokens + answer_tokens)
        return Answer(text, answer, self.name, [candidate], ledger=ctx.ledger, info={
            "thinking_tokens": thinking.tokens, "answer_tokens": answer_tokens,
            "waits": thinking.waits, "cut": thinking.cut, "thinking_calls": thinking.calls,
            "attempts_to_stop": thinking.attempts_to_stop, "budget_exhausted": exhausted})
