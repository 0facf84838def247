"""POST /v1/completions: raw continuation, or a named strategy on the prompt as a question.

Without a strategy (no ``ponder.strategy``, no ``<strategy>/`` model prefix,
no ``ponder.reasoning_effort``) the prompt is continued verbatim, as every
OpenAI-compatible engine does; the server's default strategy does not apply
here. With one, each prompt is the question the strategy answers. Several
prompts give ``len(prompt) * n`` choices, prompt-major.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from ponder.server import runs
from ponder.server.deps import require_api_key
from ponder.server.prepare import prepare_run
from ponder.server.protocol import (
    CompletionRequest,
    CompletionResponse,
    RunSpec,
    TextChoice,
    UsageInfo,
    json_response,
    new_id,
    now,
)
from ponder.server.streaming import EventStreamResponse, events, sse
from ponder.strategies.base import Answer

ENDPOINT = "/v1/completions"

router = APIRouter(dependencies=[Depends(require_api_key)])


@router.post(ENDPOINT, response_model=None)
async def completions(body: CompletionRequest, request: Request) -> Response:
    started = time.perf_counter()
    run = await prepare_run(body, request)
    state, spec, strategy, choices, model, slot = (run.state, run.spec, run.strategy,
                                                   run.choices, run.model, run.slot)
    if spec.stream:
        return EventStreamResponse(events(state, spec, strategy, choices, _Chunks(model, spec),
                                          endpoint=ENDPOINT, started=started, bill=run.bill),
                                   slot, run.bill)
    answers, usage = await runs.complete(state, spec, strategy, choices, slot, run.bill)
    return json_response(CompletionResponse(
        id=new_id("cmpl"), created=now(), model=model, usage=usage,
        choices=[TextChoice(index=c.index, text=_echo(spec, c) + a.text,
                            finish_reason=runs.finish_reason(a),
                            ponder=runs.choice_info(a, spec.budget_level))
                 for c, a in zip(choices, answers, strict=True)]))


def _echo(spec: RunSpec, choice: runs.Choice) -> str:
    return choice.problem.question if spec.echo else ""


class _Chunks:
    """``text_completion`` events: the echoed prompt, text deltas, a finish chunk."""

    def __init__(self, model: str, spec: RunSpec) -> None:
        self.model = model
        self.spec = spec
        self.id = new_id("cmpl")
        self.created = now()

    def _chunk(self, index: int, text: str, finish: str | None = None) -> bytes:
        return sse(CompletionResponse(id=self.id, created=self.created, model=self.model,
                                      choices=[TextChoice(index=index, text=text,
                                                          finish_reason=finish)]))

    def opening(self, choice: runs.Choice) -> list[bytes]:
        return [self._chunk(choice.index, _echo(self.spec, choice))] if self.spec.echo else []

    def text(self, index: int, text: str) -> bytes:
        return self._chunk(index, text)

    def closing(self, index: int, answer: Answer) -> list[bytes]:
        return [self._chunk(index, "", runs.finish_reason(answer))]

    def usage(self, usage: UsageInfo) -> bytes:
        return sse(CompletionResponse(id=self.id, created=self.created, model=self.model,
                                      choices=[], usage=usage))
