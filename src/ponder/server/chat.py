"""POST /v1/chat/completions.

The messages reach the strategy whole (``Problem(question=<last user message>,
messages=<all of them>)``). With ``tools`` (and ``tool_choice`` other than
"none") the request falls back to one direct generation that may call them
(see ``passthrough.ToolCalling``).
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from ponder.server import runs
from ponder.server.deps import require_api_key
from ponder.server.prepare import prepare_run
from ponder.server.protocol import (
    AssistantMessage,
    ChatChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatStreamChoice,
    DeltaMessage,
    ToolCallOut,
    UsageInfo,
    json_response,
    new_id,
    now,
)
from ponder.server.streaming import EventStreamResponse, events, sse
from ponder.strategies.base import Answer

ENDPOINT = "/v1/chat/completions"

router = APIRouter(dependencies=[Depends(require_api_key)])


@router.post(ENDPOINT, response_model=None)
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
    started = time.perf_counter()
    run = await prepare_run(body, request)
    state, spec, strategy, choices, model, slot = (run.state, run.spec, run.strategy,
                                                   run.choices, run.model, run.slot)
    if spec.stream:
        return EventStreamResponse(events(state, spec, strategy, choices, _Chunks(model),
                                          endpoint=ENDPOINT, started=started, bill=run.bill),
                                   slot, run.bill)
    answers, usage = await runs.complete(state, spec, strategy, choices, slot, run.bill)
    return json_response(ChatCompletionResponse(
        id=new_id("chatcmpl"), created=now(), model=model, usage=usage,
        choices=[_choice(i, a, spec.budget_level) for i, a in enumerate(answers)]))


def _choice(index: int, answer: Answer, budget_level: int | None) -> ChatChoice:
    calls = answer.info.get("tool_calls") or None
    content = answer.info.get("content") if calls else answer.text
    return ChatChoice(index=index, finish_reason=runs.finish_reason(answer),
                      message=AssistantMessage(content=content, tool_calls=_tool_calls(calls)),
                      ponder=runs.choice_info(answer, budget_level))


def _tool_calls(calls: list[dict[str, Any]] | None) -> list[ToolCallOut] | None:
    return [ToolCallOut.model_validate(c) for c in calls] if calls else None


class _Chunks:
    """``chat.completion.chunk`` events: a role delta, content deltas, a finish delta."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.id = new_id("chatcmpl")
        self.created = now()

    def _chunk(self, index: int, delta: DeltaMessage, finish: str | None = None) -> bytes:
        return sse(ChatCompletionChunk(
            id=self.id, created=self.created, model=self.model,
            choices=[ChatStreamChoice(index=index, delta=delta, finish_reason=finish)]))

    def opening(self, choice: runs.Choice) -> list[bytes]:
        return [self._chunk(choice.index, DeltaMessage(role="assistant", content=""))]

    def text(self, index: int, text: str) -> bytes:
        return self._chunk(index, DeltaMessage(content=text))

    def closing(self, index: int, answer: Answer) -> list[bytes]:
        calls = answer.info.get("tool_calls") or []
        out = [self._chunk(index, DeltaMessage(
            tool_calls=[{"index": i, **call} for i, call in enumerate(calls)]))] if calls else []
        return [*out, self._chunk(index, DeltaMessage(), runs.finish_reason(answer))]

    def usage(self, usage: UsageInfo) -> bytes:
        return sse(ChatCompletionChunk(id=self.id, created=self.created, model=self.model,
                                       choices=[], usage=usage))
