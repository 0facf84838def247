"""The LLM judge (logprob and vote paths), the agreement verifier, and answer-choice helpers."""

import math

import pytest

from ponder import Problem, RunContext, SamplingParams
from ponder.backends.base import Completion, Prompt, TokenLogprob
from ponder.backends.scripted import ScriptedBackend
from ponder.errors import ConfigError
from ponder.ledger import Usage
from ponder.verifiers.agreement import MajorityAgreementVerifier, agreement_scores
from ponder.verifiers.answers import extract_choice, numbers_close
from ponder.verifiers.base import Verifier
from ponder.verifiers.llm_judge import NO_SIGNAL, LLMJudge, yes_probability, yes_share


def first_token(token: str, logprob: float, *top: tuple[str, float]) -> Completion:
    return Completion(token, "length", Usage(10, 1),
                      logprobs=(TokenLogprob(1, token, logprob, tuple(top)),))


def test_yes_probability_normalises_over_yes_and_no_variants() -> None:
    c = first_token("Yes", -0.5, ("Yes", -0.5), (" yes", -2.0), ("No", -1.5), ("The", -1.0))
    p_yes, p_no = math.exp(-0.5) + math.exp(-2.0), math.exp(-1.5)
    assert yes_probability(c) == pytest.approx(p_yes / (p_yes + p_no))
    assert yes_probability(first_token("No", -0.1, ("No", -0.1))) == 0.0
    assert yes_probability(first_token("The", -0.1, ("The", -0.1))) == NO_SIGNAL
    assert yes_probability(Completion("Yes", "length")) == NO_SIGNAL


def test_yes_share_counts_sampled_votes() -> None:
    votes = [Completion(t, "stop") for t in ("Yes", " yes.", "No", "Maybe")]
    assert yes_share(votes) == 0.5
    assert yes_share([]) == NO_SIGNAL


class LogprobBackend(ScriptedBackend):
    supports_logprobs = True


def test_judge_reads_logprobs_in_one_greedy_batched_call() -> None:
    def reply(prompt: Prompt, params: SamplingParams) -> list[Completion]:
        good = "Answer: 4" in prompt[-1]["content"]  # type: ignore[index]
        return [first_token("Yes", -0.2, ("Yes", -0.2), ("No", -1.8)) if good
                else first_token("No", -0.1, ("No", -0.1), ("Yes", -2.4))]

    backend = LogprobBackend(reply)
    ctx = RunContext(backend=backend)
    scores = backend.run_sync(LLMJudge().score(Problem("2+2?"), ["Answer: 4", "Answer: 5"], ctx))
    good_yes, good_no = math.exp(-0.2), math.exp(-1.8)
    bad_yes, bad_no = math.exp(-2.4), math.exp(-0.1)
    assert scores == pytest.approx([good_yes / (good_yes + good_no),
                                    bad_yes / (bad_yes + bad_no)])
    [(prompts, params)] = backend.calls
    assert len(prompts) == 2
    assert (params.max_tokens, params.temperature, params.logprobs) == (1, 0.0, 10)
    assert "Is this answer correct?" in prompts[0][-1]["content"]
    assert "2+2?" in prompts[0][-1]["content"]
    [entry] = ctx.ledger.entries
    assert entry.strategy == "llm-judge" and entry.usage.completion_tokens == 2


def test_judge_on_another_backend_bills_the_same_ledger() -> None:
    main, judge_backend = ScriptedBackend([]), ScriptedBackend(["Yes", "Yes", "No"],
                                                               model="judge")
    ctx = RunContext(backend=main)
    [score] = main.run_sync(LLMJudge(votes=3, backend=judge_backend).score(
        Problem("q"), ["Answer: 1"], ctx))
    assert score == pytest.approx(2 / 3)
    assert not main.calls and len(judge_backend.calls) == 1
    assert [e.model for e in ctx.ledger.entries] == ["judge"]


def test_judge_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="top_logprobs"):
        LLMJudge(top_logprobs=0)
    with pytest.raises(ConfigError, match="votes"):
        LLMJudge(votes=0)
    assert isinstance(LLMJudge(), Verifier)
    assert isinstance(MajorityAgreementVerifier(), Verifier)


def test_agreement_scores() -> None:
    assert agreement_scores(["12", "12.0", "13", None, "$12"]) == [0.6, 0.6, 0.2, 0.0, 0.6]
    assert agreement_scores(["Paris", "paris.", "Rome"], "text") == \
        pytest.approx([2 / 3, 2 / 3, 1 / 3])
    assert agreement_scores([]) == []
    backend = ScriptedBackend([])
    scores = backend.run_sync(MajorityAgreementVerifier().score(
        Problem("q"), ["Answer: 3", "\\boxed{3}", "so 4"], RunContext(backend=backend)))
    assert scores == pytest.approx([2 / 3, 2 / 3, 1 / 3]) and not backend.calls


@pytest.mark.parametrize(("text", "expected"), [
    ("Answer: (C)", "C"), ("so \\boxed{B}", "B"), ("Thinking...\nD.\n", "D"),
    ("the answer is (a)", "A"), ("The correct option is B.", "B"),
    ("I think (b) is wrong. Final answer: E", "E"),
    ("the answer is a number", None), ("A cat sat.", None), ("Answer: Paris", None),
    ("Answer: F", None), ("", None),
])
def test_extract_choice(text: str, expected: str | None) -> None:
    assert extract_choice(text) == expected


def test_extract_choice_with_more_letters() -> None:
    assert extract_choice("Answer: F", letters="ABCDEF") == "F"


@pytest.mark.parametrize(("a", "b", "tol", "close"), [
    ("3.3333", "10/3", 1e-4, True), ("3.3", "10/3", 1e-4, False), ("1,000", "1000.0", 0, True),
    ("0", "0.0000000001", 0, True), ("x", "1", 1e-4, False), (None, "1", 1e-4, False),
])
def test_numbers_close(a: str | None, b: str, tol: float, close: bool) -> None:
    assert numbers_close(a, b, rel_tol=tol) is close
