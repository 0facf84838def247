"""The FastAPI app factory: one engine, one settings object, routers per endpoint group.

::

    from ponder import Engine
    from ponder.server import create_app, ServerSettings

    app = create_app(Engine.create(), ServerSettings.from_env())
    # uvicorn.run(app, host="127.0.0.1", port=8000)

Everything a request needs is on ``app.state`` (engine, settings, gate,
metrics, contexts, and the online mode's rolling ``token_budget`` or None);
nothing is module-level. The app never fetches URLs named
in a request and never executes model output.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ponder import __version__
from ponder.engine import Engine
from ponder.server import chat, completions, errors, health, metrics, models
from ponder.server import contexts as contexts_api
from ponder.server.contexts import Contexts
from ponder.server.errors import ApiError
from ponder.server.rolling import OnlineBudget
from ponder.server.settings import Gate, ServerSettings

if TYPE_CHECKING:
    from ponder.sleep import SleepService


def create_app(engine: Engine, settings: ServerSettings | None = None, *,
               sleep: SleepService | None = None,
               clock: Callable[[], float] = time.monotonic) -> FastAPI:
    """An OpenAI-compatible app serving ``engine``. The caller owns (and closes) the engine,
    and ``sleep`` when given; otherwise the app opens the context store at startup
    (``settings.database_url``) and closes it at shutdown. ``clock`` times the rolling
    token budget (tests pass a fake one). Raises ``ConfigError`` for budget levels the
    engine's registry cannot build."""
    settings = settings or ServerSettings()
    token_budget = OnlineBudget.from_settings(settings, engine.registry, clock=clock)
    contexts = Contexts(sleep, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        opened = _open_sleep(engine, settings) if sleep is None else None
        contexts.service = sleep or opened
        contexts.start_worker()
        try:
            yield
        finally:
            await contexts.stop_worker()
            if opened is not None:
                opened.close()

    app = FastAPI(title="ponder", version=__version__, lifespan=lifespan)
    app.state.engine = engine
    app.state.settings = settings
    app.state.gate = Gate(settings.max_concurrency)
    app.state.metrics = metrics.Metrics()
    app.state.contexts = contexts
    app.state.token_budget = token_budget
    errors.install(app)
    for module in (health, models, chat, completions, contexts_api, metrics):
        app.include_router(module.router)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(metrics.ObserveRequests, metrics=app.state.metrics)
    return app


def _open_sleep(engine: Engine, settings: ServerSettings) -> SleepService | None:
    if not settings.contexts:
        return None
    from ponder.sleep import SleepService

    return SleepService.open(settings.database_url, backend=engine.backend,
                             registry=engine.registry)


class BodyLimit:
    """ASGI middleware: a 413 for bodies over ``max_bytes``, declared or streamed.

    The body is read (up to the limit) before the app sees it, then replayed.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body.extend(message.get("body", b""))
            if len(body) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(bytes(body), receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        too_large = ApiError(f"the request body exceeds {self.max_bytes} bytes", status=413,
                             code="body_too_large")
        await errors.error_response(too_large)(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the buffered body once, then the real channel."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
