"""Cross-domain payloads shared by s10-s13 and the runtime: which servers form a
combination, and how its fused name is made. Data only, no side effects."""

from __future__ import annotations

from pydantic import Field, model_validator

from schemas.base import CheckedDraft, Draft, Frozen, PascalName
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


def agent_tool_name(server: str, tool: str) -> str:
    """The agent-facing name of a member tool in a fused environment."""
    return f"{server}{AGENT_TOOL_SEPARATOR}{tool}"


def dotted_tool_name(server: str, tool: str) -> str:
    """The original's `Server.tool` form of a member tool (compatibility)."""
    return f"{server}.{tool}"


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
