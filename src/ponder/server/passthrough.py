"""Direct generation for requests that no test-time strategy serves.

* ``RawContinuation``: ``/v1/completions`` without a named strategy continues
  the prompt verbatim, as every OpenAI-compatible engine does (lm-eval-harness
  relies on it). Streams tokens as they are decoded.
* ``ToolCalling``: a chat request with ``tools`` (and ``tool_choice`` other
  than "none") gets one direct generation, whatever strategy was asked for:
  voting over tool calls is not meaningful. The messages stay whole (tool
  calls and tool results included); the tool definitions are described to the
  model in a system note in the Hermes ``<tool_call>`` format that Qwen2.5 and
  many open models were trained on, and ``<tool_call>{...}</tool_call>`` blocks
  in the reply come back as ``tool_calls``. The backend protocol cannot yet pass
  ``tools`` to the model's own chat template; when it can, the note goes away.

Both are ``Strategy`` subclasses private to the server, so they run through
``RunContext`` (ledger, budget) like every strategy. They are not in the
registry: they are protocol adapters, not methods.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ponder.backends.base import Message
from ponder.strategies.base import Answer, Candidate, Problem, RunContext, Strategy

_TOOL_CALL = re.compile(r"<tool_call>\s*(\{.*?\})\s*(?:</tool_call>|$)", re.DOTALL)


@dataclass(frozen=True, slots=True)
class NoParams:
    """These adapters take no parameters."""


class RawContinuation(Strategy[NoParams]):
    name = "raw"
    summary = "continue the prompt verbatim (no chat template)"
    Params = NoParams

    async def run(self, problem: Problem, ctx: RunContext) -> Answer:
        return await _last_answer(self.stream(problem, ctx))

    async def stream(self, problem: Problem, ctx: RunContext) -> AsyncIterator[str | Answer]:
        async for chunk in ctx.stream(problem.question, self.sampling(ctx, n=1),
                                      strategy=self.name):
            if chunk.text:
                yield chunk.text
            if chunk.completion is not None:
                candidate = Candidate.from_completion(chunk.completion, problem.kind)
                yield Answer(chunk.completion.text, candidate.answer, self.name, [candidate],
                             ledger=ctx.ledger)


class ToolCalling(Strategy[NoParams]):
    name = "tools"
    summary = "one direct generation that may call the request's tools"
    Params = NoParams

    def __init__(self, tools: Sequence[Mapping[str, Any]], tool_choice: Any = None) -> None:
        super().__init__()
        self.tools = list(tools)
        self.tool_choice = tool_choice

    async def stream(self, problem: Problem, ctx: RunContext) -> AsyncIterator[str | Answer]:
        """The content (without the call blocks) once known, then the ``Answer``."""
        answer = await self.run(problem, ctx)
        if answer.info["content"]:
            yield answer.info["content"]
        yield answer

    async def run(self, problem: Problem, ctx: RunContext) -> Answer:
        messages = with_tool_note(problem.chat(), self.tools, self.tool_choice)
        [[completion]] = await ctx.generate([messages], self.sampling(ctx, n=1),
                                            strategy=self.name)
        names = {t["function"]["name"] for t in self.tools}
        content, calls = parse_tool_calls(completion.text, names)
        candidate = Candidate.from_completion(completion, problem.kind)
        finish = "tool_calls" if calls else completion.finish_reason
        return Answer(completion.text, candidate.answer, self.name, [candidate],
                      ledger=ctx.ledger,
                      info={"content": content, "tool_calls": calls, "finish_reason": finish})


def with_tool_note(messages: list[Message], tools: Sequence[Mapping[str, Any]],
                   tool_choice: Any) -> list[Message]:
    """The messages with the tool definitions described in the system prompt."""
    specs = "\n".join(json.dumps(t, ensure_ascii=False) for t in tools)
    note = ("# Tools\n\nYou may call one or more of these functions. Their signatures are "
            f"inside <tools></tools>:\n<tools>\n{specs}\n</tools>\n\nTo call a function, "
            "reply with a JSON object inside <tool_call></tool_call> tags:\n<tool_call>\n"
            '{"name": <function-name>, "arguments": <arguments-as-a-json-object>}\n'
            "</tool_call>")
    if tool_choice == "required":
        note += "\n\nYou must call at least one function."
    elif isinstance(tool_choice, Mapping):
        note += f"\n\nCall the function {tool_choice['function']['name']!r}."
    out = [dict(m) for m in messages]
    if out and out[0].get("role") == "system":
        out[0]["content"] = f"{out[0].get('content') or ''}\n\n{note}"
    else:
        out.insert(0, {"role": "system", "content": note})
    return out


def parse_tool_calls(text: str, names: set[str]) -> tuple[str | None, list[dict[str, Any]]]:
    """(content without the call blocks, OpenAI tool calls) from a Hermes-format reply.

    Blocks that are not JSON, or name a function that was not offered, stay in
    the content: the caller sees what the model wrote.
    """
    calls: list[dict[str, Any]] = []
    kept: list[str] = []
    last = 0
    for match in _TOOL_CALL.finditer(text):
        call = _read_call(match.group(1), names)
        if call is None:
            continue
        kept.append(text[last:match.start()])
        last = match.end()
        calls.append(call)
    kept.append(text[last:])
    content = "".join(kept).strip()
    return (content or None) if calls else text, calls


def _read_call(raw: str, names: set[str]) -> dict[str, Any] | None:
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("name") not in names:
        return None
    arguments = data.get("arguments", {})
    return {"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
            "function": {"name": data["name"],
                         "arguments": arguments if isinstance(arguments, str)
                         else json.dumps(arguments, ensure_ascii=False)}}


async def _last_answer(items: AsyncIterator[str | Answer]) -> Answer:
    answer: Answer | None = None
    async for item in items:
        if isinstance(item, Answer):
            answer = item
    if answer is None:  # pragma: no cover - every stream ends with its Answer
        raise RuntimeError("the stream ended without an answer")
    return answer
