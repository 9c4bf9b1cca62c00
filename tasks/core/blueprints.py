"""s04 blueprint canonical form: takes checked `BlueprintDraft`s with their outline
and the `EntityCatalogue`, or `ServerBlueprint`s; returns `ServerBlueprint`s,
uniquely named server sets and the reference `blueprints.json` shape; no side
effects. The stage's outline, repair and check entry points are re-exported here
so callers import one module."""

from __future__ import annotations

from collections.abc import Sequence

from schemas.blueprint import (
    BlueprintDraft,
    BlueprintOutline,
    Column,
    ColumnDraft,
    Function,
    FunctionDraft,
    JsonType,
    Parameter,
    ParameterDraft,
    Relationship,
    RelationshipDraft,
    ServerBlueprint,
)
from schemas.entity import AttributeType, EntityCatalogue
from tasks.core.blueprint_checks import blueprint_checker, check_blueprint
from tasks.core.blueprint_outlines import (
    canonical_outlines,
    check_outlines,
    outline_target,
    outlines_checker,
)
from tasks.core.blueprint_repair import (
    BlueprintScope,
    blueprint_scope,
    normalize_blueprint,
    referenced_entity,
    relationship_key,
)
from tasks.core.entities import attribute_type, enum_values
from tasks.core.naming import unique_names

__all__ = [
    "assign_unique_server_names",
    "blueprint_checker",
    "blueprints_export",
    "canonical_blueprint",
    "canonical_outlines",
    "check_blueprint",
    "check_outlines",
    "json_type",
    "normalize_blueprint",
    "outline_target",
    "outlines_checker",
]

_AS_JSON: dict[AttributeType, JsonType] = {
    "string": "string",
    "integer": "integer",
    "number": "number",
    "boolean": "boolean",
    "array": "array",
    "object": "object",
    "enum": "string",
    "date": "string",
    "datetime": "string",
}
_DEFAULT_RANGES: dict[AttributeType, str] = {
    "date": "YYYY-MM-DD",
    "datetime": "ISO 8601 date-time",
}


def json_type(raw: str) -> JsonType | None:
    """Map a type as written by a model to a JSON-schema type.

    Args:
        raw: e.g. "int", "enum", "datetime", "list[str]".

    Returns:
        The JSON type (enum, date and datetime are strings), or None if unknown.
    """
    kind = attribute_type(raw)
    return None if kind is None else _AS_JSON[kind]


def canonical_blueprint(
    draft: BlueprintDraft, *, outline: BlueprintOutline, catalogue: EntityCatalogue
) -> ServerBlueprint:
    """Convert a checked blueprint draft to its canonical form.

    The draft is repaired again (repair is idempotent). Columns holding an entity
    key get `references`; types are mapped (parameters to JSON types, with enum
    values as a tuple and a format hint as the range of date parameters that have
    none); source domains are the sorted union of its entities' domains.

    Args:
        draft: A blueprint that passes `blueprint_checker`.
        outline: The outline it was drafted from.
        catalogue: The entity catalogue.

    Returns:
        The server blueprint.

    Raises:
        ValueError: If the draft does not pass the checks (unknown entity or type,
            repeated name).
    """
    repaired = normalize_blueprint(draft, outline=outline, catalogue=catalogue)
    scope = blueprint_scope(
        catalogue, repaired.core_entity, repaired.peripheral_entities
    )
    unknown = [name for name in scope.members if name not in catalogue.entities]
    if unknown:
        raise ValueError(f"blueprint uses unknown entities: {', '.join(unknown)}")
    domains = {
        domain
        for name in scope.members
        for domain in catalogue.entities[name].source_domains
    }
    return ServerBlueprint(
        server_name=repaired.MCP_server_name,
        description=repaired.description,
        core_entity=repaired.core_entity,
        peripheral_entities=tuple(repaired.peripheral_entities),
        relationships=tuple(
            _relationship(relationship, scope)
            for relationship in repaired.relationships
        ),
        functions=tuple(_function(function) for function in repaired.functions),
        source_domains=tuple(sorted(domains)),
    )


def _relationship(
    relationship: RelationshipDraft, scope: BlueprintScope
) -> Relationship:
    where = f"relationship '{relationship.name}'"
    columns = {
        column.name: _column(column, scope, where) for column in relationship.attributes
    }
    if len(columns) != len(relationship.attributes):
        raise ValueError(f"{where} repeats a column name")
    return Relationship(
        name=relationship.name,
        description=relationship.description,
        primary_key=relationship_key(relationship.name),
        attributes=columns,
    )


def _column(column: ColumnDraft, scope: BlueprintScope, where: str) -> Column:
    kind = attribute_type(column.type)
    if kind is None:
        raise ValueError(f"{where}, column '{column.name}' has unknown type")
    referenced = referenced_entity(column.value_from_entity, scope)
    return Column(
        type=kind,
        value_from_entity=column.value_from_entity,
        range=column.range,
        description=column.description,
        references=referenced.name if referenced else None,
    )


def _function(function: FunctionDraft) -> Function:
    parameters = {
        parameter.name: _parameter(parameter, function.name)
        for parameter in function.parameters
    }
    if len(parameters) != len(function.parameters):
        raise ValueError(f"function '{function.name}' repeats a parameter name")
    return Function(
        name=function.name,
        description=function.description,
        effect=function.effect,
        is_authorization=function.is_authorization,
        legal_accessor=tuple(function.legal_accessor),
        parameters=parameters,
    )


def _parameter(parameter: ParameterDraft, function: str) -> Parameter:
    kind = attribute_type(parameter.type)
    if kind is None:
        raise ValueError(
            f"function '{function}', parameter '{parameter.name}' has unknown type"
        )
    items = attribute_type(parameter.items_type or "") if kind == "array" else None
    if "enum" in (kind, items):
        values: tuple[str, ...] | None = enum_values(parameter.enum, parameter.range)
    else:
        values = enum_values(parameter.enum, "") or None
    return Parameter(
        description=parameter.description,
        type=_AS_JSON[kind],
        range=parameter.range or _DEFAULT_RANGES.get(kind, ""),
        enum=values,
        items_type=_AS_JSON[items] if items else None,
        required=parameter.required,
    )


def assign_unique_server_names(
    blueprints: Sequence[ServerBlueprint],
) -> list[ServerBlueprint]:
    """Make server names unique by suffixing repeats 1, 2, ... in the given order.

    Args:
        blueprints: Blueprints in their significant (outline) order.

    Returns:
        The blueprints, renamed where needed.
    """
    names = unique_names(blueprint.server_name for blueprint in blueprints)
    return [
        blueprint
        if blueprint.server_name == name
        else blueprint.model_copy(update={"server_name": name})
        for blueprint, name in zip(blueprints, names, strict=True)
    ]


def blueprints_export(blueprints: Sequence[ServerBlueprint]) -> list[dict]:
    """Blueprints in the reference `blueprints.json` shape.

    Args:
        blueprints: The blueprint set, in order.

    Returns:
        One dict per blueprint with "MCP_server_name", "description",
        "core_entity", "peripheral_entities", "relationships", "functions" and
        "source_domains"; parameters carry "enum" and "items" only when set.
    """
    return [
        {
            "MCP_server_name": blueprint.server_name,
            "description": blueprint.description,
            "core_entity": blueprint.core_entity,
            "peripheral_entities": list(blueprint.peripheral_entities),
            "relationships": [
                _relationship_export(relationship)
                for relationship in blueprint.relationships
            ],
            "functions": [
                _function_export(function) for function in blueprint.functions
            ],
            "source_domains": list(blueprint.source_domains),
        }
        for blueprint in blueprints
    ]


def _relationship_export(relationship: Relationship) -> dict[str, object]:
    return {
        "name": relationship.name,
        "description": relationship.description,
        "attributes": {
            name: {
                "type": column.type,
                "value_from_entity": column.value_from_entity,
                "range": column.range,
            }
            for name, column in relationship.attributes.items()
        },
    }


def _function_export(function: Function) -> dict[str, object]:
    parameters: dict[str, dict[str, object]] = {}
    for name, parameter in function.parameters.items():
        exported: dict[str, object] = {
            "description": parameter.description,
            "type": parameter.type,
            "range": parameter.range,
            "required": parameter.required,
        }
        if parameter.enum:
            exported["enum"] = list(parameter.enum)
        if parameter.items_type:
            exported["items"] = {"type": parameter.items_type}
        parameters[name] = exported
    return {
        "name": function.name,
        "description": function.description,
        "legal_accessor": list(function.legal_accessor),
        "parameters": parameters,
        "effect": function.effect,
        "is_authorization": function.is_authorization,
    }
