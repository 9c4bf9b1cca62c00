"""Tool argument validation against a tool's JSON schema (the subset the runtime
generates: `type`, `enum`, `items`, `required`, `additionalProperties`). Inputs: the
schema and the arguments an agent sent. Output: the arguments ready for the tool
body (a copy; integral floats given for integers become ints) or a `ToolError`
listing every problem in words an agent can act on. No side effects."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tasks.runtime.table import ToolError, clone


def parse_arguments(
    tool: str, schema: Mapping[str, Any], arguments: Mapping[str, Any]
) -> dict[str, Any]:
    """Check arguments against an object schema.

    Args:
        tool: The tool name, for the message.
        schema: The tool's parameters schema.
        arguments: What the caller sent.

    Returns:
        A copy of the arguments; floats with an integral value given for
        "integer" parameters are converted to int.

    Raises:
        ToolError: Listing every missing, unknown or ill-typed argument.
    """
    problems = argument_problems(schema, arguments)
    if problems:
        raise ToolError(f"invalid arguments for {tool}: {'; '.join(problems)}")
    properties: Mapping[str, Any] = schema.get("properties", {})
    return {
        name: _normalised(value, properties.get(name, {}))
        for name, value in arguments.items()
    }


def argument_problems(
    schema: Mapping[str, Any], arguments: Mapping[str, Any]
) -> list[str]:
    """Every way the arguments break the schema, as sentences (empty if none).

    Args:
        schema: An object schema with `properties`.
        arguments: The arguments to check.

    Returns:
        The problems, in a stable order: missing, unknown, then per argument.
    """
    properties: Mapping[str, Any] = schema.get("properties", {})
    problems = [
        f"missing required argument '{name}'"
        for name in schema.get("required", ())
        if name not in arguments
    ]
    if schema.get("additionalProperties", True) is False:
        unknown = [name for name in arguments if name not in properties]
        if unknown:
            expected = ", ".join(f"'{name}'" for name in properties) or "none"
            problems.append(
                f"unknown argument(s) {', '.join(repr(n) for n in unknown)}; "
                f"accepted: {expected}"
            )
    for name, value in arguments.items():
        if name in properties:
            problems += _value_problems(value, properties[name], f"argument '{name}'")
    return problems


def _value_problems(value: Any, schema: Mapping[str, Any], where: str) -> list[str]:
    expected = schema.get("type")
    if expected is not None and not _has_type(value, expected):
        wanted = " or ".join(expected) if isinstance(expected, list) else expected
        omit = " (omit it instead of passing null)" if value is None else ""
        return [f"{where} must be of type {wanted}, not {_json_type(value)}{omit}"]
    enum = schema.get("enum")
    if enum is not None and value not in enum:
        allowed = ", ".join(repr(item) for item in enum)
        return [f"{where} must be one of {allowed}; got {value!r}"]
    items = schema.get("items")
    if isinstance(value, list) and isinstance(items, Mapping):
        problems: list[str] = []
        for index, item in enumerate(value):
            problems += _value_problems(item, items, f"{where} item {index}")
        return problems
    return []


def _has_type(value: Any, expected: str | list[str]) -> bool:
    if isinstance(expected, list):
        return any(_has_type(value, kind) for kind in expected)
    match expected:
        case "string":
            return isinstance(value, str)
        case "integer":
            return _is_integer(value)
        case "number":
            return isinstance(value, int | float) and not isinstance(value, bool)
        case "boolean":
            return isinstance(value, bool)
        case "array":
            return isinstance(value, list)
        case "object":
            return isinstance(value, dict)
        case "null":
            return value is None
    return True


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    for kind in ("boolean", "integer", "number", "string", "array", "object"):
        if _has_type(value, kind):
            return kind
    return type(value).__name__


def _normalised(value: Any, schema: Mapping[str, Any]) -> Any:
    kind = schema.get("type")
    if kind == "integer" and isinstance(value, float):
        return int(value)
    items = schema.get("items")
    if isinstance(value, list) and isinstance(items, Mapping):
        return [_normalised(item, items) for item in value]
    return clone(value)
