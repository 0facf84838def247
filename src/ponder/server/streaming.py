"""Server-sent events: strategy streams in, ``data: {...}`` lines out.

Each choice runs ``Strategy.stream(problem, ctx)`` in its own task and its
items (text deltas, then the ``Answer``) meet in one queue, so

* single-sample strategies (cot, raw continuation) stream every token as the
  backend decodes it: the first content chunk leaves one queue hop after the
  backend's first token;
* multi-sample strategies (self-consistency, ...) send the chosen answer as
  soon as it is chosen;
* while nothing arrives for ``progress_interval`` seconds, the server sends an
  SSE comment (clients ignore comments; it also keeps proxies from closing an
  idle connection)::

      : ponder-progress {"calls": 1, "completion_tokens": 512, "seconds": 5.0}

  counting the backend calls that have finished so far in this request.

An error after the response has started becomes one ``data: {"error": {...}}``
event (the openai client raises it as ``APIError``), then ``data: [DONE]``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel
from starlette.datastructures import State
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from ponder.server.errors import from_exception
from ponder.server.protocol import RunSpec, UsageInfo
from ponder.server.runs import Choice, finish
from ponder.server.settings import ServerSettings, Slot
from ponder.strategies.base import Answer, Strategy

if TYPE_CHECKING:
    from ponder.server.rolling import Bill

DONE = b"data: [DONE]\n\n"


@dataclass(frozen=True, slots=True)
class Progress:
    """What a request has spent so far (finished backend calls only)."""

    calls: int
    completion_tokens: int
    seconds: float


Item = tuple[int, str | Answer]


def sse(payload: BaseModel | dict[str, Any]) -> bytes:
    data = payload.model_dump_json(exclude_none=False) if isinstance(payload, BaseModel) \
        else json.dumps(payload)
    return b"data: " + data.encode() + b"\n\n"


def comment(progress: Progress) -> bytes:
    body = json.dumps({"calls": progress.calls, "completion_tokens": progress.completion_tokens,
                       "seconds": round(progress.seconds, 3)})
    return f": ponder-progress {body}\n\n".encode()


async def stream_choices(strategy: Strategy[Any], choices: Sequence[Choice], *,
                         timeout: float, progress_interval: float
                         ) -> AsyncIterator[Item | Progress]:
    """Items of all choices as they come; ``Progress`` when they pause. Raises
    the first failure, or ``TimeoutError`` after ``timeout`` seconds."""
    queue: asyncio.Queue[tuple[int, str | Answer | Exception]] = asyncio.Queue()

    async def pump(choice: Choice) -> None:
        try:
            async for item in strategy.stream(choice.problem, choice.ctx):
                queue.put_nowait((choice.index, item))
        except Exception as exc:
            queue.put_nowait((choice.index, exc))

    tasks = [asyncio.create_task(pump(c)) for c in choices]
    loop = asyncio.get_running_loop()
    started = loop.time()
    pending = len(choices)
    try:
        while pending:
            left = started + timeout - loop.time()
            if left <= 0:
                raise TimeoutError
            try:
                if queue.empty():  # a cancelled Queue.get never loses an item
                    async with asyncio.timeout(min(left, progress_interval)):
                        index, item = await queue.get()
                else:
                    index, item = queue.get_nowait()
            except TimeoutError:
                if loop.time() - started >= timeout:
                    raise
                yield _progress(choices, loop.time() - started)
                continue
            if isinstance(item, Exception):
                raise item
            pending -= isinstance(item, Answer)
            yield index, item
        # Let each stream run to its end: the backend books a call in the ledger after
        # its last chunk, which is after the strategy has yielded its Answer.
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _progress(choices: Sequence[Choice], seconds: float) -> Progress:
    calls = sum(c.ctx.ledger.calls for c in choices)
    tokens = sum(c.ctx.ledger.total().completion_tokens for c in choices)
    return Progress(calls, tokens, seconds)


async def with_errors(events: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The events, then ``[DONE]``; a failure midway becomes an error event first."""
    try:
        async for event in events:
            yield event
    except Exception as exc:
        yield sse(from_exception(exc).body())
    yield DONE


class EventStreamResponse(StreamingResponse):
    """An SSE response that frees its concurrency slot (and bills its tokens to the online
    budget) however the stream ends.

    Both happen in ``__call__``, which runs even when the client disconnects
    before the body starts (a generator's ``finally`` would not).
    """

    def __init__(self, events: AsyncIterator[bytes], slot: Slot, bill: Bill | None = None
                 ) -> None:
        super().__init__(with_errors(events), media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self.slot = slot
        self.bill = bill

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.slot.release()
            if self.bill is not None:
                self.bill.settle()


class Renderer(Protocol):
    """How one endpoint spells its chunks."""

    def opening(self, choice: Choice) -> list[bytes]: ...

    def text(self, index: int, text: str) -> bytes: ...

    def closing(self, index: int, answer: Answer) -> list[bytes]: ...

    def usage(self, usage: UsageInfo) -> bytes: ...


async def events(state: State, spec: RunSpec, strategy: Strategy[Any],
                 choices: Sequence[Choice], renderer: Renderer, *, endpoint: str,
                 started: float, bill: Bill | None = None) -> AsyncIterator[bytes]:
    """The SSE events of one request, usage chunk last when asked for."""
    settings: ServerSettings = state.settings
    for c in choices:
        for event in renderer.opening(c):
            yield event
    answers: dict[int, Answer] = {}
    first = True
    async for item in stream_choices(strategy, choices, timeout=settings.request_timeout,
                                     progress_interval=settings.progress_interval):
        if isinstance(item, Progress):
            yield comment(item)
            continue
        index, value = item
        if isinstance(value, Answer):
            answers[index] = value
            for event in renderer.closing(index, value):
                yield event
            continue
        if first:
            state.metrics.observe_first_token(endpoint, time.perf_counter() - started)
            first = False
        yield renderer.text(index, value)
    usage = await finish(state, spec, [answers[i] for i in sorted(answers)], choices, bill)
    if spec.include_usage:
        yield renderer.usage(usage)
