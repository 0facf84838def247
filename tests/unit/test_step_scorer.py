"""LLMStepScorer: P(Yes) per step from one batched call, vote fallback, aggregation."""

from __future__ import annotations

import math

import pytest

from ponder.backends.base import Completion, Prompt, TokenLogprob
from ponder.backends.scripted import ScriptedBackend
from ponder.errors import ConfigError
from ponder.ledger import Usage
from ponder.params import SamplingParams
from ponder.strategies.base import Problem, RunContext
from ponder.verifiers.base import StepVerifier
from ponder.verifiers.step_scorer import STEP_QUESTION, LLMStepScorer, step_messages

PROBLEM = Problem("What is 3 + 4?")
# P(Yes), P(No) for the last step of each question (the rest of the mass goes elsewhere)
BELIEF = {"3 + 4 = 7": (0.6, 0.2), "Answer: 7": (0.45, 0.05), "3 + 4 = 9": (0.1, 0.7),
          "Answer: 9": (0.2, 0.2)}


def last_step(prompt: Prompt) -> str:
    assert not isinstance(prompt, str)
    return str(prompt[-2]["content"]).split("\n\n")[-1]


def believe(prompt: Prompt, params: SamplingParams) -> list[Completion]:
    yes, no = BELIEF[last_step(prompt)]
    top = (("Yes", math.log(yes)), (" No", math.log(no)), ("The", math.log(0.1)))
    logprob = TokenLogprob(1, "Yes", math.log(yes), top)
    return [Completion("Yes", "stop", Usage(20, 1, 0), logprobs=(logprob,))]


class LogprobBackend(ScriptedBackend):
    supports_logprobs = True


def scorer_ctx(backend: ScriptedBackend) -> RunContext:
    return RunContext(backend=backend)


def test_step_scores_are_yes_over_yes_plus_no_from_one_batched_call() -> None:
    backend = LogprobBackend(believe)
    ctx = scorer_ctx(backend)
    steps = [["3 + 4 = 7", "Answer: 7"], ["3 + 4 = 9", "Answer: 9"]]
    scores = backend.run_sync(LLMStepScorer().score_steps(PROBLEM, steps, ctx))
    assert scores == [[pytest.approx(0.75), pytest.approx(0.9)],
                      [pytest.approx(0.125), pytest.approx(0.5)]]
    [(prompts, params)] = backend.calls
    assert (params.max_tokens, params.temperature, params.logprobs) == (1, 0.0, 10)
    # longest question of each candidate first, so shorter ones extend a cached prefix
    assert [p[-2]["content"] for p in prompts] == [
        "3 + 4 = 7\n\nAnswer: 7", "3 + 4 = 7", "3 + 4 = 9\n\nAnswer: 9", "3 + 4 = 9"]
    [entry] = ctx.ledger.entries
    assert entry.strategy == "llm-step-scorer" and entry.completions == 4


def test_shared_steps_are_asked_about_once() -> None:
    backend = LogprobBackend(believe)
    steps = [["3 + 4 = 7", "Answer: 7"], ["3 + 4 = 7", "Answer: 9"], ["3 + 4 = 7"]]
    scores = backend.run_sync(LLMStepScorer().score_steps(PROBLEM, steps,
                                                          scorer_ctx(backend)))
    [(prompts, _)] = backend.calls
    assert len(prompts) == 3  # "3 + 4 = 7" is one question for all three candidates
    assert scores[0][0] == scores[1][0] == scores[2][0] == pytest.approx(0.75)


def test_without_logprobs_the_score_is_the_share_of_yes_votes() -> None:
    votes = {"3 + 4 = 7": ["Yes", "yes.", "No", "Yes", "Yes"],
             "3 + 4 = 9": ["No", "No", "Yes", "no", "No"]}
    backend = ScriptedBackend(lambda prompt, params: votes[last_step(prompt)])
    scores = backend.run_sync(LLMStepScorer().score_steps(
        PROBLEM, [["3 + 4 = 7"], ["3 + 4 = 9"]], scorer_ctx(backend)))
    assert scores == [[pytest.approx(0.8)], [pytest.approx(0.2)]]
    [(_, params)] = backend.calls
    assert (params.n, params.temperature, params.logprobs) == (5, 1.0, None)


def test_outcome_score_aggregates_steps_and_last_asks_only_the_last() -> None:
    backend = LogprobBackend(believe)
    ctx = scorer_ctx(backend)
    texts = ["3 + 4 = 7\n\nAnswer: 7", "3 + 4 = 9\n\nAnswer: 9"]
    assert backend.run_sync(LLMStepScorer().score(PROBLEM, texts, ctx)) == \
        [pytest.approx(0.9), pytest.approx(0.5)]
    assert len(backend.calls[-1][0]) == 2
    assert backend.run_sync(LLMStepScorer(aggregation="min").score(PROBLEM, texts, ctx)) == \
        [pytest.approx(0.75), pytest.approx(0.125)]
    assert len(backend.calls[-1][0]) == 4


def test_the_question_continues_the_searches_chat() -> None:
    messages = step_messages(PROBLEM, [" 3 + 4 = 7 ", "Answer: 7"])
    assert messages[:-2] == PROBLEM.chat(messages[0]["content"])
    assert messages[0]["content"].startswith("Solve the problem step by step")
    assert messages[-2:] == [{"role": "assistant", "content": "3 + 4 = 7\n\nAnswer: 7"},
                             {"role": "user", "content": STEP_QUESTION}]


def test_no_steps_no_call() -> None:
    backend = LogprobBackend(believe)
    assert backend.run_sync(LLMStepScorer().score_steps(PROBLEM, [[]], scorer_ctx(backend))) \
        == [[]]
    assert backend.calls == []


def test_it_is_a_step_verifier_and_checks_its_options() -> None:
    assert isinstance(LLMStepScorer(), StepVerifier)
    with pytest.raises(ConfigError, match="top_logprobs must be in"):
        LLMStepScorer(top_logprobs=0)
    with pytest.raises(ConfigError, match="votes must be an integer >= 1"):
        LLMStepScorer(votes=0)
    with pytest.raises(ConfigError, match="aggregation must be one of"):
        LLMStepScorer(aggregation="max")  # type: ignore[arg-type]


def test_steps_already_scored_are_remembered() -> None:
    backend = LogprobBackend(believe)
    ctx = scorer_ctx(backend)
    scorer = LLMStepScorer()
    backend.run_sync(scorer.score_steps(PROBLEM, [["3 + 4 = 7"]], ctx))
    scores = backend.run_sync(scorer.score_steps(PROBLEM, [["3 + 4 = 7", "Answer: 7"]], ctx))
    assert scores == [[pytest.approx(0.75), pytest.approx(0.9)]]
    assert [len(prompts) for prompts, _ in backend.calls] == [1, 1]
    assert backend.calls[1][0][0][-2]["content"] == "3 + 4 = 7\n\nAnswer: 7"
    # another problem is another question
    backend.run_sync(scorer.score_steps(Problem("What is 4 + 3?"), [["3 + 4 = 7"]], ctx))
    assert len(backend.calls) == 3
