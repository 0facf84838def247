"""A free verifier: a candidate scores the share of candidates that agree with its answer.

No model calls. It turns best-of-n into majority voting and gives weighted
best-of-n a cheap baseline (summed agreement ranks answers like votes do).
Candidates without an answer score 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ponder.verifiers.answers import AnswerKind, answers_equal, extract_answer, normalize_answer
from ponder.verifiers.voting import vote

if TYPE_CHECKING:
    from ponder.strategies.base import Problem, RunContext


class MajorityAgreementVerifier:
    """Scores = vote share of each candidate's answer within the batch."""

    name = "agreement"

    async def score(self, problem: Problem, candidates: Sequence[str],
                    ctx: RunContext) -> list[float]:
        return agreement_scores([extract_answer(c, problem.kind) for c in candidates],
                                problem.kind)


def agreement_scores(answers: Sequence[str | None], kind: AnswerKind = "math") -> list[float]:
    """For each answer, the share of all answers equivalent to it (0 for None)."""
    tally = vote(answers, kind).tally
    total = len(answers) or 1
    return [0.0 if a is None else _votes_of(a, tally, kind) / total for a in answers]


def _votes_of(answer: str, tally: dict[str, float], kind: AnswerKind) -> float:
    key = normalize_answer(answer, kind)
    for rep, count in tally.items():
        if normalize_answer(rep, kind) == key or answers_equal(rep, answer, kind):
            return count
    return 0.0
