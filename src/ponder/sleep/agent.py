"""The sleep agent S(c) -> c′: rethink a raw context into a learned one, offline.

Lin et al., "Sleep-time Compute: Beyond Inference Scaling at Test-time"
(arXiv:2504.13171). The agent reads the raw context and rewrites a memory
block of precomputed quantities and inferences, in up to ``rounds`` rethink
rounds (the reference allows 10), each replacing the whole block, capped at
``max_memory_chars`` (5,000 in the reference). Sleep-time scaling runs
``samples`` agents in parallel, in lockstep so that each round is one batched
backend call (the first shares one prefill), and then selects the best block
with a verifier (``SelfCheck`` by default) or merges them.

Every call goes through ``ctx.generate`` with the ledger label
``sleep-agent``; the worker gives it a ``RunContext(phase="sleep")``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ponder.backends.base import Backend, Completion, Message
from ponder.errors import BackendError, CapabilityError, ConfigError, ModelError, PonderError
from ponder.ledger import Usage
from ponder.params import SamplingParams
from ponder.sleep.protocols import PROTOCOLS, Action, SampleState, SleepProtocol, cap_memory
from ponder.sleep.selection import SelfCheck, merge
from ponder.strategies.base import Problem, RunContext
from ponder.verifiers.base import Verifier

Selection = Literal["self-check", "merge", "first"]


class SleepFailed(BackendError):
    """The sleep agent produced no usable memory block (the worker retries the job)."""


class SleepInterrupted(PonderError):
    """The run was told to stop (e.g. the worker lost its lease)."""


@dataclass(frozen=True, slots=True)
class SleepParams:
    """The sleep agent's knobs. Frozen; vary with ``dataclasses.replace``."""

    rounds: int = 3
    """Rethink rounds per agent, >= 1 (each is one model call; the reference allows 10)."""
    samples: int = 1
    """Parallel sleep agents (sleep-time scaling), >= 1."""
    protocol: Literal["auto", "text", "tools"] = "auto"
    """auto: tools if the backend declares ``supports_tools``, else text."""
    select: Selection = "self-check"
    """How k > 1 blocks become one: self-check verifier, merge call, or first."""
    max_memory_chars: int = 5000
    """Cap on the memory block, in characters."""
    max_tokens: int = 512
    """Completion tokens per round, >= 1."""
    temperature: float | None = None
    """None: 0 (greedy) for one agent, 0.7 for several."""
    seed: int | None = 0

    def __post_init__(self) -> None:
        for name, low in (("rounds", 1), ("samples", 1), ("max_memory_chars", 100),
                          ("max_tokens", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ConfigError(f"sleep {name} must be an integer >= {low}, got {value!r}")
        if self.protocol not in ("auto", "text", "tools"):
            raise ConfigError(f"sleep protocol must be auto, text or tools, got {self.protocol!r}")
        if self.select not in ("self-check", "merge", "first"):
            raise ConfigError(f"sleep select must be self-check, merge or first, "
                              f"got {self.select!r}")
        if self.temperature is not None and not 0 <= self.temperature <= 2:
            raise ConfigError(f"sleep temperature must be in [0, 2], got {self.temperature!r}")

    @property
    def sample_temperature(self) -> float:
        if self.temperature is not None:
            return self.temperature
        return 0.0 if self.samples == 1 else 0.7


@dataclass(frozen=True, slots=True)
class SleepEvent:
    """Progress of one sleep agent, after each of its rounds (for progress displays)."""

    sample: int
    round: int
    action: str
    """rethink, finish, malformed, or select (the final choice, sample = the winner)."""
    memory_chars: int
    completion_tokens: int
    """Sleep-time completion tokens of the whole run so far."""
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class SleepResult:
    memory: str
    protocol: str
    rounds: int
    """Rounds the chosen agent used."""
    samples: int
    chosen: int | None
    """Index of the selected agent (None when merged)."""
    scores: tuple[float, ...] | None
    usage: Usage
    seconds: float
    truncated: bool
    malformed: int
    """Malformed replies over all agents (each was retried in the next round)."""
    memories: tuple[str, ...] = field(default=(), repr=False)

    @property
    def strategy(self) -> str:
        return f"sleep-agent:{self.protocol}:k={self.samples}"


class SleepAgent:
    """Runs S(c) -> c′ on one raw context."""

    name = "sleep-agent"

    def __init__(self, params: SleepParams | None = None, verifier: Verifier | None = None
                 ) -> None:
        self.params = params or SleepParams()
        self.verifier = verifier

    def protocol_for(self, ctx: RunContext) -> SleepProtocol:
        name = self.params.protocol
        if name == "auto":
            name = "tools" if getattr(ctx.backend, "supports_tools", False) else "text"
        return PROTOCOLS[name]()

    async def run(self, context: str, ctx: RunContext, *, examples: Sequence[str] = (),
                  on_event: Callable[[SleepEvent], None] | None = None,
                  should_stop: Callable[[], bool] | None = None) -> SleepResult:
        """Rethink ``context``; raises ``SleepFailed`` if no agent wrote a usable block."""
        if not context.strip():
            raise ConfigError("the context is empty: nothing to sleep on")
        started, first_entry = time.perf_counter(), len(ctx.ledger.snapshot())
        protocol = self.protocol_for(ctx)
        self._check_fits(protocol, context, examples, ctx)
        states = [SampleState() for _ in range(self.params.samples)]
        run = _Run(self, protocol, context, tuple(examples), ctx, states, on_event, first_entry)
        for round_index in range(self.params.rounds):
            if should_stop is not None and should_stop():
                raise SleepInterrupted("sleep run stopped (lease lost or shutdown)")
            if not await run.step(round_index):
                break
        return await run.finish(started)

    def _check_fits(self, protocol: SleepProtocol, context: str, examples: Sequence[str],
                    ctx: RunContext) -> None:
        check_window(ctx.backend, protocol.messages(context, examples, SampleState()),
                     self.params.max_tokens, "the sleep prompt")


def check_window(backend: Backend, messages: list[Message], max_tokens: int, what: str) -> None:
    """A clear error when a prompt cannot fit the model's window (nothing is cut silently).

    Only backends that expose ``n_ctx`` and a tokenizer (the embedded one) are
    checked; remote engines report overflows themselves.
    """
    window = getattr(backend, "n_ctx", None)
    if not isinstance(window, int):
        return
    try:
        tokens = len(backend.tokenize(backend.render_chat(messages)))
    except (CapabilityError, ModelError):
        return
    if tokens + max_tokens > window:
        raise ConfigError(
            f"the context is too long for the model's window: {what} is {tokens} tokens, and "
            f"with max_tokens={max_tokens} it exceeds n_ctx={window}; split the context, or "
            "load the model with a larger n_ctx")


class _Run:
    """The state of one agent run: k samples advancing round by round."""

    def __init__(self, agent: SleepAgent, protocol: SleepProtocol, context: str,
                 examples: tuple[str, ...], ctx: RunContext, states: list[SampleState],
                 on_event: Callable[[SleepEvent], None] | None, first_entry: int) -> None:
        self.agent, self.params = agent, agent.params
        self.protocol, self.context, self.examples, self.ctx = protocol, context, examples, ctx
        self.states, self.on_event, self.first_entry = states, on_event, first_entry

    def usage(self) -> Usage:
        return Usage.sum(e.usage for e in self.ctx.ledger.snapshot()[self.first_entry:])

    async def step(self, round_index: int) -> bool:
        """One round for every agent still rethinking; False when all are done."""
        active = [i for i, s in enumerate(self.states) if not s.done]
        if not active:
            return False
        params = SamplingParams(temperature=self.params.sample_temperature,
                                max_tokens=self.params.max_tokens, seed=self.params.seed)
        try:
            completions = await self._generate(active, params, round_index)
        except ConfigError:
            if round_index == 0:
                raise
            for i in active:  # the grown prompt no longer fits: keep what we have
                self.states[i].done = True
            return False
        for i, completion in zip(active, completions, strict=True):
            self._apply(i, round_index, completion)
        return any(not s.done for s in self.states)

    async def _generate(self, active: list[int], params: SamplingParams,
                        round_index: int) -> list[Completion]:
        prompts = [self.protocol.messages(self.context, self.examples, self.states[i])
                   for i in active]
        if round_index == 0 and len(active) > 1:  # identical first prompts: one shared prefill
            [group] = await self.ctx.generate([prompts[0]], params.with_(n=len(active)),
                                              strategy=self.agent.name)
            return group
        groups = await self.ctx.generate(prompts, params, strategy=self.agent.name)
        return [group[0] for group in groups]

    def _apply(self, i: int, round_index: int, completion: Completion) -> None:
        state = self.states[i]
        state.rounds = round_index + 1
        for action in self.protocol.read(completion, state):
            self._act(state, action)
            self._emit(SleepEvent(i, state.rounds, action.kind, len(state.memory),
                                  self.usage().completion_tokens, action.error))

    def _act(self, state: SampleState, action: Action) -> None:
        if action.kind == "rethink" and action.memory is not None:
            state.memory, cut = cap_memory(action.memory, self.params.max_memory_chars)
            state.truncated = state.truncated or cut
        elif action.kind == "finish":
            state.done = True
        else:
            state.malformed += 1
            state.last_error = action.error

    def _emit(self, event: SleepEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)

    async def finish(self, started: float) -> SleepResult:
        """Select or merge the agents' blocks into one."""
        written = [i for i, s in enumerate(self.states) if s.memory]
        malformed = sum(s.malformed for s in self.states)
        if not written:
            errors = {s.last_error for s in self.states if s.last_error}
            raise SleepFailed(f"the sleep agent wrote no memory block in {self.params.rounds} "
                              f"round(s) ({malformed} malformed replies: "
                              f"{'; '.join(sorted(errors)) or 'none'})")
        memories = [self.states[i].memory for i in written]
        chosen, scores, memory = await self._select(written, memories)
        state = self.states[chosen] if chosen is not None else None
        self._emit(SleepEvent(chosen if chosen is not None else -1,
                              state.rounds if state else 0, "select", len(memory),
                              self.usage().completion_tokens,
                              self.params.select if len(written) > 1 else None))
        return SleepResult(
            memory=memory, protocol=self.protocol.name,
            rounds=state.rounds if state else max(s.rounds for s in self.states),
            samples=len(self.states), chosen=chosen, scores=scores, usage=self.usage(),
            seconds=time.perf_counter() - started,
            truncated=any(s.truncated for s in self.states), malformed=malformed,
            memories=tuple(s.memory for s in self.states))

    async def _select(self, written: list[int], memories: list[str]
                      ) -> tuple[int | None, tuple[float, ...] | None, str]:
        if len(written) == 1 or self.params.select == "first":
            return written[0], None, memories[0]
        if self.params.select == "merge":
            merged = await merge(self.context, memories, self.ctx,
                                 max_tokens=self.params.max_tokens,
                                 max_chars=self.params.max_memory_chars,
                                 strategy=self.agent.name)
            return None, None, merged
        verifier = self.agent.verifier or SelfCheck()
        scores = await verifier.score(Problem(self.context), memories, self.ctx)
        best = max(range(len(scores)), key=lambda j: (scores[j], -j))
        return written[best], tuple(scores), memories[best]
