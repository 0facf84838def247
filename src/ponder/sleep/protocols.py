"""How the sleep agent talks to the model: OpenAI tool calls, or plain text.

Both protocols do the same thing each round: show the model the raw context
and its current memory block, and read back one of two actions, "replace the
block with this" (``rethink_memory(new_memory)``) or "done"
(``finish_rethinking_memory()``). A reply that is neither is ``malformed``:
the model is told what was wrong and the round still counts, so a broken
model cannot loop forever.

* ``tools``: the reference's protocol. The two functions are OpenAI tool
  definitions. They are written into the system prompt in the Hermes format
  that tool-calling chat templates (Qwen, Hermes, ...) use, because ponder's
  backend protocol has no ``tools`` request field yet; calls are read from
  ``Completion.tool_calls`` when the engine parsed them, else from
  ``<tool_call>{json}</tool_call>`` in the text. The transcript keeps OpenAI
  message shapes (assistant ``tool_calls``, ``tool`` replies).
* ``text``: for models without tool calling (the embedded default). The
  reply *is* the new memory block; the word FINISH alone ends the rethinking.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from ponder.backends.base import Completion, Message
from ponder.sleep import prompts

ProtocolName = Literal["text", "tools"]

_TOOL_CALL = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
_FENCE = re.compile(r"^```[\w-]*\n(.*?)\n?```$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Action:
    """What one model reply asked for."""

    kind: Literal["rethink", "finish", "malformed"]
    memory: str | None = None
    error: str | None = None


@dataclass
class SampleState:
    """One sleep agent's progress: its memory block and what it has seen."""

    memory: str = ""
    rounds: int = 0
    done: bool = False
    truncated: bool = False
    malformed: int = 0
    last_error: str | None = None
    history: list[Message] = field(default_factory=list)
    """The last exchange (tools protocol), shown to the model in the next round."""


def cap_memory(text: str, max_chars: int) -> tuple[str, bool]:
    """The block cut to ``max_chars`` at a line end if possible; and whether it was cut."""
    text = text.strip()
    if len(text) <= max_chars:
        return text, False
    cut = text[:max_chars]
    line_end = cut.rfind("\n")
    return (cut[:line_end] if line_end > max_chars // 2 else cut).rstrip(), True


def examples_text(examples: Sequence[str]) -> str:
    if not examples:
        return ""
    return prompts.EXAMPLES.format(questions="\n".join(f"- {q}" for q in examples))


class SleepProtocol:
    """Builds each round's messages and reads the model's reply into actions."""

    name: ClassVar[ProtocolName]

    def messages(self, context: str, examples: Sequence[str], state: SampleState
                 ) -> list[Message]:
        raise NotImplementedError

    def read(self, completion: Completion, state: SampleState) -> list[Action]:
        raise NotImplementedError


class TextProtocol(SleepProtocol):
    """The reply is the whole new memory block; ``FINISH`` alone means done."""

    name = "text"

    def messages(self, context: str, examples: Sequence[str], state: SampleState
                 ) -> list[Message]:
        hints = examples_text(examples)
        user = (prompts.TEXT_RETHINK.format(context=context, examples=hints, memory=state.memory)
                if state.memory else prompts.TEXT_FIRST.format(context=context, examples=hints))
        return [{"role": "system", "content": prompts.SLEEP_SYSTEM},
                {"role": "user", "content": user}]

    def read(self, completion: Completion, state: SampleState) -> list[Action]:
        text = _unfence(completion.text.strip())
        if completion.finish_reason == "length" and "\n" in text:
            text = text[:text.rfind("\n")]  # drop the line the token cap cut in half
        lines = text.splitlines()
        finish = bool(lines) and lines[-1].strip().strip(".").upper() == prompts.FINISH_WORD
        body = "\n".join(lines[:-1] if finish else lines).strip()
        if not body:
            if finish and state.memory:
                return [Action("finish")]
            return [Action("malformed", error="the reply was empty" if not finish
                           else "FINISH before any notes were written")]
        if body == state.memory:  # converged: the notes did not change
            return [Action("finish")]
        actions = [Action("rethink", memory=body)]
        return [*actions, Action("finish")] if finish else actions


class ToolProtocol(SleepProtocol):
    """``rethink_memory(new_memory)`` / ``finish_rethinking_memory()`` as tool calls."""

    name = "tools"
    tools: ClassVar[tuple[dict[str, Any], ...]] = (prompts.RETHINK_MEMORY_TOOL,
                                                   prompts.FINISH_TOOL)

    def messages(self, context: str, examples: Sequence[str], state: SampleState
                 ) -> list[Message]:
        system = prompts.TOOLS_SYSTEM.format(memory=state.memory or "[empty]")
        system += prompts.HERMES_TOOLS.format(tools="\n".join(json.dumps(t) for t in self.tools))
        trigger = prompts.TOOLS_TRIGGER.format(context=context, examples=examples_text(examples))
        return [{"role": "system", "content": system}, {"role": "user", "content": trigger},
                *state.history]

    def read(self, completion: Completion, state: SampleState) -> list[Action]:
        calls = _calls_from_completion(completion)
        if not calls:
            error = ("no tool call in the reply; call rethink_memory(new_memory) or "
                     "finish_rethinking_memory()")
            state.history = [{"role": "assistant", "content": completion.text},
                             {"role": "user", "content": f"error: {error}"}]
            return [Action("malformed", error=error)]
        actions = [_action(name, args) for name, args, _ in calls]
        state.history = [
            {"role": "assistant", "content": _TOOL_CALL.sub("", completion.text).strip(),
             "tool_calls": [_openai_call(call_id, name, args) for name, args, call_id in calls]},
            *({"role": "tool", "tool_call_id": call_id, "name": name or "?",
               "content": _tool_reply(action)}
              for (name, _, call_id), action in zip(calls, actions, strict=True)),
        ]
        return actions


PROTOCOLS: dict[str, type[SleepProtocol]] = {"text": TextProtocol, "tools": ToolProtocol}


def _unfence(text: str) -> str:
    match = _FENCE.match(text)
    return match.group(1).strip() if match else text


def _calls_from_completion(completion: Completion) -> list[tuple[str | None, Any, str]]:
    """(name, raw arguments, call id) of each tool call, native or in Hermes text."""
    if completion.tool_calls:
        out = []
        for call in completion.tool_calls:
            function = call.get("function") or {}
            out.append((function.get("name"), function.get("arguments"),
                        str(call.get("id") or _call_id())))
        return out
    bodies = _TOOL_CALL.findall(completion.text)
    if not bodies:  # small models often drop the tags and write a bare or fenced JSON call
        text = _unfence(completion.text.strip())
        bodies = [text] if text.startswith("{") and '"name"' in text else []
    return [(*_parse_hermes(body), _call_id()) for body in bodies]


def _parse_hermes(body: str) -> tuple[str | None, Any]:
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        return None, body
    if not isinstance(data, dict):
        return None, body
    return data.get("name"), data.get("arguments", data.get("parameters"))


def _action(name: str | None, raw_args: Any) -> Action:
    if name is None:
        return Action("malformed", error='the tool call is not a valid JSON object with a name: '
                      '{"name": ..., "arguments": {...}}')
    if name == "finish_rethinking_memory":
        return Action("finish")
    if name != "rethink_memory":
        return Action("malformed", error=f"unknown tool {name!r}; the tools are rethink_memory "
                      "and finish_rethinking_memory")
    args = raw_args
    if isinstance(raw_args, str):
        try:
            args = json.loads(raw_args)
        except json.JSONDecodeError as exc:
            return Action("malformed", error=f"rethink_memory arguments are not valid JSON "
                          f"({exc.msg})")
    memory = args.get("new_memory") if isinstance(args, dict) else None
    if not isinstance(memory, str) or not memory.strip():
        return Action("malformed", error="rethink_memory needs a non-empty string new_memory")
    return Action("rethink", memory=memory)


def _tool_reply(action: Action) -> str:
    if action.kind == "malformed":
        return f"error: {action.error}"
    if action.kind == "finish":
        return "ok: finished"
    return f"ok: memory block replaced ({len(action.memory or '')} characters)"


def _openai_call(call_id: str, name: str | None, args: Any) -> dict[str, Any]:
    arguments = args if isinstance(args, str) else json.dumps(args)
    return {"id": call_id, "type": "function",
            "function": {"name": name or "", "arguments": arguments}}


def _call_id() -> str:
    return f"call_{uuid.uuid4().hex[:12]}"
