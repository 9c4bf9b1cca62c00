"""s07 policy generation: the closed-world schema, the policy checks, the auditor's
edits, and the step task run on a replayed cassette (re-asks, audit rounds,
failures), on the hand-written DentalAppointments fixture."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from schemas.artifact import Artifact, Producer
from schemas.blueprint import ServerBlueprint
from schemas.database import ColumnSummary, TableSummary
from schemas.entity import EntityCatalogue
from schemas.policy import PolicyAuditDraft, PolicyDocument
from tasks import policy_generation as s07
from tasks.core.policy import parse_policy, policy_export
from tasks.runtime.exports import blueprint_from_export, catalogue_from_export
from tasks.step_run import StepRun
from tasks.store.config_loader import load_config, with_overrides
from tests.conftest import DEMO_CONFIG
from tests.runtime import FIXTURE_DIR
from tests.tasks.step_calls import call_task, local_step

POLICY = """\
<!-- POLICY_START -->
## Global Rules
- The user is a patient; the simulation time is 2025-01-23T15:00:00-05:00.
- Call `authorize_patient` first; it binds the session to one patient.
<!-- GLOBAL_RULES_END -->

<!-- TOOL: authorize_patient -->
### Tool: authorize_patient
Purpose: Bind the session to a patient.
Permission outcomes:
- Permitted: `patient_id` equals a Patient.patient_id and Patient.status is `active`.
- Rejected: the id is unknown or Patient.status is `suspended`.
<!-- TOOL_END: authorize_patient -->

<!-- TOOL: list_clinics -->
### Tool: list_clinics
Purpose: List clinics, optionally in one `city`.
<!-- TOOL_END: list_clinics -->

<!-- TOOL: book_appointment -->
### Tool: book_appointment
Purpose: Book a visit after the user explicitly confirms (`confirm` set to true).
Permission outcomes:
- Permitted: Clinic.accepts_new_patients is true.
- Rejected: `scheduled_at` is not later than the simulation time.
<!-- TOOL_END: book_appointment -->

<!-- TOOL: list_my_appointments -->
### Tool: list_my_appointments
Purpose: List the user's appointments; `status` in {booked, cancelled}.
<!-- TOOL_END: list_my_appointments -->

<!-- TOOL: cancel_appointment -->
### Tool: cancel_appointment
Purpose: Cancel a `booked` appointment of the user.
<!-- TOOL_END: cancel_appointment -->

<!-- POLICY_END -->
"""
CONFIRM = ["book_appointment"]
FABRICATED = "- Rejected: `scheduled_at` is not later than the simulation time."
FIXED = (
    "- Rejected: `scheduled_at` is not later than the simulation time, or falls "
    "outside Clinic.opening_hours."
)


def _fixture() -> tuple[ServerBlueprint, EntityCatalogue]:
    catalogue = catalogue_from_export(
        json.loads((FIXTURE_DIR / "entities.json").read_text())
    )
    [exported] = json.loads((FIXTURE_DIR / "blueprints.json").read_text())
    return blueprint_from_export(exported, catalogue), catalogue


BLUEPRINT, CATALOGUE = _fixture()


def _summaries() -> list[TableSummary]:
    status = ColumnSummary(
        type="enum", distinct=2, nulls=0, values=("booked", "cancelled")
    )
    patient = ColumnSummary(
        type="enum", distinct=2, nulls=0, values=("active", "suspended")
    )
    key = ColumnSummary(type="string", distinct=3, nulls=0)
    return [
        TableSummary(
            table="Patient",
            kind="entity",
            row_count=3,
            columns={"patient_id": key, "status": patient},
            prose="Three patients, one suspended.",
        ),
        TableSummary(table="Clinic", kind="entity", row_count=3, columns={}),
        TableSummary(
            table="Appointment",
            kind="relationship",
            server="DentalAppointments",
            row_count=3,
            columns={"status": status},
        ),
    ]


def _artifact(kind: str, ident: str, payload) -> Artifact:
    made = Producer(step="test", item_key=ident, params_hash="0", code_version="0")
    return Artifact.build(kind=kind, id=ident, payload=payload, producer=made)


def _rules() -> s07.PolicyValidator:
    tables = s07.schema_tables(BLUEPRINT, CATALOGUE, _summaries())
    return s07.PolicyValidator.of(BLUEPRINT, CATALOGUE, tables)


def replay_context(
    tmp_path: Path, calls: dict, step_id: str = "s07", **overrides
) -> StepRun:
    """The demo configuration answering from an in-test scripted cassette."""
    cassette = tmp_path / "cassette.yaml"
    document = {"version": 1, "scripted": True, "description": "test", "calls": calls}
    cassette.write_text(yaml.safe_dump(document, sort_keys=False))
    loaded = with_overrides(
        load_config(DEMO_CONFIG),
        str(tmp_path / "out"),
        overrides={"llm.cassette": str(cassette), **overrides},
    )
    return local_step(loaded, tmp_path / "out", step_id)


def _write(step: StepRun, summaries: list[TableSummary] | None = None):
    tables = [_artifact("table_summary", s.table, s) for s in summaries or _summaries()]
    blueprint = _artifact("blueprint", BLUEPRINT.server_name, BLUEPRINT)
    catalogue = _artifact("entity_catalogue", "entities", CATALOGUE)
    cfg = step.config.steps.s07_policy_generation
    return call_task(
        step,
        s07.write_policy,
        BLUEPRINT.server_name,
        model=cfg,
        prompts=[s07.WRITE_PROMPT, s07.AUDIT_PROMPT],
        cfg=cfg,
        simulation_time=step.config.run.simulation_time,
        blueprint=blueprint,
        catalogue=catalogue,
        summaries=tuple(tables),
    )


def _attempts(step: StepRun) -> list[tuple[str, int]]:
    return [(r.call_key, r.attempt) for r in step.res.ledger.records()]


def _edit(search: str, replace: str) -> str:
    return f"<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n"


def test_server_summaries_pick_the_servers_tables_and_name_the_missing_ones():
    """Entity summaries by table, relationship summaries only of this server."""
    patient, clinic, appointment = _summaries()
    other = appointment.model_copy(update={"server": "Elsewhere"})
    found, missing = s07.server_summaries(
        BLUEPRINT,
        [
            _artifact("table_summary", f"s{i}", s)
            for i, s in enumerate([other, patient])
        ],
    )
    assert [a.payload.table for a in found] == ["Patient"]
    assert missing == ("Clinic", "Appointment")
    everything = [_artifact("table_summary", s.table, s) for s in _summaries()]
    found, missing = s07.server_summaries(BLUEPRINT, everything)
    assert [a.payload.table for a in found] == ["Patient", "Clinic", "Appointment"]
    assert missing == ()


def test_server_without_its_data_is_a_dependency_failure_naming_the_tables():
    """No model call is made for it; the failure is not retried by s07."""
    failure = s07.missing_data_failure("DentalAppointments", ("Clinic", "Appointment"))
    assert (failure.step, failure.item_key, failure.reason) == (
        "s07",
        "DentalAppointments",
        "dependency_failed",
    )
    assert failure.message == (
        "s06 produced no data for Clinic, Appointment, so DentalAppointments gets "
        "no policy"
    )
    assert not failure.retryable


def test_schema_tables_list_the_primary_key_first_with_facts_from_the_data():
    """Columns come from the blueprint and catalogue; values and counts from s06."""
    tables = s07.schema_tables(BLUEPRINT, CATALOGUE, _summaries())
    assert [(t.name, t.kind, t.row_count) for t in tables] == [
        ("Patient", "entity", 3),
        ("Clinic", "entity", 3),
        ("Appointment", "relationship", 3),
    ]
    patient, _, appointment = tables
    assert list(patient.columns)[0] == "patient_id"
    assert patient.columns["status"].values == ("active", "suspended")
    assert patient.prose == "Three patients, one suspended."
    assert appointment.columns["clinic_id"].references == "Clinic"
    assert appointment.columns["status"].range == "booked,cancelled"


def test_known_terms_hold_parameters_enum_values_and_confirm():
    """Parameter names and allowed values are part of the closed world."""
    tables = s07.schema_tables(BLUEPRINT, CATALOGUE, _summaries())
    terms = s07.known_terms(BLUEPRINT, CATALOGUE, tables)
    assert {"city", "scheduled_at", "booked", "suspended", "confirm"} <= terms


def test_reference_policy_passes_every_check():
    """The fixture policy has its markers, every section and only known columns."""
    assert _rules().problems(POLICY, CONFIRM) == []


def test_confirmation_of_a_read_tool_and_a_silent_section_are_problems():
    """Confirmation is for write tools, and their sections must ask for it."""
    problems = _rules().problems(POLICY, ["list_clinics", "cancel_appointment"])
    assert problems == [
        "'list_clinics' is in confirmation_required but is not a write tool of "
        "DentalAppointments; only these tools change data: book_appointment, "
        "cancel_appointment.",
        "Tool section 'cancel_appointment' must say that the call acts only after "
        "the user explicitly confirms, since it is in confirmation_required.",
    ]


def test_missing_section_and_unknown_column_are_reported_exactly():
    """The sentences the model is re-asked with name the tool and the column."""
    broken = POLICY.replace("Clinic.accepts_new_patients", "Clinic.opening_hours")
    start = broken.index("<!-- TOOL: cancel_appointment -->")
    end = broken.index("<!-- POLICY_END -->")
    problems = _rules().problems(broken[:start] + broken[end:], CONFIRM)
    assert problems[0].startswith(
        "The policy has no section for tool 'cancel_appointment'"
    )
    assert problems[1].startswith(
        "Tool section 'book_appointment': `Clinic.opening_hours` refers to column "
        "'opening_hours', which table 'Clinic' lacks"
    )
    assert len(problems) == 2


def test_revise_policy_applies_edits_that_keep_the_policy_valid():
    """Applied edits give the canonical revised policy and no problems."""
    canonical = policy_export(parse_policy(POLICY))
    audit = PolicyAuditDraft(
        verdict="edits",
        edits=_edit(FABRICATED, "- Rejected: the clinic is unknown."),
        issues=["The rejection was ambiguous."],
    )
    revised, problems = s07.revise_policy(canonical, audit, lambda t: [])
    assert problems == []
    assert "- Rejected: the clinic is unknown." in revised
    assert revised == policy_export(parse_policy(revised))


def test_revise_policy_sends_back_edits_that_break_a_check_or_match_nothing():
    """A failed edit leaves the policy unchanged and says why."""
    rules = _rules()
    canonical = policy_export(parse_policy(POLICY))
    breaking = PolicyAuditDraft(verdict="edits", edits=_edit(FABRICATED, FIXED))
    kept, problems = s07.revise_policy(
        canonical, breaking, lambda t: rules.problems(t, CONFIRM)
    )
    assert kept == canonical
    assert problems[0].startswith(
        "After the edits: Tool section 'book_appointment': `Clinic.opening_hours`"
    )
    missing = PolicyAuditDraft(verdict="edits", edits=_edit("- No such line.", "- x"))
    kept, problems = s07.revise_policy(canonical, missing, lambda t: [])
    assert kept == canonical
    assert "SEARCH text not found" in problems[0]
    both = PolicyAuditDraft(verdict="no_issues", edits=_edit(FABRICATED, "- y"))
    assert s07.revise_policy(canonical, both, lambda t: [])[1] == [
        "The verdict is no_issues but edits were given; answer edits with the "
        "blocks, or no_issues with empty edits."
    ]


def test_write_policy_reasks_a_missing_section_then_records_a_clean_audit(tmp_path):
    """Attempt 0 lacks a section, attempt 1 validates; the auditor finds nothing."""
    start = POLICY.index("<!-- TOOL: cancel_appointment -->")
    short = POLICY[:start] + "<!-- POLICY_END -->\n"
    ctx = replay_context(
        tmp_path,
        {
            "s07/write/DentalAppointments": [
                {"markdown": short, "confirmation_required": CONFIRM},
                {"markdown": POLICY, "confirmation_required": CONFIRM},
            ],
            "s07/audit/DentalAppointments": [{"verdict": "no_issues"}],
        },
    )
    outcome = _write(ctx)
    assert outcome.ok
    [artifact] = outcome.artifacts
    document: PolicyDocument = artifact.payload
    assert artifact.kind == "policy" and artifact.id == "DentalAppointments"
    assert document.markdown == policy_export(parse_policy(POLICY))
    assert list(document.parsed.tools) == [f.name for f in BLUEPRINT.functions]
    assert document.confirm_tools == ("book_appointment",)
    assert document.audit_notes == (s07.AUDIT_CLEAN,)
    assert artifact.producer.prompt_id == s07.WRITE_PROMPT
    assert len(artifact.parents) == 2 + 3
    assert _attempts(ctx) == [
        ("s07/write/DentalAppointments", 0),
        ("s07/write/DentalAppointments", 1),
        ("s07/audit/DentalAppointments", 0),
    ]


def test_auditor_edit_that_breaks_a_check_is_sent_back_then_applied(tmp_path):
    """Round 0 cites a missing column (rejected); round 1's edit is applied."""
    better = (
        "- Rejected: the clinic is unknown, or `scheduled_at` is not later than "
        "the simulation time."
    )
    ctx = replay_context(
        tmp_path,
        {
            "s07/write/DentalAppointments": [
                {"markdown": POLICY, "confirmation_required": CONFIRM}
            ],
            "s07/audit/DentalAppointments": [
                {"verdict": "edits", "edits": _edit(FABRICATED, FIXED)},
                {
                    "verdict": "edits",
                    "edits": _edit(FABRICATED, better),
                    "issues": ["Unknown clinics had no outcome."],
                },
            ],
        },
    )
    [artifact] = _write(ctx).artifacts
    assert better in artifact.payload.markdown
    assert "opening_hours" not in artifact.payload.markdown
    assert artifact.payload.audit_notes == (
        s07.AUDIT_APPLIED,
        "Fixed: Unknown clinics had no outcome.",
    )


def test_auditor_edits_that_never_validate_leave_the_generated_policy(tmp_path):
    """After max_audit_rounds send-backs the last valid policy is kept, with notes."""
    wrong = {"verdict": "edits", "edits": _edit("- Not in the policy.", "- x")}
    ctx = replay_context(
        tmp_path,
        {
            "s07/write/DentalAppointments": [
                {"markdown": POLICY, "confirmation_required": CONFIRM}
            ],
            "s07/audit/DentalAppointments": [wrong, wrong],
        },
    )
    [artifact] = _write(ctx).artifacts
    notes = artifact.payload.audit_notes
    assert artifact.payload.markdown == policy_export(parse_policy(POLICY))
    assert notes[0] == (
        "Audit: the auditor's edits were sent back 2 time(s) and never validated; "
        "kept the policy as generated."
    )
    assert notes[1].startswith(
        "Rejected: The edits were not applied (block 1: SEARCH text not found)"
    )


def test_policy_that_never_validates_is_an_invalid_output_failure(tmp_path):
    """Three invalid answers end the item with a typed failure and no artifact."""
    bad = {"markdown": "No markers at all.", "confirmation_required": []}
    ctx = replay_context(tmp_path, {"s07/write/DentalAppointments": [bad, bad, bad]})
    outcome = _write(ctx)
    assert outcome.artifacts == ()
    assert outcome.failure is not None
    assert outcome.failure.reason == "invalid_output"
    assert "lacks `<!-- POLICY_START -->`" in outcome.failure.message


def test_disabled_validation_skips_the_auditor_call(tmp_path):
    """enable_validation: false makes one call and notes the skipped audit."""
    ctx = replay_context(
        tmp_path,
        {
            "s07/write/DentalAppointments": [
                {"markdown": POLICY, "confirmation_required": CONFIRM}
            ]
        },
        **{"steps.s07_policy_generation.enable_validation": False},
    )
    [artifact] = _write(ctx).artifacts
    assert artifact.payload.audit_notes == (s07.AUDIT_SKIPPED,)
    assert _attempts(ctx) == [("s07/write/DentalAppointments", 0)]


def test_write_prompt_shows_the_schema_facts_and_the_simulation_time(tmp_path):
    """The rendered prompt carries the data facts, time and tool order."""
    ctx = replay_context(tmp_path, {})
    tables = s07.schema_tables(BLUEPRINT, CATALOGUE, _summaries())
    text = ctx.res.prompts.render(
        s07.WRITE_PROMPT,
        blueprint=BLUEPRINT,
        tables=tables,
        core_key="patient_id",
        simulation_time=ctx.config.run.simulation_time,
    ).text
    assert "Simulation time: 2025-01-23T15:00:00-05:00." in text
    assert "Values in the data: active, suspended." in text
    assert "`authorize_patient` must succeed before any other" in text
    assert (
        "in this order: authorize_patient, list_clinics, book_appointment, "
        "list_my_appointments, cancel_appointment." in text
    )
