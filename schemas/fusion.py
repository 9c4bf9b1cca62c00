"""Cross-domain payloads shared by s10-s13 and the runtime: which servers form a
combination, and how its fused name is made. Data only, no side effects."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field, model_validator

from schemas.base import (
    TOOL_NAME_MAX_LENGTH,
    CheckedDraft,
    Draft,
    Frozen,
    PascalName,
    sha256_hex,
)
from schemas.policy import ParsedPolicy

FUSED_NAME_SEPARATOR = "_"
"""Joins member server names into a fused name (`DentalAppointments_TreatmentBilling`);
single servers are PascalCase without it, so the name alone says cross-domain."""


def fused_name(servers: tuple[str, ...] | list[str]) -> str:
    """The fused environment name of a combination: members sorted, joined."""
    return FUSED_NAME_SEPARATOR.join(sorted(servers))


def is_fused(name: str) -> bool:
    """Whether an environment name is a fused (cross-domain) one."""
    return FUSED_NAME_SEPARATOR in name


def members(name: str) -> tuple[str, ...]:
    """The member servers of an environment name (one for a single server)."""
    return tuple(name.split(FUSED_NAME_SEPARATOR))


class ServerCombination(Frozen):
    """A chosen group of servers that serve the same user (s10's output unit)."""

    servers: tuple[PascalName, ...] = Field(min_length=2)
    core_entity: PascalName = Field(
        description="The person entity every member serves; one shared table."
    )
    shared_entities: tuple[PascalName, ...] = Field(
        description="Entities every member uses (the core entity included)."
    )

    @model_validator(mode="after")
    def _sorted_unique(self) -> ServerCombination:
        if list(self.servers) != sorted(set(self.servers)):
            raise ValueError("servers must be distinct and sorted by name")
        if self.core_entity not in self.shared_entities:
            raise ValueError("the core entity must be among the shared entities")
        return self

    @property
    def name(self) -> str:
        """The fused environment's name."""
        return fused_name(self.servers)


AGENT_TOOL_SEPARATOR = "__"
"""Joins a member server and its tool into the name an agent sees in a fused
environment (`DentalAppointments__book_appointment`): the OpenAI API refuses
dots in tool names, so the original's `Server.tool` form is kept only as an alias."""
COMPAT_TOOL_SEPARATOR = "."
"""The original's cross-domain tool form, `Server.tool`."""
SHORT_HASH_CHARS = 8


def agent_tool_names(
    members: Sequence[tuple[str, str]],
) -> dict[str, tuple[str, str]]:
    """The agent-facing name of each member tool, (server, tool) in the given
    order: `Server__tool` when it fits 64 characters and is free, else a
    55-character head, `_` and 8 hex digits of the tool's hash (more on a clash),
    so every name matches `^[a-zA-Z0-9_-]{1,64}$` and names stay unique.

    Raises:
        ValueError: If a (server, tool) repeats.
    """
    names: dict[str, tuple[str, str]] = {}
    for server, tool in members:
        if (server, tool) in names.values():
            raise ValueError(f"tool {dotted_tool_name(server, tool)} is listed twice")
        full = f"{server}{AGENT_TOOL_SEPARATOR}{tool}"
        digest = sha256_hex(dotted_tool_name(server, tool))
        name, length = full, SHORT_HASH_CHARS
        while len(name) > TOOL_NAME_MAX_LENGTH or name in names:
            head = full[: TOOL_NAME_MAX_LENGTH - length - 1]
            name, length = f"{head}_{digest[:length]}", length + 1
        names[name] = (server, tool)
    return names


def dotted_tool_name(server: str, tool: str) -> str:
    """The original's `Server.tool` form of a member tool (compatibility)."""
    return f"{server}{COMPAT_TOOL_SEPARATOR}{tool}"


def member_tool_name(name: str) -> tuple[str, str] | None:
    """The (server, tool) a `Server.tool` or unshortened `Server__tool` name
    spells, else None (server names hold neither separator)."""
    for separator in (COMPAT_TOOL_SEPARATOR, AGENT_TOOL_SEPARATOR):
        server, found, tool = name.partition(separator)
        if found and server and tool:
            return server, tool
    return None


class BridgeRuleDraft(Draft):
    """One rule for the interface between member services."""

    rule: str = Field(
        description="The rule, naming tools by their qualified names (Server__tool)."
    )
    servers: list[str] = Field(
        description="The member services the rule connects (two or more)."
    )


class MergedPolicyDraft(CheckedDraft):
    """The model's merge of the members' global rules, plus bridge rules."""

    global_rules: str = Field(
        description="Markdown bullets: every member's global rules kept, "
        "conflicts resolved, tools named by qualified names (Server__tool)."
    )
    bridge_rules: list[BridgeRuleDraft] = Field(
        description="Rules for what crosses between the services."
    )


class BridgeRule(Frozen):
    rule: str = Field(min_length=1)
    servers: tuple[PascalName, ...] = Field(min_length=2)


class MergedPolicy(Frozen):
    """s13 output for one combination: one policy for the fused environment.

    Every member tool keeps its section, renamed to its agent-facing name; the
    global rules are the model's merge plus the bridge rules; `tool_names` maps
    each agent-facing name to its (server, tool)."""

    fused_name: str
    servers: tuple[PascalName, ...]
    markdown: str
    parsed: ParsedPolicy
    bridge_rules: tuple[BridgeRule, ...]
    confirm_tools: tuple[str, ...] = ()
    tool_names: dict[str, tuple[str, str]]
