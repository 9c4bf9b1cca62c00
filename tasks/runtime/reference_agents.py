"""Built-in assistants and a scripted user that check the checkers.

Input: a validated task (its golden calls with concrete arguments) and, for the
wrong-argument assistant, the tools the episode offers and which of them write.
Output: policies for `tasks.runtime.conversation.converse`:

- `oracle`: makes the golden calls, one per message, then answers;
- `do_nothing`: answers without any tool call;
- `wrong_argument`: the golden calls, but one argument of the first write call
  (of the first call, for a read-only task) changed to another valid-looking
  value: another value the earlier tool results showed under the same key, else
  the id with its last character changed, another value of the parameter's
  enum, a number plus one, a date a day later, or a changed text;
- `scripted_user`: says its scripted replies, then `###STOP###`.

On a verified task the oracle passes every evaluator, `do_nothing` fails every
task that needs a write, and `wrong_argument` fails the state check of every
task with a write. `run_reference` runs one of them in an episode. Pure
policies, no side effects besides the episode's tool calls.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any, Literal

from schemas.environment import CONFIRM_PARAMETER
from schemas.evaluation import EvaluationResult
from schemas.golden import GoldenCall
from schemas.rollout import STOP_TOKEN, ChatMessage, FunctionCall, Rollout, ToolCall
from schemas.validated_task import AgentTask
from tasks.runtime.conversation import AssistantPolicy, UserPolicy, converse
from tasks.runtime.episode import Episode

ReferenceAssistant = Literal["oracle", "do_nothing", "wrong_argument"]
REFERENCE_ASSISTANTS: tuple[ReferenceAssistant, ...] = (
    "oracle",
    "do_nothing",
    "wrong_argument",
)
DONE_TEXT = "All done: I have taken care of your request."
REFUSAL_TEXT = "I'm sorry, I can't help with that."


def oracle(task: AgentTask) -> AssistantPolicy:
    """Makes the task's golden calls with their concrete arguments, then ends."""
    return _replaying(task.golden_calls)


def do_nothing(answer: str = REFUSAL_TEXT) -> AssistantPolicy:
    """Answers without any tool call."""

    def policy(
        messages: Sequence[ChatMessage], tools: Sequence[dict[str, Any]]
    ) -> ChatMessage:
        return ChatMessage(role="assistant", content=answer)

    return policy


def wrong_argument(
    task: AgentTask,
    tools: Sequence[Mapping[str, Any]],
    write_tools: Collection[str],
) -> AssistantPolicy:
    """The golden calls with one argument of the first write call changed (the
    first call's, when no call writes).

    Args:
        task: The validated task.
        tools: The OpenAI tools offered (their parameter schemas name enums).
        write_tools: The tools that change state.
    """
    calls = task.golden_calls
    target = next((i for i, c in enumerate(calls) if c.tool in write_tools), 0)
    schemas = {
        t["function"]["name"]: t["function"].get("parameters") or {} for t in tools
    }

    def change(index: int, messages: Sequence[ChatMessage]) -> GoldenCall:
        call = calls[index]
        if index != target:
            return call
        schema = schemas.get(call.tool, {}).get("properties") or {}
        changed = changed_arguments(call.arguments, schema, _seen_values(messages))
        return call.model_copy(update={"arguments": changed})

    return _replaying(calls, change)


def scripted_user(replies: Sequence[str] = ()) -> UserPolicy:
    """Says `replies` one per turn, then `###STOP###`."""

    def policy(messages: Sequence[ChatMessage]) -> str:
        said = sum(1 for m in _after_opening(messages) if m.role == "user")
        return replies[said] if said < len(replies) else STOP_TOKEN

    return policy


def reference_assistant(name: ReferenceAssistant, episode: Episode) -> AssistantPolicy:
    """One of the built-in assistants for an episode's task."""
    if name == "oracle":
        return oracle(episode.task)
    if name == "do_nothing":
        return do_nothing()
    return wrong_argument(episode.task, episode.tools, episode.write_tools)


def run_reference(
    episode: Episode, name: ReferenceAssistant, replies: Sequence[str] = ()
) -> tuple[Rollout, EvaluationResult]:
    """A built-in assistant against the scripted user in the episode."""
    return converse(episode, reference_assistant(name, episode), scripted_user(replies))


def changed_arguments(
    arguments: Mapping[str, Any],
    properties: Mapping[str, Any],
    seen: Mapping[str, Collection[Any]],
) -> dict[str, Any]:
    """The arguments with one value changed to another valid-looking one (see
    the module docstring for the order of preference); `confirm` is flipped
    only when nothing else can change."""
    out = dict(arguments)
    keys = [k for k in arguments if k != CONFIRM_PARAMETER]
    for choose in (
        lambda k, v: _other_seen(v, seen.get(k, ())),
        lambda k, v: _other_id(v) if k.endswith("id") else None,
        lambda k, v: _other_enum(v, properties.get(k) or {}),
        lambda k, v: _other_scalar(v),
    ):
        for key in keys:
            value = choose(key, arguments[key])
            if value is not None and value != arguments[key]:
                out[key] = value
                return out
    if CONFIRM_PARAMETER in arguments:
        out[CONFIRM_PARAMETER] = not arguments[CONFIRM_PARAMETER]
    return out


_Change = Callable[[int, Sequence[ChatMessage]], GoldenCall]


def _replaying(
    calls: Sequence[GoldenCall], change: _Change | None = None
) -> AssistantPolicy:
    """An assistant making `calls` (each possibly changed by `change(index,
    messages)`), one per message, then answering `DONE_TEXT`."""

    def policy(
        messages: Sequence[ChatMessage], tools: Sequence[dict[str, Any]]
    ) -> ChatMessage:
        made = sum(len(m.tool_calls or ()) for m in messages if m.role == "assistant")
        if made >= len(calls):
            return ChatMessage(role="assistant", content=DONE_TEXT)
        call = calls[made] if change is None else change(made, messages)
        arguments = json.dumps(call.arguments, ensure_ascii=False)
        tool_call = ToolCall(
            id=f"call_{made}",
            function=FunctionCall(name=call.tool, arguments=arguments),
        )
        return ChatMessage(role="assistant", content=None, tool_calls=(tool_call,))

    return policy


def _after_opening(messages: Sequence[ChatMessage]) -> Sequence[ChatMessage]:
    start = next((i for i, m in enumerate(messages) if m.role != "user"), len(messages))
    return messages[start:]


def _seen_values(messages: Sequence[ChatMessage]) -> dict[str, set[Any]]:
    """Key -> scalar values under that key in the tool results so far."""
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


def _scalars(value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (str, int, float)) and not isinstance(item, bool):
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
        if char.isalpha() and char.isascii():
            base = ord("a") if char.islower() else ord("A")
            shift = 6 if char.lower() <= "f" else 26  # hex stays hex
            new = chr(base + (ord(char) - base + 1) % shift)
            return value[:i] + new + value[i + 1 :]
    return None


def _other_enum(value: Any, schema: Mapping[str, Any]) -> Any:
    options = [o for o in schema.get("enum") or () if o != value]
    return options[0] if options else None


def _other_scalar(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if not isinstance(value, str) or not value:
        return None
    for kind in (datetime, date):
        try:
            moment = kind.fromisoformat(value)
        except ValueError:
            continue
        return (moment + timedelta(days=1)).isoformat()
    return f"{value} (changed)"
