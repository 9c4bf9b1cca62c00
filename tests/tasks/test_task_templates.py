"""s14 task templates: the step task on a replayed cassette (a writer answer
re-asked until its placeholders are real, a judge rejection recorded with its
scores, a judge that never validates failing the item instead of keeping an
unscored template), on the DentalAppointments fixture."""

from __future__ import annotations

from schemas.config import TemplateConfig
from schemas.policy import PolicyDocument
from schemas.server import McpServer
from schemas.tool_graph import ToolGraph
from tasks import task_templates as s14
from tasks.core.policy import parse_policy
from tasks.core.task_templates import trajectory_hash
from tests.dental_policy import BLUEPRINT, CATALOGUE, CONFIRM, POLICY, artifact
from tests.dental_policy import summaries as table_summaries
from tests.tasks.step_calls import call_task
from tests.tasks.test_policy_generation import _attempts, replay_context

SERVER = BLUEPRINT.server_name
TRAJECTORY = ["authorize_patient", "list_clinics", "book_appointment"]
KEY = f"{SERVER}/{trajectory_hash(TRAJECTORY)}"
WRITE, JUDGE = f"s14/write/{KEY}", f"s14/judge/{KEY}"
GOOD = {
    "instruction": "I'm patient <Patient.patient_id>; book me at a clinic in "
    "<Clinic.city> for <Appointment.scheduled_at>.",
    "reason_for_call": "A toothache.",
}
SCORES = {
    "motivation_clarity": 4,
    "logical_coherence": 5,
    "completeness": 4,
    "naturalness": 4,
    "specificity": 4,
    "rejection_reason": None,
}


def _inputs() -> dict:
    graph = ToolGraph(
        server_name=SERVER,
        root=TRAJECTORY[0],
        nodes=tuple(f.name for f in BLUEPRINT.functions),
        links=(),
        trajectories=(tuple(TRAJECTORY),),
    )
    document = PolicyDocument(
        server_name=SERVER,
        markdown=POLICY,
        parsed=parse_policy(POLICY),
        confirm_tools=tuple(CONFIRM),
    )
    server = McpServer(server_name=SERVER, module_code="", tests_code="", tools=())
    return {
        "graph": artifact("tool_graph", SERVER, graph),
        "blueprint": artifact("blueprint", SERVER, BLUEPRINT),
        "catalogue": artifact("entity_catalogue", "entities", CATALOGUE),
        "summaries": tuple(
            artifact("table_summary", s.table, s) for s in table_summaries()
        ),
        "policy": artifact("policy", SERVER, document),
        "server": artifact("mcp_server", SERVER, server),
    }


def _write(ctx, cfg: TemplateConfig | None = None):
    cfg = cfg or ctx.config.steps.s14_task_templates
    return call_task(
        ctx,
        s14.write_task_template,
        KEY,
        model=cfg,
        models={s14.JUDGE: s14.judge_model(cfg)},
        prompts=s14.PROMPTS,
        cfg=cfg,
        source=SERVER,
        domains=[],
        trajectory=TRAJECTORY,
        **_inputs(),
    )


def test_a_writer_answer_with_unknown_placeholders_is_reasked_then_kept_scored(
    tmp_path,
):
    """The fixed answer is kept with our mean of the judge's scores."""
    bad = {
        "instruction": "I'm <Patient.patient_number>; if <clinic> is free then book.",
        "reason_for_call": "A toothache.",
    }
    ctx = replay_context(
        tmp_path, {WRITE: [bad, GOOD], JUDGE: [SCORES | {"overall_score": 1.0}]}, "s14"
    )
    outcome = _write(ctx)
    assert outcome.failure is None
    [made] = outcome.artifacts
    template = made.payload
    assert (made.kind, made.id) == ("task_template", KEY)
    assert template.trajectory == tuple(TRAJECTORY)
    assert template.instruction == GOOD["instruction"]
    assert template.placeholders == (
        "Patient.patient_id",
        "Clinic.city",
        "Appointment.scheduled_at",
    )
    assert template.scores is not None and template.scores.overall_score == 4.2
    assert (template.domains, template.is_cross_domain) == ((), False)
    assert {p.kind for p in made.parents} == {
        "tool_graph",
        "blueprint",
        "entity_catalogue",
        "table_summary",
        "policy",
        "mcp_server",
    }
    assert _attempts(ctx) == [(WRITE, 0), (WRITE, 1), (JUDGE, 0)]


def test_a_template_under_the_threshold_is_a_rejected_item_carrying_its_scores(
    tmp_path,
):
    """Reference defect 22: a rejection is recorded, typed, with the scores."""
    low = SCORES | {
        "motivation_clarity": 2,
        "completeness": 2,
        "naturalness": 3,
        "specificity": 2,
        "overall_score": 4.0,
        "rejection_reason": "No reason to book.",
    }
    ctx = replay_context(tmp_path, {WRITE: [GOOD], JUDGE: [low]}, "s14")
    outcome = _write(ctx)
    assert outcome.artifacts == ()
    assert outcome.failure is not None
    assert outcome.failure.reason == "rejected_by_judge"
    assert outcome.failure.message == (
        "the judge scored overall 2.80 (motivation_clarity 2, logical_coherence 5, "
        "completeness 2, naturalness 3, specificity 2), under the threshold 3.0: "
        "No reason to book."
    )
    assert not outcome.failure.blocking


def test_a_judge_that_never_validates_fails_the_item_instead_of_keeping_it(
    tmp_path,
):
    """The original kept such templates unscored; here it is `invalid_output`."""
    broken = SCORES | {"completeness": 7}
    ctx = replay_context(tmp_path, {WRITE: [GOOD], JUDGE: [broken] * 3}, "s14")
    outcome = _write(ctx)
    assert outcome.artifacts == ()
    assert outcome.failure is not None
    assert outcome.failure.reason == "invalid_output"
    assert JUDGE in outcome.failure.message
    assert _attempts(ctx) == [(WRITE, 0), (JUDGE, 0), (JUDGE, 1), (JUDGE, 2)]


def test_a_writer_that_never_validates_fails_without_a_judge_call(tmp_path):
    bare = {"instruction": "Book me in, please.", "reason_for_call": "Pain."}
    ctx = replay_context(tmp_path, {WRITE: [bare] * 3}, "s14")
    outcome = _write(ctx)
    assert outcome.failure is not None
    assert outcome.failure.reason == "invalid_output"
    assert "<Entity.attribute> placeholder" in " ".join(outcome.failure.details)
    assert [key for key, _ in _attempts(ctx)] == [WRITE] * 3


def test_with_the_judge_disabled_templates_are_kept_unscored_without_a_call(
    tmp_path,
):
    """Turning the judge off is a configuration choice, visible as no scores."""
    ctx = replay_context(tmp_path, {WRITE: [GOOD]}, "s14")
    cfg = TemplateConfig(enable_judge=False)
    outcome = _write(ctx, cfg)
    [made] = outcome.artifacts
    assert made.payload.scores is None
    assert _attempts(ctx) == [(WRITE, 0)]


def test_a_server_without_a_passing_build_or_graph_is_a_dependency_failure():
    """No model call is made for it; the message names the missing inputs."""
    failure = s14.missing_inputs_failure("FlightBooking", built=False, graph=True)
    assert (failure.step, failure.item_key, failure.reason) == (
        "s14",
        "FlightBooking",
        "dependency_failed",
    )
    assert failure.message == (
        "FlightBooking did not pass s09, so it gets no task templates"
    )
    both = s14.missing_inputs_failure("FlightBooking", built=False, graph=False)
    assert both.message == (
        "FlightBooking did not pass s09; s08 produced no tool graph for "
        "FlightBooking, so it gets no task templates"
    )
    assert not failure.retryable and not failure.blocking
