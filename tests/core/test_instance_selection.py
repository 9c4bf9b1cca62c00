"""s15 selection runs: typed outcomes of a finished script, the check of each
combination against the tables and the plan, declarative calls, ids, the seeded
choice, the convergence rule and the exports."""

from __future__ import annotations

import json

from schemas.artifact import FailedItem
from schemas.golden import EntityFieldArg, LiteralArg, PlannedCall, StepResultArg
from schemas.sandbox import SandboxResult
from tasks.core.combination_exports import (
    failure_kind,
    skipped_entry,
    skipped_export,
    value_domain_samples,
)
from tasks.core.instance_plans import canonical_plan
from tasks.core.instance_selection import (
    Selected,
    check_combination,
    choose,
    combo_id,
    keep_going,
    selection_request,
    selection_run,
)
from tests.dental_combinations import GOOD_SCRIPT, ROWS, plan_data, plan_draft

PLAN = canonical_plan(plan_draft())
P1, P3 = ROWS["Patient"].rows[0], ROWS["Patient"].rows[2]
A1, A4 = ROWS["Appointment"].rows[0], ROWS["Appointment"].rows[3]


def _ran(combinations) -> SandboxResult:
    output = json.dumps({"combinations": combinations})
    return SandboxResult(
        status="ok", returncode=0, files={"output.json": output}, message="ok"
    )


def _combo(patient: dict, visit: dict, status: str = "booked") -> dict:
    return {
        "instances": {"Patient": patient, "Appointment": visit},
        "values": {"1.status": status},
    }


def test_request_gives_the_script_the_plan_value_domains_and_table_copies():
    """input.json: plan, primary keys, domains, seed, time; a file per table."""
    request = selection_request(
        GOOD_SCRIPT, PLAN, ROWS, seed=5, simulation_time="T", timeout_s=2.5
    )
    spec = json.loads(request.files["input.json"])
    assert spec["tables"] == {
        "Appointment": "appointment_id",
        "Clinic": "clinic_id",
        "Patient": "patient_id",
    }
    assert spec["values"] == {"1.status": ["booked"]}
    assert (spec["seed"], spec["simulation_time"]) == (5, "T")
    assert json.loads(request.files["tables/Patient.json"]) == list(
        ROWS["Patient"].rows
    )
    assert request.argv == ("python", "select.py") and request.cpu_s == 3
    assert not request.network


def test_a_run_keeps_the_tables_own_rows_and_builds_declarative_calls():
    """Records are replaced by the table's rows; each argument is bound as planned."""
    partial = {"patient_id": "p1"}
    run = selection_run(_ran([_combo(partial, A1)]), PLAN, ROWS)
    assert run.status == "ok" and run.rejected == 0
    [combo] = run.combinations
    assert combo.instances == {"Patient": P1, "Appointment": A1}
    assert combo.calls == (
        PlannedCall(
            tool="authorize_patient",
            arguments={
                "patient_id": EntityFieldArg(instance="Patient", field="patient_id")
            },
        ),
        PlannedCall(
            tool="list_my_appointments",
            arguments={"status": LiteralArg(value="booked")},
        ),
        PlannedCall(
            tool="cancel_appointment",
            arguments={
                "appointment_id": EntityFieldArg(
                    instance="Appointment", field="appointment_id"
                )
            },
        ),
    )


def test_a_combination_naming_a_missing_row_is_filtered_out_with_its_reason():
    """One good and one bad combination: the bad one is rejected and reported."""
    ghost = {"appointment_id": "zz9"}
    run = selection_run(_ran([_combo(P1, A1), _combo(P3, ghost)]), PLAN, ROWS)
    assert run.status == "ok" and len(run.combinations) == 1 and run.rejected == 1
    assert run.problems == (
        "combination 1: instance 'Appointment': no row with appointment_id = 'zz9'",
    )


def test_only_bad_combinations_make_a_bad_reference_run():
    """A value outside its domain and a missing instance leave nothing."""
    run = selection_run(
        _ran([_combo(P1, A1, status="cancelled"), {"instances": {"Patient": P1}}]),
        PLAN,
        ROWS,
    )
    assert run.status == "bad_reference" and run.combinations == ()
    assert run.problems == (
        "combination 0: value 'cancelled' for 1.status is not in its domain",
        "combination 1: instance 'Appointment' is missing",
        "combination 1: no value for 1.status",
    )


def test_a_field_missing_from_the_row_is_a_binding_problem():
    """bind_call reports a field the selected row lacks."""
    data = plan_data()
    data["steps"][0]["arguments"][0]["field"] = "email"
    plan = canonical_plan(plan_draft(steps=data["steps"]))
    rows = dict(ROWS)
    patient = {k: v for k, v in P1.items() if k != "email"}
    rows["Patient"] = type(ROWS["Patient"])("patient_id", (patient,))
    result = check_combination(_combo(patient, A1), plan, rows)
    assert result == [
        "authorize_patient.patient_id: instance 'Patient' has no field 'email'"
    ]


def test_earlier_result_bindings_are_assumed_when_checking():
    """A step_result argument is left for the golden run, not a problem here."""
    data = plan_data()
    data["steps"][2]["arguments"] = [
        {
            "parameter": "appointment_id",
            "source": "step_result",
            "step": 1,
            "path": ["appointments", 0, "appointment_id"],
        }
    ]
    plan = canonical_plan(plan_draft(steps=data["steps"]))
    result = check_combination(_combo(P1, A1), plan, ROWS)
    assert isinstance(result, Selected)
    assert result.calls[2].arguments["appointment_id"] == StepResultArg(
        step=1, path=("appointments", 0, "appointment_id")
    )


def test_failed_runs_are_typed_timeout_crash_empty_and_unreadable():
    """Each way a run can fail has its own status; stdout of a crash is kept."""
    timeout = SandboxResult(status="timeout", message="timed out after 0.5 s")
    crash = SandboxResult(
        status="exit_error",
        returncode=1,
        stdout='{"error": "no Patient table"}',
        stderr="Traceback ...\nKeyError: 'Appointments'",
        message="exited with code 1",
    )
    junk = SandboxResult(status="ok", files={"output.json": "not json"}, message="ok")
    assert selection_run(timeout, PLAN, ROWS).status == "timeout"
    crashed = selection_run(crash, PLAN, ROWS)
    assert crashed.status == "script_failed"
    assert "KeyError: 'Appointments'" in crashed.problems[0]
    assert '{"error": "no Patient table"}' in crashed.problems[0]
    assert selection_run(junk, PLAN, ROWS).status == "script_failed"
    empty = selection_run(_ran([]), PLAN, ROWS)
    assert empty.status == "no_combination" and empty.combinations == ()


def test_duplicates_are_dropped_and_ids_are_content_hashes():
    """The same combination twice is kept once; its id depends on the environment."""
    run = selection_run(_ran([_combo(P1, A1), _combo(P1, A1)]), PLAN, ROWS)
    [combo] = run.combinations
    ident = combo_id("DentalAppointments", "abc", combo)
    assert len(ident) == 64
    assert ident == combo_id("DentalAppointments", "abc", combo)
    assert ident != combo_id("OtherServer", "abc", combo)


def test_choice_is_seeded_and_keeps_the_scripts_order():
    """Same seed, same pick; fewer combinations than asked are all kept."""
    combos = [Selected({"Patient": {"patient_id": f"p{i}"}}, ()) for i in range(10)]
    first = choose(combos, 3, seed=11)
    assert first == choose(combos, 3, seed=11)
    assert [combos.index(c) for c in first] == sorted(combos.index(c) for c in first)
    assert choose(combos[:2], 3, seed=11) == combos[:2]


def test_rounds_stop_on_no_failures_low_progress_or_the_round_limit():
    """Reference 8.3: a second round always follows failures; then >= rate."""
    rule = {"min_progress_rate": 0.2, "max_rounds": 5}
    assert not keep_going([0], **rule)
    assert keep_going([4], **rule)
    assert keep_going([5, 4], **rule)  # 20 % fewer failures
    assert not keep_going([5, 5], **rule)
    assert not keep_going([10, 9], **rule)
    assert not keep_going([8, 4, 2], min_progress_rate=0.2, max_rounds=3)


def test_value_samples_key_a_repeated_tool_by_its_step():
    """The reference keys `tool.param`; a second call of a tool gets `tool#i`."""
    calls = (
        PlannedCall(
            tool="list_my_appointments",
            arguments={"status": LiteralArg(value="booked")},
        ),
        PlannedCall(
            tool="list_my_appointments",
            arguments={"status": LiteralArg(value="cancelled")},
        ),
    )
    assert value_domain_samples(calls) == {
        "list_my_appointments.status": "booked",
        "list_my_appointments#1.status": "cancelled",
    }


def test_skipped_export_groups_by_server_with_the_typed_reason():
    """Each failure's kind comes from its details; generic failures are `other`."""
    timeout = FailedItem(
        step="s15", item_key="S/h1", reason="validation_failed",
        message="timeout: no usable combination", details=("timeout", "timed out"),
    )  # fmt: skip
    lost = FailedItem(step="s15", item_key="S/h2", reason="worker_lost", message="x")
    assert failure_kind(timeout) == "timeout" and failure_kind(lost) == "worker_lost"
    export = skipped_export(
        [
            ("S", skipped_entry(("a", "b"), "h2", lost)),
            ("S", skipped_entry(("a",), "h1", timeout)),
        ]
    )
    assert export == {
        "S": [
            {"trajectory": ["a"], "trajectory_hash": "h1", "kind": "timeout",
             "reason": "timeout: no usable combination"},
            {"trajectory": ["a", "b"], "trajectory_hash": "h2", "kind": "other",
             "reason": "x"},
        ]
    }  # fmt: skip
