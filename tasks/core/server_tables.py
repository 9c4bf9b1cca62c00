"""Which tables a server owns: its core and peripheral entities' shared tables and
its own relationship tables.

Input: a blueprint (or an outline: anything with a core entity and peripheral
entities) and table artifacts of s06 (data tables or summaries). Output: the
server's entity names, its owned tables in order, and the server's artifacts with
the names of owned tables that have none. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol, TypeVar

from schemas.artifact import Artifact
from schemas.blueprint import ServerBlueprint


class _HasEntities(Protocol):
    core_entity: str
    peripheral_entities: Sequence[str]


class _Table(Protocol):
    table: str
    kind: str
    server: str | None


T = TypeVar("T", bound=Artifact)


class OwnedTable(NamedTuple):
    """A table a server reads: an entity table (`server` None, shared by every
    server using the entity) or one of its own relationship tables."""

    name: str
    server: str | None


def entity_names(blueprint: _HasEntities) -> tuple[str, ...]:
    """The core entity, then the peripheral entities."""
    return (blueprint.core_entity, *blueprint.peripheral_entities)


def owned_tables(blueprint: ServerBlueprint) -> tuple[OwnedTable, ...]:
    """Entity tables (core, peripherals), then the server's relationship tables."""
    return tuple(OwnedTable(name, None) for name in entity_names(blueprint)) + tuple(
        OwnedTable(r.name, blueprint.server_name) for r in blueprint.relationships
    )


def _key(table: _Table) -> OwnedTable:
    return OwnedTable(
        table.table, table.server if table.kind == "relationship" else None
    )


def select_owned(
    blueprint: ServerBlueprint, artifacts: Sequence[T]
) -> tuple[tuple[T, ...], tuple[str, ...]]:
    """The artifacts of the tables a server owns, in `owned_tables` order, and the
    names of its tables that have none (the first artifact of a table wins)."""
    found: dict[OwnedTable, T] = {}
    for artifact in artifacts:
        found.setdefault(_key(artifact.payload), artifact)
    wanted = owned_tables(blueprint)
    present = tuple(found[t] for t in wanted if t in found)
    return present, tuple(t.name for t in wanted if t not in found)
