"""S*: parallel samples, sequential debugging on public tests, selection by distinguishing inputs.

Li et al., "S*: Test Time Scaling for Code Generation" (2025). Three phases,
each labelled in the ledger (``s-star:generate``, ``s-star:debug``,
``s-star:inputs``, ``s-star:judge``):

1. **Generate** n programs in one backend call (one shared prefill).
2. **Debug** each program for up to r rounds on the public tests, which run
   in the sandbox; a failing program is shown the first failing test (the
   call, the expected value, what it got or raised) and rewritten. All the
   failing programs of a round go to the backend in one call.
3. **Select** among the programs that pass every public test (else those
   that pass the most) by adaptive input synthesis: for each pair
   (incumbent, challenger) the model writes inputs that may tell them apart;
   both run on them in the sandbox; on the first input where they differ
   the model (or, with ``judge="oracle"``, a reference program) decides
   which output is right. The winner meets the next challenger.

Code runs only in ``ponder.sandbox``, never in ponder's process.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Literal

from ponder.backends.base import Completion, Message
from ponder.errors import BudgetExceeded, ConfigError
from ponder.sandbox import Sandbox
from ponder.strategies.base import Answer, Candidate, Problem, RunContext, Strategy
from ponder.verifiers.code import (
    CodeProblem,
    TestReport,
    extract_code,
    find_call,
    program_key,
    run_calls,
    run_tests,
)

Judge = Literal["model", "oracle"]
INPUT_TOKENS = 200
"""Reply cap when the model writes distinguishing inputs."""
JUDGE_TOKENS = 8
"""Reply cap when the model picks A or B."""
_CHOICE = re.compile(r"\b([AB])\b")


@dataclass(frozen=True, slots=True)
class SStarParams:
    n: int = 4
    """Parallel samples, >= 1."""
    debug_rounds: int = 3
    """Debugging rounds per sample on the public tests (r), >= 0."""
    temperature: float = 0.7
    """Sampling temperature of generation and debugging."""
    max_tokens: int | None = None
    """Cap per generated or debugged program; None uses the request's max_tokens."""
    inputs: int = 3
    """Distinguishing inputs the model is asked for per comparison, >= 1."""
    judge: Judge = "model"
    """Who decides between differing outputs: the model, or the problem's reference program."""
    max_comparisons: int | None = None
    """Cap on pairwise comparisons; None compares every survivor once (a knockout)."""

    def __post_init__(self) -> None:
        for name, low in (("n", 1), ("debug_rounds", 0), ("inputs", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < low:
                raise ConfigError(f"s-star {name} must be an integer >= {low}, got {value!r}")
        if self.judge not in ("model", "oracle"):
            raise ConfigError(f"s-star judge must be 'model' or 'oracle', got {self.judge!r}")
        if self.max_comparisons is not None and (not isinstance(self.max_comparisons, int)
                                                 or self.max_comparisons < 0):
            raise ConfigError(f"s-star max_comparisons must be None or an integer >= 0, "
                              f"got {self.max_comparisons!r}")


@dataclass
class _Sample:
    """One program as it is debugged."""

    reply: str
    program: str
    report: TestReport
    tokens: int
    finish_reason: str
    rounds: int = 0


@dataclass
class _Selection:
    winner: int
    comparisons: list[dict[str, object]] = field(default_factory=list)


class SStar(Strategy[SStarParams]):
    name = "s-star"
    summary = "n programs, debugged on public tests, picked by distinguishing inputs"
    paper = "arXiv:2502.14382"
    Params = SStarParams

    def __init__(self, params: SStarParams | None = None, *,
                 sandbox: Sandbox | None = None) -> None:
        super().__init__(params)
        self.sandbox = sandbox if sandbox is not None else Sandbox()

    async def run(self, problem: Problem, ctx: RunContext) -> Answer:
        code_problem = _as_code_problem(problem)
        if self.params.judge == "oracle" and not code_problem.reference:
            raise ConfigError("s-star judge='oracle' needs a problem with a reference program")
        samples = await self._generate(code_problem, ctx)
        rounds = await self._debug(code_problem, samples, ctx)
        survivors = _survivors(samples)
        selection = await self._select(code_problem, samples, survivors, ctx)
        return self._answer(samples, survivors, selection, rounds, ctx)

    # -- phase 1: parallel samples ------------------------------------------

    async def _generate(self, problem: CodeProblem, ctx: RunContext) -> list[_Sample]:
        params = self.sampling(ctx, n=self.params.n, temperature=self.params.temperature,
                               max_tokens=self.params.max_tokens)
        [completions] = await ctx.generate([problem.code_chat()], params,
                                           strategy=f"{self.name}:generate")
        return list(await asyncio.gather(*(self._sample(problem, c) for c in completions)))

    async def _sample(self, problem: CodeProblem, completion: Completion,
                      before: _Sample | None = None) -> _Sample:
        program = problem.program(extract_code(completion.text, problem.entry_point))
        report = await run_tests(self.sandbox, program, problem.tests)
        tokens = completion.usage.completion_tokens + (before.tokens if before else 0)
        rounds = before.rounds + 1 if before else 0
        return _Sample(completion.text, program, report, tokens, completion.finish_reason, rounds)

    # -- phase 2: sequential debugging ---------------------------------------

    async def _debug(self, problem: CodeProblem, samples: list[_Sample],
                     ctx: RunContext) -> int:
        """Rewrite failing samples in place, up to r rounds; returns the rounds run."""
        params = self.sampling(ctx, n=1, temperature=self.params.temperature,
                               max_tokens=self.params.max_tokens)
        for round_ in range(self.params.debug_rounds):
            failing = [i for i, s in enumerate(samples) if not s.report.all_passed]
            if not failing or not problem.tests:
                return round_
            prompts = [debug_messages(problem, samples[i]) for i in failing]
            try:
                replies = await ctx.generate(prompts, params, strategy=f"{self.name}:debug")
            except BudgetExceeded:
                return round_
            fixed = await asyncio.gather(*(self._sample(problem, reply[0], samples[i])
                                           for i, reply in zip(failing, replies, strict=True)))
            for i, sample in zip(failing, fixed, strict=True):
                samples[i] = sample
        return self.params.debug_rounds

    # -- phase 3: selection by adaptive input synthesis ----------------------

    async def _select(self, problem: CodeProblem, samples: list[_Sample], survivors: list[int],
                      ctx: RunContext) -> _Selection:
        distinct = _distinct(samples, survivors)
        selection = _Selection(distinct[0])
        limit = self.params.max_comparisons
        for challenger in distinct[1:limit + 1 if limit is not None else None]:
            try:
                outcome = await self._compare(problem, samples, selection.winner, challenger,
                                              ctx)
            except BudgetExceeded:
                break
            selection.comparisons.append(outcome)
            selection.winner = int(outcome["winner"])  # type: ignore[call-overload]
        return selection

    async def _compare(self, problem: CodeProblem, samples: list[_Sample], a: int, b: int,
                       ctx: RunContext) -> dict[str, object]:
        record: dict[str, object] = {"a": a, "b": b, "winner": a, "inputs": [], "decided_by": "tie"}
        calls = await self._inputs(problem, samples[a].program, samples[b].program, ctx)
        record["inputs"] = calls
        if not calls:
            record["decided_by"] = "no inputs"
            return record
        out_a, out_b = await asyncio.gather(run_calls(self.sandbox, samples[a].program, calls),
                                            run_calls(self.sandbox, samples[b].program, calls))
        differ = [i for i, (x, y) in enumerate(zip(out_a, out_b, strict=True)) if x != y]
        if not differ:
            record["decided_by"] = "same outputs"
            return record
        call, got_a, got_b = calls[differ[0]], out_a[differ[0]], out_b[differ[0]]
        record.update(input=call, output_a=got_a, output_b=got_b)
        if self.params.judge == "oracle":
            pick = await self._oracle(problem, call, got_a, got_b)
        else:
            pick = await self._model_judge(problem, samples[a].program, samples[b].program,
                                           (call, got_a, got_b), ctx)
        if pick is not None:
            record.update(winner=a if pick == "A" else b, decided_by=self.params.judge)
        return record

    async def _inputs(self, problem: CodeProblem, program_a: str, program_b: str,
                      ctx: RunContext) -> list[str]:
        params = self.sampling(ctx, n=1, temperature=0.0, max_tokens=INPUT_TOKENS)
        messages = input_messages(problem, program_a, program_b, self.params.inputs)
        [[reply]] = await ctx.generate([messages], params, strategy=f"{self.name}:inputs")
        return parse_calls(reply.text, problem.entry_point, self.params.inputs)

    async def _model_judge(self, problem: CodeProblem, program_a: str, program_b: str,
                           evidence: tuple[str, str, str], ctx: RunContext) -> str | None:
        params = self.sampling(ctx, n=1, temperature=0.0, max_tokens=JUDGE_TOKENS)
        messages = judge_messages(problem, program_a, program_b, *evidence)
        [[reply]] = await ctx.generate([messages], params, strategy=f"{self.name}:judge")
        return parse_choice(reply.text)

    async def _oracle(self, problem: CodeProblem, call: str, got_a: str, got_b: str
                      ) -> str | None:
        [truth] = await run_calls(self.sandbox, str(problem.reference), [call])
        if got_a == truth != got_b:
            return "A"
        if got_b == truth != got_a:
            return "B"
        return None

    # -- result ---------------------------------------------------------------

    def _answer(self, samples: list[_Sample], survivors: list[int], selection: _Selection,
                rounds: int, ctx: RunContext) -> Answer:
        candidates = [Candidate(s.reply, s.program, s.report.pass_rate, s.finish_reason,
                                s.tokens) for s in samples]
        chosen = samples[selection.winner]
        return Answer(
            text=chosen.reply, answer=chosen.program, strategy=self.name,
            candidates=candidates, confidence=chosen.report.pass_rate, ledger=ctx.ledger,
            info={"samples": len(samples), "debug_rounds": rounds,
                  "public_tests": len(chosen.report.outcomes),
                  "public_pass_rates": [s.report.pass_rate for s in samples],
                  "survivors": survivors, "chosen": selection.winner,
                  "comparisons": selection.comparisons,
                  "sandbox": self.sandbox.isolation.describe()})


def _as_code_problem(problem: Problem) -> CodeProblem:
    if not isinstance(problem, CodeProblem) or not problem.entry_point:
        raise ConfigError("s-star needs a CodeProblem with an entry_point "
                          "(see ponder.verifiers.code.CodeProblem.from_stub)")
    return problem


def _survivors(samples: list[_Sample]) -> list[int]:
    """Samples that pass every public test; else those with the best pass rate."""
    passing = [i for i, s in enumerate(samples) if s.report.all_passed]
    if passing:
        return passing
    best = max(s.report.pass_rate for s in samples)
    return [i for i, s in enumerate(samples) if s.report.pass_rate == best]


def _distinct(samples: list[_Sample], indices: list[int]) -> list[int]:
    """One index per distinct program (``program_key``), in order."""
    seen: dict[str, int] = {}
    for i in indices:
        seen.setdefault(program_key(samples[i].program), i)
    return list(seen.values())


def debug_messages(problem: CodeProblem, sample: _Sample) -> list[Message]:
    """The chat that asks to fix a program, with the first failing test's outcome."""
    failure = sample.report.first_failure()
    if sample.report.load_error and (failure is None or failure.error is None
                                     or failure.error == sample.report.load_error):
        feedback = f"The code fails before any test runs:\n{sample.report.load_error}"
    else:
        feedback = "The code fails this test:\n" + (failure.feedback() if failure else "")
    return [*problem.code_chat(),
            {"role": "assistant", "content": sample.reply},
            {"role": "user", "content": f"{feedback}\n\nFix the function. Reply with the "
                                        f"complete corrected function in one ```python block."}]


def input_messages(problem: CodeProblem, program_a: str, program_b: str,
                   count: int) -> list[Message]:
    """The chat that asks for inputs on which two programs may disagree."""
    return [{"role": "system", "content": "You are an expert software tester."},
            {"role": "user", "content": (
                f"{problem.question}\n\nTwo candidate solutions:\n\nProgram A:\n```python\n"
                f"{program_a.strip()}\n```\n\nProgram B:\n```python\n{program_b.strip()}\n```\n\n"
                f"Write {count} different test inputs on which A and B may return different "
                f"results. Write each input as a call of `{problem.entry_point}` on its own "
                f"line, all in one ```python block, with nothing else.")}]


def judge_messages(problem: CodeProblem, program_a: str, program_b: str, call: str,
                   got_a: str, got_b: str) -> list[Message]:
    """The chat that asks which of two outputs is right, grounded in their execution."""
    return [{"role": "system", "content": "You are an expert Python programmer and judge."},
            {"role": "user", "content": (
                f"{problem.question}\n\nProgram A:\n```python\n{program_a.strip()}\n```\n\n"
                f"Program B:\n```python\n{program_b.strip()}\n```\n\nOn the input `{call}`, "
                f"program A returns `{got_a}` and program B returns `{got_b}`. Which output is "
                f"correct for the task? Answer with one letter: A or B.")}]


def parse_calls(text: str, entry_point: str, limit: int) -> list[str]:
    """Distinct calls of ``entry_point``, one per line (parsed with ``ast``, never run here)."""
    calls: list[str] = []
    for line in extract_code(text).splitlines():
        call = find_call(line.strip().removeprefix(">>>"), entry_point)
        if call is not None and call not in calls:
            calls.append(call)
    return calls[:limit]


def parse_choice(text: str) -> str | None:
    """The first standalone "A" or "B" in a judge's reply."""
    match = _CHOICE.search(text.replace("Program", " ").replace("program", " "))
    return match.group(1) if match else None

