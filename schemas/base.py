"""Base models, canonical JSON and stable hashing shared by every schema.

Inputs: none. Output: the `Frozen` and `Draft` bases, `canonical_json`, `sha256_hex`
and the typed id aliases. No side effects.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    StringConstraints,
    ValidationInfo,
    model_validator,
)

SCHEMA_VERSION = 1

NAME_MAX_LENGTH = 80
TOOL_NAME_MAX_LENGTH = 64
SLUG_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
PASCAL_PATTERN = re.compile(r"^[A-Z][A-Za-z0-9]*$")
TOOL_NAME_PATTERN = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
"""The name patterns, for code that checks or repairs names before validation."""

Slug = Annotated[
    str,
    StringConstraints(pattern=SLUG_PATTERN.pattern, max_length=NAME_MAX_LENGTH),
]
"""snake_case name such as a domain (`dental_clinic`) or an attribute (`patient_id`)."""

PascalName = Annotated[
    str,
    StringConstraints(pattern=PASCAL_PATTERN.pattern, max_length=NAME_MAX_LENGTH),
]
"""PascalCase name: an entity (`BankAccount`) or a server (`DentalAppointments`)."""

ToolName = Annotated[
    str,
    StringConstraints(
        pattern=TOOL_NAME_PATTERN.pattern, max_length=TOOL_NAME_MAX_LENGTH
    ),
]
"""A function/tool name the OpenAI API accepts."""

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class Frozen(BaseModel):
    """Immutable, strict model: the base of every artifact payload and record."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Draft(BaseModel):
    """Mutable model for what a language model returns, before canonicalisation.

    Unknown keys are ignored rather than rejected: a model adding a harmless extra
    field should not cost a re-ask.
    """

    model_config = ConfigDict(extra="ignore")


def canonical_json(value: Any) -> str:
    """Serialise to canonical JSON: sorted keys, no whitespace, UTF-8 kept as is."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_hex(text: str | bytes) -> str:
    """Hex sha256 of a string (UTF-8) or bytes."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


def stable_hash(value: Any) -> str:
    """sha256 of the canonical JSON of a value or model."""
    return sha256_hex(canonical_json(value))


DRAFT_CHECK: ContextVar[Callable[[Any], Iterable[str]] | None] = ContextVar(
    "DRAFT_CHECK", default=None
)
"""The cross-object check `CheckedDraft`s run while a model answer is validated.

Set by the LLM client around one structured call (validation runs in the calling
thread). It is not handed to instructor as `context`: instructor would then render
every message as a Jinja template with it, so a prompt quoting code or JSON with
`{{`, `{%` or `{#` would be altered or refused before it is sent."""


@contextmanager
def checking(check: Callable[[Any], Iterable[str]] | None) -> Iterator[None]:
    """Run `check` on every `CheckedDraft` validated inside the block."""
    token = DRAFT_CHECK.set(check)
    try:
        yield
    finally:
        DRAFT_CHECK.reset(token)


class CheckedDraft(Draft):
    """A draft whose cross-object rules are checked by a function of the caller.

    Schemas cannot import the validation logic (it lives in `tasks.core`), so the
    caller validates inside `checking(fn)` (or passes `context={"check": fn}` to a
    plain `model_validate`); `fn(draft)` returns a list of problem sentences. Any
    problem raises a `ValueError` listing all of them, which instructor sends back
    to the model as the re-ask message.
    """

    @model_validator(mode="after")
    def _run_context_check(self, info: ValidationInfo) -> CheckedDraft:
        check = (info.context or {}).get("check") or DRAFT_CHECK.get()
        if check is None:
            return self
        with checking(None):  # drafts the check itself builds are not checked
            problems = list(check(self))
        if problems:
            listed = "\n".join(f"- {p}" for p in problems)
            raise ValueError(
                f"{len(problems)} problem(s) must be fixed in the whole answer:"
                f"\n{listed}"
            )
        return self
