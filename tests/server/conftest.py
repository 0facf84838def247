"""One real uvicorn server for the whole run, on 127.0.0.1 and a free port.

It serves SmolLM2-135M (the session's ``tiny_backend``) through the real
embedded backend: enough for mechanics (streaming, n, usage, limits), never
for answer quality. Started in a thread and awaited until it accepts
connections, as httpx's test suite does.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from serving import API_KEY, Served, running

from ponder.engine import Engine
from ponder.server import ServerSettings, create_app
from ponder.sleep import ContextStore, SleepAgent, SleepParams, SleepService


@pytest.fixture(scope="session")
def served(tiny_backend: object, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Served]:
    """The server, with its sleep worker on (one short rethink round per job); contexts
    made by tests say ``"triggers": "none"`` unless they test the worker."""
    settings = ServerSettings(
        api_key=API_KEY, default_max_tokens=32, max_tokens=512, max_n=4,
        max_request_tokens=4096, max_concurrency=2, retry_after=2, request_timeout=120,
        progress_interval=0.5, sleep_worker=True, sleep_interval=0.2)
    engine = Engine(tiny_backend)  # type: ignore[arg-type]  # the fixture closes the backend
    database = tmp_path_factory.mktemp("server") / "contexts.db"
    sleep = SleepService(ContextStore(f"sqlite:///{database}"), engine.backend,
                         registry=engine.registry,
                         agent=SleepAgent(SleepParams(rounds=1, max_tokens=48)))
    app = create_app(engine, settings, sleep=sleep)
    try:
        with running(app) as root:
            yield Served(f"{root}/v1", root, app, settings, engine.backend.model)
    finally:
        sleep.close()
