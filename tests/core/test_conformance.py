"""The s09 conformance suite: which checks are generated, how arguments are
sampled from the data, and that each check catches the bug it is for when run
in-process against the DentalAppointments fixture with one tool body replaced."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from schemas.environment import ToolSpec
from tasks.core.conformance import (
    authorization_required,
    build_suite,
    outcomes_not_run,
)
from tasks.core.conformance_run import run_suite
from tasks.core.conformance_samples import column_values, sample_arguments
from tasks.core.policy import parse_policy
from tasks.runtime.database import data_paths
from tasks.runtime.environment import Environment
from tasks.runtime.harness import EnvironmentTarget
from tasks.runtime.implementations import load_implementations
from tasks.runtime.serve import load_environment, tool_module_path
from tasks.runtime.table import ToolError
from tests.runtime import (
    ANA,
    ANA_BOOKED,
    ANA_CANCELLED,
    BRIGHT_SMILES,
    FIXTURE_DIR,
    HARBOR,
    SERVER,
    SIMULATION_TIME,
)

FIXTURE = load_environment(FIXTURE_DIR, SERVER, simulation_time=SIMULATION_TIME)
SPEC = FIXTURE.spec
ROWS = {name: table.all() for name, table in FIXTURE.base.tables.items()}
TOOLS = {tool.name: tool for tool in SPEC.tools}


def _policy(section: str) -> Any:
    return parse_policy(
        "<!-- POLICY_START -->\nRules.\n<!-- GLOBAL_RULES_END -->\n"
        f"<!-- TOOL: list_clinics -->\n{section}\n<!-- TOOL_END: list_clinics -->\n"
        "<!-- POLICY_END -->\n"
    )


def _outcomes(**bodies: Callable[..., Any]) -> dict[str, Any]:
    """Run the suite against the fixture with some tool bodies replaced."""
    names = [tool.name for tool in SPEC.tools]
    implementations = load_implementations(tool_module_path(FIXTURE_DIR, SERVER), names)
    implementations.update(bodies)
    environment = Environment(SPEC, FIXTURE.base, implementations)
    target = EnvironmentTarget(
        environment, list(data_paths(FIXTURE_DIR, SPEC).values())
    )
    suite = build_suite(SPEC, policy=None, samples=2, seed=7)
    return {o.id: o for o in run_suite(target, suite, SPEC, ROWS)}


def _failed(outcomes: dict[str, Any]) -> list[str]:
    return [check_id for check_id, outcome in outcomes.items() if not outcome.passed]


def test_suite_lists_the_checks_in_the_order_they_run():
    """Per tool: valid calls, then read-only, confirmation and authorization."""
    suite = build_suite(SPEC, policy=None, samples=2, seed=7)
    assert [check.id for check in suite.checks] == [
        "signatures",
        "authorization",
        "valid_calls/authorize_patient",
        "read_only/authorize_patient",
        "valid_calls/list_clinics",
        "read_only/list_clinics",
        "unauthorized/list_clinics",
        "valid_calls/book_appointment",
        "confirmation/book_appointment",
        "unauthorized/book_appointment",
        "valid_calls/list_my_appointments",
        "read_only/list_my_appointments",
        "unauthorized/list_my_appointments",
        "valid_calls/cancel_appointment",
        "unauthorized/cancel_appointment",
        "isolation",
        "determinism",
    ]
    assert suite.confirm_tools == ("book_appointment",)
    assert suite.model_validate_json(suite.model_dump_json()) == suite


def test_every_tool_but_the_authorization_tool_needs_it_by_default():
    """The runtime contract: later tools act for the authorized user."""
    assert authorization_required(SPEC, None) == (
        "list_clinics",
        "book_appointment",
        "list_my_appointments",
        "cancel_appointment",
    )


@pytest.mark.parametrize(
    ("section", "exempt"),
    [
        ("Preconditions:\n- None; this tool does not require authorization.", True),
        ("No authorization is required to browse clinics.", True),
        ("Authorization is not required.", True),
        ("Rejected: the session is not authorized.", False),
        ("Rejected when called without authorization.", False),
    ],
)
def test_only_an_explicit_policy_sentence_exempts_a_tool(section, exempt):
    """Rejection wording mentions authorization too; it must not exempt."""
    required = authorization_required(SPEC, _policy(section))
    assert ("list_clinics" not in required) == exempt


def test_sampled_arguments_are_seeded_and_prefer_the_users_rows():
    """Exact samples for the fixture: Ana's appointments, enum values, data."""
    samples = {
        tool.name: [
            sample_arguments(
                tool, SPEC, ROWS, user_id=ANA, rng=random.Random(f"7:{tool.name}:{k}")
            )
            for k in range(2)
        ]
        for tool in SPEC.tools
    }
    assert samples == {
        "authorize_patient": [{"patient_id": ANA}, {"patient_id": ANA}],
        "list_clinics": [{}, {"city": "Porto"}],
        "book_appointment": [
            {"clinic_id": HARBOR, "scheduled_at": "2024-12-05T14:30:00-05:00"},
            {"clinic_id": HARBOR, "scheduled_at": "2025-01-28T10:00:00-05:00"},
        ],
        "list_my_appointments": [{"status": "booked"}, {"status": "booked"}],
        "cancel_appointment": [
            {"appointment_id": ANA_BOOKED},
            {"appointment_id": ANA_BOOKED},
        ],
    }


def test_key_parameters_draw_from_every_column_holding_that_key():
    """`clinic_id` values come from Clinic and from Appointment's foreign key;
    the user's own come first."""
    own, every = column_values("clinic_id", SPEC, ROWS, user_id=ANA)
    assert own == [BRIGHT_SMILES, HARBOR]
    assert len(every) == 3
    own, every = column_values("appointment_id", SPEC, ROWS, user_id=ANA)
    assert own == [ANA_BOOKED, ANA_CANCELLED]
    assert column_values("appointment_id", SPEC, ROWS, user_id=None)[0] == []


def test_values_without_data_follow_the_schema_range_and_the_clock():
    """Numbers stay inside the stated range; dates and times lie after now."""
    tool = ToolSpec(
        name="plan_trip",
        description="x",
        effect="write",
        parameters={
            "type": "object",
            "properties": {
                "budget": {"type": "number", "description": "Limit (range: 500-900)"},
                "nights": {"type": "integer", "description": "Nights"},
                "travel_date": {"type": "string"},
                "pickup_time": {"type": "string"},
                "tags": {"type": "array", "items": {"type": "string", "enum": ["a"]}},
            },
            "required": ["budget", "nights", "travel_date", "pickup_time", "tags"],
        },
    )
    args = sample_arguments(tool, SPEC, ROWS, user_id=None, rng=random.Random(1))
    assert 500 <= args["budget"] <= 900
    assert 1 <= args["nights"] <= 10
    assert "2025-01-24" <= args["travel_date"] <= "2025-02-22"
    assert args["pickup_time"].endswith("T10:00:00-05:00")
    assert args["pickup_time"] > SIMULATION_TIME
    assert args["tags"] == ["a"]


def test_the_fixture_module_passes_every_check():
    """The hand-written reference module conforms."""
    assert _failed(_outcomes()) == []


def test_a_read_tool_that_writes_fails_read_only():
    """The runtime's contract violation is reported under read_only."""

    def list_clinics(env: Any, city: str | None = None) -> dict:
        env.require_auth()
        clinic = env.table("Clinic").all()[0]
        env.table("Clinic").update(clinic["clinic_id"], city=clinic["city"])
        return {"clinics": []}

    outcomes = _outcomes(list_clinics=list_clinics)
    assert _failed(outcomes) == ["read_only/list_clinics"]
    message = outcomes["read_only/list_clinics"].message
    assert "crashed: ContractViolation: a read tool changed the database" in message


def test_a_crash_on_valid_arguments_names_the_call_and_the_traceback():
    """A KeyError in a tool body fails valid_calls with the traceback tail."""

    def list_clinics(env: Any, city: str | None = None) -> dict:
        env.require_auth()
        return {"clinics": env.table("Clinic").all()[0]["town"]}

    outcomes = _outcomes(list_clinics=list_clinics)
    assert _failed(outcomes) == ["valid_calls/list_clinics"]
    message = outcomes["valid_calls/list_clinics"].message
    assert message.startswith("list_clinics({}) crashed: KeyError: 'town'")
    assert "in list_clinics" in message


def test_a_tool_that_skips_authorization_fails_unauthorized():
    """A call before authorization must be a tool error."""

    def list_clinics(env: Any, city: str | None = None) -> dict:
        return {"clinics": env.table("Clinic").all()}

    outcomes = _outcomes(list_clinics=list_clinics)
    assert _failed(outcomes) == ["unauthorized/list_clinics"]
    assert "succeeded before any authorization" in (
        outcomes["unauthorized/list_clinics"].message
    )


def test_module_state_shared_between_sessions_fails_determinism():
    """A counter kept outside the session gives different results on replay."""
    seen: list[int] = []

    def list_clinics(env: Any, city: str | None = None) -> dict:
        env.require_auth()
        seen.append(1)
        return {"calls": len(seen)}

    outcomes = _outcomes(list_clinics=list_clinics)
    assert _failed(outcomes) == ["determinism"]
    assert "in a fresh session" in outcomes["determinism"].message


def test_an_authorization_that_binds_nobody_fails_and_stops_the_user_checks():
    """Success without binding, and accepting an unknown id, are both reported;
    checks that need an authorized session are not run."""

    def authorize_patient(env: Any, patient_id: str) -> dict:
        return {"authorized": True}

    outcomes = _outcomes(authorize_patient=authorize_patient)
    message = outcomes["authorization"].message
    assert "accepted an id that no Patient has" in message
    assert "succeeded but bound nobody" in message
    assert outcomes["valid_calls/list_clinics"].message == (
        "not run: no session could be authorized"
    )
    assert outcomes["unauthorized/list_clinics"].passed


def test_a_write_before_confirmation_fails_the_confirmation_check():
    """Writing without confirm=true is caught (and undone) by the runtime."""

    def book_appointment(
        env: Any, clinic_id: str, scheduled_at: str, confirm: bool = False
    ) -> dict:
        patient = env.require_auth()
        row = {
            "appointment_id": env.new_id(),
            "patient_id": patient["patient_id"],
            "clinic_id": clinic_id,
            "scheduled_at": scheduled_at,
            "status": "booked",
        }
        return {"appointment": env.table("Appointment").insert(row)}

    outcomes = _outcomes(book_appointment=book_appointment)
    assert _failed(outcomes) == ["confirmation/book_appointment"]
    assert "without confirm=true" in outcomes["confirmation/book_appointment"].message


def test_changed_data_files_fail_isolation():
    """The files check compares the data files before and after the calls."""

    class Drifting(EnvironmentTarget):
        digests = iter(["before", "after"])

        def files_hash(self) -> str:
            return next(self.digests)

    names = [tool.name for tool in SPEC.tools]
    bodies = load_implementations(tool_module_path(FIXTURE_DIR, SERVER), names)
    target = Drifting(Environment(SPEC, FIXTURE.base, bodies), [])
    suite = build_suite(SPEC, policy=None, samples=1, seed=7)
    outcomes = {o.id: o for o in run_suite(target, suite, SPEC, ROWS)}
    assert outcomes["isolation"].message == (
        "the data files changed; tools must never write files"
    )


def test_a_tool_error_is_never_a_failure():
    """Rejecting every request is allowed (policy tests judge the rules)."""

    def cancel_appointment(
        env: Any, appointment_id: str, confirm: bool = False
    ) -> dict:
        env.require_auth()
        raise ToolError("cancellations are closed")

    assert _failed(_outcomes(cancel_appointment=cancel_appointment)) == []


def test_checks_not_run_carry_the_reason():
    """When the signatures fail, every other check says why it did not run."""
    suite = build_suite(SPEC, policy=None, samples=1, seed=7)
    outcomes = outcomes_not_run(suite, "the signatures check failed")
    assert len(outcomes) == len(suite.checks) - 1
    assert {o.message for o in outcomes} == {"not run: the signatures check failed"}
    assert not any(o.passed for o in outcomes)
