"""What an evaluation reads: items, datasets, and the ``NAME[:SOURCE][,key=value...]`` specs.

An ``EvalItem`` is one question with its gold answer. Stateful items also
carry the ``context`` (what sleep-time compute may read ahead of time) apart
from the ``question`` (what arrives at test time); items that share a context
(multi-query) share a ``group``. A ``Dataset`` is an ordered tuple of items
plus how to grade them, so a resumed run sees the same items in the same order.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ponder.errors import ConfigError
from ponder.strategies.base import Answer, Problem
from ponder.verifiers.answers import AnswerKind, answers_equal

_KINDS: tuple[AnswerKind, ...] = ("math", "text")


@dataclass(frozen=True, slots=True)
class EvalItem:
    """One question and its gold answer."""

    id: str
    question: str
    """What is asked at test time (for stateful items: only the final question)."""
    answer: str
    """The gold final answer, as text ("72", "32.5", "\\frac{1}{2}")."""
    kind: AnswerKind = "math"
    context: str | None = None
    """Stateful items: the part of the problem that is known before the question."""
    group: str | None = None
    """Items over one shared context (multi-query) share a group id."""
    difficulty: int | None = None
    """A difficulty bin where the dataset knows one (generator level, MATH level)."""
    meta: Mapping[str, Any] = field(default_factory=dict)
    """JSON-ready extras kept in the result rows (source ids, subject, ...)."""

    def __post_init__(self) -> None:
        if not self.id or not self.question.strip():
            raise ConfigError(f"an eval item needs an id and a question, got {self.id!r}")
        if self.kind not in _KINDS:
            raise ConfigError(f"item {self.id!r}: kind must be one of {_KINDS}, got {self.kind!r}")

    @property
    def full_question(self) -> str:
        """Context and question as one problem (what a test-time-only strategy sees)."""
        return f"{self.context}\n\n{self.question}" if self.context else self.question

    def problem(self) -> Problem:
        return Problem(self.full_question, kind=self.kind)


@dataclass(frozen=True, slots=True)
class Dataset:
    """An ordered collection of items, with where it came from and how to grade it."""

    name: str
    items: tuple[EvalItem, ...]
    source: str = ""
    """Where the items were read from (a path, a hub name, "generated")."""
    licence: str = ""

    def __post_init__(self) -> None:
        ids = [item.id for item in self.items]
        if len(set(ids)) != len(ids):
            dupes = sorted({i for i in ids if ids.count(i) > 1})[:3]
            raise ConfigError(f"dataset {self.name!r} has duplicate item ids: {dupes}")

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[EvalItem]:
        return iter(self.items)

    def problem(self, item: EvalItem) -> Problem:
        """What the strategy is asked. Datasets of other problem types override this."""
        return item.problem()

    def grade(self, item: EvalItem, answer: Answer) -> bool | Awaitable[bool]:
        """Whether the run's final answer matches the gold one (numbers exactly, math
        symbolically). Datasets graded otherwise (code run against tests in a sandbox)
        override this; the runner awaits the result when it is awaitable."""
        return answers_equal(item.answer, answer.answer, item.kind)


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    """A parsed ``--dataset`` value: ``NAME[:SOURCE][,key=value...]``.

    ``gsm8k``, ``gsm8k:data/test.jsonl``, ``gsm8k:hub:openai/gsm8k,split=test``,
    ``gen,bins=0-2,per_bin=10``, ``jsonl:mine.jsonl,question=prompt,answer=gold``.
    """

    name: str
    source: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> DatasetSpec:
        head, *pairs = [part.strip() for part in text.split(",")]
        name, _, source = head.partition(":")
        if not name.strip():
            raise ConfigError(f"--dataset needs a name, got {text!r}")
        options: dict[str, str] = {}
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not sep or not key.strip():
                raise ConfigError(f"--dataset {text!r}: options are key=value, got {pair!r}")
            options[key.strip()] = value.strip()
        return cls(name.strip(), source.strip() or None, options)

    def __str__(self) -> str:
        head = f"{self.name}:{self.source}" if self.source else self.name
        return ",".join([head, *(f"{k}={v}" for k, v in sorted(self.options.items()))])


class Options:
    """Typed reads of a spec's options; ``done()`` rejects the ones nobody read."""

    def __init__(self, spec: DatasetSpec) -> None:
        self._spec = spec
        self._left = dict(spec.options)

    def text(self, key: str, default: str | None = None) -> str | None:
        return self._left.pop(key, default)

    def integer(self, key: str, default: int, *, minimum: int = 0) -> int:
        raw = self._left.pop(key, None)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"dataset {self._spec.name!r}: {key} must be an integer, "
                              f"got {raw!r}") from None
        if value < minimum:
            raise ConfigError(f"dataset {self._spec.name!r}: {key} must be >= {minimum}, "
                              f"got {value}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        raw = self._left.pop(key, None)
        if raw is None:
            return default
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"dataset {self._spec.name!r}: {key} must be true or false, got {raw!r}")

    def choice(self, key: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self._left.pop(key, default)
        if value not in allowed:
            raise ConfigError(f"dataset {self._spec.name!r}: {key} must be one of "
                              f"{', '.join(allowed)}, got {value!r}")
        return value

    def done(self) -> None:
        if self._left:
            raise ConfigError(f"dataset {self._spec.name!r} has no option "
                              f"{', '.join(map(repr, sorted(self._left)))}")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file; errors name the file and line."""
    if not path.is_file():
        raise ConfigError(f"dataset file not found: {path}")
    records = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise ConfigError(f"{path}:{number}: expected a JSON object per line")
            records.append(record)
    return records


def require(record: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in record:
        raise ConfigError(f"{where}: missing field {key!r} (has: {', '.join(sorted(record))})")
    return record[key]
