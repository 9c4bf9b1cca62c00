"""s04/s05 payloads: MCP server blueprints (exported as `blueprints.json`) and the
OpenAI tool lists derived from them (`tool_lists/<Server>.json`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from schemas.base import CheckedDraft, Draft, Frozen, PascalName, Slug, ToolName

JsonType = Literal["string", "integer", "number", "boolean", "array", "object"]


class OutlineDraft(Draft):
    server_name: str
    description: str
    entities: list[str] = Field(
        min_length=1, description="The core entity first, then 1..N peripheral entities"
    )


class OutlineSetDraft(CheckedDraft):
    outlines: list[OutlineDraft] = Field(min_length=1)


class BlueprintOutline(Frozen):
    index: int = Field(ge=0)
    server_name: str
    description: str
    core_entity: PascalName
    peripheral_entities: tuple[PascalName, ...]


class OutlineSet(Frozen):
    core_entity: PascalName
    outlines: tuple[BlueprintOutline, ...]


class ColumnDraft(Draft):
    name: str
    type: str = "string"
    value_from_entity: str = Field(
        default="Random",
        description="Entity.attribute it is drawn from, system_generated, or Random",
    )
    range: str = ""
    description: str = ""


class RelationshipDraft(Draft):
    name: str
    description: str
    attributes: list[ColumnDraft] = Field(min_length=1)


class ParameterDraft(Draft):
    name: str
    description: str = ""
    type: str = "string"
    range: str = ""
    enum: list[str] | None = None
    items_type: str | None = None
    required: bool = True


class FunctionDraft(Draft):
    name: str
    description: str
    effect: Literal["read", "write"] = "read"
    is_authorization: bool = False
    legal_accessor: list[str] = Field(default_factory=list)
    parameters: list[ParameterDraft] = Field(default_factory=list)


class BlueprintDraft(CheckedDraft):
    MCP_server_name: str
    description: str
    core_entity: str
    peripheral_entities: list[str] = Field(default_factory=list)
    relationships: list[RelationshipDraft] = Field(default_factory=list)
    functions: list[FunctionDraft] = Field(min_length=1)


class Column(Frozen):
    type: str
    value_from_entity: str
    range: str = ""
    description: str = ""
    references: PascalName | None = Field(
        default=None, description="Entity whose primary key this column holds (a FK)."
    )


class Relationship(Frozen):
    name: PascalName
    description: str
    primary_key: Slug
    attributes: dict[Slug, Column]


class Parameter(Frozen):
    description: str
    type: JsonType
    range: str = ""
    enum: tuple[str, ...] | None = None
    items_type: JsonType | None = None
    required: bool = True


class Function(Frozen):
    name: ToolName
    description: str
    effect: Literal["read", "write"]
    is_authorization: bool = False
    legal_accessor: tuple[str, ...] = ()
    parameters: dict[ToolName, Parameter]


class ServerBlueprint(Frozen):
    server_name: PascalName
    description: str
    core_entity: PascalName
    peripheral_entities: tuple[PascalName, ...]
    relationships: tuple[Relationship, ...]
    functions: tuple[Function, ...]
    source_domains: tuple[Slug, ...] = ()


class BlueprintSet(Frozen):
    blueprints: tuple[ServerBlueprint, ...]
    dropped: tuple[str, ...] = Field(
        default=(), description="Item keys of outlines whose blueprint never validated."
    )


class OpenAITool(Frozen):
    type: Literal["function"] = "function"
    function: dict[str, Any]


class ToolList(Frozen):
    server_name: PascalName
    tools: tuple[OpenAITool, ...]
