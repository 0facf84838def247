"""Diverse verifier tree search (DVTS).

Beeching, Tunstall and Rush, "Scaling test-time compute with open models"
(Hugging Face, 2024), from search-and-learn. Beam search's N/M surviving
beams tend to share one prefix; DVTS keeps them apart instead: N is split
into N/M independent subtrees, and each subtree greedily follows its own
beam, expanding it M times per depth and keeping the best-scored
continuation. All subtrees expand in one backend call per depth and are
scored in one verifier call. The answer is picked among the subtrees'
solutions, as in beam search.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from ponder.errors import BudgetExceeded
from ponder.strategies.base import Answer, Problem, RunContext, Strategy
from ponder.strategies.steps import (
    Beam,
    StepSearchParams,
    best_index,
    check_width,
    sample_steps,
    score_within_budget,
    search_answer,
    verifier_name,
)
from ponder.verifiers.step_scorer import LLMStepScorer


@dataclass(frozen=True, slots=True)
class DVTSParams(StepSearchParams):
    owner: ClassVar[str] = "dvts"

    n: int = 8
    """N, the candidate steps sampled per depth over all subtrees, >= 1."""
    beam_width: int = 2
    """M, the expansions per subtree and depth; there are N/M subtrees. Divides n."""

    def __post_init__(self) -> None:
        StepSearchParams.__post_init__(self)
        check_width(self.owner, self.n, self.beam_width)


class DVTS(Strategy[DVTSParams]):
    name = "dvts"
    summary = "diverse verifier tree search: N/M independent greedy subtrees"
    paper = "huggingface.co/spaces/HuggingFaceH4/blogpost-scaling-test-time-compute"
    Params = DVTSParams

    async def run(self, problem: Problem, ctx: RunContext) -> Answer:
        p = self.params
        verifier = ctx.verifier or LLMStepScorer()
        subtrees = [Beam()] * (p.n // p.beam_width)
        depth, stopped = 0, "max_depth"
        while depth < p.max_depth:
            active = [i for i, beam in enumerate(subtrees) if not beam.finished]
            if not active:
                stopped = "finished"
                break
            try:
                children = await self.expand(problem, ctx, [subtrees[i] for i in active],
                                             final=depth == p.max_depth - 1)
            except BudgetExceeded:
                stopped = "budget"
                break
            depth += 1
            flat, exhausted = await score_within_budget(
                verifier, problem, [c for group in children for c in group], ctx)
            for k, i in enumerate(active):
                group = flat[k * p.beam_width:(k + 1) * p.beam_width]
                subtrees[i] = group[best_index(group, p.aggregation)]
            if exhausted:
                stopped = "budget"
                break
        return search_answer(self.name, problem, subtrees, ctx, aggregation=p.aggregation,
                             select=p.select,
                             info={"depth": depth, "stopped": stopped, "subtrees": len(subtrees),
                                   "verifier": verifier_name(verifier)})

    async def expand(self, problem: Problem, ctx: RunContext, beams: Sequence[Beam], *,
                     final: bool) -> list[list[Beam]]:
        """M continuations of each subtree's beam, in one backend call."""
        p = self.params
        cap = p.final_max_tokens if final else p.max_step_tokens
        params = self.sampling(ctx, temperature=p.temperature, max_tokens=cap)
        groups = await sample_steps(ctx, problem, [b.steps for b in beams], p.beam_width, params,
                                    strategy=self.name, final=final)
        return [[beam.extend(e) for e in group] for beam, group in zip(beams, groups, strict=True)]
