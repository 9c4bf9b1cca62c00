"""Reading the reference export shapes back: takes the parsed `entities.json` and
`blueprints.json` documents (as written by `tasks.core.exports`) and returns the
`EntityCatalogue` and one `ServerBlueprint`. What the export leaves out is derived
by the same core rules that produced it: a relationship's primary key is
`relationship_key(name)` and a column references the entity whose primary key its
`value_from_entity` names (explicit "primary_key" and "references" keys win when
present). No side effects."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from schemas.blueprint import (
    Column,
    Function,
    Parameter,
    Relationship,
    ServerBlueprint,
)
from schemas.entity import Attribute, Entity, EntityCatalogue
from tasks.core.blueprint_repair import (
    BlueprintScope,
    blueprint_scope,
    referenced_entity,
    relationship_key,
)


def catalogue_from_export(document: Mapping[str, Any]) -> EntityCatalogue:
    """The entity catalogue from an `entities.json` document.

    Args:
        document: `{Name: {...}}`, optionally wrapped as `{"entities": {...}}`.

    Returns:
        The catalogue.

    Raises:
        ValueError: If an entity does not validate.
    """
    entities = document.get("entities", document)
    try:
        return _catalogue(entities)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"malformed entities.json: {exc!r}") from exc


def _catalogue(entities: Mapping[str, Any]) -> EntityCatalogue:
    return EntityCatalogue(
        entities={
            name: Entity(
                name=name,
                description=data["description"],
                is_person=data["is_person"],
                primary_key=data["primary_key"],
                attributes={
                    attr: _attribute(value)
                    for attr, value in data["attributes"].items()
                },
                source_domains=tuple(data["source_domains"]),
            )
            for name, data in entities.items()
        }
    )


def find_blueprint(
    document: Sequence[Mapping[str, Any]], server: str
) -> Mapping[str, Any]:
    """The exported blueprint of one server.

    Raises:
        ValueError: Naming the servers there are, if `server` is not one.
    """
    for blueprint in document:
        if blueprint.get("MCP_server_name") == server:
            return blueprint
    names = ", ".join(sorted(str(b.get("MCP_server_name")) for b in document))
    raise ValueError(f"no blueprint for server {server}; servers: {names or 'none'}")


def blueprint_from_export(
    exported: Mapping[str, Any], catalogue: EntityCatalogue
) -> ServerBlueprint:
    """A `ServerBlueprint` from one `blueprints.json` entry.

    Args:
        exported: The entry (keys "MCP_server_name", "core_entity", ...).
        catalogue: The entity catalogue, to resolve foreign keys.

    Returns:
        The blueprint.

    Raises:
        ValueError: If the entry does not validate.
    """
    try:
        return _blueprint(exported, catalogue)
    except (KeyError, TypeError, AttributeError) as exc:
        server = exported.get("MCP_server_name")
        raise ValueError(f"malformed blueprint of {server}: {exc!r}") from exc


def _blueprint(
    exported: Mapping[str, Any], catalogue: EntityCatalogue
) -> ServerBlueprint:
    core = exported["core_entity"]
    peripherals = tuple(exported.get("peripheral_entities", ()))
    scope = blueprint_scope(catalogue, core, peripherals)
    relationships = []
    for relationship in exported.get("relationships", ()):
        columns = {
            name: Column(
                type=column["type"],
                value_from_entity=column["value_from_entity"],
                range=column.get("range", ""),
                description=column.get("description", ""),
                references=column.get("references")
                or _referenced(column["value_from_entity"], scope),
            )
            for name, column in relationship["attributes"].items()
        }
        relationships.append(
            Relationship(
                name=relationship["name"],
                description=relationship["description"],
                primary_key=relationship.get("primary_key")
                or relationship_key(relationship["name"]),
                attributes=columns,
            )
        )
    return ServerBlueprint(
        server_name=exported["MCP_server_name"],
        description=exported["description"],
        core_entity=core,
        peripheral_entities=peripherals,
        relationships=tuple(relationships),
        functions=tuple(_function(f) for f in exported["functions"]),
        source_domains=tuple(exported.get("source_domains", ())),
    )


def _attribute(data: Mapping[str, Any]) -> Attribute:
    enum = tuple(data["enum"]) if data.get("enum") else None
    span = data.get("range", "")
    if enum and span == ",".join(enum):
        # The export fills an empty range with the enum values; undo that.
        span = ""
    return Attribute(
        description=data.get("description", ""),
        type=data["type"],
        range=span,
        enum=enum,
    )


def _referenced(value: str, scope: BlueprintScope) -> str | None:
    entity = referenced_entity(value, scope)
    return entity.name if entity is not None else None


def _function(data: Mapping[str, Any]) -> Function:
    return Function(
        name=data["name"],
        description=data["description"],
        effect=data.get("effect", "read"),
        is_authorization=data.get("is_authorization", False),
        legal_accessor=tuple(data.get("legal_accessor", ())),
        parameters={
            name: Parameter(
                description=parameter.get("description", ""),
                type=parameter["type"],
                range=parameter.get("range", ""),
                enum=tuple(parameter["enum"]) if parameter.get("enum") else None,
                items_type=(parameter.get("items") or {}).get("type"),
                required=parameter.get("required", True),
            )
            for name, parameter in data.get("parameters", {}).items()
        },
    )
