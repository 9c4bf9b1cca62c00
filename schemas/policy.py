"""s07 payloads: a server policy parsed along its structured markers (global rules
plus one section per tool, with best-effort fields), the value domains
(enumerations, ranges, array choices, booleans) the policy states for parameters,
the closed-world schema the policy prompts show, and the model's policy and audit
drafts; data only, no side effects."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from schemas.base import CheckedDraft, Frozen, ToolName


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


class SchemaColumn(Frozen):
    """One column of a server's closed world, with facts computed from its data."""

    type: str
    range: str = Field(default="", description="The declared range or format.")
    description: str = ""
    references: str | None = Field(default=None, description="Table a FK points to.")
    values: tuple[str, ...] | None = Field(
        default=None, description="Every distinct value in the data, when few."
    )
    minimum: float | str | None = None
    maximum: float | str | None = None


class SchemaTable(Frozen):
    """One table a policy may refer to (an entity or one of the server's
    relationships), as the s07 prompts present it."""

    name: str
    kind: Literal["entity", "relationship"]
    primary_key: str
    description: str = ""
    row_count: int = Field(ge=0)
    columns: dict[str, SchemaColumn]
    prose: str = Field(default="", description="The s06 summary of the data.")


class PolicyDraft(CheckedDraft):
    """The model's policy for one server."""

    markdown: str = Field(
        description="The whole policy, with the POLICY_START, GLOBAL_RULES_END, "
        "TOOL, TOOL_END and POLICY_END markers"
    )
    confirmation_required: list[str] = Field(
        default_factory=list,
        description="Write tools that act only after the user explicitly confirms",
    )


class PolicyAuditDraft(CheckedDraft):
    """The auditor's answer: no issues, or SEARCH/REPLACE edits to the policy."""

    verdict: Literal["no_issues", "edits"]
    edits: str = Field(
        default="",
        description="SEARCH/REPLACE blocks against the policy text; empty when the "
        "verdict is no_issues",
    )
    issues: list[str] = Field(
        default_factory=list, description="One sentence per issue the edits fix"
    )
