"""``ponder serve`` as a real subprocess: binds, authenticates, serves the embedded model."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


@pytest.fixture
def serve_process(tmp_path: Path) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PONDER_SERVER_API_KEY": "k3y", "PONDER_THREADS": "1",
           "PONDER_API_KEY": "engine-key-not-for-clients", "PONDER_HOME": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ponder.cli", "serve", "--port", str(port), "--model",
         "smollm2-135m", "--strategy", "direct", "--no-sleep-worker"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    root = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            try:
                httpx.get(f"{root}/health", timeout=1)
                break
            except httpx.HTTPError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "ponder serve did not start"
                time.sleep(0.2)
        yield root
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_ponder_serve(serve_process: str) -> None:
    health = httpx.get(f"{serve_process}/health").json()
    assert health == health | {"status": "ok", "model": "smollm2-135m", "backend": "embedded",
                               "sleep_worker": False}
    assert httpx.get(f"{serve_process}/v1/models").status_code == 401
    engine_key = {"Authorization": "Bearer engine-key-not-for-clients"}
    assert httpx.get(f"{serve_process}/v1/models", headers=engine_key).status_code == 401
    key = {"Authorization": "Bearer k3y"}
    reply = httpx.post(f"{serve_process}/v1/chat/completions", headers=key, timeout=60, json={
        "model": "smollm2-135m", "max_tokens": 4,
        "messages": [{"role": "user", "content": "Hi"}]}).json()
    assert reply["choices"][0]["ponder"]["strategy"] == "direct"  # the --strategy default


def test_serve_rejects_an_unknown_default_strategy() -> None:
    done = subprocess.run([sys.executable, "-m", "ponder.cli", "serve", "--strategy", "nope"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "unknown strategy 'nope'" in done.stderr
