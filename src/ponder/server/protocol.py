"""Request and response models of the OpenAI-compatible API.

Fields use OpenAI's names in OpenAI's order; ponder's extras come after them,
grouped in one ``ponder`` object (where the openai client's ``extra_body``
lands)::

    client.chat.completions.create(
        model="self-consistency/qwen2.5-coder-0.5b", messages=[...],
        extra_body={"ponder": {"params": {"n": 8}, "budget": 4000}})

Unknown top-level fields are accepted and logged as ignored, as vLLM's
``OpenAIBaseModel`` does (clients send fields we do not use, such as
``store`` or ``metadata``). Unknown fields inside ``ponder`` are refused: they
are ours, and a typo there should not pass silently.

``to_run_spec(defaults)`` is the one place a request becomes internal values,
with one precedence: the request, then the server default, then the built-in
default.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ponder.backends.base import Message
from ponder.engine import DEFAULT_STRATEGY
from ponder.errors import CapabilityError
from ponder.params import SamplingParams
from ponder.server.errors import ApiError
from ponder.server.settings import ServerSettings
from ponder.strategies.base import Problem

logger = logging.getLogger("ponder.server")

_SEED_MIN, _SEED_MAX = -(2**63), 2**63 - 1
SAMPLING_EPS = 1e-5
MAX_STOP = 16
"""More stop strings than this is a 400 (OpenAI allows 4)."""

Effort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]
Mode = Literal["strategy", "raw", "tools"]
"""How choices are made: by a strategy, by raw continuation (``/v1/completions``
without a strategy), or by one direct generation that may call tools."""


class OpenAIBaseModel(BaseModel):
    """Accepts unknown fields and logs them as ignored (vLLM's ``OpenAIBaseModel``)."""

    model_config = ConfigDict(extra="allow", strict=True)
    log_ignored: ClassVar[bool] = True

    @model_validator(mode="wrap")
    @classmethod
    def _log_ignored_fields(cls, data: Any, handler: Any) -> Any:
        result = handler(data)
        if cls.log_ignored and isinstance(data, dict):
            known = set(cls.model_fields)
            ignored = sorted(str(k) for k in data if k not in known)
            if ignored:
                logger.warning("%s: ignored unknown fields %s", cls.__name__, ignored)
        return result


class PassThroughModel(OpenAIBaseModel):
    """Parts of messages we keep whole: extra fields travel on, silently."""

    log_ignored: ClassVar[bool] = False


# -- shared request parts ------------------------------------------------------


class PonderOptions(BaseModel):
    """ponder's extras: ``{"ponder": {strategy, params, budget, context_id, reasoning_effort}}``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    strategy: str | None = Field(default=None, min_length=1, max_length=200)
    """Strategy name (see GET /v1/models); wins over a model-name prefix."""
    params: dict[str, Any] | None = None
    """The strategy's own parameters, e.g. ``{"n": 8}`` for self-consistency."""
    budget: int | None = Field(default=None, ge=1)
    """Completion-token budget of the whole request (all choices, hidden samples too)."""
    context_id: int | str | None = None
    """Answer with a stored context and what sleep-time compute learned about it."""
    reasoning_effort: Effort | None = None
    """Picks a strategy when none is named (see ``ServerSettings.effort_strategies``)."""


class StreamOptions(OpenAIBaseModel):
    include_usage: bool | None = None


class FunctionSpec(PassThroughModel):
    name: str = Field(min_length=1, max_length=256)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolSpec(PassThroughModel):
    type: Literal["function"] = "function"
    function: FunctionSpec


class NamedFunction(PassThroughModel):
    name: str


class NamedToolChoice(PassThroughModel):
    type: Literal["function"] = "function"
    function: NamedFunction


class ResponseFormat(PassThroughModel):
    type: Literal["text", "json_object", "json_schema"]


class FunctionCall(PassThroughModel):
    name: str
    arguments: str


class ToolCall(PassThroughModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ContentPart(PassThroughModel):
    type: str
    text: str | None = None


class ChatMessage(PassThroughModel):
    """A chat message, kept whole: unknown keys travel on to the chat template."""

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def _needs_content(self) -> ChatMessage:
        if self.content is None and not (self.role == "assistant" and self.tool_calls):
            raise ValueError(f"a {self.role} message needs content")
        return self

    def text(self) -> str:
        """The message's text; content parts other than text are refused."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        parts = []
        for part in self.content:
            if part.type != "text" or part.text is None:
                raise CapabilityError(f"content part type {part.type!r} is not supported: "
                                      "this server takes text only (it fetches no URLs)")
            parts.append(part.text)
        return "\n".join(parts)

    def to_message(self) -> Message:
        """The message as the backend gets it: text content ("" beside tool calls, since
        some chat templates cannot add None), ``developer`` as ``system``."""
        message: Message = self.model_dump(exclude_unset=True, mode="json")
        message["content"] = self.text()
        if self.role == "developer":
            message["role"] = "system"
        return message


# -- the run spec --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunSpec:
    """A request as internal values: what to run, how often, under which limits."""

    mode: Mode
    strategy: str | None
    """Registry name when ``mode == "strategy"``."""
    params: Mapping[str, Any]
    """Strategy parameters from ``ponder.params`` (they win over ``overrides``)."""
    overrides: Mapping[str, Any]
    """Request-level temperature / max_tokens, for strategies that declare them."""
    sampling: SamplingParams
    n: int
    """Independent choices per problem."""
    budget: int
    """Completion-token budget of the whole request."""
    problems: tuple[Problem, ...]
    tools: tuple[Mapping[str, Any], ...] = ()
    tool_choice: Any = None
    stream: bool = False
    include_usage: bool = False
    context_id: int | str | None = None
    reasoning_effort: str | None = None
    echo: bool = False
    strategy_from_request: bool = False
    """The request chose its strategy (``ponder.strategy``, a model prefix,
    ``reasoning_effort`` or ``ponder.params``): the online budget leaves it alone."""
    budget_level: int | None = None
    """Index into ``ServerSettings.budget_levels`` when the online budget chose the strategy."""

    @property
    def choices(self) -> int:
        return self.n * len(self.problems)


class _GenerationRequest(OpenAIBaseModel):
    """Fields and checks shared by chat and text completions."""

    def _check_caps(self, defaults: ServerSettings, n: int, max_tokens: int | None) -> None:
        if n > defaults.max_n:
            raise ApiError(f"n={n} exceeds this server's cap of {defaults.max_n}", param="n",
                           code="above_cap")
        if max_tokens is not None and max_tokens > defaults.max_tokens:
            raise ApiError(f"max_tokens={max_tokens} exceeds this server's cap of "
                           f"{defaults.max_tokens}", param="max_tokens", code="above_cap")
        ponder = getattr(self, "ponder", None)
        budget = ponder.budget if ponder is not None else None
        if budget is not None and budget > defaults.max_request_tokens:
            raise ApiError(f"ponder.budget={budget} exceeds this server's cap of "
                           f"{defaults.max_request_tokens} tokens per request",
                           param="ponder.budget", code="above_cap")

    def _strategy(self, defaults: ServerSettings, model_strategy: str | None,
                  effort: str | None, fallback: str | None) -> str | None:
        """Explicit body field, then model prefix, then effort, then the server default."""
        ponder = getattr(self, "ponder", None)
        if ponder is not None and ponder.strategy:
            return str(ponder.strategy)
        if model_strategy:
            return model_strategy
        if effort is not None and defaults.effort_strategies.get(effort):
            return defaults.effort_strategies[effort]
        return fallback

    def _names_strategy(self, model_strategy: str | None, effort: str | None) -> bool:
        """Whether the request chose (or configured) its strategy itself."""
        ponder = getattr(self, "ponder", None)
        named = ponder is not None and (bool(ponder.strategy) or ponder.params is not None)
        return named or bool(model_strategy) or effort is not None

    def _sampling(self, defaults: ServerSettings, max_tokens: int | None,
                  stop: str | list[str] | None, seed: int | None,
                  logit_bias: dict[str, float] | None) -> SamplingParams:
        temperature = getattr(self, "temperature", None)
        top_p = getattr(self, "top_p", None)
        built_in = SamplingParams()
        return SamplingParams(
            temperature=built_in.temperature if temperature is None else greedy_below(temperature),
            top_p=built_in.top_p if top_p is None else top_p,
            max_tokens=max_tokens or defaults.default_max_tokens,
            stop=_stops(stop), seed=None if seed is None else seed % 2**64,
            logit_bias=_token_bias(logit_bias))

    def _overrides(self, max_tokens: int | None) -> dict[str, Any]:
        temperature = getattr(self, "temperature", None)
        given = {"temperature": None if temperature is None else greedy_below(temperature),
                 "max_tokens": max_tokens}
        return {k: v for k, v in given.items() if v is not None}


def greedy_below(temperature: float) -> float:
    """Temperatures under ``SAMPLING_EPS`` mean greedy (as in vLLM): 1/T would overflow."""
    return 0.0 if 0 <= temperature < SAMPLING_EPS else temperature


def _stops(stop: str | list[str] | None) -> tuple[str, ...]:
    if stop is None:
        return ()
    stops = (stop,) if isinstance(stop, str) else tuple(stop)
    if len(stops) > MAX_STOP or not all(stops):
        raise ApiError(f"stop takes at most {MAX_STOP} non-empty strings", param="stop")
    return stops


def _token_bias(bias: dict[str, float] | None) -> dict[int, float]:
    out: dict[int, float] = {}
    for key, value in (bias or {}).items():
        if not key.isdigit() or not -100 <= value <= 100:
            raise ApiError(f"logit_bias maps token ids to numbers in [-100, 100], got "
                           f"{key!r}: {value!r}", param="logit_bias")
        out[int(key)] = float(value)
    return out


def _refuse(param: str, why: str) -> ApiError:
    return ApiError(f"{param} is not supported by this server: {why}", param=param,
                    code="unsupported_parameter")


# -- chat completions ----------------------------------------------------------


class ChatCompletionRequest(_GenerationRequest):
    """POST /v1/chat/completions."""

    messages: list[ChatMessage] = Field(min_length=1, max_length=10_000)
    model: str | None = None
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    max_completion_tokens: int | None = Field(default=None, ge=1)
    max_tokens: int | None = Field(default=None, ge=1)
    n: int = Field(default=1, ge=1)
    parallel_tool_calls: bool | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    reasoning_effort: Effort | None = None
    response_format: ResponseFormat | None = None
    seed: int | None = Field(default=None, ge=_SEED_MIN, le=_SEED_MAX)
    stop: str | list[str] | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    tools: list[ToolSpec] | None = Field(default=None, max_length=128)
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    top_p: float | None = Field(default=None, gt=0, le=1)
    user: str | None = None
    # -- ponder's extras --
    ponder: PonderOptions | None = None

    def to_run_spec(self, defaults: ServerSettings, *,
                    model_strategy: str | None = None) -> RunSpec:
        """The request as a ``RunSpec``: request, then server default, then built-in."""
        if self.logprobs or self.top_logprobs:
            raise _refuse("logprobs", "answers are chosen by a strategy, not sampled once")
        if self.response_format is not None and self.response_format.type != "text":
            raise _refuse("response_format", "only {'type': 'text'} is available")
        _log_ignored_penalties(self.frequency_penalty, self.presence_penalty)
        max_tokens = self.max_completion_tokens or self.max_tokens
        self._check_caps(defaults, self.n, max_tokens)
        ponder = self.ponder or PonderOptions()
        effort = ponder.reasoning_effort or self.reasoning_effort
        messages = tuple(m.to_message() for m in self.messages)
        users = [m for m in messages if m["role"] == "user"]
        problem = Problem(question=users[-1]["content"] if users else "", messages=messages)
        tools = tuple(t.model_dump(exclude_none=True) for t in self.tools or ())
        use_tools = bool(tools) and self.tool_choice != "none"
        strategy = self._strategy(defaults, model_strategy, effort,
                                  defaults.default_strategy or DEFAULT_STRATEGY)
        choice = self.tool_choice.model_dump() if isinstance(self.tool_choice, BaseModel) \
            else self.tool_choice
        return RunSpec(
            mode="tools" if use_tools else "strategy",
            strategy=None if use_tools else strategy,
            params=dict(ponder.params or {}), overrides=self._overrides(max_tokens),
            sampling=self._sampling(defaults, max_tokens, self.stop, self.seed, self.logit_bias),
            n=self.n, budget=ponder.budget or defaults.max_request_tokens, problems=(problem,),
            tools=tools if use_tools else (), tool_choice=choice,
            stream=bool(self.stream), include_usage=_include_usage(self),
            context_id=ponder.context_id, reasoning_effort=effort,
            strategy_from_request=self._names_strategy(model_strategy, effort))


# -- text completions ----------------------------------------------------------


class CompletionRequest(_GenerationRequest):
    """POST /v1/completions. Without a named strategy the prompt is continued verbatim."""

    model: str | None = None
    prompt: str | list[str] = Field(min_length=1)
    best_of: int | None = Field(default=None, ge=1)
    echo: bool | None = False
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    logit_bias: dict[str, float] | None = None
    logprobs: int | None = Field(default=None, ge=0, le=5)
    max_tokens: int | None = Field(default=16, ge=1)
    n: int = Field(default=1, ge=1)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    seed: int | None = Field(default=None, ge=_SEED_MIN, le=_SEED_MAX)
    stop: str | list[str] | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    suffix: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    user: str | None = None
    # -- ponder's extras --
    ponder: PonderOptions | None = None

    def to_run_spec(self, defaults: ServerSettings, *,
                    model_strategy: str | None = None) -> RunSpec:
        """The request as a ``RunSpec``; with no strategy named, raw continuation."""
        if self.logprobs is not None:
            raise _refuse("logprobs", "answers are chosen by a strategy, not sampled once")
        if self.suffix:
            raise _refuse("suffix", "insertion is not available")
        if self.best_of is not None and self.best_of != self.n:
            raise _refuse("best_of", "name a strategy instead (e.g. best-of-n via ponder)")
        _log_ignored_penalties(self.frequency_penalty, self.presence_penalty)
        self._check_caps(defaults, self.n, self.max_tokens)
        prompts = [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)
        if not prompts or len(prompts) * self.n > defaults.max_n or not all(prompts):
            raise ApiError(f"prompt takes 1 to {defaults.max_n // self.n} non-empty strings "
                           f"at n={self.n} (the server's cap is {defaults.max_n} choices)",
                           param="prompt", code="above_cap")
        ponder = self.ponder or PonderOptions()
        strategy = self._strategy(defaults, model_strategy, ponder.reasoning_effort, None)
        return RunSpec(
            mode="strategy" if strategy else "raw", strategy=strategy,
            params=dict(ponder.params or {}), overrides=self._overrides(self.max_tokens),
            sampling=self._sampling(defaults, self.max_tokens, self.stop, self.seed,
                                    self.logit_bias),
            n=self.n, budget=ponder.budget or defaults.max_request_tokens,
            problems=tuple(Problem(question=p, kind="text") for p in prompts),
            stream=bool(self.stream), include_usage=_include_usage(self),
            context_id=ponder.context_id, reasoning_effort=ponder.reasoning_effort,
            echo=bool(self.echo),
            strategy_from_request=self._names_strategy(model_strategy, ponder.reasoning_effort))


def _include_usage(request: ChatCompletionRequest | CompletionRequest) -> bool:
    options = request.stream_options
    return bool(request.stream and options is not None and options.include_usage)


def _log_ignored_penalties(frequency: float | None, presence: float | None) -> None:
    if frequency or presence:
        logger.warning("frequency_penalty / presence_penalty are ignored by this server")


# -- responses -----------------------------------------------------------------


def json_response(model: BaseModel, status_code: int = 200) -> Response:
    """A response model as JSON, serialised by pydantic (not FastAPI's slower encoder)."""
    return Response(model.model_dump_json(), status_code=status_code,
                    media_type="application/json")


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def now() -> int:
    return int(time.time())


class ErrorInfo(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorInfo


class PromptTokensDetails(BaseModel):
    cached_tokens: int = 0


class CompletionTokensDetails(BaseModel):
    reasoning_tokens: int = 0
    """Completion tokens not in the returned text: hidden samples, steps and votes."""


class UsageInfo(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: PromptTokensDetails = Field(default_factory=PromptTokensDetails)
    completion_tokens_details: CompletionTokensDetails = Field(
        default_factory=CompletionTokensDetails)
    ponder: dict[str, Any] | None = None
    """The request's full ledger (``Ledger.summary()``): per phase, per strategy, cost."""


class FunctionCallOut(BaseModel):
    name: str
    arguments: str


class ToolCallOut(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCallOut


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    tool_calls: list[ToolCallOut] | None = None


class ChoiceInfo(BaseModel):
    """ponder's per-choice extension: what the strategy concluded."""

    strategy: str
    answer: str | None = None
    votes: dict[str, int] | None = None
    confidence: float | None = None
    context: dict[str, Any] | None = None
    """With ``context_id``: the context, learned version and query this answer used."""
    budget_level: int | None = None
    """Online mode: the level the rolling token budget chose (index into the server's
    ``budget_levels``); None when the request chose its strategy or the mode is off."""


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    logprobs: None = None
    finish_reason: str
    ponder: ChoiceInfo | None = None


class ChatCompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: UsageInfo


class DeltaMessage(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


class ChatStreamChoice(BaseModel):
    index: int
    delta: DeltaMessage
    logprobs: None = None
    finish_reason: str | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatStreamChoice]
    usage: UsageInfo | None = None


class TextChoice(BaseModel):
    index: int
    text: str
    logprobs: None = None
    finish_reason: str | None = None
    ponder: ChoiceInfo | None = None


class CompletionResponse(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[TextChoice]
    usage: UsageInfo | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "ponder"
    root: str | None = None
    """The backend model this name serves."""
    ponder: dict[str, Any] | None = None
    """For strategy-prefixed names: the strategy, its summary and default params."""


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
