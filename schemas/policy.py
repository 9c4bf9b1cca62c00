"""s07 payloads: a server policy parsed along its structured markers (global rules
plus one section per tool, with best-effort fields) and the value domains
(enumerations, ranges, array choices, booleans) the policy states for parameters;
data only, no side effects."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from schemas.base import Frozen, ToolName


class ToolPolicy(Frozen):
    """One tool's section; the fields are read from headed lists in `text`."""

    name: ToolName
    text: str = Field(description="The section between its markers, stripped.")
    purpose: str = ""
    preconditions: tuple[str, ...] = ()
    input_validation: tuple[str, ...] = ()
    permission_outcomes: tuple[str, ...] = ()
    effects: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()


class ParsedPolicy(Frozen):
    """A policy cut along its markers; marker problems are data, not exceptions."""

    global_rules: str
    tools: dict[ToolName, ToolPolicy] = Field(default_factory=dict)
    problems: tuple[str, ...] = ()


class EnumDomain(Frozen):
    kind: Literal["enum"] = "enum"
    values: tuple[str, ...] = Field(min_length=1)


class RangeDomain(Frozen):
    kind: Literal["range"] = "range"
    minimum: int | float
    maximum: int | float
    integer: bool


class ArrayChoiceDomain(Frozen):
    """An array of `min_items`..`max_items` values, each one of `choices`."""

    kind: Literal["array_choice"] = "array_choice"
    min_items: int = Field(ge=0)
    max_items: int = Field(ge=0)
    choices: tuple[str, ...] = Field(min_length=1)


class BooleanDomain(Frozen):
    kind: Literal["boolean"] = "boolean"


ValueDomain = Annotated[
    EnumDomain | RangeDomain | ArrayChoiceDomain | BooleanDomain,
    Field(discriminator="kind"),
]
"""The values a policy allows for one parameter."""


class PolicyDocument(Frozen):
    """s07 output for one server: the policy text with markers, parsed, plus the
    tools whose writes need the user's explicit confirmation (the runtime's
    confirmation pattern)."""

    server_name: str
    markdown: str
    parsed: ParsedPolicy
    confirm_tools: tuple[str, ...] = ()
    audit_notes: tuple[str, ...] = ()
