"""s14 rules: which trajectories get a template, what a template may say, how its
scores are computed, which policy text it sees and how a server's file looks."""

from __future__ import annotations

import pytest

from schemas.agent_task import (
    TaskTemplate,
    TaskTemplateDraft,
    TaskTemplateSet,
    TemplateRubricDraft,
    TemplateStats,
)
from tasks.core.policy import parse_policy
from tasks.core.policy_rules import schema_tables
from tasks.core.task_templates import (
    choose_trajectories,
    placeholders,
    rubric_scores,
    task_templates_export,
    template_problems,
    trajectory_hash,
    trajectory_policy,
)
from tests.dental_policy import BLUEPRINT, CATALOGUE, POLICY, summaries

TABLES = schema_tables(BLUEPRINT, CATALOGUE, summaries())
A, L, B, M, C = (f.name for f in BLUEPRINT.functions)


def test_trajectories_outside_the_lengths_and_repeats_are_dropped_in_order():
    """Without a cap every trajectory within min..max is kept once, in order."""
    paths = [(A, L), (A, L, B), (A, M, C), (A, L, B), (A, L, B, M)]
    assert choose_trajectories(paths, min_length=3, max_length=3, cap=None) == (
        (A, L, B),
        (A, M, C),
    )


def test_a_cap_takes_turns_across_lengths_longest_first_and_keeps_order():
    """Cap 3 over lengths 2, 3, 4: the longest, then one of 3, then one of 2."""
    paths = [(A, L), (A, M), (A, L, B), (A, M, C), (A, L, B, M)]
    assert choose_trajectories(paths, min_length=2, max_length=5, cap=3) == (
        (A, L),
        (A, L, B),
        (A, L, B, M),
    )
    assert choose_trajectories(paths, min_length=2, max_length=5, cap=1) == (
        (A, L, B, M),
    )


def test_trajectory_hash_is_the_references_md5_prefix():
    """12 hex digits of md5('a_b_c'), as later steps' file names use it."""
    assert trajectory_hash(["a", "b", "c"]) == "8d28cddc2742"
    assert trajectory_hash((A, L)) != trajectory_hash((L, A))


def _draft(instruction: str, reason: str = "A toothache.") -> TaskTemplateDraft:
    return TaskTemplateDraft(instruction=instruction, reason_for_call=reason)


def test_a_template_with_real_placeholders_and_one_course_of_action_passes():
    draft = _draft(
        "I'm <Patient.patient_id>; book me at a clinic in <Clinic.city> for "
        "<Appointment.scheduled_at>."
    )
    assert template_problems(draft, TABLES) == []
    assert placeholders(draft.instruction + " <Clinic.city>") == (
        "Patient.patient_id",
        "Clinic.city",
        "Appointment.scheduled_at",
    )


def test_unknown_tables_and_columns_are_named_with_a_suggestion():
    draft = _draft("I'm <Patient.patient_number> at <Clinics.city>.")
    problems = template_problems(draft, TABLES)
    assert problems == [
        "<Patient.patient_number>: Patient has no column patient_number (did you "
        "mean Patient.patient_id?); its columns: patient_id, full_name, email, status",
        "<Clinics.city>: Clinics is not a table (did you mean Clinic?); tables: "
        "Patient, Clinic, Appointment",
    ]


def test_bare_angle_values_conditions_and_missing_placeholders_are_problems():
    """`<clinic>` is no placeholder; "if ... then" is refused in either field."""
    draft = _draft("Book me at <clinic>.", reason="If it hurts then I call the clinic.")
    problems = template_problems(draft, TABLES)
    assert len(problems) == 3
    assert problems[0].startswith("instruction: <clinic> is not a placeholder")
    assert problems[1].startswith('reason_for_call: remove the "if ... then ..."')
    assert problems[2].startswith("instruction: leave every value the user knows")


def test_a_conditional_in_one_sentence_only_is_caught():
    """The words if and then in different sentences are no condition."""
    fine = _draft("I'm <Patient.patient_id>. If possible, book. Then list them.")
    bad = _draft("I'm <Patient.patient_id>; IF a slot is free THEN book it.")
    assert template_problems(fine, TABLES) == []
    assert len(template_problems(bad, TABLES)) == 1


def test_overall_score_is_our_mean_and_a_self_reported_one_is_ignored():
    draft = TemplateRubricDraft.model_validate(
        {
            "motivation_clarity": 2,
            "logical_coherence": 3,
            "completeness": 2,
            "naturalness": 2,
            "specificity": 1,
            "overall_score": 4.5,
            "rejection_reason": "  Names no card.  ",
        }
    )
    scores = rubric_scores(draft)
    assert scores.overall_score == 2.0
    assert scores.rejection_reason == "Names no card."


def test_a_score_outside_one_to_five_does_not_validate():
    with pytest.raises(ValueError, match="less than or equal to 5"):
        TemplateRubricDraft(
            motivation_clarity=6,
            logical_coherence=3,
            completeness=3,
            naturalness=3,
            specificity=3,
        )


def test_the_policy_a_trajectory_sees_is_global_rules_plus_its_tools_in_order():
    """Reuses the s07 filter: other tools' sections are left out."""
    parsed = parse_policy(POLICY)
    text = trajectory_policy({"Dental": parsed}, [A, B], "Dental")
    again = parse_policy(text)
    assert again.global_rules == parsed.global_rules
    assert list(again.tools) == [A, B]


def test_a_fused_trajectory_gets_each_members_filtered_policy_under_its_name():
    """`Server.tool` steps: one section per member, only its own tools."""
    parsed = parse_policy(POLICY)
    text = trajectory_policy(
        {"Dental": parsed, "Other": parsed},
        [f"Dental.{A}", f"Other.{C}"],
        "Dental_Other",
    )
    dental, other = text.split("## Other\n\n")
    assert dental.startswith("## Dental\n\n")
    assert list(parse_policy(dental).tools) == [A]
    assert list(parse_policy(other).tools) == [C]


def test_export_has_the_reference_shape():
    """templates (trajectory, task_template, scores, domains, is_cross_domain),
    stats and the top-level is_cross_domain flag."""
    scores = rubric_scores(
        TemplateRubricDraft(
            motivation_clarity=4,
            logical_coherence=5,
            completeness=4,
            naturalness=4,
            specificity=4,
        )
    )
    template = TaskTemplate(
        source="DentalAppointments",
        trajectory=(A, L),
        trajectory_hash=trajectory_hash((A, L)),
        instruction="I'm <Patient.patient_id>.",
        reason_for_call="r",
        placeholders=("Patient.patient_id",),
        scores=scores,
    )
    stats = TemplateStats(
        total_trajectories=5,
        planned=2,
        generated_templates=1,
        rejected_by_judge=1,
        failed=0,
    )
    data = task_templates_export(
        TaskTemplateSet(source="DentalAppointments", templates=(template,), stats=stats)
    )
    [entry] = data["templates"]
    assert entry["trajectory"] == [A, L]
    assert entry["task_template"] == {
        "instruction": "I'm <Patient.patient_id>.",
        "reason_for_call": "r",
        "known_info": {},
        "complexity": None,
        "category": None,
    }
    assert entry["scores"]["overall_score"] == 4.2
    assert (entry["domains"], entry["is_cross_domain"]) == ([], False)
    assert data["stats"]["generated_templates"] == 1
    assert data["is_cross_domain"] is False
