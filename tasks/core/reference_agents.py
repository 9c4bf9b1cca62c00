"""Built-in agents that check the checkers, and a scripted user.

Input: a validated task (its golden calls with concrete arguments), the names
of the environment's write tools and, optionally, the tools offered (their
parameter enums). Output: assistants in the shape the rollout loop takes (the
conversation so far -> the next message):
- `oracle` makes the golden calls in order, then says it is done: every
  evaluator must pass it;
- `do_nothing` answers without a tool call: it must fail every task that needs a
  write;
- `wrong_argument` makes the golden calls with one argument of the first write
  call (the first call's, for a read-only task) changed to another valid-looking
  value: it must fail the state check of a task that writes (and the action
  check of a read-only one);
and `scripted_user`, which ends the conversation after the assistant's turn.
Deterministic (tool call ids are `call_<n>`). Pure.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from schemas.environment import CONFIRM_PARAMETER
from schemas.golden import GoldenCall
from schemas.rollout import STOP_TOKEN, ChatMessage, FunctionCall, ToolCall
from schemas.validated_task import AgentTask
from tasks.core.conversation import Assistant

DONE = "Everything you asked for is done."
DECLINE = "I'm sorry, I can't help with that."

CallAt = Callable[[int, Sequence[ChatMessage]], GoldenCall]
"""The call to make at a position, given the conversation so far."""


def _calls_made(messages: Sequence[ChatMessage]) -> int:
    return sum(len(m.tool_calls or ()) for m in messages if m.role == "assistant")


def _message(index: int, call: GoldenCall) -> ChatMessage:
    tool_call = ToolCall(
        id=f"call_{index}",
        function=FunctionCall(
            name=call.tool, arguments=json.dumps(call.arguments, ensure_ascii=False)
        ),
    )
    return ChatMessage(role="assistant", content=None, tool_calls=(tool_call,))


def replaying(calls: Sequence[GoldenCall], call_at: CallAt | None = None) -> Assistant:
    """An assistant that makes `calls` one per message (each as `call_at` gives
    it, if set), then says it is done."""

    def answer(messages: Sequence[ChatMessage]) -> ChatMessage:
        made = _calls_made(messages)
        if made >= len(calls):
            return ChatMessage(role="assistant", content=DONE)
        call = calls[made] if call_at is None else call_at(made, messages)
        return _message(made, call)

    return answer


def oracle(task: AgentTask) -> Assistant:
    return replaying(task.golden_calls)


def do_nothing(task: AgentTask) -> Assistant:
    del task

    def answer(messages: Sequence[ChatMessage]) -> ChatMessage:
        return ChatMessage(role="assistant", content=DECLINE)

    return answer


def wrong_argument(
    task: AgentTask,
    write_tools: Collection[str],
    tools: Sequence[Mapping[str, Any]] = (),
) -> Assistant:
    """The golden calls with one argument of the first write call changed (the
    first call's when no call writes), chosen when the call is made, so another
    value the earlier tool results showed can be used (`changed_arguments`).

    Args:
        task: The validated task.
        write_tools: The tools that change state.
        tools: The OpenAI tools offered (their parameter enums are used).
    """
    calls = task.golden_calls
    target = next((i for i, c in enumerate(calls) if c.tool in write_tools), 0)
    schemas = {
        t["function"]["name"]: t["function"].get("parameters") or {} for t in tools
    }

    def call_at(index: int, messages: Sequence[ChatMessage]) -> GoldenCall:
        call = calls[index]
        if index != target:
            return call
        properties = schemas.get(call.tool, {}).get("properties") or {}
        changed = changed_arguments(call.arguments, properties, seen_values(messages))
        return call.model_copy(update={"arguments": changed})

    return replaying(calls, call_at)


def changed_arguments(
    arguments: Mapping[str, Any],
    properties: Mapping[str, Any],
    seen: Mapping[str, Collection[Any]],
) -> dict[str, Any]:
    """The arguments with one value changed to another valid-looking one: first
    another value the tool results showed under the same key (another card of
    the user's), else an id with its last letter or digit changed, another
    value of the parameter's enum, a number plus one, a date a day later, or a
    changed text; `confirm` is flipped only when nothing else can change."""
    out = dict(arguments)
    keys = [k for k in arguments if k != CONFIRM_PARAMETER]
    choices: tuple[Callable[[str, Any], Any], ...] = (
        lambda key, value: _other_seen(value, seen.get(key, ())),
        lambda key, value: _other_id(value) if key.endswith("id") else None,
        lambda key, value: _other_enum(value, properties.get(key) or {}),
        lambda key, value: _other_scalar(value),
    )
    for choose in choices:
        for key in keys:
            value = choose(key, arguments[key])
            if value is not None and value != arguments[key]:
                out[key] = value
                return out
    if CONFIRM_PARAMETER in arguments:
        out[CONFIRM_PARAMETER] = not arguments[CONFIRM_PARAMETER]
    return out


def seen_values(messages: Sequence[ChatMessage]) -> dict[str, set[Any]]:
    """Key -> the scalar values under that key in the tool results so far."""
    seen: dict[str, set[Any]] = {}
    for message in messages:
        if message.role != "tool" or not message.content:
            continue
        try:
            value = json.loads(message.content)
        except ValueError:
            continue
        for key, found in _scalars(value):
            seen.setdefault(key, set()).add(found)
    return seen


def scripted_user(messages: Sequence[ChatMessage]) -> str:
    """A user who ends the conversation after the assistant's turn."""
    del messages
    return f"Thank you. {STOP_TOKEN}"


def _scalars(value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str | int | float) and not isinstance(item, bool):
                yield key, item
            else:
                yield from _scalars(item)
    elif isinstance(value, list):
        for item in value:
            yield from _scalars(item)


def _other_seen(value: Any, seen: Collection[Any]) -> Any:
    others = sorted((v for v in seen if v != value and type(v) is type(value)), key=str)
    return others[0] if others else None


def _other_id(value: Any) -> str | None:
    """The id with its last letter or digit changed (same shape, other row)."""
    if not isinstance(value, str):
        return None
    for i in range(len(value) - 1, -1, -1):
        char = value[i]
        if char.isdigit():
            return value[:i] + str((int(char) + 1) % 10) + value[i + 1 :]
        if char.isascii() and char.isalpha():
            base = ord("a") if char.islower() else ord("A")
            span = 6 if char.lower() <= "f" else 26  # a hex digit stays hex
            return (
                value[:i] + chr(base + (ord(char) - base + 1) % span) + value[i + 1 :]
            )
    return None


def _other_enum(value: Any, schema: Mapping[str, Any]) -> Any:
    options = [o for o in schema.get("enum") or () if o != value]
    return options[0] if options else None


def _other_scalar(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, list):
        return value[:-1] if value else ["x"]
    if not isinstance(value, str) or not value:
        return None
    for kind in (datetime, date):
        try:
            moment = kind.fromisoformat(value)
        except ValueError:
            continue
        return (moment + timedelta(days=1)).isoformat()
    return f"{value} (changed)"
