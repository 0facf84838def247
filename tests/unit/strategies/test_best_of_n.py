from collections.abc import Sequence

import pytest

from ponder import Answer, Engine, Problem, RunContext, SamplingParams
from ponder.backends.base import Prompt
from ponder.backends.scripted import ScriptedBackend
from ponder.errors import ConfigError
from ponder.strategies.best_of_n import BestOfN, BestOfNParams
from ponder.strategies.registry import Registry
from ponder.verifiers.llm_judge import JUDGE_SYSTEM

SAMPLES = ["so Answer: 13", "so Answer: 12", "so Answer: 14"]
YES_VOTES = {"13": 2, "12": 5, "14": 0}
"""Judge votes (out of 5) per candidate answer: scores 0.4, 1.0, 0.0."""


def judged(prompt: Prompt, params: SamplingParams) -> list[str]:
    """Samples for the strategy, votes for the judge (the scripted backend has no logprobs)."""
    assert not isinstance(prompt, str)
    if prompt[0]["content"] != JUDGE_SYSTEM:
        return SAMPLES[:params.n]
    answer = prompt[-1]["content"].split("Answer: ")[1].split()[0]
    yes = YES_VOTES[answer]
    return ["Yes"] * yes + ["No"] * (params.n - yes)


def test_the_judges_favourite_wins() -> None:
    backend = ScriptedBackend(judged)
    answer = Engine(backend, Registry.from_entry_points()).ask(
        "q", strategy="best-of-n", params={"n": 3})
    assert answer.answer == "12" and answer.text == "so Answer: 12"
    assert [c.score for c in answer.candidates] == [0.4, 1.0, 0.0]
    assert answer.confidence == 1.0
    assert answer.info == {"samples": 3, "scored_by": "llm-judge", "chosen_index": 1}
    (_, sample_params), (judge_prompts, judge_params) = backend.calls
    assert sample_params.n == 3 and sample_params.temperature == 0.7
    # one batched judge call: 5 sampled votes (of at most 2 tokens) per candidate
    assert len(judge_prompts) == 3 and judge_params.n == 5 and judge_params.max_tokens == 2
    assert [e.strategy for e in answer.ledger.entries] == ["best-of-n", "llm-judge"]
    assert answer.ledger.entries[1].completions == 15


def test_agreement_verifier_needs_no_judge_calls() -> None:
    backend = ScriptedBackend(["Answer: 5", "Answer: 6", "Answer: 6"])
    answer = Engine(backend, Registry.from_entry_points()).ask(
        "q", strategy="best-of-n", params={"n": 3, "verifier": "agreement"})
    assert len(backend.calls) == 1
    assert answer.answer == "6"
    assert [c.score for c in answer.candidates] == pytest.approx([1 / 3, 2 / 3, 2 / 3])
    assert answer.info["chosen_index"] == 1  # ties go to the first


class FixedScores:
    name = "fixed"

    def __init__(self, scores: list[float]) -> None:
        self.scores = scores

    async def score(self, problem: Problem, candidates: Sequence[str],
                    ctx: RunContext) -> list[float]:
        return self.scores[:len(candidates)]


def run(strategy: BestOfN, backend: ScriptedBackend, **ctx: object) -> Answer:
    context = RunContext(backend=backend, **ctx)  # type: ignore[arg-type]
    return backend.run_sync(strategy.run(Problem("q"), context))


def test_the_requests_verifier_wins_over_the_param() -> None:
    backend = ScriptedBackend(["Answer: 1", "Answer: 2"])
    answer = run(BestOfN(BestOfNParams(n=2)), backend, verifier=FixedScores([0.1, 0.7]))
    assert answer.answer == "2" and answer.info["scored_by"] == "fixed"
    assert len(backend.calls) == 1


def test_judge_out_of_budget_falls_back_to_agreement() -> None:
    backend = ScriptedBackend(judged)
    answer = Engine(backend, Registry.from_entry_points()).ask(
        "q", strategy="best-of-n", params={"n": 2}, max_total_tokens=10)
    # one token per candidate is kept for a judge: samples get (10 - 2) // 2 = 4 tokens
    assert backend.calls[0][1].max_tokens == 4
    # the judge would need 2 prompts x 5 votes but only 2 tokens are left
    assert answer.info["scored_by"] == "agreement (judge out of budget)"
    assert len(backend.calls) == 1
    assert answer.ledger.total().completion_tokens <= 10


def test_bad_params() -> None:
    registry = Registry.from_entry_points()
    with pytest.raises(ConfigError, match="best-of-n n must be an integer >= 1"):
        registry.create("best-of-n", {"n": "0"})
    with pytest.raises(ConfigError, match="cannot read 'prm' as"):
        registry.create("best-of-n", {"verifier": "prm"})
