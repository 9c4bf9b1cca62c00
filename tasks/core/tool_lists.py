"""s05 tool list formulation: takes a `ServerBlueprint` and returns its `ToolList`
of OpenAI function-calling schemas (enums, array items, ranges in descriptions,
only required parameters marked required; reference defect 20) and the
`tool_lists/<Server>.json` shape; no side effects."""

from __future__ import annotations

from schemas.blueprint import Function, OpenAITool, Parameter, ServerBlueprint, ToolList
from tasks.core.entities import enum_values

DEFAULT_ITEM_TYPE = "string"


def tool_list(blueprint: ServerBlueprint) -> ToolList:
    """The OpenAI tool schemas of a blueprint's functions, in function order.

    Args:
        blueprint: A canonical blueprint.

    Returns:
        One `{"type": "function", "function": {...}}` tool per function; every
        array parameter has `items`, and `additionalProperties` is false.
    """
    return ToolList(
        server_name=blueprint.server_name,
        tools=tuple(
            OpenAITool(function=_function_schema(function))
            for function in blueprint.functions
        ),
    )


def _function_schema(function: Function) -> dict[str, object]:
    return {
        "name": function.name,
        "description": function.description,
        "parameters": {
            "type": "object",
            "properties": {
                name: _property(parameter)
                for name, parameter in function.parameters.items()
            },
            "required": [
                name
                for name, parameter in function.parameters.items()
                if parameter.required
            ],
            "additionalProperties": False,
        },
    }


def _property(parameter: Parameter) -> dict[str, object]:
    schema: dict[str, object] = {
        "type": parameter.type,
        "description": _description(parameter),
    }
    if parameter.type == "array":
        items: dict[str, object] = {"type": parameter.items_type or DEFAULT_ITEM_TYPE}
        if parameter.enum:
            items["enum"] = list(parameter.enum)
        schema["items"] = items
    elif parameter.enum:
        schema["enum"] = list(parameter.enum)
    return schema


def _description(parameter: Parameter) -> str:
    """The description, plus the range unless it only repeats the enum values."""
    text = parameter.description.strip()
    span = parameter.range.strip()
    if not span or (parameter.enum and enum_values(None, span) == parameter.enum):
        return text
    return f"{text} (range: {span})" if text else f"Range: {span}"


def tool_list_export(tools: ToolList) -> list[dict]:
    """A tool list in the `tool_lists/<Server>.json` shape.

    Args:
        tools: The server's tool list.

    Returns:
        The list of tool dicts.
    """
    return [tool.model_dump(mode="json") for tool in tools.tools]
