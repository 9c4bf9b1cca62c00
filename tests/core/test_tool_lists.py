"""Tests for s05 tool list formulation."""

from schemas.blueprint import Function, OpenAITool, Parameter, ServerBlueprint, ToolList
from tasks.core.tool_lists import tool_list, tool_list_export


def _blueprint() -> ServerBlueprint:
    return ServerBlueprint(
        server_name="PatientCare",
        description="Visits",
        core_entity="Patient",
        peripheral_entities=("Clinic",),
        relationships=(),
        functions=(
            Function(
                name="find_visits",
                description="Find visits.",
                effect="read",
                parameters={
                    "patient_id": Parameter(description="Patient", type="string"),
                    "status": Parameter(
                        description="Status",
                        type="string",
                        range="booked,done",
                        enum=("booked", "done"),
                        required=False,
                    ),
                    "kinds": Parameter(
                        description="Kinds",
                        type="array",
                        enum=("dental", "general"),
                        items_type="string",
                        required=False,
                    ),
                    "ids": Parameter(description="Ids", type="array"),
                    "limit": Parameter(
                        description="How many",
                        type="integer",
                        range="1-50",
                        required=False,
                    ),
                    "day": Parameter(description="", type="string", range="YYYY-MM-DD"),
                },
            ),
            Function(
                name="ping", description="Liveness.", effect="read", parameters={}
            ),
        ),
    )


def test_tool_list_builds_openai_schemas_with_enums_items_and_required():
    """Enums, array items, ranges and optional parameters all reach the schema."""
    assert tool_list(_blueprint()) == ToolList(
        server_name="PatientCare",
        tools=(
            OpenAITool(
                function={
                    "name": "find_visits",
                    "description": "Find visits.",
                    "parameters": {
                        "type": "object",
                        "properties": {
                            "patient_id": {"type": "string", "description": "Patient"},
                            "status": {
                                "type": "string",
                                "description": "Status",
                                "enum": ["booked", "done"],
                            },
                            "kinds": {
                                "type": "array",
                                "description": "Kinds",
                                "items": {
                                    "type": "string",
                                    "enum": ["dental", "general"],
                                },
                            },
                            "ids": {
                                "type": "array",
                                "description": "Ids",
                                "items": {"type": "string"},
                            },
                            "limit": {
                                "type": "integer",
                                "description": "How many (range: 1-50)",
                            },
                            "day": {
                                "type": "string",
                                "description": "Range: YYYY-MM-DD",
                            },
                        },
                        "required": ["patient_id", "ids", "day"],
                        "additionalProperties": False,
                    },
                }
            ),
            OpenAITool(
                function={
                    "name": "ping",
                    "description": "Liveness.",
                    "parameters": {
                        "type": "object",
                        "properties": {},
                        "required": [],
                        "additionalProperties": False,
                    },
                }
            ),
        ),
    )


def test_tool_list_export_is_the_list_of_tool_dicts():
    """The file shape is a JSON list of {"type": "function", "function": ...}."""
    exported = tool_list_export(tool_list(_blueprint()))
    assert [tool["type"] for tool in exported] == ["function", "function"]
    assert exported[1] == {
        "type": "function",
        "function": {
            "name": "ping",
            "description": "Liveness.",
            "parameters": {
                "type": "object",
                "properties": {},
                "required": [],
                "additionalProperties": False,
            },
        },
    }
