"""``ponder contexts``, ``ponder sleep`` and ``ponder ask --context``.

Most run the real command in-process (``main()`` with its error boundary, output
captured); one flow runs as a real subprocess.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ponder.cli.app import main

TINY = ("--model", "smollm2-135m")
CONTEXT = "Ava has 12 apples. Then Ava buys 8 more apples."


def ponder(*args: str, home: Path, stdin: str | None = None,
           timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PONDER_HOME": str(home), "COLUMNS": "200", "PONDER_THREADS": "1"}
    env.pop("PONDER_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "ponder.cli", *args], input=stdin,
                          capture_output=True, text=True, env=env, timeout=timeout,
                          check=False)


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run ``ponder ARGS`` in this process: (exit code, stdout, stderr)."""
    monkeypatch.setenv("PONDER_THREADS", "1")
    monkeypatch.delenv("PONDER_DATABASE_URL", raising=False)

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        monkeypatch.setattr(sys, "argv", ["ponder", *args])
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin or ""))
        with pytest.raises(SystemExit) as exited:
            main()
        out = capsys.readouterr()
        code = exited.value.code
        return subprocess.CompletedProcess(args, code if isinstance(code, int) else 1,
                                           out.out, out.err)

    return run


def ok(run: subprocess.CompletedProcess[str]) -> str:
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_contexts_add_list_show_append_delete(cli: Any, ponder_home: Path, tmp_path: Path) -> None:
    added = json.loads(ok(cli("contexts", "add", "-", "--name", "apples", "--json",
                              stdin=CONTEXT)))
    assert added["id"] == 1 and added["triggers"] == "ingest" and added["revision"] == 1
    source = tmp_path / "ctx.txt"
    source.write_text("Ben has 4 pears.")
    second = ok(cli("contexts", "add", str(source), "--triggers", "every=2,idle=60"))
    assert "context 2 added" in second and "every=2,idle=60" in second
    listed = json.loads(ok(cli("contexts", "list", "--json")))
    assert [(c["id"], c["name"], c["open_jobs"]) for c in listed] == [(1, "apples", 1),
                                                                      (2, None, 0)]
    assert "revision 2" in ok(cli("contexts", "append", "2", "-", stdin="Ben eats 1 pear."))
    shown = json.loads(ok(cli("contexts", "show", "2", "--json")))
    assert shown["raw_text"] == "Ben has 4 pears.\nBen eats 1 pear."
    assert shown["learned"] == [] and shown["amortisation"]["queries"] == 0
    table = ok(cli("contexts", "show", "1"))
    assert "not slept on yet" in table and "amortised cost per query" in table
    assert "deleted" in ok(cli("contexts", "delete", "2"))
    assert [c["id"] for c in json.loads(ok(cli("contexts", "list", "--json")))] == [1]
    assert (ponder_home / "ponder.db").is_file()


@pytest.mark.parametrize(("args", "stdin", "message"), [
    (["contexts", "show", "7"], None, "unknown context id 7"),
    (["contexts", "delete", "7"], None, "unknown context id 7"),
    (["contexts", "add", "-"], "   ", "context text is empty"),
    (["contexts", "add", "/nonexistent/file.txt"], None, "cannot read '/nonexistent/file.txt'"),
    (["contexts", "add", "-", "--triggers", "hourly"], "x", "--triggers: cannot read 'hourly'"),
    (["sleep", "7"], None, "unknown context id 7"),
    (["sleep", "1", "--rounds", "0"], None, "sleep rounds must be an integer >= 1"),
    (["ask", "q?", "--context", "7"], None, "unknown context id 7"),
    (["contexts", "list", "--database-url", "mysql://x"], None, "sqlite:///PATH or postgresql"),
])
def test_bad_input_is_one_clear_line(args: list[str], stdin: str | None, message: str,
                                     cli: Any) -> None:
    run = cli(*args, stdin=stdin)
    assert run.returncode != 0
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), run.stderr
    assert message in lines[0]


def test_sleep_then_ask_with_the_context_on_the_tiny_model(cli: Any, ponder_home: Path) -> None:
    """``ponder sleep`` and ``ponder ask --context`` as real processes on one SQLite file."""
    ok(cli("contexts", "add", "-", stdin=CONTEXT))
    slept = json.loads(ok(ponder("sleep", "1", *TINY, "--rounds", "1", "--max-tokens", "48",
                                 "--json", home=ponder_home)))
    assert (slept["status"], slept["learned_version"], slept["rounds"]) == ("fresh", 1, 1)
    assert slept["text"] and slept["usage"]["phases"]["sleep"]["completion_tokens"] > 0
    assert slept["usage"]["phases"]["test"]["completion_tokens"] == 0
    asked = json.loads(ok(ponder("ask", "How many apples does Ava have?", "--context", "1",
                                 *TINY, "--max-tokens", "24", "--json", home=ponder_home)))
    assert asked["info"]["learned_version"] == 1 and asked["info"]["context_id"] == 1
    assert asked["usage"]["phases"]["test"]["completion_tokens"] > 0
    assert asked["usage"]["phases"]["sleep"]["completion_tokens"] == 0
    shown = json.loads(ok(cli("contexts", "show", "1", "--json")))
    amortisation = shown["amortisation"]
    assert amortisation["queries"] == 1
    assert amortisation["sleep_tokens"] == slept["usage"]["phases"]["sleep"]["completion_tokens"]
    assert amortisation["cost_per_query"] == pytest.approx(
        amortisation["sleep_tokens"] + 10 * amortisation["test_tokens"])
    assert [q["learned_version"] for q in shown["queries"]] == [1]


def test_worker_processes_the_queue_and_exits_when_idle(cli: Any) -> None:
    ok(cli("contexts", "add", "-", stdin=CONTEXT))
    ok(cli("contexts", "add", "-", stdin="Ben has 4 pears."))
    run = cli("sleep", "worker", *TINY, "--rounds", "1", "--max-tokens", "32",
              "--exit-when-idle")
    out = ok(run)
    assert "job 1 (context 1): learned v1" in out and "job 2 (context 2): learned v1" in out
    assert "processed 2 job(s)" in run.stderr
    listed = json.loads(ok(cli("contexts", "list", "--json")))
    assert [(c["learned_version"], c["open_jobs"]) for c in listed] == [(1, 0), (1, 0)]
