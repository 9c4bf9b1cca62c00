"""An episode's conversation and how it ended.

Input: the query's opening messages, then messages as they come (OpenAI chat
format or typed), a whole conversation a trainer kept itself, or one the
rollout loop ran (`tasks.core.conversation.Conversation`). Output: the typed
messages, the format errors among the assistant's tool calls, and the stop
metadata of the rollout record (a control token of the user, or the turn
limit). A user message is read as a simulated user's reply, as the original
reads it: its control tokens end the conversation and are removed, and a reply
that was only tokens adds no message. No side effects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from schemas.rollout import (
    OUT_OF_SCOPE_TOKEN,
    STOP_TOKEN,
    TRANSFER_TOKEN,
    ChatMessage,
)
from tasks.core.conversation import Conversation
from tasks.runtime.chat import as_chat_message, control_tokens, count_format_errors

MessageLike = ChatMessage | Mapping[str, Any] | Any


class Transcript:
    """The messages of one conversation (no system message) and its end.

    Attributes:
        messages: The conversation so far.
        format_errors: Tool calls whose arguments were not a JSON object.
        total_turns: User replies after the opening.
    """

    def __init__(self, opening: Sequence[ChatMessage]) -> None:
        self.messages: list[ChatMessage] = list(opening)
        self.format_errors = 0
        self.total_turns = 0
        self._opening = len(opening)
        self._stops: set[str] = set()
        self._reached_max_turns = False

    @property
    def stopped(self) -> bool:
        """The user ended the conversation with a control token."""
        return bool(self._stops)

    def add(self, message: MessageLike) -> ChatMessage | None:
        """Append a message (a user's as a simulated user's reply).

        Returns:
            The message appended, or None for a reply that was only tokens.
        """
        typed = as_chat_message(message)
        if typed.role == "user":
            self.total_turns += 1
            found, text = control_tokens(typed.content or "")
            self._stops |= found
            if not text:
                return None
            typed = typed.model_copy(update={"content": text})
        self.messages.append(typed)
        return typed

    def replace(self, messages: Sequence[MessageLike]) -> None:
        """Take a whole conversation kept elsewhere: system messages are
        dropped, the leading user messages (as many as the opening had) are
        kept as they are, later ones are read as `add` reads them, and format
        errors are counted from the assistant's tool calls."""
        typed = [as_chat_message(m) for m in messages]
        typed = [m for m in typed if m.role != "system"]
        opening = 0
        while opening < min(len(typed), self._opening):
            if typed[opening].role != "user":
                break
            opening += 1
        self.messages = typed[:opening]
        self._stops, self.total_turns, self._reached_max_turns = set(), 0, False
        self.format_errors = count_format_errors(typed)
        for message in typed[opening:]:
            self.add(message)

    def record(self, conversation: Conversation) -> None:
        """Take a conversation the rollout loop ran (its tool calls already
        counted here), with how it ended."""
        reply = conversation.reply
        if reply is not None:
            flags = (
                (STOP_TOKEN, reply.stopped),
                (TRANSFER_TOKEN, reply.transferred),
                (OUT_OF_SCOPE_TOKEN, reply.out_of_scope),
            )
            self._stops = {token for token, on in flags if on}
        self.messages = list(conversation.messages)
        self.total_turns = conversation.total_turns
        self._reached_max_turns = conversation.reached_max_turns

    def stop_fields(self, *, max_turns_reached: bool = False) -> dict[str, Any]:
        """The rollout record's stop metadata: a user token, else the turn
        limit (reached here or as the caller says), else none."""
        if self._stops:
            return {
                "stopped": STOP_TOKEN in self._stops,
                "transferred": TRANSFER_TOKEN in self._stops,
                "out_of_scope": OUT_OF_SCOPE_TOKEN in self._stops,
                "stop_reason": "user_token",
            }
        if max_turns_reached or self._reached_max_turns:
            return {"reached_max_turns": True, "stop_reason": "max_turns"}
        return {}
