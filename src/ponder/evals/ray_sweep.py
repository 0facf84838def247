"""Fan a sweep's cells out over a Ray cluster (``ponder eval run --ray``).

Each cell is one Ray task that builds its own engine from a ``BackendConfig``
(so a worker loads its own embedded model, or opens its own client to a remote
engine) and streams its rows to the run directory, exactly as a local run does.
The run directory must be on a filesystem the workers share: the local machine
for a local Ray instance (the default), NFS or similar on a cluster. Datasets
are loaded once by the driver and shipped to the tasks.

With the embedded backend every task holds a model copy and its threads: give
each task ``cpus_per_task`` equal to its threads (``PONDER_THREADS``).
Ray is an optional extra: ``pip install 'ponder[ray]'``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ponder.engine import Engine
from ponder.errors import ConfigError
from ponder.evals.datasets import Dataset, load_dataset
from ponder.evals.runner import CellSpec, arun_cell, default_concurrency

_FORWARDED_ENV = ("PONDER_HOME", "PONDER_THREADS", "PONDER_MODEL", "PONDER_API_KEY")


@dataclass(frozen=True, slots=True)
class BackendConfig:
    """How a worker builds its engine: ``Engine.create(kind, model=..., **options)``."""

    kind: str = "embedded"
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def engine(self) -> Engine:
        return Engine.create(self.kind, model=self.model, base_url=self.base_url,
                             api_key=self.api_key, **dict(self.options))


def run_on_ray(cells: Sequence[CellSpec], out: Path, backend: BackendConfig, *,
               limit: int | None = None, concurrency: int | None = None,
               address: str | None = None, cpus_per_task: float = 1.0,
               on_poll: Callable[[], None] | None = None) -> list[Path]:
    """Run every cell as a Ray task; returns the cell folders. Starts local Ray if needed."""
    ray = _import_ray()
    started = not ray.is_initialized()
    if started:
        env = {k: os.environ[k] for k in _FORWARDED_ENV if k in os.environ}
        ray.init(address=address, include_dashboard=False, logging_level=logging.ERROR,
                 log_to_driver=False, runtime_env={"env_vars": env} if env else None)
    try:
        datasets: dict[tuple[str, int], Dataset] = {}
        for spec in cells:
            key = (spec.dataset, spec.seed)
            if key not in datasets:
                datasets[key] = load_dataset(spec.dataset, spec.seed)
        task = ray.remote(num_cpus=cpus_per_task, max_retries=0)(_run_cell_task)
        pending = [task.remote(backend, spec, str(out), datasets[(spec.dataset, spec.seed)],
                               limit, concurrency) for spec in cells]
        folders: list[Path] = []
        while pending:
            ready, pending = ray.wait(pending, num_returns=1, timeout=0.5)
            folders.extend(Path(p) for p in ray.get(ready))
            if on_poll is not None:
                on_poll()
        return folders
    finally:
        if started:
            ray.shutdown()


def _run_cell_task(backend: BackendConfig, spec: CellSpec, out: str, dataset: Dataset,
                   limit: int | None, concurrency: int | None) -> str:
    """One cell inside a Ray worker: build the engine, run, release the model."""
    with backend.engine() as engine:
        result = engine.backend.run_sync(arun_cell(
            engine, spec, Path(out), dataset=dataset, limit=limit,
            concurrency=concurrency or default_concurrency(engine)))
    return str(result.directory)


def _import_ray() -> Any:
    try:
        import ray  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError:
        raise ConfigError("--ray needs Ray: pip install 'ponder[ray]'") from None
    return ray
