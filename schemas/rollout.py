"""Payloads of rollouts: the chat messages of a conversation and one rollout record.

A `Rollout` is one trial of one query: a simulated user and an assistant talk, the
assistant's tool calls run against a fresh session of the query's environment, and
the record keeps the conversation, why it stopped, who took part (models), what it
cost, and the session's final state. `Rollout.record()` is one line of
`rollouts/<Environment>.jsonl`: the reference record (`id`, `messages`, `success`,
`error`, the stop metadata flattened at the top level) plus our additions (trial,
models, tool-name mapping, usage, final state hash and diff). Data only, no side
effects.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from schemas.base import Frozen
from schemas.environment import DatabaseDiff

STOP_TOKEN = "###STOP###"
TRANSFER_TOKEN = "###TRANSFER###"
OUT_OF_SCOPE_TOKEN = "###OUT-OF-SCOPE###"
CONTROL_TOKENS = (STOP_TOKEN, TRANSFER_TOKEN, OUT_OF_SCOPE_TOKEN)

Role = Literal["system", "user", "assistant", "tool"]


class FunctionCall(Frozen):
    """The function part of an assistant tool call, as the OpenAI API carries it."""

    name: str
    arguments: str = Field(description="JSON text, exactly as the model wrote it.")


class ToolCall(Frozen):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(Frozen):
    """One message of a conversation (OpenAI chat format)."""

    role: Role
    content: str | None = None
    tool_calls: tuple[ToolCall, ...] | None = None
    tool_call_id: str | None = None
    reasoning_content: str | None = None

    def openai(self) -> dict[str, Any]:
        """The message as the OpenAI API and the reference rollout file carry it:
        assistant messages always have `tool_calls` (null or a list), tool
        messages their `tool_call_id`, `reasoning_content` only when present."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.role == "assistant":
            out["tool_calls"] = (
                None
                if self.tool_calls is None
                else [c.model_dump(mode="json") for c in self.tool_calls]
            )
            if self.reasoning_content is not None:
                out["reasoning_content"] = self.reasoning_content
        if self.role == "tool":
            out["tool_call_id"] = self.tool_call_id
        return out


StopReason = Literal["user_token", "max_turns"]
ErrorKind = Literal["transport", "environment", "model", "cassette", "internal"]
"""Why a rollout failed: the endpoint gave no answer after retries (`transport`),
the environment process died or refused (`environment`), a model never produced a
usable answer (`model`), replay had no answer (`cassette`), or a bug (`internal`)."""


class TokenUsage(Frozen):
    calls: int = Field(default=0, ge=0)
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    cost_usd: float = Field(default=0.0, ge=0)


class ToolRoute(Frozen):
    """Which member server and tool an agent-facing tool name calls."""

    server: str
    tool: str


class Rollout(Frozen):
    """One trial of one query."""

    id: str = Field(description="The query id (the reference's join key).")
    trial: int = Field(ge=0)
    environment: str
    messages: tuple[ChatMessage, ...]
    success: bool = Field(
        description="The conversation ran to a stop (a control token or the "
        "turn limit); false when it was cut short by an error."
    )
    error: str | None = None
    error_kind: ErrorKind | None = None
    stopped: bool = False
    transferred: bool = False
    out_of_scope: bool = False
    reached_max_turns: bool = False
    stop_reason: StopReason | None = None
    total_turns: int = Field(default=0, ge=0)
    has_reasoning: bool = False
    models: dict[str, str] = Field(
        default_factory=dict, description="Role (`assistant`, `user`) -> model."
    )
    tool_names: dict[str, ToolRoute] = Field(
        default_factory=dict, description="Agent tool name -> (server, tool)."
    )
    usage: dict[str, TokenUsage] = Field(
        default_factory=dict, description="Role -> tokens and cost."
    )
    system_prompt: str | None = Field(
        default=None, description="The assistant's system prompt (policy included)."
    )
    tools: tuple[dict[str, Any], ...] = Field(
        default=(),
        description="The OpenAI function tools the assistant was offered, under "
        "the names it calls them by.",
    )
    format_errors: int = Field(
        default=0,
        ge=0,
        description="Tool calls whose arguments were not a JSON object; each was "
        "answered with a tool error.",
    )
    final_state_hash: str | None = None
    final_diff: DatabaseDiff | None = None

    @property
    def rollout_id(self) -> str:
        """Unique per (query, trial): `<query id>#<trial>`."""
        return rollout_key(self.id, self.trial)

    def record(self) -> dict[str, Any]:
        """One line of `rollouts/<Environment>.jsonl`."""
        out: dict[str, Any] = {
            "id": self.id,
            "trial": self.trial,
            "environment": self.environment,
            "messages": [m.openai() for m in self.messages],
            "success": self.success,
            "error": self.error,
            "error_kind": self.error_kind,
        }
        if self.stop_reason == "user_token":
            out |= {
                "stopped": self.stopped,
                "transferred": self.transferred,
                "out_of_scope": self.out_of_scope,
                "total_turns": self.total_turns,
                "stop_reason": self.stop_reason,
            }
        elif self.stop_reason == "max_turns":
            out |= {"reached_max_turns": True, "total_turns": self.total_turns}
        out |= {
            "has_reasoning": self.has_reasoning,
            "models": dict(self.models),
            "tool_names": {k: v.model_dump() for k, v in self.tool_names.items()},
            "usage": {k: v.model_dump() for k, v in self.usage.items()},
            "system_prompt": self.system_prompt,
            "tools": list(self.tools),
            "format_errors": self.format_errors,
            "final_state_hash": self.final_state_hash,
            "final_diff": None
            if self.final_diff is None
            else self.final_diff.model_dump(mode="json"),
        }
        return out

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Rollout:
        """Read one line written by `record()` (unknown keys are an error)."""
        data = dict(record)
        data["stop_reason"] = data.get("stop_reason") or (
            "max_turns" if data.pop("reached_max_turns", False) else None
        )
        data["reached_max_turns"] = data["stop_reason"] == "max_turns"
        return cls.model_validate(data)


def rollout_key(query_id: str, trial: int) -> str:
    return f"{query_id}#{trial}"


class RolloutSet(Frozen):
    """The rollouts of one environment, as `rollouts/<Environment>.jsonl`."""

    environment: str
    rollouts: tuple[Rollout, ...]
