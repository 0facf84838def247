"""Best-of-N: sample n chains of thought, keep the one the verifier scores highest.

As in search-and-learn's ``search/best_of_n.py``: the n samples go to the
backend in one call (one shared prefill), then one batched verifier call
scores them all. The verifier is the request's (``ctx.verifier``) or the one
named by ``verifier``: ``llm-judge`` (P(Yes) from the same model) or
``agreement`` (free: vote share). A slice of the token budget is kept for
the judge; if it still runs out, the agreement scores are used instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Literal

from ponder.backends.base import Message
from ponder.errors import BudgetExceeded, ConfigError
from ponder.strategies import prompts
from ponder.strategies.base import Answer, Candidate, Problem, RunContext, Strategy
from ponder.verifiers.agreement import MajorityAgreementVerifier, agreement_scores
from ponder.verifiers.base import Verifier
from ponder.verifiers.llm_judge import LLMJudge

VerifierName = Literal["llm-judge", "agreement"]


@dataclass(frozen=True, slots=True)
class BestOfNParams:
    owner: ClassVar[str] = "best-of-n"

    n: int = 4
    """Number of sampled chains, >= 1."""
    temperature: float = 0.7
    max_tokens: int | None = None
    """Per-sample cap; None uses the request's max_tokens."""
    verifier: VerifierName = "llm-judge"
    """Scorer when the request brings none: llm-judge or agreement."""

    def __post_init__(self) -> None:
        check_n(self.n, self.owner)


def check_n(n: object, owner: str, minimum: int = 1) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < minimum:
        raise ConfigError(f"{owner} n must be an integer >= {minimum}, got {n!r}")


def make_verifier(name: str) -> Verifier:
    """A built-in verifier by name."""
    if name == "llm-judge":
        return LLMJudge()
    if name == "agreement":
        return MajorityAgreementVerifier()
    raise ConfigError(f"verifier must be 'llm-judge' or 'agreement', got {name!r}")


async def sample(strategy: Strategy[Any], chat: Sequence[Message], problem: Problem,
                 ctx: RunContext, *, n: int, temperature: float, max_tokens: int | None
                 ) -> list[Candidate]:
    """n candidates of one prompt, leaving one token per candidate for a judge."""
    params = strategy.sampling(ctx, n=n, temperature=temperature,
                               max_tokens=_cap(ctx, n, max_tokens))
    [completions] = await ctx.generate([list(chat)], params, strategy=strategy.name)
    return [Candidate.from_completion(c, problem.kind) for c in completions]


def _cap(ctx: RunContext, n: int, max_tokens: int | None) -> int | None:
    remaining = ctx.remaining_tokens()
    if remaining is None or remaining <= 2 * n:
        return max_tokens
    share = (remaining - n) // n
    return min(max_tokens or ctx.sampling.max_tokens, share)


async def score(verifier: Verifier, problem: Problem, candidates: list[Candidate],
                ctx: RunContext) -> tuple[list[Candidate], str]:
    """The candidates with their scores, and the name of what scored them."""
    try:
        scores = await verifier.score(problem, [c.text for c in candidates], ctx)
        scored_by = verifier.name
    except BudgetExceeded:
        scores = agreement_scores([c.answer for c in candidates], problem.kind)
        scored_by = "agreement (judge out of budget)"
    if len(scores) != len(candidates):
        raise ConfigError(f"verifier {verifier.name!r} returned {len(scores)} scores for "
                          f"{len(candidates)} candidates")
    return [replace(c, score=float(s)) for c, s in zip(candidates, scores, strict=True)], \
        scored_by


class BestOfN(Strategy[BestOfNParams]):
    name = "best-of-n"
    summary = "n samples, the verifier's top-scored one"
    paper = "arXiv:2408.03314"
    Params = BestOfNParams

    async def run(self, problem: Problem, ctx: RunContext) -> Answer:
        p = self.params
        candidates = await sample(self, problem.chat(prompts.COT), problem, ctx, n=p.n,
                                  temperature=p.temperature, max_tokens=p.max_tokens)
        verifier = ctx.verifier or make_verifier(p.verifier)
        candidates, scored_by = await score(verifier, problem, candidates, ctx)
        best = max(range(len(candidates)), key=lambda i: (candidates[i].score or 0.0, -i))
        chosen = candidates[best]
        return Answer(chosen.text, chosen.answer, self.name, candidates,
                      confidence=chosen.score, ledger=ctx.ledger,
                      info={"samples": len(candidates), "scored_by": scored_by,
                            "chosen_index": best})
