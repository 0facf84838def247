"""Serving an app with real uvicorn in a thread, for the server tests (and the benchmark)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import openai
import uvicorn
from fastapi import FastAPI

from ponder.server import ServerSettings

API_KEY = "test-key-not-secret"


@dataclass(frozen=True)
class Served:
    base_url: str
    """Ends in /v1, as the openai client wants it."""
    root: str
    app: FastAPI
    settings: ServerSettings
    model: str
    api_key: str = API_KEY

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def client(self, **kwargs: object) -> openai.OpenAI:
        options: dict[str, object] = {"base_url": self.base_url, "api_key": self.api_key,
                                      "max_retries": 0, "timeout": 120.0}
        options.update(kwargs)
        return openai.OpenAI(**options)  # type: ignore[arg-type]


@contextmanager
def running(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 in a thread; yields ``http://127.0.0.1:<port>``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


