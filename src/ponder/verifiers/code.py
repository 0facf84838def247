"""Code problems and their tests: extract a program from a reply, run tests on it in the sandbox.

A ``CodeProblem`` is a function to write (HumanEval style): the given stub
(signature and docstring), the function's name, and public tests that a
strategy may run. Tests run in ``ponder.sandbox`` through a small harness
program, never in ponder's process; the harness reports one JSON line per
test, prefixed with a random marker passed on stdin so that a program's own
prints cannot pass for results. The harness and the program share one
interpreter, so a program written to forge results could still find the
marker: result integrity against deliberate forgery is best effort, while the
host is protected by the sandbox either way.
"""

from __future__ import annotations

import ast
import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from ponder.backends.base import Message
from ponder.sandbox import Limits, Sandbox, SandboxResult
from ponder.strategies.base import Problem
from ponder.verifiers.answers import AnswerKind

CODE_INSTRUCTION = ("You are an expert Python programmer. Write the complete function, with any "
                    "imports it needs, in one ```python code block.")

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_CODE_LANGS = ("", "python", "py", "python3")
_OUTPUT_LIMIT = 300


@dataclass(frozen=True, slots=True)
class CodeTest:
    """One test of a function.

    With ``expected``, ``source`` is an expression (``add(2, 3)``) whose value must
    equal ``expected`` (``5``, also an expression). Without it, ``source`` is
    statements that raise on failure (HumanEval's ``check(add)``).
    """

    source: str
    expected: str | None = None

    def describe(self) -> str:
        return self.source if self.expected is None else f"{self.source} == {self.expected}"


@dataclass(frozen=True, slots=True)
class CodeProblem(Problem):
    """A Python function to write, with the tests a strategy may run."""

    kind: AnswerKind = "text"
    entry_point: str = ""
    """The function's name."""
    stub: str = ""
    """The given code: imports, helpers, the signature and the docstring."""
    tests: tuple[CodeTest, ...] = ()
    """Public tests: strategies may run them and show their results to the model."""
    reference: str | None = None
    """A known-correct program, for oracle judging where one exists (never shown to the model)."""

    @classmethod
    def from_stub(cls, stub: str, entry_point: str, tests: Sequence[CodeTest] = (), *,
                  reference: str | None = None) -> CodeProblem:
        question = (f"Complete the Python function `{entry_point}`:\n\n```python\n"
                    f"{stub.rstrip()}\n```")
        return cls(question, system=CODE_INSTRUCTION, entry_point=entry_point, stub=stub,
                   tests=tuple(tests), reference=reference)

    def code_chat(self) -> list[Message]:
        """The chat that asks for the program (with the code instruction, exactly once)."""
        has_instruction = CODE_INSTRUCTION in (self.system or "")
        return self.chat(None if has_instruction else CODE_INSTRUCTION)

    def program(self, code: str) -> str:
        """A runnable program from a model's code: the stub's preamble, then the code.

        If the code does not define the function, it is taken as the body that
        continues the stub.
        """
        if re.search(rf"^\s*(?:async\s+)?def\s+{re.escape(self.entry_point)}\s*\(", code, re.M):
            return f"{self.preamble()}{code.strip()}\n"
        return f"{self.stub}{code}\n"

    def preamble(self) -> str:
        """The stub before the function's own ``def``: imports and helper functions."""
        match = re.search(rf"^def\s+{re.escape(self.entry_point)}\s*\(", self.stub, re.M)
        return self.stub[:match.start()] if match else ""


def extract_code(text: str, entry_point: str | None = None) -> str:
    """The Python code in a model's reply.

    The first fenced block that defines ``entry_point``, else the longest Python
    block, else the whole reply. An unclosed last block (a reply cut at
    max_tokens) counts.
    """
    blocks = [m.group(2) for m in _FENCE.finditer(text) if m.group(1).lower() in _CODE_LANGS]
    if entry_point:
        defining = re.compile(rf"^\s*(?:async\s+)?def\s+{re.escape(entry_point)}\s*\(", re.M)
        for block in blocks:
            if defining.search(block):
                return block.strip("\n")
    if blocks:
        return max(blocks, key=len).strip("\n")
    return text.strip("\n")


def find_call(line: str, entry_point: str) -> str | None:
    """The call of ``entry_point`` in a line such as ``f(1)``, ``print(f(1))`` or
    ``assert f(1) == 2``, normalized; None when there is none. Parsed, never run."""
    try:
        [statement] = ast.parse(line.strip()).body
    except (SyntaxError, ValueError):
        return None
    node: ast.AST | None = None
    if isinstance(statement, ast.Expr):
        node = statement.value
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "print" and len(node.args) == 1):
            node = node.args[0]
    elif isinstance(statement, ast.Assert) and isinstance(statement.test, ast.Compare):
        node = statement.test.left
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == entry_point):
        return ast.unparse(node)
    return None


def program_key(program: str) -> str:
    """A key under which programs that differ only in layout, comments, docstrings or
    top-level expression statements (demo prints) are equal. Parsed, never run."""
    try:
        tree = ast.parse(program)
    except (SyntaxError, ValueError):
        return " ".join(program.split())
    tree.body = [node for node in tree.body if not isinstance(node, ast.Expr)]
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


@dataclass(frozen=True, slots=True)
class TestOutcome:
    test: CodeTest
    passed: bool
    got: str | None = None
    """repr() of the value the expression returned (shortened)."""
    error: str | None = None
    """The exception it raised, as ``Type: message`` (or why the run stopped)."""
    printed: str = ""

    def feedback(self) -> str:
        """The outcome as the model is told it when debugging."""
        lines = [f"Test: {self.test.source}"]
        if self.test.expected is not None:
            lines.append(f"Expected: {self.test.expected}")
        lines.append(f"Error: {self.error}" if self.error else f"Got: {self.got}")
        if self.printed.strip():
            lines.append(f"Printed: {self.printed.strip()[:_OUTPUT_LIMIT]}")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class TestReport:
    """The outcome of every test of one program."""

    outcomes: tuple[TestOutcome, ...]
    load_error: str | None
    """Set when the program itself failed (syntax error, exception at import, killed)."""
    run: SandboxResult

    @property
    def passed(self) -> int:
        return sum(o.passed for o in self.outcomes)

    @property
    def pass_rate(self) -> float:
        """Share of tests passed; with no tests, 1.0 when the program loads."""
        if not self.outcomes:
            return 0.0 if self.load_error else 1.0
        return self.passed / len(self.outcomes)

    @property
    def all_passed(self) -> bool:
        return self.load_error is None and all(o.passed for o in self.outcomes)

    def first_failure(self) -> TestOutcome | None:
        return next((o for o in self.outcomes if not o.passed), None)


async def run_tests(sandbox: Sandbox, program: str, tests: Sequence[CodeTest], *,
                    per_test_seconds: float = 2.0, limits: Limits | None = None) -> TestReport:
    """Run ``tests`` against ``program`` in the sandbox."""
    spec = [{"source": t.source, "expected": t.expected,
             "mode": "exec" if t.expected is None else "compare"} for t in tests]
    items, load_error, run = await _harness(sandbox, program, spec, per_test_seconds, limits)
    outcomes = []
    for i, test in enumerate(tests):
        item = items.get(i)
        if item is None:
            outcomes.append(TestOutcome(test, False, error=load_error or _stopped(run)))
        else:
            outcomes.append(TestOutcome(test, bool(item.get("ok")), item.get("got"),
                                        item.get("error"), item.get("printed") or ""))
    return TestReport(tuple(outcomes), load_error, run)


async def run_calls(sandbox: Sandbox, program: str, calls: Sequence[str], *,
                    per_test_seconds: float = 2.0) -> list[str]:
    """What ``program`` returns for each call, as ``repr`` text or ``error: Type: message``."""
    spec = [{"source": c, "expected": None, "mode": "probe"} for c in calls]
    items, load_error, run = await _harness(sandbox, program, spec, per_test_seconds, None)
    observed = []
    for i in range(len(calls)):
        item = items.get(i)
        if item is None:
            observed.append(f"error: {load_error or _stopped(run)}")
        elif item.get("error"):
            observed.append(f"error: {item['error']}")
        else:
            observed.append(str(item.get("got")))
    return observed


async def _harness(sandbox: Sandbox, program: str, spec: list[dict[str, object]],
                   per_test_seconds: float, limits: Limits | None
                   ) -> tuple[dict[int, dict[str, str]], str | None, SandboxResult]:
    marker = f"@@ponder-{secrets.token_hex(8)}@@"
    payload = json.dumps({"tests": spec, "per_test_seconds": per_test_seconds})
    run = await sandbox.arun(_HARNESS, stdin=marker + "\n", limits=limits,
                             files={"solution.py": program, "ponder_tests.json": payload})
    items: dict[int, dict[str, str]] = {}
    load_error: str | None = None
    loaded = False
    for line in run.stdout.splitlines():
        if not line.startswith(marker):
            continue
        try:
            item = json.loads(line[len(marker):])
        except ValueError:
            continue
        if "load_error" in item:
            loaded, load_error = True, item["load_error"]
        else:
            items[int(item["index"])] = item
    if not loaded:
        load_error = _stopped(run)
    return items, load_error, run


def _stopped(run: SandboxResult) -> str:
    if run.killed_by:
        return f"the program was stopped: {run.killed_by.replace('_', ' ')} limit"
    tail = run.stderr.strip().splitlines()[-1:] or [f"exit status {run.exit_code}"]
    return f"the program did not run: {tail[0][:_OUTPUT_LIMIT]}"


_HARNESS = r'''
import contextlib, io, json, math, signal, sys

MARK = sys.stdin.readline().strip()
SPEC = json.load(open("ponder_tests.json", encoding="utf-8"))
OUT = sys.stdout
LIMIT = 300


def emit(item):
    OUT.write(MARK + json.dumps(item) + "\n")
    OUT.flush()


def on_alarm(signum, frame):
    raise TimeoutError("took longer than %s s" % SPEC["per_test_seconds"])


def same(a, b):
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
        except TypeError:
            return False
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return (type(a) is type(b) and len(a) == len(b)
                and all(same(x, y) for x, y in zip(a, b)))
    return a == b


def attempt(fn):
    printed = io.StringIO()
    signal.setitimer(signal.ITIMER_REAL, SPEC["per_test_seconds"])
    try:
        with contextlib.redirect_stdout(printed):
            return fn(), None, printed.getvalue()[:LIMIT]
    except BaseException as exc:
        return None, ("%s: %s" % (type(exc).__name__, exc))[:LIMIT], printed.getvalue()[:LIMIT]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


signal.signal(signal.SIGALRM, on_alarm)
ns = {"__name__": "__solution__"}
source = open("solution.py", encoding="utf-8").read()
_, error, _ = attempt(lambda: exec(compile(source, "solution.py", "exec"), ns))
emit({"load_error": error})
if error is None:
    for index, test in enumerate(SPEC["tests"]):
        if test["mode"] == "exec":
            value, err, printed = attempt(lambda: exec(test["source"], ns))
            ok = err is None
        else:
            value, err, printed = attempt(lambda: eval(test["source"], ns))
            ok = err is None
            if test["mode"] == "compare" and ok:
                expected, err_expected, _ = attempt(lambda: eval(test["expected"], ns))
                ok = err_expected is None and same(value, expected)
        got = repr(value)[:LIMIT] if err is None and test["mode"] != "exec" else None
        emit({"index": index, "ok": ok, "got": got, "error": err, "printed": printed})
'''
