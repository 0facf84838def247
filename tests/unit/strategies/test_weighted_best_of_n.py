from collections.abc import Sequence

import pytest

from ponder import Answer, Engine, Problem, RunContext
from ponder.backends.scripted import ScriptedBackend
from ponder.strategies.best_of_n import BestOfN, BestOfNParams
from ponder.strategies.registry import Registry
from ponder.strategies.weighted_best_of_n import WeightedBestOfN, WeightedBestOfNParams


class ScoreByAnswer:
    name = "by-answer"

    def __init__(self, scores: dict[str, float]) -> None:
        self.scores = scores

    async def score(self, problem: Problem, candidates: Sequence[str],
                    ctx: RunContext) -> list[float]:
        return [self.scores.get(c.rsplit("Answer: ", 1)[-1], 0.0) for c in candidates]


REPLIES = ["a Answer: 5", "b Answer: 7", "c Answer: 7.0", "d no answer"]
SCORES = {"5": 0.9, "7": 0.5, "7.0": 0.6, "d no answer": 0.95}


def run(strategy: BestOfN | WeightedBestOfN, replies: list[str]) -> Answer:
    backend = ScriptedBackend(replies)
    ctx = RunContext(backend=backend, verifier=ScoreByAnswer(SCORES))
    return backend.run_sync(strategy.run(Problem("q"), ctx))


def test_scores_are_summed_per_distinct_answer() -> None:
    answer = run(WeightedBestOfN(WeightedBestOfNParams(n=4)), REPLIES)
    # 7 and 7.0 pool 0.5 + 0.6 = 1.1 > 0.9 for 5; the unanswered sample's score counts for none
    assert answer.answer == "7"
    assert answer.info["answer_scores"] == {"7": pytest.approx(1.1), "5": pytest.approx(0.9)}
    assert answer.votes == {"7": 2, "5": 1}
    assert answer.confidence == pytest.approx(1.1 / (0.9 + 0.5 + 0.6 + 0.95))
    # the response shown is the best-scored one with the winning answer
    assert answer.text == "c Answer: 7.0"
    assert [c.score for c in answer.candidates] == [0.9, 0.5, 0.6, 0.95]


def test_plain_best_of_n_picks_differently_on_the_same_samples() -> None:
    answer = run(BestOfN(BestOfNParams(n=4)), REPLIES)
    assert answer.text == "d no answer" and answer.answer is None


def test_no_answers_at_all_keeps_the_best_scored_text() -> None:
    answer = run(WeightedBestOfN(WeightedBestOfNParams(n=2)), ["d no answer", "e nothing"])
    assert answer.answer is None and answer.text == "d no answer" and answer.votes == {}


def test_registry_and_ledger_labels() -> None:
    backend = ScriptedBackend(["Answer: 1", "Answer: 1", "Answer: 2"])
    answer = Engine(backend, Registry.from_entry_points()).ask(
        "q", strategy="weighted-best-of-n", params={"n": 3, "verifier": "agreement"})
    assert answer.answer == "1" and answer.votes == {"1": 2, "2": 1}
    # agreement scores 2/3, 2/3, 1/3: answer sums 4/3 and 1/3
    assert answer.info["answer_scores"] == {"1": pytest.approx(4 / 3), "2": pytest.approx(1 / 3)}
    assert [e.strategy for e in answer.ledger.entries] == ["weighted-best-of-n"]
