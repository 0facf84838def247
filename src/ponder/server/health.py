"""GET /health: is the server up, what does it serve, how busy is it (and, in the online
mode, how much of the rolling token budget is left). No auth needed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ponder.server.deps import engine_of, settings_of

router = APIRouter()


@router.get("/health")
async def health(request: Request) -> dict[str, Any]:
    engine, settings = engine_of(request), settings_of(request)
    online = request.app.state.token_budget
    return {"status": "ok", "model": engine.backend.model, "backend": engine.backend.kind,
            "in_flight": request.app.state.gate.active,
            "max_concurrency": settings.max_concurrency,
            "sleep_worker": request.app.state.contexts.worker_running(),
            "token_budget": online.state() if online is not None else None}
