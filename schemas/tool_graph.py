"""s08 payloads: what the model drafts (a tool dependency graph and per-tool
preconditions) and the canonical `ToolGraph` of one server, a DAG rooted at its
authorization tool with its enumerated trajectories (exported as
`tool_graphs/<Server>.json`)."""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import Field, field_validator

from schemas.base import CheckedDraft, Draft, Frozen, PascalName, ToolName

LinkType = Literal["state dependency", "information flow", "storyline flow"]
LINK_TYPES: tuple[str, ...] = get_args(LinkType)
DEFAULT_LINK_TYPE: LinkType = "information flow"


class LinkDraft(Draft):
    source: str = Field(description="The tool called first")
    target: str = Field(description="The tool that depends on the source")
    type: LinkType = Field(
        default=DEFAULT_LINK_TYPE,
        description="state dependency, information flow or storyline flow",
    )

    @field_validator("type", mode="before")
    @classmethod
    def _tolerant_type(cls, value: Any) -> Any:
        """Map spellings such as `State_Dependency` to a link type; the type only
        labels the link, so an unrecognised one falls back to the default instead
        of costing a re-ask."""
        if not isinstance(value, str):
            return DEFAULT_LINK_TYPE
        folded = " ".join(value.replace("_", " ").replace("-", " ").lower().split())
        return folded if folded in LINK_TYPES else DEFAULT_LINK_TYPE


class ToolGraphDraft(CheckedDraft):
    """The model's tool dependency graph for one server."""

    nodes: list[str] = Field(default_factory=list, description="Tool names")
    links: list[LinkDraft] = Field(default_factory=list)

    @field_validator("nodes", mode="before")
    @classmethod
    def _node_ids(cls, value: Any) -> Any:
        """Accept node-link style `{"id": name}` nodes as well as bare names."""
        if not isinstance(value, list):
            return value
        return [
            item["id"] if isinstance(item, dict) and "id" in item else item
            for item in value
        ]


class PreconditionsDraft(CheckedDraft):
    """For each tool, the tools that must run earlier in the same trajectory."""

    preconditions: dict[str, list[str]] = Field(default_factory=dict)


class ToolLink(Frozen):
    source: ToolName
    target: ToolName
    type: LinkType


class ToolGraph(Frozen):
    server_name: PascalName
    root: ToolName = Field(description="The authorization tool; the only source.")
    nodes: tuple[ToolName, ...] = Field(description="Tools in blueprint order.")
    links: tuple[ToolLink, ...]
    preconditions: dict[ToolName, tuple[ToolName, ...]] = Field(default_factory=dict)
    preconditions_given: bool = Field(
        default=False,
        description="False when no preconditions were extracted, so trajectories "
        "were not filtered by them.",
    )
    trajectories: tuple[tuple[ToolName, ...], ...] = ()
    repairs: tuple[str, ...] = Field(
        default=(), description="What the deterministic repair changed, as sentences."
    )
