"""Tests for tool argument validation against the tool's JSON schema."""

import pytest

from tasks.runtime.arguments import argument_problems, parse_arguments
from tasks.runtime.table import ToolError

SCHEMA = {
    "type": "object",
    "properties": {
        "clinic_id": {"type": "string"},
        "party_size": {"type": "integer"},
        "budget": {"type": "number"},
        "status": {"type": "string", "enum": ["booked", "cancelled"]},
        "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
        "confirm": {"type": "boolean", "default": False},
        "extra": {"type": "object"},
    },
    "required": ["clinic_id"],
    "additionalProperties": False,
}


def test_valid_arguments_have_no_problems():
    """Every declared type accepts its JSON values."""
    arguments = {
        "clinic_id": "c1",
        "party_size": 2,
        "budget": 9.5,
        "status": "booked",
        "tags": ["a", "b"],
        "confirm": True,
        "extra": {"k": 1},
    }
    assert argument_problems(SCHEMA, arguments) == []


@pytest.mark.parametrize(
    ("arguments", "problems"),
    [
        ({}, ["missing required argument 'clinic_id'"]),
        (
            {"clinic_id": "c1", "when": "now"},
            [
                "unknown argument(s) 'when'; accepted: 'clinic_id', 'party_size', "
                "'budget', 'status', 'tags', 'confirm', 'extra'"
            ],
        ),
        (
            {"clinic_id": 7},
            ["argument 'clinic_id' must be of type string, not integer"],
        ),
        (
            {"clinic_id": "c1", "party_size": True},
            ["argument 'party_size' must be of type integer, not boolean"],
        ),
        (
            {"clinic_id": "c1", "party_size": 2.5},
            ["argument 'party_size' must be of type integer, not number"],
        ),
        (
            {"clinic_id": "c1", "status": "done"},
            ["argument 'status' must be one of 'booked', 'cancelled'; got 'done'"],
        ),
        (
            {"clinic_id": "c1", "tags": ["a", "z", 3]},
            [
                "argument 'tags' item 1 must be one of 'a', 'b'; got 'z'",
                "argument 'tags' item 2 must be of type string, not integer",
            ],
        ),
        (
            {"clinic_id": None},
            [
                "argument 'clinic_id' must be of type string, not null (omit it "
                "instead of passing null)"
            ],
        ),
        (
            {"clinic_id": "c1", "confirm": "yes"},
            ["argument 'confirm' must be of type boolean, not string"],
        ),
    ],
)
def test_each_problem_is_named_in_words_an_agent_can_act_on(arguments, problems):
    """Missing, unknown, ill-typed and out-of-enum arguments are all reported."""
    assert argument_problems(SCHEMA, arguments) == problems


def test_parse_arguments_raises_one_tool_error_listing_all_problems():
    """The tool name leads, and problems are joined in order."""
    with pytest.raises(ToolError) as caught:
        parse_arguments("book", SCHEMA, {"party_size": "2"})
    assert str(caught.value) == (
        "invalid arguments for book: missing required argument 'clinic_id'; "
        "argument 'party_size' must be of type integer, not string"
    )


def test_parse_arguments_returns_a_copy_with_integral_floats_as_ints():
    """2.0 for an integer becomes 2; nested values are copied, not shared."""
    extra = {"nested": [1]}
    parsed = parse_arguments(
        "book", SCHEMA, {"clinic_id": "c1", "party_size": 2.0, "extra": extra}
    )
    assert parsed == {"clinic_id": "c1", "party_size": 2, "extra": {"nested": [1]}}
    assert type(parsed["party_size"]) is int
    parsed["extra"]["nested"].append(2)
    assert extra == {"nested": [1]}


def test_schemas_that_allow_extra_properties_accept_unknown_arguments():
    """additionalProperties is honoured rather than assumed false."""
    schema = {"type": "object", "properties": {}}
    assert argument_problems(schema, {"anything": 1}) == []
