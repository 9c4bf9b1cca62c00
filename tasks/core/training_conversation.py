"""The conversation a training record is made of: takes a `Rollout` and the names
of the tools its assistant saw, returns the rollout's turns normalised once for
every export format, or raises `TrainingExportError` naming why the rollout cannot
become a training record. Pure.

Normalisation, shared by the three formats so that they hold the same conversation:
- an assistant turn with tool calls carries their results, in call order; a tool
  message must answer the next call of the turn before it;
- empty turns are dropped (a user message with no text, an assistant message with
  neither text nor calls: OpenAI's fine-tuning refuses the latter);
- consecutive turns of one role are merged (text joined by a blank line), so user
  and assistant alternate, as LLaMA-Factory's ShareGPT reader requires; an
  assistant text turn followed by an assistant call turn becomes one turn;
- a user message right after tool results (the assistant hit its step limit and
  never answered) ends the usable conversation there;
- the conversation ends at its last assistant answer (a turn without calls): a
  trailing user message (often only the stop) or calls left unanswered by an error
  teach nothing.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import Any, Literal

from schemas.rollout import ChatMessage, Rollout

TURN_JOINER = "\n\n"

SkipReason = Literal[
    "system_message",
    "unmatched_tool_result",
    "malformed_arguments",
    "unknown_tool",
    "no_user_start",
    "no_final_answer",
    "bad_tool_schema",
    "tool_namespace",
]


class TrainingExportError(ValueError):
    """A rollout that cannot become a training record, with a countable reason."""

    def __init__(self, reason: SkipReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: SkipReason = reason


@dataclass(frozen=True)
class CallTurn:
    """One tool call of an assistant turn, with the tool's answer."""

    id: str
    name: str
    arguments_text: str
    arguments: dict[str, Any]
    result: str | None = None


@dataclass(frozen=True)
class Turn:
    """One user or assistant turn; assistant turns may hold tool calls."""

    role: Literal["user", "assistant"]
    content: str | None
    reasoning: str | None = None
    calls: tuple[CallTurn, ...] = ()

    @property
    def answered(self) -> bool:
        return all(call.result is not None for call in self.calls)


def conversation_turns(rollout: Rollout, tool_names: Collection[str]) -> list[Turn]:
    """The rollout's conversation, normalised as the module docstring says.

    Args:
        rollout: One rollout.
        tool_names: The names of the tools its assistant saw (agent-facing).

    Returns:
        Turns starting with a user turn and ending with an assistant answer.

    Raises:
        TrainingExportError: The rollout holds a system message, a tool result
            that answers no pending call, arguments that are not a JSON object, or
            a call to a tool the assistant did not see; or no user turn starts it,
            or no assistant answer ends it.
    """
    turns: list[Turn] = []
    for message in rollout.messages:
        if message.role == "system":
            raise TrainingExportError(
                "system_message", "the policy is given apart, not in the rollout"
            )
        if message.role == "tool":
            _attach_result(turns, message)
            continue
        last = turns[-1] if turns else None
        if last is not None and last.calls and not last.answered:
            raise TrainingExportError(
                "unmatched_tool_result", f"call {_pending(last).id} has no result"
            )
        if message.role == "user" and last is not None and last.calls:
            break  # the assistant never answered after its last results
        turn = _turn(message, tool_names)
        if turn is None:
            continue
        if last is not None and last.role == turn.role and not last.calls:
            turns[-1] = _merged(last, turn)
        else:
            turns.append(turn)
    return _trimmed(turns)


def _turn(message: ChatMessage, tool_names: Collection[str]) -> Turn | None:
    text = message.content if message.content and message.content.strip() else None
    if message.role == "user":
        return None if text is None else Turn(role="user", content=text)
    calls = tuple(
        _call(c.id, c.function.name, c.function.arguments, tool_names)
        for c in message.tool_calls or ()
    )
    if text is None and not calls:
        return None
    reasoning = message.reasoning_content or None
    return Turn(role="assistant", content=text, reasoning=reasoning, calls=calls)


def _call(id_: str, name: str, text: str, tool_names: Collection[str]) -> CallTurn:
    if name not in tool_names:
        raise TrainingExportError(
            "unknown_tool", f"{name!r} is not among the tools the assistant saw"
        )
    try:
        arguments = json.loads(text)
    except json.JSONDecodeError:
        arguments = None
    if not isinstance(arguments, dict):
        raise TrainingExportError(
            "malformed_arguments", f"call {id_} to {name}: {text[:80]!r}"
        )
    return CallTurn(id=id_, name=name, arguments_text=text, arguments=arguments)


def _attach_result(turns: list[Turn], message: ChatMessage) -> None:
    last = turns[-1] if turns else None
    if last is None or last.answered:
        raise TrainingExportError(
            "unmatched_tool_result",
            f"tool result {message.tool_call_id} follows no pending call",
        )
    pending = _pending(last)
    if message.tool_call_id != pending.id:
        raise TrainingExportError(
            "unmatched_tool_result",
            f"tool result {message.tool_call_id} where {pending.id} was expected",
        )
    answered = replace(pending, result=message.content or "")
    calls = tuple(answered if c is pending else c for c in last.calls)
    turns[-1] = replace(last, calls=calls)


def _pending(turn: Turn) -> CallTurn:
    return next(call for call in turn.calls if call.result is None)


def _merged(first: Turn, second: Turn) -> Turn:
    return replace(
        second,
        content=_joined(first.content, second.content),
        reasoning=_joined(first.reasoning, second.reasoning),
    )


def _joined(first: str | None, second: str | None) -> str | None:
    parts = [part for part in (first, second) if part]
    return TURN_JOINER.join(parts) if parts else None


def _trimmed(turns: list[Turn]) -> list[Turn]:
    if not turns or turns[0].role != "user":
        raise TrainingExportError("no_user_start", "no user turn opens the rollout")
    end = len(turns)
    while end and (turns[end - 1].role != "assistant" or turns[end - 1].calls):
        end -= 1
    if end == 0:
        raise TrainingExportError("no_final_answer", "no assistant answer")
    return turns[:end]
