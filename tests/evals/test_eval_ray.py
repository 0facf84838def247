"""A tiny sweep fanned out over a local Ray instance, on the real tiny model.

Skipped when Ray is not installed (it is the optional extra ``ponder[ray]``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ponder.evals.ray_sweep import BackendConfig, run_on_ray
from ponder.evals.results import RESULTS_FILE
from ponder.evals.runner import sweep

ray = pytest.importorskip("ray")


def test_sweep_cells_run_as_ray_tasks(tmp_path: Path) -> None:
    cells = sweep(["gen,per_bin=1"], ["cot"], {}, [8, 12], seed=3)
    out = tmp_path / "runs"
    backend = BackendConfig("embedded", "smollm2-135m", options={"n_ctx": 1024, "n_threads": 1})
    polls: list[int] = []
    folders = run_on_ray(cells, out, backend, limit=2, on_poll=lambda: polls.append(1))
    assert sorted(f.name for f in folders) == sorted(c.slug() for c in cells)
    assert not ray.is_initialized()  # the local instance it started is shut down
    assert polls
    workers = set()
    for spec in cells:
        rows = [json.loads(line)
                for line in (out / spec.slug() / RESULTS_FILE).read_text().splitlines()]
        assert [r["index"] for r in rows] == [0, 1]
        for row in rows:
            entry = row["usage"]["entries"][0]
            assert entry["backend"] == "embedded" and entry["model"] == "smollm2-135m"
            assert 0 < row["usage"]["completion_tokens"] <= spec.budget
            workers.add(row["worker"].rsplit(":", 1)[1])
    assert str(os.getpid()) not in workers  # the model ran in Ray worker processes
