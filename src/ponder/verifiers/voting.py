"""Voting over candidate answers: majority and score-weighted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ponder.verifiers.answers import AnswerKind, answers_equal, normalize_answer


@dataclass(frozen=True, slots=True)
class VoteResult:
    winner: str | None
    """The winning answer as first written by a sample (None if no sample answered)."""
    winner_index: int | None
    """Index of the first candidate that gave the winning answer."""
    tally: dict[str, float]
    """Distinct answer -> votes (or summed weights), most first."""
    share: float
    """The winner's votes over all candidates, answered or not (0 when none)."""


def vote(answers: Sequence[str | None], kind: AnswerKind = "math",
         weights: Sequence[float] | None = None) -> VoteResult:
    """Group equivalent answers, sum their weights (1 each by default), pick the top.

    Ties go to the answer that appeared first, so the result is deterministic.
    """
    weights = list(weights) if weights is not None else [1.0] * len(answers)
    if len(weights) != len(answers):
        raise ValueError("weights and answers differ in length")
    groups: list[tuple[str, str, int]] = []  # (key, representative, first index)
    totals: list[float] = []
    for i, answer in enumerate(answers):
        key = normalize_answer(answer, kind)
        if key is None or answer is None:
            continue
        for g, (gkey, rep, _) in enumerate(groups):
            if gkey == key or (kind == "math" and answers_equal(rep, answer, kind)):
                totals[g] += weights[i]
                break
        else:
            groups.append((key, answer, i))
            totals.append(weights[i])
    if not groups:
        return VoteResult(None, None, {}, 0.0)
    order = sorted(range(len(groups)), key=lambda g: (-totals[g], groups[g][2]))
    best = order[0]
    total_weight = sum(weights) or 1.0
    tally = {groups[g][1]: totals[g] for g in order}
    return VoteResult(groups[best][1], groups[best][2], tally, totals[best] / total_weight)
