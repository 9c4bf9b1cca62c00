"""Built-in agents that check the checkers, and a scripted user.

Input: a validated task (its golden calls with concrete arguments) and the
names of the environment's write tools. Output: assistants in the shape the
rollout loop takes (the conversation so far -> the next message):
- `oracle` makes the golden calls in order, then says it is done: every
  evaluator must pass it;
- `do_nothing` answers without a tool call: it must fail every task that needs a
  write;
- `wrong_argument` makes the golden calls with one argument of the first write
  changed: it must fail the state check;
and `scripted_user`, which ends the conversation after the assistant's turn.
Deterministic (tool call ids are `call_<n>`). Pure.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any

from schemas.golden import GoldenCall
from schemas.rollout import STOP_TOKEN, ChatMessage, FunctionCall, ToolCall
from schemas.validated_task import AgentTask
from tasks.core.conversation import Assistant

DONE = "Everything you asked for is done."
DECLINE = "I'm sorry, I can't help with that."


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


def replaying(calls: Sequence[GoldenCall]) -> Assistant:
    """An assistant that makes `calls` one per message, then says it is done."""

    def answer(messages: Sequence[ChatMessage]) -> ChatMessage:
        made = _calls_made(messages)
        if made < len(calls):
            return _message(made, calls[made])
        return ChatMessage(role="assistant", content=DONE)

    return answer


def oracle(task: AgentTask) -> Assistant:
    return replaying(task.golden_calls)


def do_nothing(task: AgentTask) -> Assistant:
    del task

    def answer(messages: Sequence[ChatMessage]) -> ChatMessage:
        return ChatMessage(role="assistant", content=DECLINE)

    return answer


def wrong_argument(task: AgentTask, write_tools: Collection[str]) -> Assistant:
    """The golden calls with one argument of the first write call changed (the
    first argument, by name, that is not the confirmation flag)."""
    calls = list(task.golden_calls)
    for index, call in enumerate(calls):
        names = sorted(n for n in call.arguments if n != "confirm")
        if call.tool in write_tools and names:
            arguments = dict(call.arguments)
            arguments[names[0]] = altered(arguments[names[0]])
            calls[index] = call.model_copy(update={"arguments": arguments})
            break
    return replaying(calls)


def altered(value: Any) -> Any:
    """A different value of the same type."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        return f"{value}-x"
    if isinstance(value, list):
        return value[:-1] if value else ["x"]
    return None


def scripted_user(messages: Sequence[dict]) -> str:
    """A user who ends the conversation after the assistant's turn."""
    del messages
    return f"Thank you. {STOP_TOKEN}"
