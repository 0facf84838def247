"""Composition: ``pipeline(a, b)``, ``parallel(a, b)``, and a one-line grammar for them.

``pipeline(a, b)`` runs ``a``, then runs ``b`` on the same problem with ``a``'s
response as ``Problem.draft``, which ``Problem.chat`` shows the model as an
earlier attempt to check and improve (a strategy may also read the draft
directly, e.g. to revise it instead of starting over). ``parallel(a, b)`` runs
every branch on the problem, with the remaining token budget split evenly
among the branches still to run, and picks an answer: ``select="vote"``
(majority vote over all the branches' candidates) or ``select="verifier"``
(the branch whose response the verifier scores highest: the request's
verifier, else ``LLMJudge``).

The grammar, accepted wherever a strategy name is (``Registry.create``,
``ponder ask --strategy``)::

    spec     := parallel
    parallel := pipeline ("|" pipeline)*          a|b      run both, select
    pipeline := primary (">" primary)*            a>b      a's output feeds b
    primary  := call | "(" parallel ")"           ">" binds tighter than "|"
    call     := NAME ["(" [arg ("," arg)*] ")"]
    arg      := KEY "=" VALUE                     VALUE: bare word or '...' / "..."

    "self-consistency(n=8)|best-of-n(n=4)"         parallel, vote by default
    "chain-of-draft>self-refine(rounds=1)"         pipeline
    "(cot|self-consistency(n=4))>self-refine"      a parallel feeding a pipeline

Values are read like ``--param`` values (coerced to the parameter's type).
Options given next to a spec (``--param k=v``) apply to its outermost part:
``select`` for a parallel, the strategy's own parameters for a single call.
Errors are ``ConfigError``s that name the column and draw a caret under it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NoReturn, get_args

from ponder.errors import BudgetExceeded, ConfigError
from ponder.strategies.base import Answer, Candidate, Problem, RunContext, Strategy, parse_params
from ponder.verifiers.llm_judge import LLMJudge
from ponder.verifiers.voting import vote

if TYPE_CHECKING:
    from ponder.strategies.registry import Registry

OPERATORS = "|>()"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_BARE_VALUE = re.compile(r"[^\s,()|>=\"']+")

Selection = Literal["vote", "verifier"]


# -- the grammar --------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Call:
    """A strategy name with inline parameters, at ``column`` (0-based) of the spec."""

    name: str
    args: tuple[tuple[str, str], ...]
    column: int


@dataclass(frozen=True, slots=True)
class Composite:
    op: Literal["|", ">"]
    parts: tuple[Call | Composite, ...]


Node = Call | Composite


def is_spec(name: str) -> bool:
    """Whether ``name`` is a composition spec rather than a plain strategy name."""
    return any(ch in name for ch in OPERATORS)


def parse(spec: str) -> Node:
    """The syntax tree of ``spec``; a ``ConfigError`` points at the first error."""
    parser = _Parser(spec)
    node = parser.parallel()
    parser.skip_space()
    if parser.pos < len(spec):
        parser.fail(f"unexpected {spec[parser.pos]!r}")
    return node


class _Parser:
    """Recursive descent over the spec string, one method per grammar rule."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.pos = 0

    def fail(self, reason: str, column: int | None = None) -> NoReturn:
        raise spec_error(self.spec, reason, self.pos if column is None else column)

    def skip_space(self) -> None:
        while self.pos < len(self.spec) and self.spec[self.pos].isspace():
            self.pos += 1

    def peek(self, char: str) -> bool:
        self.skip_space()
        return self.spec.startswith(char, self.pos)

    def expect(self, char: str, what: str) -> None:
        if not self.peek(char):
            found = repr(self.spec[self.pos]) if self.pos < len(self.spec) else "the end"
            self.fail(f"expected {what}, found {found}")
        self.pos += 1

    def parallel(self) -> Node:
        return self._chain("|", self.pipeline)

    def pipeline(self) -> Node:
        return self._chain(">", self.primary)

    def _chain(self, op: Literal["|", ">"], part: Callable[[], Node]) -> Node:
        parts = [part()]
        while self.peek(op):
            self.pos += 1
            parts.append(part())
        return parts[0] if len(parts) == 1 else Composite(op, tuple(parts))

    def primary(self) -> Node:
        if self.peek("("):
            self.pos += 1
            node = self.parallel()
            self.expect(")", "')' to close the group")
            return node
        return self.call()

    def call(self) -> Call:
        self.skip_space()
        column = self.pos
        name = self._match(_NAME, "a strategy name")
        args: dict[str, str] = {}
        if self.peek("("):
            self.pos += 1
            if not self.peek(")"):
                self._arg(args)
                while self.peek(","):
                    self.pos += 1
                    self._arg(args)
            self.expect(")", "',' or ')' in the parameters of " + repr(name))
        return Call(name, tuple(args.items()), column)

    def _arg(self, args: dict[str, str]) -> None:
        self.skip_space()
        column = self.pos
        key = self._match(_NAME, "a parameter name")
        if key in args:
            self.fail(f"parameter {key!r} is given twice", column)
        self.expect("=", f"'=' after parameter {key!r}")
        args[key] = self._value(key)

    def _value(self, key: str) -> str:
        self.skip_space()
        quote = self.spec[self.pos] if self.pos < len(self.spec) else ""
        if quote in ("'", '"'):
            end = self.spec.find(quote, self.pos + 1)
            if end < 0:
                self.fail(f"unterminated quoted value of {key!r}")
            value, self.pos = self.spec[self.pos + 1:end], end + 1
            return value
        return self._match(_BARE_VALUE, f"a value for {key!r}")

    def _match(self, pattern: re.Pattern[str], what: str) -> str:
        self.skip_space()
        m = pattern.match(self.spec, self.pos)
        if m is None:
            found = repr(self.spec[self.pos]) if self.pos < len(self.spec) else "the end"
            self.fail(f"expected {what}, found {found}")
        self.pos = m.end()
        return m.group()


def spec_error(spec: str, reason: str, column: int) -> ConfigError:
    """A ``ConfigError`` naming the column of ``spec`` and drawing a caret under it."""
    return ConfigError(f"strategy spec {spec!r}: {reason} at column {column + 1}\n"
                       f"  {spec}\n  {' ' * column}^")


# -- building strategies ------------------------------------------------------

def build(spec: str, registry: Registry, options: Mapping[str, Any] | None = None
          ) -> Strategy[Any]:
    """The strategy a spec describes; ``options`` apply to its outermost part."""
    node = parse(spec)
    options = dict(options or {})
    if isinstance(node, Call):
        return _leaf(spec, node, registry, options)
    parts = [_build(spec, part, registry) for part in node.parts]
    if node.op == ">":
        _no_options(Pipeline, options)
        return pipeline(*parts)
    _no_options(Parallel, {k: v for k, v in options.items() if k != "select"})
    chosen = parse_params(ParallelParams, options, owner=Parallel.name)
    return parallel(*parts, select=chosen.select)


def _build(spec: str, node: Node, registry: Registry) -> Strategy[Any]:
    if isinstance(node, Call):
        return _leaf(spec, node, registry, {})
    parts = [_build(spec, part, registry) for part in node.parts]
    return pipeline(*parts) if node.op == ">" else parallel(*parts)


def _leaf(spec: str, call: Call, registry: Registry, options: dict[str, Any]
          ) -> Strategy[Any]:
    args: dict[str, Any] = dict(call.args)
    clash = sorted(options.keys() & args.keys())
    if clash:
        raise spec_error(spec, f"parameter {clash[0]!r} is given in the spec and as an option",
                         call.column)
    try:
        return registry.get(call.name).cls.from_options({**args, **options})
    except ConfigError as exc:
        raise spec_error(spec, str(exc), call.column) from None


def _no_options(cls: type[Strategy[Any]], options: Mapping[str, Any]) -> None:
    if options:
        takes = "only select" if cls is Parallel else "no options"
        raise ConfigError(f"a {cls.name} takes {takes} (got {', '.join(options)}); put "
                          "parameters on its parts, e.g. name(k=v)")


def label(strategy: Strategy[Any]) -> str:
    """A strategy as a spec: its name and its non-default parameters."""
    if isinstance(strategy, Pipeline | Parallel):
        return strategy.spec
    params = strategy.params
    if not dataclasses.is_dataclass(params):
        return strategy.name
    changed = [f"{f.name}={getattr(params, f.name)}" for f in dataclasses.fields(params)
               if getattr(params, f.name) != f.default]
    return f"{strategy.name}({','.join(changed)})" if changed else strategy.name


# -- pipeline -----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PipelineParams:
    """A pipeline has no knobs of its own; its stages have theirs."""


class Pipeline(Strategy[PipelineParams]):
    """Stages run in order; each stage sees the previous stage's response as its draft."""

    name = "pipeline"
    summary = "a>b: the output of a feeds b as a draft"
    Params = PipelineParams

    def __init__(self, stages: Sequence[Strategy[Any]],
                 params: PipelineParams | None = None) -> None:
        super().__init__(params)
        if not stages:
            raise ConfigError("a pipeline needs at least one stage")
        self.stages = list(stages)
        self.spec = ">".join(f"({label(s)})" if isinstance(s, Parallel) else label(s)
                             for s in self.stages)

    async def run(self, problem: Problem, ctx: RunContext) -> Answer:
        answer: Answer | None = None
        stages: list[dict[str, Any]] = []
        stopped = "done"
        for stage in self.stages:
            current = problem if answer is None else dataclasses.replace(problem,
                                                                         draft=answer.text)
            before = ctx.ledger.total().completion_tokens
            try:
                answer = await stage.run(current, ctx)
            except BudgetExceeded:
                if answer is None:
                    raise
                stopped = f"budget (before {label(stage)})"
                break
            stages.append(_summary(stage, answer, ctx, before))
        assert answer is not None
        return Answer(answer.text, answer.answer, self.spec, answer.candidates, answer.votes,
                      answer.confidence, ctx.ledger,
                      info={"stages": stages, "stopped": stopped, "last": answer.info})


# -- parallel -----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ParallelParams:
    select: Selection = "vote"
    """"vote": majority over all branches' candidates; "verifier": best-scored branch."""

    def __post_init__(self) -> None:
        if self.select not in get_args(Selection):
            raise ConfigError(f"parallel select must be one of "
                              f"{', '.join(get_args(Selection))}, got {self.select!r}")


class Parallel(Strategy[ParallelParams]):
    """Every branch answers; one answer is selected by vote or by verifier."""

    name = "parallel"
    summary = "a|b: run both, select by vote or verifier"
    Params = ParallelParams

    def __init__(self, branches: Sequence[Strategy[Any]],
                 params: ParallelParams | None = None) -> None:
        super().__init__(params)
        if not branches:
            raise ConfigError("a parallel composition needs at least one branch")
        self.branches = list(branches)
        self.spec = "|".join(label(b) for b in self.branches)

    async def run(self, problem: Problem, ctx: RunContext) -> Answer:
        results: list[tuple[Strategy[Any], Answer]] = []
        branches: list[dict[str, Any]] = []
        for i, branch in enumerate(self.branches):
            before = ctx.ledger.total().completion_tokens
            try:
                answer = await branch.run(problem, _share(ctx, len(self.branches) - i))
            except BudgetExceeded:
                branches.append({"strategy": label(branch), "skipped": "budget"})
                continue
            results.append((branch, answer))
            branches.append(_summary(branch, answer, ctx, before))
        if not results:
            raise BudgetExceeded(f"token budget of {ctx.max_total_tokens} ran out before any "
                                 f"branch of {self.spec!r} answered")
        info = {"branches": branches, "select": self.params.select}
        if self.params.select == "verifier":
            return await self._by_verifier(problem, ctx, results, info)
        return self._by_vote(problem, ctx, results, info)

    def _by_vote(self, problem: Problem, ctx: RunContext,
                 results: Sequence[tuple[Strategy[Any], Answer]], info: dict[str, Any]
                 ) -> Answer:
        pool = [c for _, answer in results for c in _candidates(answer)]
        result = vote([c.answer for c in pool], problem.kind)
        chosen = pool[result.winner_index] if result.winner_index is not None else pool[0]
        return Answer(chosen.text, result.winner, self.spec, pool,
                      {k: int(v) for k, v in result.tally.items()}, result.share, ctx.ledger,
                      info)

    async def _by_verifier(self, problem: Problem, ctx: RunContext,
                           results: Sequence[tuple[Strategy[Any], Answer]],
                           info: dict[str, Any]) -> Answer:
        verifier = ctx.verifier or LLMJudge()
        texts = [answer.text for _, answer in results]
        try:
            scores = await verifier.score(problem, texts, ctx)
        except BudgetExceeded:
            scores, info["stopped"] = [0.0] * len(texts), "budget (verifier)"
        pool = [Candidate(a.text, a.answer, s) for (_, a), s in zip(results, scores, strict=True)]
        best = max(range(len(pool)), key=lambda i: (pool[i].score or 0.0, -i))
        info["verifier"] = getattr(verifier, "name", type(verifier).__name__)
        return Answer(pool[best].text, pool[best].answer, self.spec, pool,
                      confidence=scores[best], ledger=ctx.ledger, info=info)


def pipeline(*stages: Strategy[Any]) -> Pipeline:
    """``a>b``: run ``a``, then ``b`` with ``a``'s response as the problem's draft."""
    return Pipeline(stages)


def parallel(*branches: Strategy[Any], select: Selection = "vote") -> Parallel:
    """``a|b``: run every branch, then select by ``"vote"`` or ``"verifier"``."""
    return Parallel(branches, ParallelParams(select))


def _share(ctx: RunContext, branches_left: int) -> RunContext:
    """A context whose budget is an even share of what remains (the ledger is shared)."""
    remaining = ctx.remaining_tokens()
    if remaining is None:
        return ctx
    used = ctx.max_total_tokens - remaining if ctx.max_total_tokens is not None else 0
    return dataclasses.replace(ctx, max_total_tokens=used + max(0, remaining) // branches_left)


def _candidates(answer: Answer) -> list[Candidate]:
    return answer.candidates or [Candidate(answer.text, answer.answer)]


def _summary(strategy: Strategy[Any], answer: Answer, ctx: RunContext, before: int
             ) -> dict[str, Any]:
    return {"strategy": label(strategy), "answer": answer.answer,
            "completion_tokens": ctx.ledger.total().completion_tokens - before}
