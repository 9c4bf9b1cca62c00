"""Tests for the runtime's invariants on the DentalAppointments environment."""

import hashlib
from datetime import datetime
from pathlib import Path

import pytest

from schemas.environment import DatabaseDiff, TableDiff, ToolResult
from tasks.runtime.environment import Environment
from tasks.runtime.implementations import load_implementations
from tasks.runtime.serve import load_environment
from tasks.runtime.table import ToolError
from tests.runtime import (
    ANA,
    ANA_BOOKED,
    ANA_CANCELLED,
    BEN,
    BEN_BOOKED,
    BOOK,
    BRIGHT_SMILES,
    CHEN,
    FIXTURE_DIR,
    FUTURE,
    HARBOR,
    OLD_TOWN,
    SERVER,
    SIMULATION_TIME,
)


def _file_digests(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def _with_body(environment: Environment, name: str, body) -> Environment:
    path = FIXTURE_DIR / "mcp_servers" / f"{SERVER}.py"
    bodies = load_implementations(path, [t.name for t in environment.spec.tools])
    return Environment(environment.spec, environment.base, {**bodies, name: body})


def _book_and_cancel(environment: Environment, session: str) -> str:
    environment.call(session, "authorize_patient", {"patient_id": ANA})
    booked = environment.call(session, "book_appointment", {**BOOK, "confirm": True})
    environment.call(session, "cancel_appointment", {"appointment_id": ANA_BOOKED})
    return booked.content["appointment"]["appointment_id"]


def test_writes_change_neither_the_base_database_nor_the_files(environment):
    """Sessions work on copies: the base hash and every file stay as they were."""
    files = _file_digests(FIXTURE_DIR)
    base = environment.base.state_hash()
    _book_and_cancel(environment, "default")
    assert environment.state_hash("default") != base
    assert environment.base.state_hash() == base
    assert environment.diff("other").empty
    assert _file_digests(FIXTURE_DIR) == files


def test_two_sessions_are_isolated(environment):
    """A write and an authorization in one session are invisible in another."""
    _book_and_cancel(environment, "one")
    assert environment.state_hash("two") == environment.base.state_hash()
    other = environment.call("two", "list_my_appointments", {})
    assert other.error == "not authorized: call authorize_patient first"
    assert set(environment.session_ids) == {"one", "two"}


def test_a_call_without_a_session_runs_in_a_private_session_that_is_dropped(
    environment,
):
    """`call(None, ...)` works on a base copy that no later call sees."""
    authorized = environment.call(None, "authorize_patient", {"patient_id": ANA})
    booked = environment.call(None, "book_appointment", {**BOOK, "confirm": True})
    assert authorized.content == {"authorized": True, "patient_id": ANA}
    assert booked.error == "not authorized: call authorize_patient first"
    assert environment.session_ids == ()


def test_write_tool_changes_the_state_hash_and_read_tools_do_not(environment):
    """Reads keep the hash; a confirmed booking changes it."""
    before = environment.state_hash()
    for tool, arguments in [
        ("authorize_patient", {"patient_id": ANA}),
        ("list_clinics", {}),
        ("list_clinics", {"city": "Lisbon"}),
        ("list_my_appointments", {"status": "booked"}),
    ]:
        assert not environment.call("default", tool, arguments).is_error
        assert environment.state_hash() == before
    environment.call("default", "book_appointment", {**BOOK, "confirm": True})
    assert environment.state_hash() != before


def test_the_same_call_sequence_gives_the_same_state_hash(environment):
    """Seeded ids and the fixed clock make replays match across environments
    and across sessions of one environment."""
    again = load_environment(FIXTURE_DIR, SERVER, simulation_time=SIMULATION_TIME)
    first = _book_and_cancel(environment, "gold")
    second = _book_and_cancel(again, "rollout")
    third = _book_and_cancel(environment, "rollout")
    assert first == second == third
    hashes = {
        environment.state_hash("gold"),
        again.state_hash("rollout"),
        environment.state_hash("rollout"),
    }
    assert len(hashes) == 1


def test_a_different_seed_gives_different_ids(environment):
    """Ids come from the seed, not from chance or the wall clock."""
    other = load_environment(
        FIXTURE_DIR, SERVER, simulation_time=SIMULATION_TIME, seed=8
    )
    assert _book_and_cancel(environment, "a") != _book_and_cancel(other, "a")


def test_diff_reports_the_booking_and_the_cancellation_exactly(environment):
    """The session diff lists the new appointment and the changed status."""
    new_id = _book_and_cancel(environment, "default")
    assert environment.diff() == DatabaseDiff(
        tables={
            "Appointment": TableDiff(
                inserted=(new_id,),
                updated={ANA_BOOKED: {"status": ("booked", "cancelled")}},
            )
        }
    )
    row = environment.session().db.table("Appointment").get(new_id)
    assert row == {
        "appointment_id": new_id,
        "patient_id": ANA,
        "clinic_id": BRIGHT_SMILES,
        "scheduled_at": FUTURE,
        "status": "booked",
        "created_at": SIMULATION_TIME,
    }


def test_tools_refuse_calls_before_authorization(environment):
    """Every non-auth tool needs the bound patient."""
    for tool, arguments in [
        ("list_clinics", {}),
        ("book_appointment", BOOK),
        ("list_my_appointments", {}),
        ("cancel_appointment", {"appointment_id": ANA_BOOKED}),
    ]:
        result = environment.call("default", tool, arguments)
        assert result == ToolResult(
            tool=tool,
            is_error=True,
            error="not authorized: call authorize_patient first",
        )


def test_authorization_binds_the_patient_and_refuses_a_suspended_one(environment):
    """The bound patient scopes later calls; a suspended patient is rejected."""
    assert environment.call("default", "authorize_patient", {"patient_id": BEN}) == (
        ToolResult(
            tool="authorize_patient", content={"authorized": True, "patient_id": BEN}
        )
    )
    refused = environment.call("default", "authorize_patient", {"patient_id": CHEN})
    assert refused.error == (f"patient '{CHEN}' is suspended and cannot be authorized")
    mine = environment.call("default", "list_my_appointments", {})
    ids = [a["appointment_id"] for a in mine.content["appointments"]]
    assert ids == [BEN_BOOKED]
    assert environment.session().authorized_id == BEN


def test_confirmation_previews_without_change_and_acts_with_confirm(environment):
    """confirm=false returns a preview and keeps state; confirm=true books."""
    environment.call("default", "authorize_patient", {"patient_id": ANA})
    before = environment.state_hash()
    preview = environment.call("default", "book_appointment", BOOK)
    assert preview == ToolResult(
        tool="book_appointment",
        content={
            "needs_confirmation": True,
            "action_preview": (f"Book Ana Silva at Bright Smiles Dental on {FUTURE}"),
        },
        needs_confirmation=True,
    )
    assert environment.state_hash() == before
    explicit = environment.call(
        "default", "book_appointment", {**BOOK, "confirm": False}
    )
    assert explicit.needs_confirmation and environment.state_hash() == before
    done = environment.call("default", "book_appointment", {**BOOK, "confirm": True})
    assert not done.is_error and not done.needs_confirmation
    assert environment.diff().tables["Appointment"].inserted == (
        done.content["appointment"]["appointment_id"],
    )


def test_previews_and_failed_calls_do_not_shift_later_ids(environment):
    """Ids are spent only by calls that change state, so a rollout that previews
    or errs first ends in the gold state even when the body draws its id early."""

    def book_appointment(env, clinic_id, scheduled_at, confirm=False):
        appointment_id = env.new_id()
        if env.table("Clinic").get(clinic_id)["accepts_new_patients"] is False:
            raise ToolError("not accepting bookings")
        env.confirm(confirm, f"Book {appointment_id}")
        row = {"appointment_id": appointment_id, "clinic_id": clinic_id}
        return env.table("Appointment").insert(row)

    eager = _with_body(environment, "book_appointment", book_appointment)
    eager.call("gold", "book_appointment", {**BOOK, "confirm": True})
    eager.call("rollout", "book_appointment", BOOK)
    eager.call("rollout", "book_appointment", {**BOOK, "clinic_id": OLD_TOWN})
    eager.call("rollout", "list_clinics", {})
    eager.call("rollout", "book_appointment", {**BOOK, "confirm": True})
    assert eager.state_hash("rollout") == eager.state_hash("gold")
    assert eager.diff("rollout") == eager.diff("gold")
    assert not eager.diff("gold").empty


@pytest.mark.parametrize(
    ("tool", "arguments", "error"),
    [
        (
            "cancel_appointment",
            {"appointment_id": "nope"},
            "no Appointment with appointment_id 'nope'",
        ),
        ("book_appointment", {**BOOK, "clinic_id": "nope"}, "no Clinic with clinic_id"),
        (
            "cancel_appointment",
            {"appointment_id": BEN_BOOKED},
            f"appointment '{BEN_BOOKED}' is not yours",
        ),
        (
            "cancel_appointment",
            {"appointment_id": ANA_CANCELLED},
            f"appointment '{ANA_CANCELLED}' is already cancelled",
        ),
        (
            "book_appointment",
            {**BOOK, "clinic_id": OLD_TOWN},
            "Old Town Orthodontics does not accept new bookings",
        ),
        (
            "book_appointment",
            {**BOOK, "scheduled_at": "2025-01-20T09:00:00-05:00"},
            "is not in the future",
        ),
        (
            "book_appointment",
            {**BOOK, "scheduled_at": "next tuesday"},
            "'next tuesday' is not an ISO 8601 date-time",
        ),
    ],
)
def test_bad_ids_and_policy_violations_are_tool_errors(
    environment, tool, arguments, error
):
    """The tool's own message comes back as an error result; nothing changes."""
    environment.call("default", "authorize_patient", {"patient_id": ANA})
    result = environment.call("default", tool, arguments)
    assert result.is_error and error in (result.error or "")
    assert environment.diff().empty
    assert environment.crashes == ()


def test_an_unknown_tool_is_reported_as_unknown_tool(environment):
    """The phrase evaluators look for is "Unknown tool"."""
    assert environment.call("default", "refund", {}) == ToolResult(
        tool="refund", is_error=True, error="Unknown tool: refund"
    )


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({"clinic_id": HARBOR}, "missing required argument 'scheduled_at'"),
        ({**BOOK, "notes": "x"}, "unknown argument(s) 'notes'"),
        ({**BOOK, "clinic_id": 3}, "argument 'clinic_id' must be of type string"),
        ({**BOOK, "confirm": "yes"}, "argument 'confirm' must be of type boolean"),
    ],
)
def test_invalid_arguments_are_rejected_before_the_body_runs(
    environment, arguments, problem
):
    """Schema violations are tool errors that name the tool and the problem."""
    environment.call("default", "authorize_patient", {"patient_id": ANA})
    result = environment.call("default", "book_appointment", arguments)
    assert result.is_error
    assert (result.error or "").startswith("invalid arguments for book_appointment: ")
    assert problem in (result.error or "")


def test_an_enum_argument_outside_its_values_is_rejected(environment):
    """Enums from the blueprint are enforced."""
    environment.call("default", "authorize_patient", {"patient_id": ANA})
    result = environment.call("default", "list_my_appointments", {"status": "done"})
    assert result.error == (
        "invalid arguments for list_my_appointments: argument 'status' must be one "
        "of 'booked', 'cancelled'; got 'done'"
    )


def test_a_crashing_body_gives_an_internal_error_result_and_is_recorded(
    environment,
):
    """A non-ToolError exception is a result naming the type, plus a crash record."""

    def list_clinics(env, city=None):
        return {"clinics": env.table("Clinics").all()}

    buggy = _with_body(environment, "list_clinics", list_clinics)
    buggy.call("s", "authorize_patient", {"patient_id": ANA})
    result = buggy.call("s", "list_clinics", {"city": "Porto"})
    assert result.is_error
    assert result.error == (
        "internal error in tool list_clinics: KeyError: \"no table 'Clinics'; "
        'tables are Patient, Clinic, Appointment"'
    )
    (crash,) = buggy.crashes
    assert (crash.tool, crash.session_id, crash.error_type, crash.arguments) == (
        "list_clinics",
        "s",
        "KeyError",
        {"city": "Porto"},
    )
    assert 'env.table("Clinics")' in crash.traceback


def test_a_failed_call_undoes_its_writes(environment):
    """A tool error after a write leaves the session as before the call."""

    def cancel_appointment(env, appointment_id):
        env.table("Appointment").update(appointment_id, status="cancelled")
        env.table("Clinic").delete(BRIGHT_SMILES)
        raise ToolError("refund system unavailable")

    flaky = _with_body(environment, "cancel_appointment", cancel_appointment)
    flaky.call("default", "authorize_patient", {"patient_id": ANA})
    result = flaky.call("default", "cancel_appointment", {"appointment_id": ANA_BOOKED})
    assert result.error == "refund system unavailable"
    assert flaky.diff().empty


@pytest.mark.parametrize(
    ("tool", "body", "arguments", "message", "rule"),
    [
        (
            "list_clinics",
            lambda env, city=None: env.table("Clinic").update(HARBOR, city="Faro"),
            {},
            "ContractViolation: a read tool changed the database",
            "read_only",
        ),
        (
            "book_appointment",
            lambda env, clinic_id, scheduled_at, confirm=False: env.table(
                "Appointment"
            ).insert({"appointment_id": "x", "clinic_id": clinic_id}),
            BOOK,
            "ContractViolation: the database changed without confirm=true",
            "confirmation",
        ),
        (
            "list_my_appointments",
            lambda env, status=None: {"at": datetime(2025, 1, 1)},
            {},
            "ContractViolation: the result is not JSON-serialisable (TypeError",
            "json_result",
        ),
    ],
)
def test_bodies_that_break_runtime_rules_are_internal_errors_naming_the_rule(
    environment, tool, body, arguments, message, rule
):
    """Writes in reads, writes before confirmation and non-JSON results are bugs;
    the crash names the rule, so nobody re-derives it from the message."""
    broken = _with_body(environment, tool, body)
    broken.call("default", "authorize_patient", {"patient_id": ANA})
    result = broken.call("default", tool, arguments)
    assert (result.error or "").startswith(f"internal error in tool {tool}: {message}")
    assert broken.diff().empty
    assert [(c.error_type, c.rule) for c in broken.crashes] == [
        ("ContractViolation", rule)
    ]


def test_reset_session_starts_again_from_the_base_state(environment):
    """A reset session forgets its writes and its authorization."""
    _book_and_cancel(environment, "default")
    environment.reset_session("default")
    assert environment.state_hash() == environment.base.state_hash()
    assert environment.session().authorized_id is None
