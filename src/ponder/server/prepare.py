"""From a validated request body to everything a generation endpoint needs.

Shared by ``/v1/chat/completions`` and ``/v1/completions``: the run spec (with
its context prepared), the strategy, the choices, the model name to report, and
an admission slot (taken last, so a bad request never holds one). In the online
mode (``ServerSettings.token_budget``) the rolling budget picks the strategy of a
request that names none, and the run carries the ``Bill`` that charges its tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import Request
from starlette.datastructures import State

from ponder.server import runs
from ponder.server.deps import admit, engine_of, settings_of
from ponder.server.models import resolve_model
from ponder.server.protocol import RunSpec
from ponder.server.rolling import Bill, OnlineBudget
from ponder.server.settings import ServerSettings, Slot


class _Body(Protocol):
    model: str | None

    def to_run_spec(self, settings: ServerSettings, *, model_strategy: Any) -> RunSpec: ...


@dataclass(frozen=True, slots=True)
class PreparedRun:
    state: State
    spec: RunSpec
    strategy: Any
    choices: list[runs.Choice]
    model: str
    slot: Slot
    bill: Bill


async def prepare_run(body: _Body, request: Request) -> PreparedRun:
    state, engine, settings = request.app.state, engine_of(request), settings_of(request)
    online: OnlineBudget | None = state.token_budget
    spec = body.to_run_spec(settings, model_strategy=resolve_model(body.model, engine))
    if online is not None:
        spec = online.apply(spec)
    spec = await state.contexts.prepare(spec)
    strategy = state.contexts.wrap(spec, runs.make_strategy(engine, spec, settings))
    choices = runs.make_choices(engine, spec)
    model = body.model or engine.backend.model
    bill = Bill(online, spec.budget_level, [c.ctx for c in choices])
    return PreparedRun(state, spec, strategy, choices, model, admit(request), bill)
