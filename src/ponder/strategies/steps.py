"""Step mechanics shared by the step-level searches (beam search, DVTS, MCTS).

Written once: search-and-learn repeats its templating and stop handling in every
search file, and the copies drift. As there, a reasoning step is a paragraph:
steps are separated by a blank line ("\\n\\n").

A partial solution is continued as raw text: the chat rendered with the
backend's own template, then the steps so far. Every continuation of a problem
therefore starts with the same tokens, and the embedded backend, which keeps
the last prompt in its KV cache, prefills only what is new.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, get_args

from ponder.backends.base import Completion
from ponder.errors import BudgetExceeded, CapabilityError, ConfigError
from ponder.params import SamplingParams
from ponder.strategies.base import Answer, Candidate, Problem, RunContext
from ponder.verifiers.answers import answers_equal, extract_answer
from ponder.verifiers.base import StepAggregation, StepVerifier, Verifier, aggregate_steps
from ponder.verifiers.voting import vote

Selection = Literal["best", "weighted-vote"]
"""How a search picks its answer: the best aggregated score, or the distinct answer whose
solutions' scores sum highest (search-and-learn's weighted best-of-N)."""

STEP_DELIMITER = "\n\n"

STEP_INSTRUCTION = (
    "Solve the problem step by step, explaining each step in its own short paragraph "
    "(separate paragraphs with a blank line). Finish with the line: Answer: <answer>")
"""Worded so that small models reason first: with "End with a line of the form: Answer:",
Qwen2.5-0.5B often wrote the answer line straight away."""

_FINAL_ANSWER = re.compile(
    r"\\boxed\s*\{|\banswer\s*(?:is\s*)?[:=]|\bthe (?:final )?answer is\b", re.IGNORECASE)


def split_steps(text: str) -> list[str]:
    """The non-empty paragraphs of ``text``, stripped."""
    return [part.strip() for part in text.split(STEP_DELIMITER) if part.strip()]


def join_steps(steps: Sequence[str]) -> str:
    return STEP_DELIMITER.join(steps)


def has_final_answer(text: str) -> bool:
    """Whether ``text`` states a final answer (an answer line or a ``\\boxed{}``)."""
    return _FINAL_ANSWER.search(text) is not None


@dataclass(frozen=True, slots=True)
class Expansion:
    """What one sampled continuation adds to a partial solution."""

    steps: tuple[str, ...]
    """The new steps: one, or several when sampled to the end; none when the model stopped."""
    finished: bool
    """The solution is complete: it states an answer, the model stopped, or it was the last."""
    tokens: int
    """Completion tokens this continuation cost."""
    finish_reason: str


def expansion(completion: Completion, *, final: bool) -> Expansion:
    """Read a sampled continuation. An empty step means the model ended its solution."""
    steps = tuple(split_steps(completion.text))
    finished = final or not steps or any(has_final_answer(s) for s in steps)
    return Expansion(steps, finished, completion.usage.completion_tokens,
                     completion.finish_reason)


def continuation_prompt(ctx: RunContext, problem: Problem, steps: Sequence[str], *,
                        strategy: str) -> str:
    """The raw prompt that continues the partial solution ``steps`` with its next step."""
    if not ctx.backend.supports_raw_completion:
        raise CapabilityError(
            f"{strategy} continues partial solutions as raw text, which the "
            f"{ctx.backend.kind} backend cannot do; use the embedded backend or an engine "
            "that serves /v1/completions")
    head = ctx.render(problem.chat(STEP_INSTRUCTION))
    return head + "".join(step + STEP_DELIMITER for step in steps)


async def sample_steps(ctx: RunContext, problem: Problem, partials: Sequence[Sequence[str]],
                       n: int, params: SamplingParams, *, strategy: str,
                       final: bool = False) -> list[list[Expansion]]:
    """``n`` continuations of each partial solution, all in one backend call.

    A continuation is one step (sampling stops at the step delimiter) or, when
    ``final``, the rest of the solution, as search-and-learn does at its last depth.
    """
    prompts = [continuation_prompt(ctx, problem, steps, strategy=strategy) for steps in partials]
    params = params.with_(n=n, stop=() if final else (STEP_DELIMITER,))
    groups = await ctx.generate(prompts, params, strategy=strategy)
    return [[expansion(c, final=final) for c in group] for group in groups]


async def score_partials(verifier: Verifier, problem: Problem,
                         partials: Sequence[Sequence[str]], ctx: RunContext
                         ) -> list[list[float]]:
    """Step scores of each partial solution, in one verifier call.

    A verifier without ``score_steps`` (an outcome scorer) scores each partial
    solution as a whole, which reads as one score for its last step.
    """
    if not partials:
        return []
    if isinstance(verifier, StepVerifier):
        return await verifier.score_steps(problem, [list(p) for p in partials], ctx)
    scores = await verifier.score(problem, [join_steps(p) for p in partials], ctx)
    return [[s] for s in scores]


@dataclass(frozen=True, slots=True)
class Beam:
    """A partial or finished solution with the verifier's score of each of its steps."""

    steps: tuple[str, ...] = ()
    scores: tuple[float, ...] = ()
    finished: bool = False
    tokens: int = 0
    """Completion tokens spent on the steps of this path."""

    @property
    def text(self) -> str:
        return join_steps(self.steps)

    def extend(self, step: Expansion) -> Beam:
        """The child after ``step``; it keeps the parent's scores until it is scored."""
        return Beam(self.steps + step.steps, self.scores, step.finished,
                    self.tokens + step.tokens)

    def value(self, how: StepAggregation) -> float:
        return aggregate_steps(self.scores, how)


async def score_beams(verifier: Verifier, problem: Problem, beams: Sequence[Beam],
                      ctx: RunContext) -> list[Beam]:
    """``beams`` with fresh step scores, from one verifier call."""
    scores = await score_partials(verifier, problem, [b.steps for b in beams], ctx)
    return [dataclasses.replace(b, scores=tuple(s)) for b, s in zip(beams, scores, strict=True)]


def best_index(beams: Sequence[Beam], how: StepAggregation) -> int:
    """The highest-valued beam; ties go to the earliest."""
    return max(range(len(beams)), key=lambda i: (beams[i].value(how), -i))


def search_answer(strategy: str, problem: Problem, beams: Sequence[Beam], ctx: RunContext, *,
                  aggregation: StepAggregation, select: Selection,
                  info: dict[str, Any]) -> Answer:
    """The answer of a search. The candidates are its finished beams (all beams if none
    finished); the choice is among those that state an answer, if any: a solution cut
    off at the last depth has no answer line, and its last number is rarely the answer."""
    pool = [b for b in beams if b.finished] or list(beams)
    info = {**info, "finished": sum(b.finished for b in beams), "select": select}
    if not pool:
        return Answer("", None, strategy, ledger=ctx.ledger, info=info)
    candidates = [Candidate(b.text, extract_answer(b.text, problem.kind), b.value(aggregation),
                            "stop" if b.finished else "length", b.tokens) for b in pool]
    eligible = [i for i, b in enumerate(pool) if has_final_answer(b.text)] \
        or list(range(len(pool)))
    chosen, confidence = _best_of(pool, eligible, aggregation), None
    if select == "weighted-vote":
        result = vote([candidates[i].answer for i in eligible], problem.kind,
                      weights=[candidates[i].score or 0.0 for i in eligible])
        if result.winner is not None:
            same = [i for i in eligible
                    if answers_equal(candidates[i].answer, result.winner, problem.kind)]
            chosen, confidence = _best_of(pool, same, aggregation), result.share
            info["weighted_votes"] = result.tally
    best = candidates[chosen]
    return Answer(best.text, best.answer, strategy, candidates,
                  confidence=best.score if confidence is None else confidence,
                  ledger=ctx.ledger, info=info)


def _best_of(beams: Sequence[Beam], among: Sequence[int], how: StepAggregation) -> int:
    return among[best_index([beams[i] for i in among], how)]


def check_param(ok: bool, owner: str, name: str, rule: str, value: Any) -> None:
    """Raise a ``ConfigError`` naming the strategy's parameter when ``ok`` is false."""
    if not ok:
        raise ConfigError(f"{owner} {name} must be {rule}, got {value!r}")


def check_width(owner: str, n: object, beam_width: object) -> None:
    """N samples per depth, M expansions per beam: M must divide N (beam search, DVTS)."""
    check_param(isinstance(n, int) and n >= 1, owner, "n", "an integer >= 1", n)
    check_param(isinstance(beam_width, int) and isinstance(n, int) and 1 <= beam_width <= n
                and n % beam_width == 0, owner, "beam_width",
                f"an integer that divides n={n}", beam_width)


@dataclass(frozen=True, slots=True)
class StepSearchParams:
    """Knobs shared by the step searches; each search adds its own."""

    owner: ClassVar[str] = "step search"

    max_depth: int = 5
    """Steps at most; the last depth samples to the end of the solution, >= 1."""
    max_step_tokens: int = 96
    """Cap per sampled step, >= 1."""
    final_max_tokens: int | None = None
    """Cap for the last depth (the rest of a solution); None uses the request's max_tokens."""
    temperature: float = 0.8
    """Sampling temperature of the steps; > 0 so that sibling steps differ."""
    aggregation: StepAggregation = "last"
    """How step scores rank a solution: last, min, prod (or mean)."""
    select: Selection = "best"
    """Final pick: best aggregated score, or weighted-vote over finished solutions' answers."""

    def __post_init__(self) -> None:
        o = self.owner
        check_param(isinstance(self.max_depth, int) and self.max_depth >= 1, o, "max_depth",
                    "an integer >= 1", self.max_depth)
        check_param(isinstance(self.max_step_tokens, int) and self.max_step_tokens >= 1, o,
                    "max_step_tokens", "an integer >= 1", self.max_step_tokens)
        check_param(self.final_max_tokens is None or (isinstance(self.final_max_tokens, int)
                                                      and self.final_max_tokens >= 1),
                    o, "final_max_tokens", "None or an integer >= 1", self.final_max_tokens)
        check_param(isinstance(self.temperature, int | float) and self.temperature >= 0, o,
                    "temperature", ">= 0", self.temperature)
        check_param(self.aggregation in get_args(StepAggregation), o, "aggregation",
                    f"one of {', '.join(get_args(StepAggregation))}", self.aggregation)
        check_param(self.select in get_args(Selection), o, "select",
                    f"one of {', '.join(get_args(Selection))}", self.select)


async def score_within_budget(verifier: Verifier, problem: Problem, beams: Sequence[Beam],
                              ctx: RunContext) -> tuple[list[Beam], bool]:
    """Scored ``beams`` and False; or, when the budget runs out, the beams as they were
    (each with its parent's scores) and True."""
    try:
        return await score_beams(verifier, problem, beams, ctx), False
    except BudgetExceeded:
        return list(beams), True


def verifier_name(verifier: Verifier) -> str:
    return str(getattr(verifier, "name", type(verifier).__name__))
