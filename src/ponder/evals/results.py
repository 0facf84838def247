"""A run cell on disk: ``spec.json`` plus ``results.jsonl``, one JSON row per item.

Rows are appended with one ``write`` of a whole line on an ``O_APPEND`` file
and then fsynced, so a crash can only leave a partial *last* line. Opening the
log repairs that (the partial line is cut off) and returns the rows already
done, which is what makes a killed run resume where it stopped.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ponder.errors import ConfigError

SPEC_FILE = "spec.json"
RESULTS_FILE = "results.jsonl"
SUMMARY_FILE = "summary.json"


class ResultsLog:
    """The rows of one cell; ``open`` validates the spec and repairs a torn last line."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / RESULTS_FILE
        self.repaired_bytes = 0
        """How many bytes of a torn last line ``open`` cut off (0 if none)."""

    def open(self, spec: Mapping[str, Any], info: Mapping[str, Any] | None = None
             ) -> dict[str, dict[str, Any]]:
        """Create or resume the cell; returns the rows already written, by item id.

        ``spec`` must match the one on disk; ``info`` (data source, licence) is only stored.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        spec_path = self.directory / SPEC_FILE
        if spec_path.is_file():
            existing = json.loads(spec_path.read_text(encoding="utf-8"))
            changed = sorted(k for k in spec if existing.get(k) != spec[k])
            if changed:
                raise ConfigError(f"{self.directory} holds a run with a different spec "
                                  f"({', '.join(changed)} differ); resume it with the same "
                                  f"options or choose another --out")
        else:
            write_json_atomic(spec_path, {**spec, **(info or {})})
        self.repaired_bytes = self._repair()
        return read_rows(self.path)

    def append(self, row: Mapping[str, Any]) -> None:
        """Append one row durably: a single write of a whole line, then fsync."""
        line = (json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, line)
            if written != len(line):  # pragma: no cover - disk full; the next open repairs it
                raise OSError(f"short write to {self.path}")
            os.fsync(fd)
        finally:
            os.close(fd)

    def _repair(self) -> int:
        if not self.path.is_file():
            return 0
        data = self.path.read_bytes()
        if not data or data.endswith(b"\n"):
            return 0
        keep = data.rfind(b"\n") + 1
        with self.path.open("r+b") as handle:
            handle.truncate(keep)
            handle.flush()
            os.fsync(handle.fileno())
        return len(data) - keep


def read_rows(path: Path) -> dict[str, dict[str, Any]]:
    """Rows by item id (the last row wins for an id). A bad line names its number."""
    rows: dict[str, dict[str, Any]] = {}
    if not path.is_file():
        return rows
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            if not line.endswith("\n"):
                break  # a torn last line: ignored (ResultsLog.open cuts it off)
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}:{number}: corrupt result row ({exc.msg})") from None
            rows[str(row["id"])] = row
    return rows


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """Write JSON to a temporary file beside ``path`` and rename it into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, ensure_ascii=False)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
