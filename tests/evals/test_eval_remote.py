"""``ponder eval run`` against an OpenAI-compatible server: the same command, another engine.

The server is llama-cpp-python's (SmolLM2-135M, one thread) on a free local port,
started through ``tests/helpers/llama_server.py`` as the openai backend tests do.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ponder.evals.results import RESULTS_FILE
from ponder.model_files import resolve_model

HELPER = Path(__file__).resolve().parents[1] / "helpers" / "llama_server.py"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    log = tmp_path_factory.mktemp("server") / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(HELPER), "--model", str(resolve_model("smollm2-135m")[1]),
             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
             "--n_threads", "1", "--n_threads_batch", "1"], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"llama server did not start:\n{log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2):
                    break
            except OSError:
                time.sleep(0.3)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_the_same_command_runs_on_a_remote_engine(base_url: str, ponder_home: Path,
                                                  tmp_path: Path) -> None:
    out = tmp_path / "runs"
    env = {**os.environ, "PONDER_HOME": str(ponder_home), "COLUMNS": "200"}
    run = subprocess.run(
        [sys.executable, "-m", "ponder.cli", "eval", "run", "--backend", "openai",
         "--base-url", base_url, "--dataset", "gen,per_bin=1", "--strategy", "cot",
         "--budgets", "8", "--limit", "3", "--concurrency", "2", "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    [results] = out.glob(f"*/{RESULTS_FILE}")
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert sorted(r["index"] for r in rows) == [0, 1, 2]
    for row in rows:
        [entry] = row["usage"]["entries"]
        assert entry["backend"] == "openai"
        assert 0 < entry["completion_tokens"] <= 8
