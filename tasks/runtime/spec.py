"""Blueprint to environment spec: takes a `ServerBlueprint`, the `EntityCatalogue`,
the simulation time, the seed and the names of the write tools that need
confirmation; returns the `EnvironmentSpec` the runtime executes. Tables are the
core and peripheral entity tables and the blueprint's relationship tables, each
keyed by its primary key, with foreign keys from `Column.references`. Tool schemas
are exactly the s05 tool-list schemas (so what agents see over MCP equals
`tool_lists/<Server>.json`), plus an optional `confirm` boolean on confirmation
tools. Pure: no side effects."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from schemas.blueprint import Function, Relationship, ServerBlueprint
from schemas.entity import Entity, EntityCatalogue
from schemas.environment import (
    CONFIRM_PARAMETER,
    EnvironmentSpec,
    TableSpec,
    ToolSpec,
)
from tasks.core.tool_lists import tool_list

RESERVED_PARAMETER = "env"
CONFIRM_PROPERTY: dict[str, Any] = {
    "type": "boolean",
    "description": (
        "Set to true only after the user has explicitly confirmed the action; "
        "without it the call returns a preview of the action and changes nothing."
    ),
    "default": False,
}


def environment_spec(
    blueprint: ServerBlueprint,
    catalogue: EntityCatalogue,
    *,
    simulation_time: str,
    seed: int,
    confirm_tools: Collection[str] = frozenset(),
) -> EnvironmentSpec:
    """Derive the executable spec of one server.

    Args:
        blueprint: The server blueprint.
        catalogue: The entity catalogue holding its core and peripheral entities.
        simulation_time: The fixed "now", ISO 8601.
        seed: Seed of id generation.
        confirm_tools: Write tools whose calls need `confirm: true` to act.

    Returns:
        The environment spec.

    Raises:
        ValueError: If an entity is not in the catalogue, a table name repeats,
            a foreign key points outside the server, a confirmation tool is not a
            write tool of the blueprint, or a parameter is called `env` (the name
            tool bodies give the runtime object).
    """
    entities = [
        _entity_table(_entity(catalogue, name))
        for name in (blueprint.core_entity, *blueprint.peripheral_entities)
    ]
    relationships = [_relationship_table(r) for r in blueprint.relationships]
    tables: dict[str, TableSpec] = {}
    for table in (*entities, *relationships):
        if table.name in tables:
            raise ValueError(
                f"server {blueprint.server_name}: two tables are called {table.name}"
            )
        tables[table.name] = table
    functions = {function.name: function for function in blueprint.functions}
    writes = {
        name for name, function in functions.items() if function.effect == "write"
    }
    stray = sorted(set(confirm_tools) - writes)
    if stray:
        raise ValueError(
            f"server {blueprint.server_name}: confirmation tools {stray} are not "
            "write tools of the blueprint"
        )
    tools = tuple(
        _tool(functions[tool.function["name"]], tool.function, confirm_tools)
        for tool in tool_list(blueprint).tools
    )
    core = _entity(catalogue, blueprint.core_entity)
    return EnvironmentSpec(
        name=blueprint.server_name,
        core_entity=core.name,
        core_key=core.primary_key,
        tables=tables,
        tools=tools,
        simulation_time=simulation_time,
        seed=seed,
    )


def _entity(catalogue: EntityCatalogue, name: str) -> Entity:
    entity = catalogue.entities.get(name)
    if entity is None:
        raise ValueError(f"entity {name} is not in the catalogue")
    return entity


def _entity_table(entity: Entity) -> TableSpec:
    return TableSpec(
        name=entity.name,
        primary_key=entity.primary_key,
        kind="entity",
        columns=tuple(entity.attributes),
    )


def _relationship_table(relationship: Relationship) -> TableSpec:
    return TableSpec(
        name=relationship.name,
        primary_key=relationship.primary_key,
        kind="relationship",
        columns=tuple(relationship.attributes),
        foreign_keys={
            name: column.references
            for name, column in relationship.attributes.items()
            if column.references is not None
        },
    )


def _tool(
    function: Function, exported: dict[str, Any], confirm_tools: Collection[str]
) -> ToolSpec:
    if RESERVED_PARAMETER in function.parameters:
        raise ValueError(
            f"tool {function.name}: parameter '{RESERVED_PARAMETER}' is reserved "
            "for the runtime object; rename it"
        )
    parameters = exported["parameters"]
    needs_confirmation = function.name in confirm_tools
    if needs_confirmation:
        parameters = {
            **parameters,
            "properties": {
                **parameters["properties"],
                CONFIRM_PARAMETER: dict(CONFIRM_PROPERTY),
            },
            "required": [
                name for name in parameters["required"] if name != CONFIRM_PARAMETER
            ],
        }
    return ToolSpec(
        name=function.name,
        description=function.description,
        effect=function.effect,
        is_authorization=function.is_authorization,
        needs_confirmation=needs_confirmation,
        parameters=parameters,
    )
