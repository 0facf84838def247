"""The sandbox's API: configuration errors, the concurrency pool, stdin, files, isolation report."""

from __future__ import annotations

import asyncio

import pytest

from ponder.errors import ConfigError
from ponder.sandbox import Limits, Sandbox, detect_isolation


@pytest.mark.parametrize(("field", "value"), [
    ("wall_seconds", 0), ("cpu_seconds", 0), ("memory_mb", 8), ("file_size_mb", -1),
    ("processes", 0), ("open_files", 2), ("output_bytes", 0),
])
def test_bad_limits_name_the_parameter(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        Limits(**{field: value})  # type: ignore[arg-type]


def test_bad_sandbox_options_fail_clearly() -> None:
    with pytest.raises(ConfigError, match="concurrency"):
        Sandbox(concurrency=0)
    with pytest.raises(ConfigError, match="isolation"):
        Sandbox(isolation="maybe")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="relative path"):
        Sandbox().run("pass", files={"../escape.py": "x"})
    with pytest.raises(ConfigError, match="relative path"):
        Sandbox().run("pass", files={"/etc/x": "x"})


def test_stdin_and_extra_files() -> None:
    result = Sandbox().run("import sys, helper\nprint(helper.twice(int(sys.stdin.read())))",
                           stdin="21", files={"helper.py": "def twice(x):\n    return 2 * x\n"})
    assert result.ok and result.stdout == "42\n"
    assert Sandbox().run("import sys\nprint(repr(sys.stdin.read()))").stdout == "''\n"


def test_pool_runs_at_most_concurrency_programs_at_once() -> None:
    sandbox = Sandbox(Limits(wall_seconds=10), concurrency=2)
    program = "import time\nstart = time.time()\ntime.sleep(1.0)\nprint(start, time.time())"

    async def main() -> list[tuple[float, float]]:
        results = await asyncio.gather(*(sandbox.arun(program) for _ in range(4)))
        assert all(r.ok for r in results)
        return [tuple(map(float, r.stdout.split())) for r in results]  # type: ignore[misc]

    spans = asyncio.run(main())
    overlap = max(sum(start <= t < end for start, end in spans) for t, _ in spans)
    assert overlap == 2  # parallel, and never more than the pool's two slots


def test_isolation_is_detected_and_reported() -> None:
    found = detect_isolation()
    none = detect_isolation("none")
    assert none.prefix == () and not none.network
    if found.network:
        assert "--net" in found.prefix and found.describe().startswith("namespaces: net")
    result = Sandbox().run("pass")
    assert result.network_isolated == found.network and result.pid_isolated == found.pid
