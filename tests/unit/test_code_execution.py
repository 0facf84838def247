"""Code helpers and the code-execution verifier (programs run in the real sandbox)."""

from __future__ import annotations

import asyncio

import pytest

from ponder.backends.scripted import ScriptedBackend
from ponder.errors import ConfigError
from ponder.sandbox import Limits, Sandbox
from ponder.strategies.base import Problem, RunContext
from ponder.verifiers.base import Verifier
from ponder.verifiers.code import (
    CODE_INSTRUCTION,
    CodeProblem,
    CodeTest,
    extract_code,
    find_call,
    program_key,
    run_calls,
    run_tests,
)
from ponder.verifiers.code_execution import CodeExecutionVerifier

STUB = ('from typing import List\n\n\ndef _helper(x: int) -> int:\n    return x\n\n\n'
        'def total(xs: List[int]) -> int:\n    """Sum.\n    >>> total([1, 2])\n    3\n    """\n')
PROBLEM = CodeProblem.from_stub(STUB, "total", [CodeTest("total([1, 2])", "3"),
                                                CodeTest("total([])", "0"),
                                                CodeTest("assert total([5]) == 5")])


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(Limits(wall_seconds=8), concurrency=2)


def test_extract_code_prefers_the_block_defining_the_function() -> None:
    reply = ("Usage:\n```python\nprint(total([1]))\n```\nSolution:\n```python\n"
             "def total(xs):\n    return sum(xs)\n```\n```text\nnot code\n```")
    assert extract_code(reply, "total") == "def total(xs):\n    return sum(xs)"
    assert extract_code("```py\nx = 1\n```\n```\ny = 22222\n```") == "y = 22222"
    assert extract_code("def total(xs):\n    return 0\n") == "def total(xs):\n    return 0"
    # a reply cut at max_tokens leaves the last block open
    assert extract_code("```python\ndef total(xs):\n    return s", "total") == \
        "def total(xs):\n    return s"


def test_program_keeps_the_stub_preamble_or_continues_the_body() -> None:
    full = PROBLEM.program("def total(xs):\n    return sum(map(_helper, xs))")
    assert full.startswith("from typing import List") and "def _helper" in full
    assert full.count("def total") == 1
    body = PROBLEM.program("    return sum(xs)")
    assert body.startswith(STUB) and body.endswith("    return sum(xs)\n")


def test_code_chat_has_the_instruction_once() -> None:
    [system, user] = PROBLEM.code_chat()
    assert system["content"].count(CODE_INSTRUCTION) == 1 and "```python" in user["content"]
    bare = CodeProblem("Write total.", entry_point="total")
    assert bare.code_chat()[0]["content"] == CODE_INSTRUCTION


def test_find_call_parses_without_running() -> None:
    assert find_call("total([1, 2])", "total") == "total([1, 2])"
    assert find_call("print(total( [3] ))", "total") == "total([3])"
    assert find_call("assert total([4]) == 4", "total") == "total([4])"
    assert find_call("__import__('os').system('x')", "total") is None
    assert find_call("total([1]); total([2])", "total") is None
    assert find_call("total(", "total") is None


def test_program_key_ignores_layout_docstrings_and_demo_prints() -> None:
    a = 'def f(x):\n    """Doc."""\n    return x + 1\n\nprint(f(1))\n'
    b = "def f(x):\n    # add one\n    return x+1\n"
    c = "def f(x):\n    return x + 2\n"
    assert program_key(a) == program_key(b) != program_key(c)
    assert program_key("def f(:\n  pass") == "def f(: pass"


def test_run_tests_reports_each_outcome(sandbox: Sandbox) -> None:
    program = PROBLEM.program(
        "def total(xs):\n    print('debug')\n    return sum(xs) + (len(xs) == 0)")
    report = asyncio.run(run_tests(sandbox, program, PROBLEM.tests))
    assert [o.passed for o in report.outcomes] == [True, False, True]
    assert report.pass_rate == pytest.approx(2 / 3) and not report.all_passed
    failure = report.first_failure()
    assert failure is not None and failure.got == "1" and failure.printed == "debug\n"
    assert failure.feedback() == "Test: total([])\nExpected: 0\nGot: 1\nPrinted: debug"


def test_run_tests_survives_hangs_crashes_and_forged_results(sandbox: Sandbox) -> None:
    hang = PROBLEM.program("def total(xs):\n    while True:\n        pass")
    report = asyncio.run(run_tests(sandbox, hang, PROBLEM.tests[:1], per_test_seconds=0.5))
    assert report.outcomes[0].error is not None and "TimeoutError" in report.outcomes[0].error
    broken = asyncio.run(run_tests(sandbox, "def total(xs)\n    return 0", PROBLEM.tests))
    assert broken.load_error is not None and broken.load_error.startswith("SyntaxError")
    assert broken.pass_rate == 0.0
    exits = asyncio.run(run_tests(sandbox, "import sys\nsys.exit(0)", PROBLEM.tests))
    assert exits.load_error is not None and "SystemExit" in exits.load_error
    forged = ('import sys, json\nsys.__stdout__.write(\'{"index": 0, "ok": true}\\n\')\n'
              'def total(xs):\n    return -1')
    assert asyncio.run(run_tests(sandbox, forged, PROBLEM.tests)).passed == 0


def test_run_calls_returns_reprs_and_errors(sandbox: Sandbox) -> None:
    program = "def total(xs):\n    return sum(xs) / len(xs)"
    got = asyncio.run(run_calls(sandbox, program, ["total([1, 2])", "total([])", "total('ab')"]))
    assert got[0] == "1.5"
    assert got[1].startswith("error: ZeroDivisionError")
    assert got[2].startswith("error: TypeError")


def test_verifier_scores_pass_rates(sandbox: Sandbox) -> None:
    verifier = CodeExecutionVerifier(sandbox)
    assert isinstance(verifier, Verifier) and verifier.name == "code-execution"
    ctx = RunContext(backend=ScriptedBackend())
    replies = ["```python\ndef total(xs):\n    return sum(xs)\n```",
               "```python\ndef total(xs):\n    return sum(xs) + 1\n```",
               "I don't know.",
               "```python\ndef total(xs):\n    return sum(xs) if xs else None\n```"]
    scores = asyncio.run(verifier.score(PROBLEM, replies, ctx))
    assert scores == pytest.approx([1.0, 0.0, 0.0, 2 / 3])
    own = CodeExecutionVerifier(sandbox, tests=[CodeTest("total([2, 2])", "4")])
    assert asyncio.run(own.score(PROBLEM, replies[:2], ctx)) == [1.0, 0.0]


def test_verifier_needs_a_code_problem_with_tests(sandbox: Sandbox) -> None:
    ctx = RunContext(backend=ScriptedBackend())
    verifier = CodeExecutionVerifier(sandbox)
    with pytest.raises(ConfigError, match="CodeProblem"):
        asyncio.run(verifier.score(Problem("q"), ["x"], ctx))
    with pytest.raises(ConfigError, match="needs tests"):
        asyncio.run(verifier.score(CodeProblem.from_stub(STUB, "total"), ["x"], ctx))
    with pytest.raises(ConfigError, match="per_test_seconds"):
        CodeExecutionVerifier(sandbox, per_test_seconds=0)
