"""The policy rules: the closed-world schema of a server, the known terms, the
checks a policy text must pass and the revision of a policy by auditor edits, on
the hand-written DentalAppointments fixture."""

from __future__ import annotations

from schemas.policy import PolicyAuditDraft
from tasks.core.policy import parse_policy, policy_export
from tasks.core.policy_rules import (
    PolicyValidator,
    known_terms,
    revise_policy,
    schema_tables,
)
from tests.dental_policy import (
    BLUEPRINT,
    CATALOGUE,
    CONFIRM,
    FABRICATED,
    FIXED,
    POLICY,
    edit_block,
    summaries,
)


def _rules() -> PolicyValidator:
    tables = schema_tables(BLUEPRINT, CATALOGUE, summaries())
    return PolicyValidator.of(BLUEPRINT, CATALOGUE, tables)


def test_schema_tables_list_the_primary_key_first_with_facts_from_the_data():
    """Columns come from the blueprint and catalogue; values and counts from s06."""
    tables = schema_tables(BLUEPRINT, CATALOGUE, summaries())
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
    tables = schema_tables(BLUEPRINT, CATALOGUE, summaries())
    terms = known_terms(BLUEPRINT, CATALOGUE, tables)
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
        edits=edit_block(FABRICATED, "- Rejected: the clinic is unknown."),
        issues=["The rejection was ambiguous."],
    )
    revised, problems = revise_policy(canonical, audit, lambda t: [])
    assert problems == []
    assert "- Rejected: the clinic is unknown." in revised
    assert revised == policy_export(parse_policy(revised))


def test_revise_policy_sends_back_edits_that_break_a_check_or_match_nothing():
    """A failed edit leaves the policy unchanged and says why."""
    rules = _rules()
    canonical = policy_export(parse_policy(POLICY))
    breaking = PolicyAuditDraft(verdict="edits", edits=edit_block(FABRICATED, FIXED))
    kept, problems = revise_policy(
        canonical, breaking, lambda t: rules.problems(t, CONFIRM)
    )
    assert kept == canonical
    assert problems[0].startswith(
        "After the edits: Tool section 'book_appointment': `Clinic.opening_hours`"
    )
    missing = PolicyAuditDraft(
        verdict="edits", edits=edit_block("- No such line.", "- x")
    )
    kept, problems = revise_policy(canonical, missing, lambda t: [])
    assert kept == canonical
    assert "SEARCH text not found" in problems[0]
    both = PolicyAuditDraft(verdict="no_issues", edits=edit_block(FABRICATED, "- y"))
    assert revise_policy(canonical, both, lambda t: [])[1] == [
        "The verdict is no_issues but edits were given; answer edits with the "
        "blocks, or no_issues with empty edits."
    ]
