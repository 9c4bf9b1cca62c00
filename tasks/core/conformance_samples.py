"""Valid tool arguments sampled from the data, for the s09 conformance suite.

Inputs: a `ToolSpec`, the `EnvironmentSpec`, the base rows of every table, the
authorized user's id and a seeded `random.Random`. Output: one argument object per
call that satisfies the tool's JSON schema: enum values from the schema, ids and
other column values drawn from the tables (preferring rows that belong to the
authorized user), numbers inside the range the description states, dates and
times after the simulation time. Pure: the same inputs and seed give the same
arguments; no side effects.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from schemas.environment import CONFIRM_PARAMETER, EnvironmentSpec, ToolSpec

Rows = Mapping[str, Sequence[Mapping[str, Any]]]

OPTIONAL_RATE = 0.5
"""Chance that an optional parameter is passed."""
USER_ROW_RATE = 0.75
"""Chance that an id is taken from the user's own rows when there are any."""
DEFAULT_RANGE = (1.0, 10.0)
_RANGE = re.compile(
    r"range:\s*(-?\d+(?:\.\d+)?)\s*(?:-|–|to)\s*(-?\d+(?:\.\d+)?)", re.IGNORECASE
)


def sample_arguments(
    tool: ToolSpec,
    spec: EnvironmentSpec,
    rows: Rows,
    *,
    user_id: Any,
    rng: random.Random,
) -> dict[str, Any]:
    """Arguments for one valid call of a tool.

    Required parameters are always given, optional ones half of the time; the
    runtime's `confirm` parameter is left to the caller.

    Args:
        tool: The tool.
        spec: The environment spec (tables, core key, simulation time).
        rows: Table name -> base rows.
        user_id: The authorized core id (None before authorization).
        rng: The seeded random source of this call.

    Returns:
        Parameter name -> value, in schema order.
    """
    properties: Mapping[str, Any] = tool.parameters.get("properties", {})
    required = set(tool.parameters.get("required", ()))
    arguments: dict[str, Any] = {}
    for name, schema in properties.items():
        if tool.needs_confirmation and name == CONFIRM_PARAMETER:
            continue
        if name not in required and rng.random() >= OPTIONAL_RATE:
            continue
        arguments[name] = _value(name, schema, spec, rows, user_id, rng)
    return arguments


def column_values(
    name: str, spec: EnvironmentSpec, rows: Rows, *, user_id: Any
) -> tuple[list[Any], list[Any]]:
    """Values the data holds for a parameter called `name`.

    A parameter names a column directly (`city`), or holds the primary key of a
    table (`clinic_id`, or `from_account_id` when a column of that name is a
    foreign key): then every column holding that table's keys counts.

    Args:
        name: The parameter name.
        spec: The environment spec.
        rows: Table name -> base rows.
        user_id: The authorized core id, or None.

    Returns:
        (values in rows of the authorized user, every value), each without
        None and without repeats, in table and row order.
    """
    target = _key_target(name, spec)
    own: dict[Any, None] = {}
    every: dict[Any, None] = {}
    for table_name, table in spec.tables.items():
        columns = [
            column
            for column in table.columns
            if column == name
            or (
                target is not None
                and (
                    table.foreign_keys.get(column) == target
                    or (table_name == target and column == table.primary_key)
                )
            )
        ]
        scoped = user_id is not None and spec.core_key in table.columns
        for row in rows.get(table_name, ()):
            mine = scoped and str(row.get(spec.core_key)) == str(user_id)
            for column in columns:
                value = row.get(column)
                if value is None or isinstance(value, dict | list):
                    continue
                every[value] = None
                if mine:
                    own[value] = None
    return list(own), list(every)


def _key_target(name: str, spec: EnvironmentSpec) -> str | None:
    for table_name, table in spec.tables.items():
        if table.primary_key == name:
            return table_name
    for table in spec.tables.values():
        if name in table.foreign_keys:
            return table.foreign_keys[name]
    return None


def _value(
    name: str,
    schema: Mapping[str, Any],
    spec: EnvironmentSpec,
    rows: Rows,
    user_id: Any,
    rng: random.Random,
) -> Any:
    kind = schema.get("type", "string")
    if kind == "array":
        items: Mapping[str, Any] = schema.get("items", {}) or {}
        choices = list(items.get("enum") or ())
        if choices:
            return rng.sample(choices, rng.randint(1, min(2, len(choices))))
        return [_value(name, items, spec, rows, user_id, rng)]
    choices = list(schema.get("enum") or ())
    if choices:
        return rng.choice(choices)
    own, every = column_values(name, spec, rows, user_id=user_id)
    own, every = _fitting(own, kind), _fitting(every, kind)
    if own and (rng.random() < USER_ROW_RATE or not every):
        return rng.choice(own)
    if every:
        return rng.choice(every)
    return _synthetic(name, kind, str(schema.get("description", "")), spec, rng)


def _fitting(values: list[Any], kind: str) -> list[Any]:
    """Values converted to the parameter's JSON type; those that cannot be."""
    fitted: list[Any] = []
    for value in values:
        if kind == "string":
            if isinstance(value, str):
                fitted.append(value)
            elif isinstance(value, int | float) and not isinstance(value, bool):
                fitted.append(str(value))
        elif kind == "integer":
            if isinstance(value, int) and not isinstance(value, bool):
                fitted.append(value)
        elif kind == "number":
            if isinstance(value, int | float) and not isinstance(value, bool):
                fitted.append(value)
        elif kind == "boolean" and isinstance(value, bool):
            fitted.append(value)
    return list(dict.fromkeys(fitted))


def _synthetic(
    name: str, kind: str, description: str, spec: EnvironmentSpec, rng: random.Random
) -> Any:
    if kind in ("integer", "number"):
        low, high = _range(description)
        if kind == "integer":
            return rng.randint(int(low), int(high))
        return round(rng.uniform(low, high), 2)
    if kind == "boolean":
        return rng.choice([True, False])
    if kind == "object":
        return {}
    now = datetime.fromisoformat(spec.simulation_time)
    later = now + timedelta(days=rng.randint(1, 30))
    if "date" in name and "time" not in name:
        return later.date().isoformat()
    if "time" in name or name.endswith("_at"):
        return later.replace(hour=10, minute=0, second=0, microsecond=0).isoformat()
    if "email" in name:
        return "sample.user@example.com"
    return f"sample {name.replace('_', ' ')}"


def _range(description: str) -> tuple[float, float]:
    match = _RANGE.search(description)
    if match is None:
        return DEFAULT_RANGE
    low, high = float(match[1]), float(match[2])
    return (low, high) if low <= high else (high, low)
