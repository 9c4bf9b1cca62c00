"""s06 table contracts: takes catalogue entities and blueprint relationships (plus
row count, seed and simulation time) and returns the `TableContract` a generator
script receives as `input.json` and its output is validated against; also which
tables the blueprints use and the seed of each table. Pure, no side effects.

Reading of the designed ranges (anything else stays text for the model only):
integer and number columns take `A-B`, `A to B`, `A..B` or `A–B`; date and datetime
columns take the first `YYYY-MM-DD to YYYY-MM-DD` (or `-`, `..`, `–`) found in the
text, inclusive by calendar date; an enum's values are its list, else its
comma-separated range; a range of exactly `UUID` asks for UUID strings; a non-enum
column whose range or description says none, null, optional, if any or n/a may be
null. The primary key is never null.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from schemas.base import sha256_hex
from schemas.blueprint import Relationship, ServerBlueprint
from schemas.database import ColumnContract, ColumnType, TableContract
from schemas.entity import Entity
from tasks.core.data_values import parse_date
from tasks.core.entities import attribute_type, enum_values
from tasks.core.server_tables import entity_names

SEED_BITS = 48
_NUMBER_RANGE = re.compile(
    r"^\s*(-?\d+(?:\.\d+)?)\s*(?:-|–|to|\.\.)\s*(-?\d+(?:\.\d+)?)\s*$"
)
_DATE_RANGE = re.compile(
    r"(\d{4}-\d{2}-\d{2})(?:[T ][0-9:]+)?\s*(?:to|–|-|\.\.)\s*(\d{4}-\d{2}-\d{2})"
)
_NULLABLE = re.compile(r"\b(none|null|optional|if any|n/a)\b", re.IGNORECASE)
_UUID_RANGES = frozenset({"uuid", "uuid4", "uuid v4", "uuidv4"})


@dataclass(frozen=True)
class TableData:
    """A validated table another table points into: its contract and rows."""

    contract: TableContract
    rows: Sequence[Mapping[str, Any]]


def table_seed(run_seed: int, item_key: str) -> int:
    """The seed of one table, derived from the run seed and the item key."""
    return int(sha256_hex(f"{run_seed}/{item_key}")[: SEED_BITS // 4], 16)


def used_entities(blueprints: Iterable[ServerBlueprint]) -> list[str]:
    """Entities that are a core or peripheral entity of some blueprint, sorted."""
    names = {name for blueprint in blueprints for name in entity_names(blueprint)}
    return sorted(names)


def column_contract(
    raw_type: str,
    *,
    description: str = "",
    range_text: str = "",
    enum: Sequence[str] | None = None,
    references: str | None = None,
    drawn_from: str | None = None,
) -> ColumnContract:
    """One column's contract from its designed type, range and description."""
    column_type: ColumnType = attribute_type(raw_type) or "string"
    values = enum_values(enum, range_text) if column_type == "enum" else ()
    minimum, maximum = _bounds(column_type, range_text)
    nullable = column_type != "enum" and bool(
        _NULLABLE.search(range_text) or _NULLABLE.search(description)
    )
    return ColumnContract(
        type=column_type,
        description=description,
        range=range_text,
        enum=values or None,
        minimum=minimum,
        maximum=maximum,
        format="uuid" if range_text.strip().lower() in _UUID_RANGES else None,
        nullable=nullable and references is None,
        references=references,
        drawn_from=drawn_from,
    )


def entity_contract(
    entity: Entity, *, n: int, seed: int, simulation_time: str
) -> TableContract:
    """The contract of an entity table (shared by every server)."""
    columns = {
        name: column_contract(
            attr.type,
            description=attr.description,
            range_text=attr.range,
            enum=attr.enum,
        )
        for name, attr in entity.attributes.items()
    }
    return TableContract(
        table=entity.name,
        kind="entity",
        description=entity.description,
        primary_key=entity.primary_key,
        columns=_key_first(columns, entity.primary_key),
        n=n,
        seed=seed,
        simulation_time=simulation_time,
    )


def relationship_contract(
    relationship: Relationship,
    *,
    server: str,
    entities: Mapping[str, Entity],
    n: int,
    seed: int,
    simulation_time: str,
    constraints: Sequence[Any] = (),
) -> TableContract:
    """The contract of a (server, relationship) table.

    Args:
        relationship: The blueprint's relationship.
        server: The owning server.
        entities: The entities of the blueprint by name (copied values are only
            tracked for attributes of these).
        n: Exact row count.
        seed: The table's seed.
        simulation_time: The fixed "now", ISO 8601.
        constraints: Checked rules (`ConstraintRule`s) the rows must satisfy.

    Returns:
        The contract, primary key first.

    Raises:
        ValueError: A foreign key names an entity missing from `entities`.
    """
    columns: dict[str, ColumnContract] = {}
    for name, column in relationship.attributes.items():
        columns[name] = column_contract(
            column.type,
            description=column.description,
            range_text=column.range,
            references=column.references,
            drawn_from=_drawn_from(
                column.value_from_entity, column.references, entities
            ),
        )
    return TableContract(
        table=relationship.name,
        kind="relationship",
        server=server,
        description=relationship.description,
        primary_key=relationship.primary_key,
        columns=_key_first(columns, relationship.primary_key),
        n=n,
        seed=seed,
        simulation_time=simulation_time,
        tables={
            name: entities[name].primary_key
            for name in pointed_entities(relationship, entities)
            if name in entities
        },
        constraints=tuple(constraints),
    )


def pointed_entities(
    relationship: Relationship, entities: Mapping[str, Entity]
) -> list[str]:
    """Entities a relationship's rows point into (foreign keys, copied values).

    Args:
        relationship: The blueprint's relationship.
        entities: The blueprint's entities by name.

    Returns:
        Their names, sorted.
    """
    names = set()
    for column in relationship.attributes.values():
        if column.references is not None:
            names.add(column.references)
        source = _drawn_from(column.value_from_entity, column.references, entities)
        if source is not None:
            names.add(source.split(".", 1)[0])
    return sorted(names)


def _drawn_from(
    source: str, references: str | None, entities: Mapping[str, Entity]
) -> str | None:
    """`Entity.attribute` when a non-key column copies an entity's values."""
    if references is not None or "." not in source:
        return None
    entity_name, attribute = source.split(".", 1)
    entity = entities.get(entity_name)
    if entity is None or attribute not in entity.attributes:
        return None
    if attribute == entity.primary_key:
        return None
    return f"{entity_name}.{attribute}"


def _key_first(
    columns: dict[str, ColumnContract], key: str
) -> dict[str, ColumnContract]:
    if key not in columns:  # the contract itself reports the missing key
        return columns
    return {key: columns[key], **{k: v for k, v in columns.items() if k != key}}


def _bounds(
    column_type: ColumnType, range_text: str
) -> tuple[float | str | None, float | str | None]:
    if column_type in ("integer", "number"):
        match = _NUMBER_RANGE.match(range_text)
        if match:
            low, high = float(match.group(1)), float(match.group(2))
            if low <= high:
                return low, high
    if column_type in ("date", "datetime"):
        match = _DATE_RANGE.search(range_text)
        if match:
            low, high = parse_date(match.group(1)), parse_date(match.group(2))
            if low is not None and high is not None and low <= high:
                return match.group(1), match.group(2)
    return None, None
