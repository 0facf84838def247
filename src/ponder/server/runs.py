"""Running a ``RunSpec`` on the engine: the strategy, one fresh context per choice, usage.

This is the whole bridge from HTTP to the library: a strategy from the
engine's registry, a ``RunContext`` per choice (its own ledger and its share of
the request's budget), and ``Strategy.run`` / ``Strategy.stream``. Nothing here
samples or votes; the strategies do.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import typing
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import TypeAdapter, ValidationError
from pydantic.errors import PydanticSchemaGenerationError
from starlette.datastructures import State

from ponder.engine import Engine
from ponder.errors import ConfigError
from ponder.ledger import Ledger
from ponder.server.errors import ApiError
from ponder.server.passthrough import RawContinuation, ToolCalling
from ponder.server.protocol import (
    ChoiceInfo,
    CompletionTokensDetails,
    PromptTokensDetails,
    RunSpec,
    UsageInfo,
    greedy_below,
)
from ponder.server.settings import ServerSettings, Slot, check_param_caps
from ponder.strategies.base import Answer, Problem, RunContext, Strategy

if TYPE_CHECKING:
    from ponder.server.rolling import Bill

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Choice:
    """One choice to produce: which problem, its index in the response, its context."""

    index: int
    problem: Problem
    ctx: RunContext


def make_strategy(engine: Engine, spec: RunSpec, settings: ServerSettings) -> Strategy[Any]:
    """The strategy for ``spec``, its parameters checked against types and caps."""
    if spec.mode == "raw":
        return RawContinuation()
    if spec.mode == "tools":
        return ToolCalling(spec.tools, spec.tool_choice)
    assert spec.strategy is not None
    try:
        info = engine.registry.get(spec.strategy)
    except ConfigError as exc:
        raise ApiError(str(exc), param="ponder.strategy", code="unknown_strategy") from None
    declared = {f.name for f in dataclasses.fields(info.cls.Params)}
    options = {k: v for k, v in spec.overrides.items() if k in declared} | dict(spec.params)
    if isinstance(options.get("temperature"), float):
        options["temperature"] = greedy_below(options["temperature"])
    try:
        strategy = info.cls.from_options(options)
    except ConfigError as exc:
        raise ApiError(str(exc), param="ponder.params", code="invalid_value") from None
    _check_types(strategy.params, info.name)
    check_param_caps(strategy.params, settings)
    return strategy


@functools.lru_cache(maxsize=256)
def _adapters(params_cls: type[Any]) -> tuple[tuple[str, TypeAdapter[Any]], ...]:
    """One validator per field of a Params class (a pure memo: classes do not change).
    Fields of types pydantic cannot check are left to the strategy's own checks."""
    hints = typing.get_type_hints(params_cls)
    out = []
    for field in dataclasses.fields(params_cls):
        with contextlib.suppress(PydanticSchemaGenerationError):
            out.append((field.name, TypeAdapter(hints[field.name])))
    return tuple(out)


def _check_types(params: Any, owner: str) -> None:
    """JSON values must match the declared types (a list where an int belongs is a 400)."""
    for name, adapter in _adapters(type(params)):
        try:
            adapter.validate_python(getattr(params, name), strict=True)
        except ValidationError as exc:
            message = exc.errors()[0]["msg"]
            raise ApiError(f"strategy {owner!r}: parameter {name!r}: {message}",
                           param=f"ponder.params.{name}", code="invalid_value") from None


def make_choices(engine: Engine, spec: RunSpec) -> list[Choice]:
    """One context per choice, each with an equal share of the request's budget."""
    share = spec.budget // spec.choices
    if share < 1:
        raise ApiError(f"ponder.budget={spec.budget} is less than one token per choice "
                       f"({spec.choices} choices)", param="ponder.budget",
                       code="budget_exceeded")
    choices = []
    for index in range(spec.choices):
        sampling = spec.sampling
        if sampling.seed is not None:
            sampling = sampling.with_(seed=sampling.seed + index)
        ctx = RunContext(backend=engine.backend, ledger=Ledger(), sampling=sampling,
                         max_total_tokens=share, registry=engine.registry)
        choices.append(Choice(index, spec.problems[index // spec.n], ctx))
    return choices


async def run_choices(strategy: Strategy[Any], choices: Sequence[Choice]) -> list[Answer]:
    """All choices at once; the first failure cancels the rest."""
    return await gather_or_cancel([strategy.run(c.problem, c.ctx) for c in choices])


async def complete(state: State, spec: RunSpec, strategy: Strategy[Any],
                   choices: Sequence[Choice], slot: Slot, bill: Bill | None = None
                   ) -> tuple[list[Answer], UsageInfo]:
    """Run every choice to its answer within the request timeout (non-streaming).
    However it ends, the slot is freed and the tokens are billed."""
    try:
        answers = await asyncio.wait_for(run_choices(strategy, choices),
                                         state.settings.request_timeout)
    except TimeoutError:
        raise ApiError("the request took longer than this server's request timeout",
                       status=504, code="timeout") from None
    finally:
        slot.release()
        if bill is not None:
            bill.settle()
    return answers, await finish(state, spec, answers, choices, bill)


async def finish(state: State, spec: RunSpec, answers: Sequence[Answer],
                 choices: Sequence[Choice], bill: Bill | None = None) -> UsageInfo:
    """Count the request's tokens in the metrics (and the online budget) and build its
    usage."""
    ledgers = [c.ctx.ledger for c in choices]
    state.metrics.add_tokens(merged_ledger(ledgers))
    extra = await state.contexts.usage_extra(spec)
    if bill is not None:
        extra |= bill.report()
    return usage_info(answers, ledgers, extra)


async def gather_or_cancel(coros: Sequence[Awaitable[T]]) -> list[T]:
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def merged_ledger(ledgers: Sequence[Ledger]) -> Ledger:
    total = Ledger()
    for ledger in ledgers:
        total.extend(ledger)
    return total


def visible_tokens(answer: Answer) -> int:
    """Completion tokens of the returned text (0 if no candidate is the returned text)."""
    for candidate in answer.candidates:
        if candidate.text == answer.text:
            return candidate.tokens
    return 0


def usage_info(answers: Sequence[Answer], ledgers: Sequence[Ledger],
               extra: dict[str, Any] | None = None) -> UsageInfo:
    """OpenAI usage from the ledgers; everything not returned counts as reasoning."""
    ledger = merged_ledger(ledgers)
    total = ledger.total()
    hidden = total.completion_tokens - sum(visible_tokens(a) for a in answers)
    return UsageInfo(
        prompt_tokens=total.prompt_tokens, completion_tokens=total.completion_tokens,
        total_tokens=total.total_tokens,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=total.cached_prompt_tokens),
        completion_tokens_details=CompletionTokensDetails(reasoning_tokens=max(0, hidden)),
        ponder=ledger.summary() | (extra or {}))


_CONTEXT_KEYS = ("context_id", "learned_version", "query_id", "logprob_per_token")


def choice_info(answer: Answer, budget_level: int | None = None) -> ChoiceInfo:
    context = {k: answer.info[k] for k in _CONTEXT_KEYS if k in answer.info} or None
    return ChoiceInfo(strategy=answer.strategy, answer=answer.answer, votes=answer.votes,
                      confidence=answer.confidence, context=context,
                      budget_level=budget_level)


def finish_reason(answer: Answer) -> str:
    reason = answer.info.get("finish_reason")
    if isinstance(reason, str):
        return reason
    for candidate in answer.candidates:
        if candidate.text == answer.text:
            return "length" if candidate.finish_reason == "length" else "stop"
    return "stop"
