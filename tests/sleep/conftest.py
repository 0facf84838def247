"""Databases for the sleep tests: a real SQLite file, and PostgreSQL when one is given.

``db_url`` is parametrized: the ``sqlite`` case always runs, the ``postgresql``
case only when ``PONDER_TEST_DATABASE_URL`` names a server (``.ci/run`` starts
one); each PostgreSQL test gets its own schema, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sleep_helpers import Clock

from ponder.sleep.store import ContextStore

PG_ENV = "PONDER_TEST_DATABASE_URL"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ponder.db'}"
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set (no PostgreSQL server)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(db_url: str, clock: Clock) -> Iterator[ContextStore]:
    with ContextStore(db_url, clock=clock) as opened:
        yield opened
