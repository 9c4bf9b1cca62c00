"""Typed reading of generated cell values, shared by s06 validation, constraint
checking and summaries: takes JSON values and a column type (and the simulation
time zone for naive datetimes); returns type verdicts, parsed dates and datetimes,
ordering keys and the canonical text form of a value. Pure, no side effects.

Conventions: a `date` is exactly `YYYY-MM-DD`; a `datetime` is anything
`datetime.fromisoformat` reads, and a naive one is taken to be in the simulation's
time zone (UTC when the simulation time names none), so naive and aware values
compare; booleans are never numbers.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
NUMERIC_TYPES = frozenset({"integer", "number"})
TEMPORAL_TYPES = frozenset({"date", "datetime"})
TEXT_TYPES = frozenset({"string", "enum", "boolean"})


def parse_date(value: Any) -> date | None:
    """A `YYYY-MM-DD` string as a date, else None."""
    if not isinstance(value, str) or not _DATE.match(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def parse_datetime(value: Any, zone: tzinfo | None) -> datetime | None:
    """An ISO 8601 string as an aware datetime (naive ones get `zone`), else None."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None and zone is not None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed


def simulation_now(simulation_time: str) -> datetime:
    """The simulation time as an aware datetime (UTC when the setting names no zone).

    Raises:
        ValueError: The setting is not ISO 8601.
    """
    now = datetime.fromisoformat(simulation_time)
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


def is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def has_type(value: Any, column_type: str, zone: tzinfo | None) -> bool:
    """Whether a non-null value has the JSON shape its column type demands."""
    if column_type in ("string", "enum"):
        return isinstance(value, str)
    if column_type == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if column_type == "number":
        return is_number(value)
    if column_type == "boolean":
        return isinstance(value, bool)
    if column_type == "date":
        return parse_date(value) is not None
    if column_type == "datetime":
        return parse_datetime(value, zone) is not None
    if column_type == "array":
        return isinstance(value, list)
    return isinstance(value, dict)


def temporal(value: Any, column_type: str, zone: tzinfo | None) -> datetime | None:
    """A date (at midnight in `zone`) or datetime value as an aware datetime."""
    if column_type == "date":
        day = parse_date(value)
        return None if day is None else datetime.combine(day, time(), tzinfo=zone)
    return parse_datetime(value, zone)


def day_of(value: Any, column_type: str, zone: tzinfo | None) -> date | None:
    """The calendar date of a date or datetime value, else None."""
    if column_type == "date":
        return parse_date(value)
    moment = parse_datetime(value, zone)
    return None if moment is None else moment.date()


def order_key(value: Any, column_type: str, zone: tzinfo | None) -> Any:
    """A key that orders values of one column type, or None if it has none."""
    if column_type in NUMERIC_TYPES:
        return float(value) if is_number(value) else None
    if column_type in TEMPORAL_TYPES:
        return temporal(value, column_type, zone)
    return None


def value_text(value: Any) -> str:
    """Canonical text of a value: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def key_text(value: Any) -> str | None:
    """The index text of a primary-key value, or None if it cannot be a key.

    Keys are non-empty strings or integers, indexed by their text (as the
    environment runtime does), so `7` and `"7"` are the same key.
    """
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value)
    return text if text else None


def row_label(primary_key: str, row: Mapping[str, Any], index: int) -> str:
    """How messages name a row: `row #3 (transfer_id 'a1')`."""
    key = key_text(row.get(primary_key))
    return f"row #{index}" + (f" ({primary_key} '{key}')" if key else "")


def category(column_type: str) -> str:
    """What a column type can be compared with: numeric, temporal, text or other."""
    if column_type in NUMERIC_TYPES:
        return "numeric"
    if column_type in TEMPORAL_TYPES:
        return "temporal"
    if column_type in TEXT_TYPES:
        return "text"
    return "other"
