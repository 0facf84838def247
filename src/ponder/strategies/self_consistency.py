"""Self-consistency: sample n chains of thought, majority-vote their answers.

Wang et al., "Self-Consistency Improves Chain of Thought Reasoning in
Language Models" (2022). Vote shares are reported as the confidence.

Early stopping follows Adaptive-Consistency (Aggarwal et al., arXiv:2305.11860)
with its deterministic criterion: samples are drawn in rounds, and sampling
stops once the leading answer is ahead of the runner-up by more than the
samples still to draw, so that no remaining sample could change the vote. The
first round draws ``n // 2 + 1`` samples (no stop is possible earlier), later
rounds ``batch``. Each round is one backend call, so the embedded backend
still prefills the prompt once (later rounds hit its prefix cache). With
``early_stop=False`` all n samples go to the backend in one call.
"""

from __future__ import annotations

from dataclasses import dataclass

from ponder.backends.base import Completion
from ponder.errors import BudgetExceeded, ConfigError
from ponder.strategies import prompts
from ponder.strategies.base import Answer, Candidate, Problem, RunContext, Strategy
from ponder.verifiers.voting import VoteResult, vote


@dataclass(frozen=True, slots=True)
class SelfConsistencyParams:
    n: int = 8
    """Number of sampled chains, >= 1 (the most drawn; early stopping may draw fewer)."""
    temperature: float = 0.7
    """Sampling temperature; > 0 or all samples are the same."""
    max_tokens: int | None = None
    """Per-sample cap; None uses the request's max_tokens."""
    early_stop: bool = True
    """Stop sampling once the leader cannot be overtaken (Adaptive-Consistency)."""
    batch: int = 2
    """Samples per round after the first, >= 1 (smaller saves more, larger batches better)."""

    def __post_init__(self) -> None:
        if not isinstance(self.n, int) or self.n < 1:
            raise ConfigError(f"self-consistency n must be an integer >= 1, got {self.n!r}")
        if not isinstance(self.batch, int) or self.batch < 1:
            raise ConfigError(f"self-consistency batch must be an integer >= 1, "
                              f"got {self.batch!r}")


def decided(result: VoteResult, remaining: int) -> bool:
    """Whether ``remaining`` more votes can no longer change the winner (ties included)."""
    counts = sorted(result.tally.values(), reverse=True)
    if not counts:
        return False
    runner_up = counts[1] if len(counts) > 1 else 0
    return counts[0] - runner_up > remaining


class SelfConsistency(Strategy[SelfConsistencyParams]):
    name = "self-consistency"
    summary = "n sampled chains of thought, majority vote, early stop"
    paper = "arXiv:2203.11171"
    Params = SelfConsistencyParams

    async def run(self, problem: Problem, ctx: RunContext) -> Answer:
        stop_reason = "n"
        if self.params.early_stop:
            completions, stop_reason = await self._sample_adaptively(problem, ctx)
        else:
            completions = await self._sample(problem, ctx, self.params.n, self.params.max_tokens)
        candidates = [Candidate.from_completion(c, problem.kind) for c in completions]
        result = vote([c.answer for c in candidates], problem.kind)
        chosen = candidates[result.winner_index] if result.winner_index is not None \
            else candidates[0]
        return Answer(
            text=chosen.text, answer=result.winner, strategy=self.name,
            candidates=candidates, votes={k: int(v) for k, v in result.tally.items()},
            confidence=result.share, ledger=ctx.ledger,
            info={"samples": len(candidates),
                  "unanswered": sum(c.answer is None for c in candidates),
                  "stop_reason": stop_reason, **self._savings(candidates)},
        )

    async def _sample(self, problem: Problem, ctx: RunContext, n: int,
                      max_tokens: int | None, drawn: int = 0) -> list[Completion]:
        """``n`` samples in one call; ``drawn`` earlier samples shift a fixed seed, so a
        later round does not replay an earlier round's random streams."""
        params = self.sampling(ctx, n=n, temperature=self.params.temperature,
                               max_tokens=max_tokens)
        if drawn and params.seed is not None:
            params = params.with_(seed=(params.seed * 1_000_003 + drawn) % 2**32)
        [completions] = await ctx.generate([problem.chat(prompts.COT)], params,
                                           strategy=self.name)
        return completions

    async def _sample_adaptively(self, problem: Problem, ctx: RunContext
                                 ) -> tuple[list[Completion], str]:
        """Rounds of samples until the vote is decided ("decided"), n is reached ("n") or
        the budget ends ("budget")."""
        n = self.params.n
        completions: list[Completion] = []
        size = n // 2 + 1
        while len(completions) < n:
            size = min(size, n - len(completions))
            try:
                cap = self._fair_share(ctx, n - len(completions))
                completions += await self._sample(problem, ctx, size, cap, len(completions))
            except BudgetExceeded:
                if not completions:
                    raise
                return completions, "budget"
            answers = [Candidate.from_completion(c, problem.kind).answer for c in completions]
            if len(completions) < n and decided(vote(answers, problem.kind),
                                                n - len(completions)):
                return completions, "decided"
            size = self.params.batch
        return completions, "n"

    def _fair_share(self, ctx: RunContext, samples_left: int) -> int | None:
        """Per-sample cap that splits the remaining budget over all samples still planned,
        so early rounds do not starve later ones."""
        cap = self.params.max_tokens
        remaining = ctx.remaining_tokens()
        if remaining is None:
            return cap
        share = remaining // samples_left
        if share < 1:
            raise BudgetExceeded(f"token budget of {ctx.max_total_tokens} is exhausted "
                                 f"({remaining} left for {samples_left} samples)")
        request_cap = cap if cap is not None else ctx.sampling.max_tokens
        return min(request_cap, share)

    def _savings(self, candidates: list[Candidate]) -> dict[str, int]:
        """Samples not drawn, and their tokens estimated at the drawn samples' mean."""
        skipped = self.params.n - len(candidates)
        mean = sum(c.tokens for c in candidates) / len(candidates) if candidates else 0
        return {"samples_skipped": skipped, "tokens_saved_estimate": round(skipped * mean)}
