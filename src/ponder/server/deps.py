"""What routes get from the app: the engine, settings, metrics, auth and admission.

Everything lives on ``app.state`` (set once by ``create_app``); nothing here
is module-level state.
"""

from __future__ import annotations

import hmac

from fastapi import Request

from ponder.engine import Engine
from ponder.server.errors import ApiError
from ponder.server.settings import Gate, ServerSettings, Slot


def engine_of(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def settings_of(request: Request) -> ServerSettings:
    settings: ServerSettings = request.app.state.settings
    return settings


async def require_api_key(request: Request) -> None:
    """401 unless ``Authorization: Bearer <key>`` matches (when the server has a key)."""
    expected = settings_of(request).api_key
    if expected is None:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                             expected.encode()):
        raise ApiError("a valid API key is required: send 'Authorization: Bearer <key>'",
                       status=401, code="invalid_api_key",
                       headers={"WWW-Authenticate": "Bearer"})


def admit(request: Request) -> Slot:
    """A concurrency slot, or a 429 with ``Retry-After`` when the server is saturated."""
    gate: Gate = request.app.state.gate
    slot = gate.try_enter()
    if slot is None:
        retry = settings_of(request).retry_after
        raise ApiError(f"the server is busy ({gate.limit} requests in flight); retry in "
                       f"{retry} s", status=429, code="server_busy",
                       headers={"Retry-After": str(retry)})
    return slot
