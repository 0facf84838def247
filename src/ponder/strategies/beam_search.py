"""Beam search over reasoning steps, guided by a process reward model.

Snell et al., "Scaling LLM Test-Time Compute Optimally can be More Effective
than Scaling Model Parameters" (2024), as implemented in huggingface's
search-and-learn. Each depth samples N candidate next steps in one backend
call and scores them with the step verifier (step scores aggregated by
``last`` / ``min`` / ``prod``). The best N/M open beams survive, and each is
expanded M times at the next depth (M is search-and-learn's ``beam_width``).
The last depth samples each beam to the end of its solution. A beam that
states an answer leaves the search; the search stops when N beams have
finished, none is open, or the token budget runs out (then it answers with
the best beams so far).
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
    check_width,
    sample_steps,
    score_within_budget,
    search_answer,
    verifier_name,
)
from ponder.verifiers.step_scorer import LLMStepScorer


@dataclass(frozen=True, slots=True)
class BeamSearchParams(StepSearchParams):
    owner: ClassVar[str] = "beam-search"

    n: int = 8
    """N, the candidate steps sampled per depth (the beam width), >= 1."""
    beam_width: int = 2
    """M, the expansions of each surviving beam; N/M beams survive a depth. Divides n."""
    dedupe: bool = True
    """Drop a candidate whose steps equal an earlier candidate's before keeping the best."""

    def __post_init__(self) -> None:
        StepSearchParams.__post_init__(self)
        check_width(self.owner, self.n, self.beam_width)


class BeamSearch(Strategy[BeamSearchParams]):
    name = "beam-search"
    summary = "step-level beam search: N candidate steps per depth, best N/M kept"
    paper = "arXiv:2408.03314"
    Params = BeamSearchParams

    async def run(self, problem: Problem, ctx: RunContext) -> Answer:
        p = self.params
        verifier = ctx.verifier or LLMStepScorer()
        frontier, finished = [Beam()], []
        depth, stopped = 0, "max_depth"
        while depth < p.max_depth:
            try:
                children = await self.expand(problem, ctx, frontier,
                                             final=depth == p.max_depth - 1)
            except BudgetExceeded:
                stopped = "budget"
                break
            depth += 1
            children, exhausted = await score_within_budget(verifier, problem, children, ctx)
            finished += [c for c in children if c.finished]
            frontier = self.keep([c for c in children if not c.finished])
            if exhausted or not frontier or len(finished) >= p.n:
                stopped = "budget" if exhausted else "finished"
                break
        return search_answer(self.name, problem, finished + frontier, ctx,
                             aggregation=p.aggregation, select=p.select,
                             info={"depth": depth, "stopped": stopped,
                                   "verifier": verifier_name(verifier)})

    async def expand(self, problem: Problem, ctx: RunContext, frontier: Sequence[Beam], *,
                     final: bool) -> list[Beam]:
        """N // len(frontier) continuations of every beam, in one backend call."""
        p = self.params
        cap = p.final_max_tokens if final else p.max_step_tokens
        params = self.sampling(ctx, temperature=p.temperature, max_tokens=cap)
        groups = await sample_steps(ctx, problem, [b.steps for b in frontier],
                                    max(1, p.n // len(frontier)), params, strategy=self.name,
                                    final=final)
        return [beam.extend(e) for beam, group in zip(frontier, groups, strict=True)
                for e in group]

    def keep(self, beams: Sequence[Beam]) -> list[Beam]:
        """The best N/M beams in their original order; ties go to the earlier beam."""
        p = self.params
        if p.dedupe:
            beams = _unique(beams)
        ranked = sorted(range(len(beams)), key=lambda i: -beams[i].value(p.aggregation))
        return [beams[i] for i in sorted(ranked[:p.n // p.beam_width])]


def _unique(beams: Sequence[Beam]) -> list[Beam]:
    seen: set[tuple[str, ...]] = set()
    out = []
    for beam in beams:
        if beam.steps not in seen:
            seen.add(beam.steps)
            out.append(beam)
    return out
