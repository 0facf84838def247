"""The ``ponder`` command, run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

QUESTION = "A pen costs 3 dollars. How much do 4 pens cost?"


def ponder(*args: str, home: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PONDER_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "ponder.cli", *args], capture_output=True,
                          text=True, env=env, timeout=timeout, check=False)


def test_ask_self_consistency_end_to_end_on_the_default_model(ponder_home: Path) -> None:
    """Fresh PONDER_HOME: the model is assembled from its chunk packages, then used."""
    n = 4
    # early_stop=false: all n samples in one call, to check the shared prefill below
    run = ponder("ask", QUESTION, "--strategy", "self-consistency", "-n", str(n),
                 "--param", "early_stop=false", "--max-tokens", "200", "--seed", "0", "--json",
                 home=ponder_home)
    assert run.returncode == 0, run.stderr
    assert (ponder_home / "models" / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf").is_file()
    out = json.loads(run.stdout)
    assert out["model"] == "qwen2.5-coder-0.5b" and out["backend"] == "embedded"
    assert out["answer"] is not None
    assert len(out["candidates"]) == n
    answered = sum(out["votes"].values())
    assert answered + out["info"]["unanswered"] == n
    usage = out["usage"]
    [entry] = usage["entries"]
    assert entry["completions"] == n and entry["strategy"] == "self-consistency"
    # the ledger's completion tokens are exactly the tokens the samples generated
    assert usage["completion_tokens"] == sum(c["tokens"] for c in out["candidates"]) > 0
    # one prefill of the prompt, shared by the n samples
    prompt = usage["prompt_tokens"] // n
    assert usage["prompt_tokens"] == n * prompt
    assert usage["prefill_tokens"] == prompt
    assert usage["cached_prompt_tokens"] == (n - 1) * prompt


@pytest.mark.slow
def test_ask_prints_answer_votes_and_compute(ponder_home: Path) -> None:
    run = ponder("ask", QUESTION, "--strategy", "self-consistency", "-n", "8", "--seed", "1",
                 home=ponder_home)
    assert run.returncode == 0, run.stderr
    assert "Answer: 12" in run.stdout
    for word in ("votes", "compute", "prompt tokens", "of which cached", "completion tokens"):
        assert word in run.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["ask", "q", "--model", "/nonexistent/model.gguf"], "model file not found"),
    (["ask", "q", "--base-url", "http://127.0.0.1:9/v1", "--model", "m"],
     "connection refused"),
    (["ask", "q", "--strategy", "self-consistency", "-n", "0"], "n must be an integer >= 1"),
    (["ask", "q", "--max-tokens", "-5"], "max_tokens must be an integer >= 1, got -5"),
    (["ask", "q", "--strategy", "nope"], "unknown strategy 'nope'"),
    (["ask", "q", "-n", "abc"], "Invalid value for '-n'"),
    (["ask", "q", "--param", "oops"], "--param expects key=value"),
    (["ask", "q", "--backend", "tpu"], "unknown backend 'tpu'"),
])
def test_bad_input_is_one_clear_line(args: list[str], message: str, ponder_home: Path) -> None:
    run = ponder(*args, home=ponder_home, timeout=60)
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, run.stderr
    assert message in lines[0]
    assert lines[0].startswith("error:")


def test_strategies_and_models_commands(ponder_home: Path) -> None:
    run = ponder("strategies", home=ponder_home, timeout=60)
    assert run.returncode == 0
    for name in ("direct", "cot", "self-consistency"):
        assert name in run.stdout
    run = ponder("models", home=ponder_home, timeout=60)
    assert run.returncode == 0
    assert "qwen2.5-coder-0.5b (default)" in run.stdout and "smollm2-135m" in run.stdout
