"""Fixtures for the evaluation tests: the shared data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def shared_data_dir() -> Path | None:
    """``$PONDER_SHARED_DATA``, else ``shared/data`` beside the repository."""
    for candidate in (os.environ.get("PONDER_SHARED_DATA"), REPO.parent / "shared" / "data",
                      Path("/work/shared/data")):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def gsm_symbolic_dir() -> Path:
    """The shared GSM-Symbolic copy (CC BY-NC-ND 4.0: read in place, never copied)."""
    base = shared_data_dir()
    if base is None or not (base / "gsm_symbolic" / "templates").is_dir():
        pytest.skip("shared GSM-Symbolic templates not found (set PONDER_SHARED_DATA)")
    return base / "gsm_symbolic"
