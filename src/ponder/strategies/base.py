"""The strategy protocol: ``run(problem, ctx) -> Answer``.

A strategy is one small class per file: a ``name``, a frozen ``Params``
dataclass with its own knobs, and an async ``run``. It reaches the model only
through ``ctx.generate``, which enforces the token budget and labels the
ledger rows with the strategy's name. Nothing is global: everything a run
needs travels in ``RunContext``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from ponder.backends.base import Backend, Completion, Message, Prompt, StreamChunk
from ponder.errors import BudgetExceeded, CapabilityError, ConfigError
from ponder.ledger import Ledger, Phase
from ponder.params import SamplingParams
from ponder.verifiers.answers import AnswerKind, extract_answer
from ponder.verifiers.base import Verifier

if TYPE_CHECKING:
    from ponder.strategies.registry import Registry

DRAFT_CONTEXT = ("An earlier attempt at this problem follows. Check it, fix any mistakes, and "
                 "give your own final answer.\n\nEarlier attempt:\n{draft}")


@dataclass(frozen=True, slots=True)
class Problem:
    """What to answer. ``messages`` (a whole chat) wins over ``question`` when given."""

    question: str
    messages: tuple[Message, ...] | None = None
    system: str | None = None
    kind: AnswerKind = "math"
    """How to extract and compare answers: "math" (numbers, expressions) or "text"."""
    draft: str | None = None
    """An earlier response to build on (set by ``pipeline``); ``chat`` shows it to the model."""

    def chat(self, instruction: str | None = None) -> list[Message]:
        """Chat messages for this problem, with ``instruction`` added to the system prompt."""
        if self.draft:
            draft = DRAFT_CONTEXT.format(draft=self.draft)
            instruction = f"{instruction}\n\n{draft}" if instruction else draft
        if self.messages is not None:
            messages = [dict(m) for m in self.messages]
            if instruction:
                if messages and messages[0].get("role") == "system":
                    messages[0]["content"] = f"{messages[0].get('content') or ''}\n\n{instruction}"
                else:
                    messages.insert(0, {"role": "system", "content": instruction})
            return messages
        system = "\n\n".join(s for s in (self.system, instruction) if s)
        head: list[Message] = [{"role": "system", "content": system}] if system else []
        return [*head, {"role": "user", "content": self.question}]


@dataclass(frozen=True, slots=True)
class Candidate:
    """One sampled response and what was read from it."""

    text: str
    answer: str | None
    score: float | None = None
    finish_reason: str = "stop"
    tokens: int = 0
    """Completion tokens this candidate cost."""

    @classmethod
    def from_completion(cls, completion: Completion, kind: AnswerKind) -> Candidate:
        return cls(completion.text, extract_answer(completion.text, kind),
                   finish_reason=completion.finish_reason,
                   tokens=completion.usage.completion_tokens)


@dataclass
class Answer:
    """The result of a strategy run."""

    text: str
    """The chosen response, in full."""
    answer: str | None
    """The extracted final answer (None when no answer could be read)."""
    strategy: str
    candidates: list[Candidate] = field(default_factory=list)
    votes: dict[str, int] | None = None
    """Distinct answer -> number of samples that gave it (voting strategies)."""
    confidence: float | None = None
    ledger: Ledger = field(default_factory=Ledger)
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "text": self.text,
            "strategy": self.strategy,
            "confidence": self.confidence,
            "votes": self.votes,
            "candidates": [dataclasses.asdict(c) for c in self.candidates],
            "info": self.info,
            "usage": self.ledger.summary(),
        }


@dataclass
class RunContext:
    """Everything one strategy run may use. Built per request, never shared."""

    backend: Backend
    ledger: Ledger = field(default_factory=Ledger)
    sampling: SamplingParams = field(default_factory=SamplingParams)
    """Request-level defaults (max_tokens, temperature, seed) strategies start from."""
    max_total_tokens: int | None = None
    """Completion-token budget for the whole run; calls are trimmed to fit, then refused."""
    phase: Phase = "test"
    verifier: Verifier | None = None
    """The request's verifier, for strategies that score candidates (None: their default)."""
    registry: Registry | None = None
    """For strategies that run other strategies (composition)."""

    def remaining_tokens(self) -> int | None:
        if self.max_total_tokens is None:
            return None
        return self.max_total_tokens - self.ledger.total().completion_tokens

    async def generate(self, prompts: Sequence[Prompt], params: SamplingParams, *,
                       strategy: str) -> list[list[Completion]]:
        """Call the backend under the budget; the ledger rows carry ``strategy``."""
        params = self._fit_budget(params, len(prompts))
        with self.ledger.activate(), Ledger.scope(phase=self.phase, strategy=strategy):
            return await self.backend.agenerate(prompts, params)

    def render(self, messages: Sequence[Message]) -> str:
        """``messages`` as the raw text the model continues (for raw continuation).

        The model's own chat template when the backend can render it; otherwise
        (a remote engine that serves ``/v1/completions`` but does not show its
        template) a plain "Role: text" transcript ending with "Assistant: ".
        """
        try:
            return self.backend.render_chat(messages)
        except CapabilityError:
            turns = [f"{str(m.get('role', 'user')).capitalize()}: {m.get('content') or ''}"
                     for m in messages]
            return "\n\n".join([*turns, "Assistant:"]) + " "

    async def stream(self, prompt: Prompt, params: SamplingParams, *,
                     strategy: str) -> AsyncIterator[StreamChunk]:
        """Stream one completion under the budget; the ledger row carries ``strategy``."""
        params = self._fit_budget(params.with_(n=1), 1)
        with self.ledger.activate(), Ledger.scope(phase=self.phase, strategy=strategy):
            async for chunk in self.backend.astream(prompt, params):
                yield chunk

    def _fit_budget(self, params: SamplingParams, n_prompts: int) -> SamplingParams:
        remaining = self.remaining_tokens()
        if remaining is None:
            return params
        per_sample = remaining // max(1, n_prompts * params.n)
        if per_sample < 1:
            raise BudgetExceeded(f"token budget of {self.max_total_tokens} is exhausted "
                                 f"({remaining} left for {n_prompts * params.n} samples)")
        if per_sample < params.max_tokens:
            params = params.with_(max_tokens=per_sample,
                                  min_tokens=min(params.min_tokens, per_sample))
        return params


P = TypeVar("P")


class Strategy(Generic[P]):
    """Base class of strategies. Subclasses set ``name``, ``Params`` and ``run``."""

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    Params: ClassVar[type[Any]]

    def __init__(self, params: P | None = None) -> None:
        self.params: P = params if params is not None else self.Params()

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Strategy[Any]:
        """Build from loosely typed options (CLI ``--param k=v``, JSON); checks names and types."""
        return cls(parse_params(cls.Params, options, owner=cls.name))

    async def run(self, problem: Problem, ctx: RunContext) -> Answer:
        raise NotImplementedError

    async def stream(self, problem: Problem, ctx: RunContext) -> AsyncIterator[str | Answer]:
        """Text as it is produced, then the ``Answer``.

        Single-sample strategies override this to pass tokens through; the
        default (multi-sample strategies) yields the chosen text once it is known.
        """
        answer = await self.run(problem, ctx)
        yield answer.text
        yield answer

    def sampling(self, ctx: RunContext, **overrides: Any) -> SamplingParams:
        """The request's sampling defaults with this strategy's overrides (None = keep)."""
        return ctx.sampling.with_(**{k: v for k, v in overrides.items() if v is not None})


class StreamingStrategy(Strategy[P]):
    """A single-sample strategy: ``stream`` is the implementation, ``run`` collects it."""

    async def run(self, problem: Problem, ctx: RunContext) -> Answer:
        answer: Answer | None = None
        async for item in self.stream(problem, ctx):
            if isinstance(item, Answer):
                answer = item
        if answer is None:
            raise RuntimeError(f"strategy {self.name!r} streamed no Answer")
        return answer


def parse_params(params_cls: type[Any], options: Mapping[str, Any], *, owner: str) -> Any:
    """Coerce string options to the field types of a params dataclass."""
    fields = {f.name: f for f in dataclasses.fields(params_cls)}
    hints = typing.get_type_hints(params_cls)
    values: dict[str, Any] = {}
    for key, raw in options.items():
        name = key.replace("-", "_")
        if name not in fields:
            allowed = ", ".join(fields) or "none"
            raise ConfigError(f"strategy {owner!r} has no parameter {key!r} (allowed: {allowed})")
        values[name] = _coerce(raw, hints[name], f"{owner}.{key}")
    try:
        return params_cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"strategy {owner!r}: {exc}") from exc


def _coerce(raw: Any, hint: Any, label: str) -> Any:
    if not isinstance(raw, str):
        return raw
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if raw.lower() in ("none", "null") and type(None) in options:
        return None
    for option in options:
        if option is bool:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
        elif option in (int, float):
            try:
                return option(raw)
            except ValueError:
                continue
        elif option is str or typing.get_origin(option) is typing.Literal:
            if typing.get_origin(option) is typing.Literal and raw not in typing.get_args(option):
                continue
            return raw
    raise ConfigError(f"{label}: cannot read {raw!r} as {getattr(hint, '__name__', hint)}")
