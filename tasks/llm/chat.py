"""Free-form chat answers (rollout turns) as our message type.

Input: an openai chat completion. Output: `ChatReply`, the assistant message
(text, tool calls in order, reasoning when the provider sent any) with the model
that answered, its token usage and whether it was cut off. No side effects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.rollout import ChatMessage, FunctionCall, ToolCall


@dataclass(frozen=True)
class ChatReply:
    """A free-form chat answer: the assistant message and what it used."""

    message: ChatMessage
    model: str
    prompt_tokens: int
    completion_tokens: int
    truncated: bool


def chat_reply(completion: Any, model: str) -> ChatReply:
    """Our message type from an openai chat completion (first choice)."""
    choice = completion.choices[0]
    raw = choice.message
    calls = tuple(
        ToolCall(
            id=call.id,
            function=FunctionCall(
                name=call.function.name, arguments=call.function.arguments or ""
            ),
        )
        for call in (raw.tool_calls or ())
    )
    reasoning = getattr(raw, "reasoning_content", None)
    message = ChatMessage(
        role="assistant",
        content=raw.content,
        tool_calls=calls or None,
        reasoning_content=reasoning
        if isinstance(reasoning, str) and reasoning
        else None,
    )
    usage = completion.usage
    return ChatReply(
        message=message,
        model=str(completion.model or model),
        prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
        completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
        truncated=choice.finish_reason == "length",
    )
