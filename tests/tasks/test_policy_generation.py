"""s07 policy generation: the servers' summaries, the dependency failure, and the
step task run on a replayed cassette (re-asks, audit rounds, failures), on the
hand-written DentalAppointments fixture (the rules themselves are tested in
`tests/core/test_policy_rules.py`)."""

from __future__ import annotations

from pathlib import Path

import yaml

from schemas.database import TableSummary
from schemas.policy import PolicyDocument
from tasks import policy_generation as s07
from tasks.core.policy import parse_policy, policy_export
from tasks.core.policy_rules import schema_tables
from tasks.step_run import StepRun
from tasks.store.config_loader import load_config, with_overrides
from tests.conftest import DEMO_CONFIG
from tests.dental_policy import (
    BLUEPRINT,
    CATALOGUE,
    CONFIRM,
    FABRICATED,
    FIXED,
    POLICY,
)
from tests.dental_policy import artifact as _artifact
from tests.dental_policy import edit_block as _edit
from tests.dental_policy import summaries as _summaries
from tests.tasks.step_calls import call_task, local_step


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
    tables = schema_tables(BLUEPRINT, CATALOGUE, _summaries())
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
