"""s02/s03 payloads: the entity catalogue (exported as `entities.json`) and the
person-centred entity graph (exported as `entity_graph.json`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.base import CheckedDraft, Draft, Frozen, PascalName, Slug

AttributeType = Literal[
    "string",
    "integer",
    "number",
    "boolean",
    "enum",
    "date",
    "datetime",
    "array",
    "object",
]


class AttributeDraft(Draft):
    name: str
    description: str = ""
    type: str = "string"
    range: str = ""
    enum: list[str] | None = None


class EntityDraft(Draft):
    name: str = Field(description="PascalCase entity name, e.g. BankAccount")
    description: str
    is_person: bool
    primary_key: str = Field(description="The attribute that identifies an instance")
    attributes: list[AttributeDraft] = Field(min_length=1)
    domains: list[str] = Field(
        min_length=1, description="The listed domains this entity appears in"
    )


class EntityBatchDraft(CheckedDraft):
    """What the model returns for one batch of domains."""

    subfields: list[str] = Field(default_factory=list)
    entities: list[EntityDraft] = Field(min_length=1)


class Attribute(Frozen):
    description: str
    type: AttributeType
    range: str = ""
    enum: tuple[str, ...] | None = None


class Entity(Frozen):
    name: PascalName
    description: str
    is_person: bool
    primary_key: Slug
    attributes: dict[Slug, Attribute]
    source_domains: tuple[Slug, ...] = Field(min_length=1)


class EntityBatch(Frozen):
    domains: tuple[Slug, ...]
    subfields: tuple[str, ...]
    entities: tuple[Entity, ...]


class EntityCatalogue(Frozen):
    entities: dict[PascalName, Entity]


class RelationBatchDraft(CheckedDraft):
    """Names from the offered batch that the person plausibly interacts with."""

    related: list[str] = Field(default_factory=list)


class RelationBatch(Frozen):
    person: PascalName
    batch_index: int = Field(ge=0)
    candidates: tuple[PascalName, ...]
    related: tuple[PascalName, ...]


class GraphNode(Frozen):
    id: PascalName
    is_person: bool
    attributes: tuple[str, ...]
    description: str


class GraphEdge(Frozen):
    source: PascalName
    target: PascalName
    relationship: str = "related_to"
    description: str = ""


class EntityGraph(Frozen):
    nodes: tuple[GraphNode, ...]
    links: tuple[GraphEdge, ...]
