"""The message loop of a rollout, and the simulated user's view of it.

Input: the query's opening messages and three callables: the assistant (the
conversation so far -> its next message), the simulated user (its flipped view ->
its reply text) and the tool executor (an assistant message's tool calls -> one
tool message per call, in call order). Output: a `Conversation` with every
message and why it stopped: a control token in the user's reply
(`###STOP###`, `###TRANSFER###`, `###OUT-OF-SCOPE###`) or the turn limit. Within a
turn the assistant acts until it answers without tool calls or makes
`max_steps_per_turn` calls; then the user replies. The callables' exceptions
propagate (the caller records the failed rollout). No side effects of its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from schemas.rollout import (
    OUT_OF_SCOPE_TOKEN,
    STOP_TOKEN,
    TRANSFER_TOKEN,
    ChatMessage,
    ToolCall,
)

Assistant = Callable[[Sequence[ChatMessage]], ChatMessage]
"""The conversation so far -> the assistant's next message."""
Executor = Callable[[Sequence[ToolCall]], list[ChatMessage]]

_THOUGHTS = re.compile(
    r"<(think|thinking|thought|reasoning)>.*?</\1>", re.DOTALL | re.IGNORECASE
)


@dataclass(frozen=True)
class UserReply:
    """A simulated user's reply with its control tokens read and removed."""

    text: str
    stopped: bool = False
    transferred: bool = False
    out_of_scope: bool = False

    @property
    def ends(self) -> bool:
        return self.stopped or self.transferred or self.out_of_scope


def read_user_reply(raw: str) -> UserReply:
    """Find control tokens anywhere in the reply and strip them, with any
    `<think>`-style block the model wrote for itself."""
    text = _THOUGHTS.sub("", raw or "")
    flags = {token: token in text for token in (STOP_TOKEN, TRANSFER_TOKEN)}
    out_of_scope = OUT_OF_SCOPE_TOKEN in text
    for token in (STOP_TOKEN, TRANSFER_TOKEN, OUT_OF_SCOPE_TOKEN):
        text = text.replace(token, "")
    return UserReply(
        text=text.strip(),
        stopped=flags[STOP_TOKEN],
        transferred=flags[TRANSFER_TOKEN],
        out_of_scope=out_of_scope,
    )


def user_view(system_prompt: str, messages: Sequence[ChatMessage]) -> list[dict]:
    """The conversation as the simulated user's model sees it: its persona as
    the system message, then the visible exchange with the roles flipped (the
    assistant's words are what it answers; its own words are its turns). Tool
    traffic is hidden, and so is an assistant message with nothing to read."""
    view: list[dict] = [{"role": "system", "content": system_prompt}]
    for message in messages:
        if message.role == "user":
            view.append({"role": "assistant", "content": message.content or ""})
        elif message.role == "assistant" and (message.content or "").strip():
            view.append({"role": "user", "content": message.content})
    return view


@dataclass(frozen=True)
class Conversation:
    """Every message of a finished conversation and how it ended."""

    messages: tuple[ChatMessage, ...]
    reply: UserReply | None
    total_turns: int
    reached_max_turns: bool


def converse(
    opening: Sequence[ChatMessage],
    *,
    assistant: Assistant,
    user: Callable[[Sequence[ChatMessage]], str],
    execute: Executor,
    max_turns: int,
    max_steps_per_turn: int,
) -> Conversation:
    """Run the conversation until the user ends it or `max_turns` turns pass."""
    messages = list(opening)
    for turn in range(max_turns):
        for _ in range(max_steps_per_turn):
            answer = assistant(messages)
            messages.append(answer)
            if not answer.tool_calls:
                break
            messages.extend(execute(answer.tool_calls))
        reply = read_user_reply(user(messages))
        if reply.text:
            messages.append(ChatMessage(role="user", content=reply.text))
        if reply.ends:
            return Conversation(tuple(messages), reply, turn + 1, False)
    return Conversation(tuple(messages), None, max_turns, True)
