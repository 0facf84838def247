"""The ``code-execution`` verifier: a candidate's score is the share of tests its program passes.

The program is read from the reply (``extract_code``), completed with the
problem's stub, and run with the tests in ``ponder.sandbox``, never in
ponder's process. It uses the problem's public tests unless given its own
(pass hidden tests only to a grader, never to a strategy). Candidates run
concurrently, up to the sandbox's pool size.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ponder.errors import ConfigError
from ponder.sandbox import Sandbox
from ponder.verifiers.code import CodeProblem, CodeTest, TestReport, extract_code, run_tests

if TYPE_CHECKING:
    from ponder.strategies.base import Problem, RunContext


class CodeExecutionVerifier:
    """Pass rate on tests, run in the sandbox."""

    name = "code-execution"

    def __init__(self, sandbox: Sandbox | None = None, *, tests: Sequence[CodeTest] | None = None,
                 per_test_seconds: float = 2.0) -> None:
        if per_test_seconds <= 0:
            raise ConfigError(f"code-execution per_test_seconds must be > 0, "
                              f"got {per_test_seconds!r}")
        self.sandbox = sandbox if sandbox is not None else Sandbox()
        self.tests = tuple(tests) if tests is not None else None
        self.per_test_seconds = per_test_seconds

    async def score(self, problem: Problem, candidates: Sequence[str],
                    ctx: RunContext) -> list[float]:
        """One pass rate in [0, 1] per candidate reply."""
        reports = await asyncio.gather(*(self.check(problem, c) for c in candidates))
        return [report.pass_rate for report in reports]

    async def check(self, problem: Problem, candidate: str) -> TestReport:
        """Every test's outcome for one candidate reply."""
        code_problem = self._code_problem(problem)
        tests = self.tests if self.tests is not None else code_problem.tests
        if not tests:
            raise ConfigError("the code-execution verifier needs tests: the problem has none "
                              "and none were given (tests=...)")
        program = code_problem.program(extract_code(candidate, code_problem.entry_point))
        return await run_tests(self.sandbox, program, tests,
                               per_test_seconds=self.per_test_seconds)

    @staticmethod
    def _code_problem(problem: Problem) -> CodeProblem:
        if not isinstance(problem, CodeProblem) or not problem.entry_point:
            raise ConfigError("the code-execution verifier needs a CodeProblem with an "
                              "entry_point (see ponder.verifiers.code)")
        return problem
