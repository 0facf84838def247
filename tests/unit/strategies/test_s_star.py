"""S* logic with the scripted backend; every program really runs in the sandbox."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

import pytest

from ponder.backends.base import Prompt
from ponder.backends.scripted import ScriptedBackend
from ponder.errors import ConfigError
from ponder.ledger import Ledger, Usage
from ponder.params import SamplingParams
from ponder.sandbox import Sandbox
from ponder.strategies.base import Answer, Problem, RunContext
from ponder.strategies.registry import Registry
from ponder.strategies.s_star import SStar, SStarParams, parse_calls, parse_choice
from ponder.verifiers.code import CodeProblem, CodeTest

STUB = '''def sum_even(xs: list) -> int:
    """The sum of the even numbers in xs.
    >>> sum_even([1, 2, 3, 4])
    6
    >>> sum_even([])
    0
    """
'''
TESTS = (CodeTest("sum_even([1, 2, 3, 4])", "6"), CodeTest("sum_even([])", "0"))
CORRECT = "def sum_even(xs):\n    return sum(x for x in xs if x % 2 == 0)"
SUBTLE = "def sum_even(xs):\n    return sum(x for x in xs if x % 2 == 0 and x > 0)"
SAME_AS_CORRECT = "def sum_even(xs):\n    return sum([x for x in xs if not x % 2])"
WRONG = "def sum_even(xs):\n    return sum(xs)"
BROKEN = "def sum_even(xs)\n    return 0"
INPUTS = ("Try these:\n```python\nsum_even([-2, 4])\nprint(sum_even([1]))\n"
          "assert sum_even([-4]) == -4\nimport os\n```")

Responder = Callable[[Prompt, SamplingParams], Iterable[str]]


def fenced(code: str) -> str:
    return f"Here is the function:\n```python\n{code}\n```"


def problem(reference: str | None = None) -> CodeProblem:
    return CodeProblem.from_stub(STUB, "sum_even", TESTS, reference=reference)


def responder(generated: list[str], debug: Callable[[str], str] | None = None,
              judge: str = "B", inputs: str = INPUTS) -> Responder:
    def reply(prompt: Prompt, params: SamplingParams) -> Iterable[str]:
        last = prompt[-1]["content"]  # type: ignore[index]
        if "Which output is correct" in last:
            return [judge]
        if "test inputs" in last:
            return [inputs]
        if "The code fails" in last:
            assert debug is not None, "no debugging expected"
            return [fenced(debug(last))]
        assert params.n == len(generated)
        return [fenced(code) for code in generated]

    return reply


def run(strategy: SStar, backend: ScriptedBackend, code_problem: Problem,
        max_total_tokens: int | None = None) -> Answer:
    ctx = RunContext(backend=backend, ledger=Ledger(), max_total_tokens=max_total_tokens)
    return asyncio.run(strategy.run(code_problem, ctx))


def phases(answer: Answer) -> list[str]:
    return [entry.strategy for entry in answer.ledger.entries]


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(concurrency=2)


def test_debugs_then_picks_by_distinguishing_input(sandbox: Sandbox) -> None:
    def debug(feedback: str) -> str:
        return BROKEN if "SyntaxError" in feedback else CORRECT

    backend = ScriptedBackend(responder([SUBTLE, WRONG, BROKEN], debug, judge="B"))
    answer = run(SStar(SStarParams(n=3, debug_rounds=2), sandbox=sandbox), backend, problem())
    # round 1 debugs WRONG and BROKEN together, round 2 only BROKEN (still broken)
    assert phases(answer) == ["s-star:generate", "s-star:debug", "s-star:debug",
                              "s-star:inputs", "s-star:judge"]
    assert [len(prompts) for prompts, _ in backend.calls[1:3]] == [2, 1]
    first_debug = [p[-1]["content"] for p in backend.calls[1][0]]
    assert "Test: sum_even([1, 2, 3, 4])\nExpected: 6\nGot: 10" in first_debug[0]
    assert "SyntaxError" in first_debug[1]
    assert backend.calls[1][0][0][-2] == {"role": "assistant", "content": fenced(WRONG)}
    # the judge saw the first input where the two survivors differ, with both outputs
    judge_prompt = backend.calls[4][0][0][-1]["content"]
    assert "`sum_even([-2, 4])`" in judge_prompt
    assert "program A returns `4` and program B returns `2`" in judge_prompt
    assert answer.answer is not None and CORRECT in answer.answer
    assert answer.info["survivors"] == [0, 1] and answer.info["chosen"] == 1
    [comparison] = answer.info["comparisons"]
    assert comparison["inputs"] == ["sum_even([-2, 4])", "sum_even([1])", "sum_even([-4])"]
    assert comparison["decided_by"] == "model" and comparison["winner"] == 1
    assert answer.info["public_pass_rates"] == [1.0, 1.0, 0.0]
    assert [c.score for c in answer.candidates] == [1.0, 1.0, 0.0]
    assert answer.ledger.total() == Usage.sum(e.usage for e in answer.ledger.entries)
    assert answer.ledger.total().completion_tokens == \
        sum(c.tokens for c in answer.candidates) + sum(
            e.usage.completion_tokens for e in answer.ledger.entries
            if e.strategy in ("s-star:inputs", "s-star:judge"))


def test_judge_choosing_a_keeps_the_incumbent(sandbox: Sandbox) -> None:
    backend = ScriptedBackend(responder([SUBTLE, CORRECT], judge="Program A is right."))
    answer = run(SStar(SStarParams(n=2), sandbox=sandbox), backend, problem())
    assert answer.info["chosen"] == 0 and SUBTLE in str(answer.answer)


def test_oracle_judges_with_the_reference_and_no_model_call(sandbox: Sandbox) -> None:
    backend = ScriptedBackend(responder([SUBTLE, CORRECT]))
    strategy = SStar(SStarParams(n=2, judge="oracle"), sandbox=sandbox)
    answer = run(strategy, backend, problem(reference=CORRECT))
    assert phases(answer) == ["s-star:generate", "s-star:inputs"]
    assert answer.info["chosen"] == 1
    assert answer.info["comparisons"][0]["decided_by"] == "oracle"


def test_equal_outputs_need_no_judge_and_duplicates_no_comparison(sandbox: Sandbox) -> None:
    backend = ScriptedBackend(responder([CORRECT, SAME_AS_CORRECT]))
    answer = run(SStar(SStarParams(n=2), sandbox=sandbox), backend, problem())
    assert phases(answer) == ["s-star:generate", "s-star:inputs"]
    assert answer.info["comparisons"][0]["decided_by"] == "same outputs"
    assert answer.info["chosen"] == 0

    backend = ScriptedBackend(responder([CORRECT, CORRECT + "\n"]))
    answer = run(SStar(SStarParams(n=2), sandbox=sandbox), backend, problem())
    assert phases(answer) == ["s-star:generate"] and answer.info["comparisons"] == []


def test_unparsable_inputs_leave_the_incumbent(sandbox: Sandbox) -> None:
    backend = ScriptedBackend(responder([SUBTLE, CORRECT], inputs="I cannot think of any."))
    answer = run(SStar(SStarParams(n=2), sandbox=sandbox), backend, problem())
    assert answer.info["comparisons"][0]["decided_by"] == "no inputs"
    assert answer.info["chosen"] == 0


def test_without_a_passing_sample_the_best_pass_rate_survives(sandbox: Sandbox) -> None:
    backend = ScriptedBackend(responder([BROKEN, WRONG]))
    answer = run(SStar(SStarParams(n=2, debug_rounds=0), sandbox=sandbox), backend, problem())
    assert phases(answer) == ["s-star:generate"]
    assert answer.info["public_pass_rates"] == [0.0, 0.5]
    assert answer.info["survivors"] == [1] and WRONG in str(answer.answer)


def test_exhausted_budget_stops_debugging_gracefully(sandbox: Sandbox) -> None:
    backend = ScriptedBackend(responder([WRONG, WRONG], debug=lambda _: CORRECT))
    first = ScriptedBackend(responder([WRONG, WRONG])).generate(
        [[{"role": "user", "content": "x"}]], SamplingParams(n=2))[0]
    spent = sum(c.usage.completion_tokens for c in first)
    answer = run(SStar(SStarParams(n=2, debug_rounds=3), sandbox=sandbox), backend, problem(),
                 max_total_tokens=spent)
    assert phases(answer) == ["s-star:generate"]
    assert answer.info["debug_rounds"] == 0 and WRONG in str(answer.answer)


def test_bad_input_fails_clearly(sandbox: Sandbox) -> None:
    backend = ScriptedBackend(responder([CORRECT]))
    with pytest.raises(ConfigError, match="CodeProblem"):
        run(SStar(sandbox=sandbox), backend, Problem("write a function"))
    with pytest.raises(ConfigError, match="reference"):
        run(SStar(SStarParams(judge="oracle"), sandbox=sandbox), backend, problem())
    for bad in ({"n": 0}, {"debug_rounds": -1}, {"inputs": 0}, {"judge": "human"},
                {"max_comparisons": -2}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            SStarParams(**bad)  # type: ignore[arg-type]


def test_registered_and_built_from_options() -> None:
    strategy = Registry.from_entry_points().create(
        "s-star", {"n": "2", "debug-rounds": "1", "judge": "oracle"})
    assert isinstance(strategy, SStar)
    assert strategy.params == SStarParams(n=2, debug_rounds=1, judge="oracle")


def test_parse_calls_and_choice() -> None:
    assert parse_calls(INPUTS, "sum_even", 5) == ["sum_even([-2, 4])", "sum_even([1])",
                                                  "sum_even([-4])"]
    assert parse_calls("sum_even([1])\nsum_even([1])\n>>> sum_even([2])", "sum_even", 5) == \
        ["sum_even([1])", "sum_even([2])"]
    assert parse_calls(INPUTS, "sum_even", 2) == ["sum_even([-2, 4])", "sum_even([1])"]
    assert parse_calls("other(1)\nsum_even(", "sum_even", 3) == []
    assert parse_choice("B") == "B"
    assert parse_choice("Program A is correct.") == "A"
    assert parse_choice("The answer is: B.") == "B"
    assert parse_choice("Neither of them.") is None
