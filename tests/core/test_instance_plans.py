"""s15 plan checks: what the planning model is told about a plan that cannot
drive the selection, and the canonical plan of one that can."""

from __future__ import annotations

from schemas.instance_plan import PlannedArgument
from tasks.core.instance_plans import (
    canonical_plan,
    instance_key_problem,
    plan_problems,
    table_columns,
    tool_parameters,
    value_keys,
)
from tests.dental_combinations import ROWS, TOOLS, TRAJECTORY, plan_data, plan_draft

TOOL_PARAMS = tool_parameters(TOOLS)
COLUMNS = table_columns({name: t.rows for name, t in ROWS.items()})


def _problems(**changes) -> list[str]:
    return plan_problems(plan_draft(**changes), TRAJECTORY, TOOL_PARAMS, COLUMNS)


def _steps_with(index: int, arguments: list[dict]) -> list[dict]:
    steps = plan_data()["steps"]
    steps[index] = {**steps[index], "arguments": arguments}
    return steps


def test_a_plan_that_binds_every_required_parameter_has_no_problems():
    """The fixture plan passes every check."""
    assert _problems() == []


def test_tool_parameters_come_from_the_listing_with_the_required_ones():
    """Names and required names of each tool, as the agent sees them."""
    book = TOOL_PARAMS["book_appointment"]
    assert book.names == {"clinic_id", "scheduled_at"}
    assert book.required == {"clinic_id", "scheduled_at"}
    assert TOOL_PARAMS["list_clinics"].required == frozenset()


def test_steps_out_of_trajectory_order_are_rejected_naming_the_order():
    """The steps must be the trajectory's tools in order."""
    steps = plan_data()["steps"]
    problems = _problems(steps=[steps[1], steps[0], steps[2]])
    assert problems == [
        "`steps` must list the trajectory's tools in order, one step each: "
        "authorize_patient, list_my_appointments, cancel_appointment"
    ]


def test_unknown_parameter_and_unbound_required_parameter_are_named():
    """A parameter the tool lacks and a required one left without a source."""
    wrong = {"parameter": "visit_id", "source": "value", "domain": ["a1"]}
    problems = _problems(steps=_steps_with(2, [wrong]))
    assert problems == [
        "step 2 (cancel_appointment): the tool has no parameter 'visit_id'; "
        "its parameters: appointment_id",
        "step 2 (cancel_appointment): required parameter 'appointment_id' has no "
        "source",
    ]


def test_entity_field_must_be_a_column_of_the_instances_table():
    """A field the table does not have is rejected with the table's columns."""
    arg = {
        "parameter": "patient_id",
        "source": "entity",
        "instance": "Patient",
        "field": "patient_number",
    }
    [problem] = _problems(steps=_steps_with(0, [arg]))
    assert problem == (
        "step 0 (authorize_patient) parameter 'patient_id': table Patient has no "
        "column 'patient_number'; its columns: email, full_name, patient_id, status"
    )


def test_entity_source_needs_a_declared_instance():
    """An instance key the plan never declared is rejected."""
    arg = {
        "parameter": "appointment_id",
        "source": "entity",
        "instance": "Appointment_2",
        "field": "appointment_id",
    }
    [problem] = _problems(steps=_steps_with(2, [arg]))
    assert "instance 'Appointment_2' is not in `instances`" in problem


def test_step_result_must_point_to_an_earlier_step():
    """A result of the same or a later step cannot bind an argument."""
    same = {"parameter": "appointment_id", "source": "step_result", "step": 2}
    problems = _problems(steps=_steps_with(2, [{**same, "path": ["id"]}]))
    assert problems == [
        "step 2 (cancel_appointment) parameter 'appointment_id': a step_result "
        "source must name an earlier step (0..1)"
    ]
    earlier = {**same, "step": 1, "path": ["appointments", 0, "appointment_id"]}
    assert _problems(steps=_steps_with(2, [earlier])) == []


def test_value_source_needs_a_non_empty_domain():
    """A value the selection code must pick needs values to pick from."""
    arg = {"parameter": "status", "source": "value", "domain": []}
    [problem] = _problems(steps=_steps_with(1, [arg]))
    assert problem.endswith("a value source needs a non-empty `domain`")


def test_instances_must_be_tables_of_this_server_with_well_formed_keys():
    """Another server's table and a key that is not `<Table>[_n]` are rejected."""
    instances = plan_data()["instances"] + [
        {"key": "Flight", "table": "Flight"},
        {"key": "Visit", "table": "Appointment"},
    ]
    problems = _problems(instances=instances)
    assert problems[0].startswith(
        "instance 'Flight' names table 'Flight', which this server does not have"
    )
    assert problems[1] == instance_key_problem("Visit", "Appointment")
    assert instance_key_problem("Appointment_2", "Appointment") is None
    assert instance_key_problem("Appointment_1", "Appointment") is not None


def test_canonical_plan_keeps_only_the_fields_of_each_source():
    """An entity source drops a stray domain; value keys are `<step>.<param>`."""
    steps = plan_data()["steps"]
    steps[0]["arguments"][0]["domain"] = ["p1"]
    plan = canonical_plan(plan_draft(steps=steps))
    assert plan.steps[0].arguments["patient_id"] == PlannedArgument(
        source="entity", instance="Patient", field="patient_id"
    )
    assert value_keys(plan) == {"1.status": ("booked",)}
    assert list(plan.instances) == ["Patient", "Appointment"]
