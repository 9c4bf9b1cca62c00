"""Golden-trajectory arguments are bound declaratively, never by running code."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from schemas.golden import ArgumentBinding, GoldenCall, PlannedCall
from tasks.core.bindings import bind_call

INSTANCES = {
    "Patient": {"patient_id": "p-1", "full_name": "Ada Byron"},
    "Clinic": {"clinic_id": "c-9"},
}
RESULTS = [
    {"patient": {"patient_id": "p-1"}},
    {"appointments": [{"appointment_id": "a-1"}, {"appointment_id": "a-2"}]},
]


def planned(tool: str, **arguments: dict) -> PlannedCall:
    return PlannedCall.model_validate({"tool": tool, "arguments": arguments})


def test_each_source_binds_to_its_concrete_value():
    """A literal, an entity field and a field of an earlier result (through a
    list index) give the concrete call a validated task records."""
    call = planned(
        "cancel_appointment",
        patient_id={"source": "entity", "instance": "Patient", "field": "patient_id"},
        appointment_id={
            "source": "step_result",
            "step": 1,
            "path": ["appointments", -1, "appointment_id"],
        },
        reason={"source": "literal", "value": "moved away"},
        confirm={"source": "literal", "value": True},
    )
    bound = bind_call(call, 2, INSTANCES, RESULTS)
    assert bound == GoldenCall(
        tool="cancel_appointment",
        arguments={
            "appointment_id": "a-2",
            "confirm": True,
            "patient_id": "p-1",
            "reason": "moved away",
        },
    )


def test_every_unbindable_argument_is_reported_with_its_kind():
    """All problems of a call come back together, each naming the argument."""
    call = planned(
        "book",
        a={"source": "entity", "instance": "Dentist", "field": "dentist_id"},
        b={"source": "entity", "instance": "Clinic", "field": "name"},
        c={"source": "step_result", "step": 2, "path": ["x"]},
        d={"source": "step_result", "step": 0, "path": ["patient", "email"]},
        e={"source": "step_result", "step": 1, "path": ["appointments", 5]},
    )
    problems = bind_call(call, 2, INSTANCES, RESULTS)
    assert isinstance(problems, list)
    assert [(p.argument, p.kind) for p in problems] == [
        ("a", "missing_instance"),
        ("b", "missing_field"),
        ("c", "not_an_earlier_step"),
        ("d", "missing_in_result"),
        ("e", "missing_in_result"),
    ]
    assert "instances: Clinic, Patient" in problems[0].message
    assert "appointments/5" in problems[4].message


def test_bindings_are_data_not_code():
    """Only the three declared sources validate; a snippet of code is refused,
    and an agent-facing tool name with a dot (Server.tool) is refused."""
    adapter = TypeAdapter(ArgumentBinding)
    with pytest.raises(ValidationError):
        adapter.validate_python({"source": "code", "value": "params['x'] = 1"})
    with pytest.raises(ValidationError):
        PlannedCall(tool="DentalAppointments.book_appointment")
    assert PlannedCall(tool="DentalAppointments__book_appointment").arguments == {}
