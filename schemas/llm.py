"""Records and cassette entries of the LLM layer.

Inputs: none (pydantic models only). Output: `CallRecord` (one row of the usage
ledger, one per HTTP try of a chat completion) and `CassetteAnswer` /
`ScriptedHttpError` (what a cassette answers for one call key and re-ask attempt),
and `CassetteDocument` (the top level of a hand-scripted YAML cassette). No side
effects.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from schemas.base import Frozen

CallSource = Literal["live", "replay"]
CallOutcome = Literal["ok", "http_error", "transport_error", "cassette_miss"]


class CallRecord(Frozen):
    """One HTTP try of one chat-completion request, as seen by the usage ledger."""

    call_key: str
    step: str
    role: str
    model: str
    attempt: int = Field(ge=0, description="Re-ask index read from the request.")
    transport_try: int = Field(ge=0, description="0 for the first HTTP try.")
    source: CallSource
    outcome: CallOutcome
    status_code: int | None = None
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    latency_s: float = Field(default=0.0, ge=0)


class ScriptedHttpError(Frozen):
    """An HTTP error a cassette serves before its answer (to exercise retries)."""

    status: int = Field(ge=400, le=599)
    retry_after: float | None = Field(default=None, ge=0)
    message: str = "scripted error"


class ScriptedToolCall(Frozen):
    """One tool call of a free-form chat answer (a rollout's assistant turn):
    the tool's name and either its arguments or, for malformed ones, the text."""

    name: str = Field(min_length=1)
    arguments: dict[str, Any] | None = None
    raw_arguments: str | None = None

    @model_validator(mode="after")
    def _one_argument_form(self) -> ScriptedToolCall:
        if (self.arguments is None) == (self.raw_arguments is None):
            raise ValueError(
                f"tool call {self.name!r} needs exactly one of arguments or "
                "raw_arguments"
            )
        return self


class CassetteAnswer(Frozen):
    """The model answer a cassette gives for one (call key, attempt).

    A structured-output answer sets exactly one of `tool_arguments` (a tool call
    with these arguments), `content` (a plain assistant message) or
    `raw_arguments` (a tool call whose argument text is not a JSON object, kept
    verbatim so replay reproduces the re-ask it caused). A free-form chat answer
    (rollouts) sets `tool_calls` (named calls, in order), with or without
    `content`.
    """

    tool_arguments: dict[str, Any] | None = None
    content: str | None = None
    raw_arguments: str | None = None
    tool_calls: tuple[ScriptedToolCall, ...] | None = Field(default=None, min_length=1)
    truncated: bool = Field(
        default=False,
        description="The answer was cut off at the token limit; replay reports "
        'finish_reason "length" for it.',
    )
    errors_before: tuple[ScriptedHttpError, ...] = ()

    @model_validator(mode="after")
    def _exactly_one_answer(self) -> CassetteAnswer:
        given = [
            name
            for name in ("tool_arguments", "content", "raw_arguments")
            if getattr(self, name) is not None
        ]
        if self.tool_calls is not None:
            if self.tool_arguments is not None or self.raw_arguments is not None:
                raise ValueError(
                    "a cassette answer with tool_calls may add content, but not "
                    "tool_arguments or raw_arguments"
                )
            return self
        if len(given) != 1:
            raise ValueError(
                "a cassette answer needs exactly one of tool_arguments, content or "
                f"raw_arguments; got {', '.join(given) or 'none'}"
            )
        return self


class CassetteDocument(Frozen):
    """Top level of a hand-scripted YAML cassette.

    `calls` maps each call key to its answers by attempt (index 0 is the first
    ask, 1 the first re-ask, ...). The answers stay raw here so the loader can
    validate each one and name its call key in any error.
    """

    version: Literal[1]
    scripted: bool = False
    description: str = ""
    fragments: dict[str, Any] = Field(
        default={}, description="Shared pieces referenced by YAML anchors; not answers."
    )
    calls: dict[str, Annotated[list[Any], Field(min_length=1)]] = {}
