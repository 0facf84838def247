"""The contexts API (sleep-time compute) and ``ponder.context_id`` on completions.

A thin layer over ``ponder.sleep.SleepService``::

    POST   /v1/contexts                 {"text", "name"?, "triggers"?, "meta"?} -> 201
    GET    /v1/contexts                 every context, one summary each
    GET    /v1/contexts/{id}            the context, its learned versions, its amortisation
    POST   /v1/contexts/{id}/append     {"text"}: a new turn (may fire the every-N trigger)
    POST   /v1/contexts/{id}/sleep      {"wait": true, "params": {...}}: S(c) -> c' now
                                        (or, with wait false, queue a job: 202)
    DELETE /v1/contexts/{id}

A chat request with ``ponder.context_id`` answers its last user message about
the context with the newest learned version in the prompt
(``SleepService.aask``, which logs the query for the amortisation), using the
request's strategy and its share of the budget. It takes one question: a
conversation with earlier turns is refused rather than silently cut. The
answer comes whole (no token streaming); ``usage.ponder.context`` carries the
context's amortised cost per query.

The sleep worker runs as an asyncio task in the server (each job in a worker
thread) unless ``ServerSettings.sleep_worker`` is off (``ponder serve
--no-sleep-worker``), for a separate ``ponder sleep worker`` process.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from ponder.server.deps import admit, require_api_key
from ponder.server.errors import ApiError
from ponder.server.protocol import OpenAIBaseModel, RunSpec
from ponder.server.settings import ServerSettings
from ponder.strategies.base import Answer, Problem, RunContext, Strategy

if TYPE_CHECKING:
    from ponder.sleep import SleepService

logger = logging.getLogger("ponder.server")

router = APIRouter(dependencies=[Depends(require_api_key)])


class Contexts:
    """The server's handle on sleep-time compute: a ``SleepService`` (or none) and its worker."""

    def __init__(self, service: SleepService | None, settings: ServerSettings) -> None:
        self.service = service
        self.settings = settings
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start_worker(self) -> None:
        if self.service is None or not self.settings.sleep_worker:
            return
        worker = self.service.worker(poll_seconds=self.settings.sleep_interval)
        self._task = asyncio.create_task(worker.arun(self._stop), name="ponder-sleep-worker")

    async def stop_worker(self, grace: float = 10.0) -> None:
        """Stop polling; a job in progress gets ``grace`` seconds, then its lease lapses."""
        if self._task is None:
            return
        self._stop.set()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(self._task, grace)
        self._task = None

    def worker_running(self) -> bool:
        return self._task is not None and not self._task.done()

    def need(self) -> SleepService:
        if self.service is None:
            raise ApiError("contexts are turned off on this server", status=404,
                           code="contexts_disabled")
        return self.service

    # -- completions with a context -------------------------------------------

    async def prepare(self, spec: RunSpec) -> RunSpec:
        """Check a request's context: it exists, and the request is one question."""
        if spec.context_id is None:
            return spec
        if self.service is None:
            raise ApiError(f"unknown context {spec.context_id!r} (contexts are turned off)",
                           status=404, param="ponder.context_id", code="context_not_found")
        await asyncio.to_thread(self.record, spec.context_id)
        if spec.mode != "strategy":
            raise ApiError("ponder.context_id needs a strategy: it cannot be combined with "
                           "tools or raw continuation", param="ponder.context_id")
        for problem in spec.problems:
            _one_question(problem)
        return spec

    def wrap(self, spec: RunSpec, strategy: Strategy[Any]) -> Strategy[Any]:
        if spec.context_id is None:
            return strategy
        return ContextAnswer(self.need(), context_id(spec.context_id), strategy)

    async def usage_extra(self, spec: RunSpec) -> dict[str, Any]:
        if spec.context_id is None or self.service is None:
            return {}
        cid = context_id(spec.context_id)
        amortisation = await asyncio.to_thread(self.service.amortisation, cid)
        return {"context": {"id": cid, "amortisation": amortisation.to_dict()}}

    def record(self, raw_id: int | str) -> Any:
        """The context record, or a 404."""
        from ponder.sleep import ContextNotFound

        try:
            return self.need().get(context_id(raw_id))
        except ContextNotFound as exc:
            raise ApiError(str(exc), status=404, param="ponder.context_id",
                           code="context_not_found") from None


def context_id(raw: int | str) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.isdigit():
        return int(raw)
    raise ApiError(f"unknown context {raw!r}", status=404, param="ponder.context_id",
                   code="context_not_found")


def _one_question(problem: Problem) -> None:
    turns = [m for m in problem.messages or () if m.get("role") != "system"]
    if len(turns) > 1:
        raise ApiError("ponder.context_id answers one question: send the system prompt (if "
                       "any) and one user message; the context carries the rest",
                       param="messages", code="unsupported_with_context")
    if not problem.question.strip():
        raise ApiError("ponder.context_id needs a user message with the question",
                       param="messages")


@dataclasses.dataclass(frozen=True, slots=True)
class NoParams:
    """The adapter has no parameters; the wrapped strategy has its own."""


class ContextAnswer(Strategy[NoParams]):
    """Answers with a stored context through ``SleepService.aask``; the strategy inside
    does the answering. Its tokens land in the choice's ledger."""

    name = "context"
    Params = NoParams

    def __init__(self, service: SleepService, context: int, inner: Strategy[Any]) -> None:
        super().__init__()
        self.service = service
        self.context = context
        self.inner = inner

    async def run(self, problem: Problem, ctx: RunContext) -> Answer:
        systems = [str(m.get("content") or "") for m in problem.messages or ()
                   if m.get("role") == "system"]
        return await self.service.aask(
            problem.question, self.context, strategy=self.inner,
            budget=ctx.remaining_tokens(), sampling=ctx.sampling,
            system="\n\n".join(systems) or None, kind=problem.kind, ledger=ctx.ledger)


# -- routes --------------------------------------------------------------------


class TriggersIn(OpenAIBaseModel):
    on_ingest: bool = True
    every: int | None = Field(default=None, ge=1)
    idle: float | None = Field(default=None, gt=0)


class ContextIn(OpenAIBaseModel):
    text: str = Field(min_length=1)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    triggers: str | TriggersIn | None = None
    """"ingest,every=5,idle=300", "none", or an object; default: sleep on ingest."""
    meta: dict[str, Any] | None = None


class AppendIn(OpenAIBaseModel):
    text: str = Field(min_length=1)


class SleepIn(OpenAIBaseModel):
    wait: bool = True
    """True: run the sleep agent now and answer with what it learned. False: queue a job."""
    params: dict[str, Any] | None = None
    """``SleepParams`` fields: rounds, samples, max_tokens, temperature, ..."""


def contexts_of(request: Request) -> Contexts:
    contexts: Contexts = request.app.state.contexts
    return contexts


@router.post("/v1/contexts", status_code=201)
async def create_context(body: ContextIn, request: Request) -> dict[str, Any]:
    from ponder.sleep import Triggers

    service = contexts_of(request).need()
    triggers = Triggers(**body.triggers.model_dump(include={"on_ingest", "every", "idle"})) \
        if isinstance(body.triggers, TriggersIn) else body.triggers
    record = await asyncio.to_thread(service.add_context, body.text, name=body.name,
                                     triggers=triggers, meta=body.meta)
    return _record(record, text=False)


@router.get("/v1/contexts")
async def list_contexts(request: Request) -> dict[str, Any]:
    summaries = await asyncio.to_thread(contexts_of(request).need().list)
    return {"object": "list", "data": [_summary(s) for s in summaries]}


@router.get("/v1/contexts/{context_id}")
async def get_context(context_id: int, request: Request) -> dict[str, Any]:
    contexts = contexts_of(request)
    record = await asyncio.to_thread(contexts.record, context_id)
    service = contexts.need()
    learned = await asyncio.to_thread(service.learned, context_id)
    amortisation = await asyncio.to_thread(service.amortisation, context_id)
    jobs = await asyncio.to_thread(service.store.jobs, context_id)
    return _record(record, text=True) | {
        "learned": [_learned(v) for v in learned],
        "amortisation": amortisation.to_dict(),
        "jobs": [dataclasses.asdict(j) for j in jobs]}


@router.post("/v1/contexts/{context_id}/append")
async def append_context(context_id: int, body: AppendIn, request: Request) -> dict[str, Any]:
    contexts = contexts_of(request)
    await asyncio.to_thread(contexts.record, context_id)
    record = await asyncio.to_thread(contexts.need().append, context_id, body.text)
    return _record(record, text=False)


@router.delete("/v1/contexts/{context_id}")
async def delete_context(context_id: int, request: Request) -> dict[str, Any]:
    contexts = contexts_of(request)
    await asyncio.to_thread(contexts.record, context_id)
    await asyncio.to_thread(contexts.need().delete, context_id)
    return {"id": context_id, "object": "context.deleted", "deleted": True}


@router.post("/v1/contexts/{context_id}/sleep", response_model=None)
async def sleep_context(context_id: int, request: Request, body: SleepIn | None = None
                        ) -> dict[str, Any] | JSONResponse:
    from ponder.sleep import SleepParams

    body = body or SleepIn()
    contexts = contexts_of(request)
    await asyncio.to_thread(contexts.record, context_id)
    service = contexts.need()
    if not body.wait:
        job = await asyncio.to_thread(service.store.enqueue, context_id, "api")
        return JSONResponse({"job": dataclasses.asdict(job)}, status_code=202)
    try:
        params = SleepParams(**body.params) if body.params is not None else None
    except TypeError as exc:
        raise ApiError(f"params: {exc}", param="params") from None
    slot = admit(request)
    try:
        report = await asyncio.to_thread(service.sleep_now, context_id, params=params)
    finally:
        slot.release()
    request.app.state.metrics.add_tokens(report.ledger)
    return {"outcome": dataclasses.asdict(report.outcome),
            "learned": _learned(report.learned) if report.learned else None,
            "usage": report.ledger.summary()}


def _record(record: Any, *, text: bool) -> dict[str, Any]:
    out = dataclasses.asdict(record)
    raw = out.pop("raw_text")
    out |= {"object": "context", "chars": len(raw), "triggers": record.triggers.describe()}
    return out | ({"text": raw} if text else {})


def _summary(summary: Any) -> dict[str, Any]:
    return dataclasses.asdict(summary) | {"object": "context",
                                          "triggers": summary.triggers.describe()}


def _learned(learned: Any) -> dict[str, Any]:
    return dataclasses.asdict(learned)
