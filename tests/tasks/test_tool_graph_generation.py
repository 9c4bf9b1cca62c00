"""s08 tool graph generation: the step task on a replayed cassette (unknown names
re-asked, cycles repaired and recorded, preconditions checked, trajectories within
the configured lengths) and its typed failures, on the DentalAppointments fixture."""

from __future__ import annotations

from schemas.policy import PolicyDocument
from tasks import tool_graph_generation as s08
from tasks.core.policy import parse_policy
from tests.dental_policy import BLUEPRINT, CONFIRM, POLICY, artifact
from tests.tasks.step_calls import call_task
from tests.tasks.test_policy_generation import _attempts, replay_context

ROOT = "authorize_patient"
NODES = [f.name for f in BLUEPRINT.functions]
GOOD_LINKS = [
    {"source": ROOT, "target": "list_clinics", "type": "state dependency"},
    {"source": ROOT, "target": "list_my_appointments", "type": "state dependency"},
    {"source": "list_clinics", "target": "book_appointment"},
    {"source": "book_appointment", "target": "list_my_appointments"},
    {"source": "list_my_appointments", "target": "cancel_appointment"},
]
PRECONDITIONS = {"preconditions": {name: [ROOT] for name in NODES[1:]} | {ROOT: []}}


def _derive(ctx, blueprint=BLUEPRINT):
    document = PolicyDocument(
        server_name=blueprint.server_name,
        markdown=POLICY,
        parsed=parse_policy(POLICY),
        confirm_tools=tuple(CONFIRM),
    )
    server = artifact("blueprint", blueprint.server_name, blueprint)
    policy = artifact("policy", blueprint.server_name, document)
    cfg = ctx.config.steps.s08_tool_graph_generation
    return call_task(
        ctx,
        s08.derive_tool_graph,
        blueprint.server_name,
        model=cfg,
        prompts=[s08.GRAPH_PROMPT, s08.PRECONDITIONS_PROMPT],
        cfg=cfg,
        blueprint=server,
        policy=policy,
    )


def test_unknown_names_are_reasked_and_a_cycle_is_repaired_and_recorded(tmp_path):
    """`Authorize` is re-asked; the back edge of the second graph is dropped."""
    literal = [{"source": "Authorize", "target": "list_clinics"}]
    cyclic = [*GOOD_LINKS, {"source": "cancel_appointment", "target": "list_clinics"}]
    ctx = replay_context(
        tmp_path,
        step_id="s08",
        calls={
            "s08/graph/DentalAppointments": [
                {"nodes": ["Authorize", *NODES[1:]], "links": literal},
                {"nodes": NODES, "links": cyclic},
            ],
            "s08/preconditions/DentalAppointments": [PRECONDITIONS],
        },
    )
    outcome = _derive(ctx)
    [artifact] = outcome.artifacts
    graph = artifact.payload
    assert artifact.kind == "tool_graph" and artifact.id == "DentalAppointments"
    assert graph.root == ROOT
    assert graph.repairs == (
        "Dropped link 'cancel_appointment' -> 'list_clinics' to break a cycle.",
    )
    assert graph.preconditions_given
    assert graph.trajectories == (
        (ROOT, "list_clinics"),
        (ROOT, "list_my_appointments"),
        (ROOT, "list_clinics", "book_appointment"),
        (ROOT, "list_my_appointments", "cancel_appointment"),
        (ROOT, "list_clinics", "book_appointment", "list_my_appointments"),
    )
    assert {len(path) for path in graph.trajectories} <= {2, 3, 4}
    assert _attempts(ctx) == [
        ("s08/graph/DentalAppointments", 0),
        ("s08/graph/DentalAppointments", 1),
        ("s08/preconditions/DentalAppointments", 0),
    ]


def test_preconditions_filter_trajectories_and_unknown_ones_are_reasked(tmp_path):
    """A misspelt requirement is re-asked; the fixed one prunes paths without it."""
    strict = {name: [ROOT] for name in NODES[1:]} | {ROOT: []}
    strict["cancel_appointment"] = [ROOT, "book_appointment"]
    misspelt = dict(strict, cancel_appointment=[ROOT, "book_appointments"])
    ctx = replay_context(
        tmp_path,
        step_id="s08",
        calls={
            "s08/graph/DentalAppointments": [{"nodes": NODES, "links": GOOD_LINKS}],
            "s08/preconditions/DentalAppointments": [
                {"preconditions": misspelt},
                {"preconditions": strict},
            ],
        },
    )
    graph = _derive(ctx).artifacts[0].payload
    assert graph.preconditions["cancel_appointment"] == (ROOT, "book_appointment")
    assert all("cancel_appointment" not in path for path in graph.trajectories)
    assert _attempts(ctx)[-2:] == [
        ("s08/preconditions/DentalAppointments", 0),
        ("s08/preconditions/DentalAppointments", 1),
    ]


def test_preconditions_that_never_validate_fail_the_item_instead_of_unfiltering(
    tmp_path,
):
    """The original silently disabled filtering; here the item fails, typed."""
    looped = {"preconditions": {"list_clinics": ["list_clinics"]}}
    ctx = replay_context(
        tmp_path,
        step_id="s08",
        calls={
            "s08/graph/DentalAppointments": [{"nodes": NODES, "links": GOOD_LINKS}],
            "s08/preconditions/DentalAppointments": [looped, looped, looped],
        },
    )
    outcome = _derive(ctx)
    assert outcome.artifacts == ()
    assert outcome.failure is not None
    assert outcome.failure.reason == "invalid_output"
    assert "lists itself as a precondition" in outcome.failure.message


def test_blueprint_without_one_authorization_tool_fails_without_a_model_call(
    tmp_path,
):
    """No root means no graph: a validation_failed item, and no call is made."""
    functions = tuple(
        f.model_copy(update={"is_authorization": False}) for f in BLUEPRINT.functions
    )
    rootless = BLUEPRINT.model_copy(update={"functions": functions})
    ctx = replay_context(tmp_path, {}, "s08")
    outcome = _derive(ctx, rootless)
    assert outcome.failure is not None
    assert outcome.failure.reason == "validation_failed"
    assert "0 authorization functions" in outcome.failure.message
    assert _attempts(ctx) == []


def test_graph_prompt_names_the_real_authorization_tool(tmp_path):
    """Reference defect 17: no literal `Authorize` node in the prompt."""
    ctx = replay_context(tmp_path, {}, "s08")
    for prompt_id in (s08.GRAPH_PROMPT, s08.PRECONDITIONS_PROMPT):
        text = ctx.res.prompts.render(
            prompt_id, blueprint=BLUEPRINT, root=ROOT, policy=POLICY
        ).text
        assert f"`{ROOT}` requires nothing" in text or f"`{ROOT}` is the" in text
        assert "Authorize" not in text
        assert "<!-- TOOL: cancel_appointment -->" in text


def test_server_without_a_policy_is_a_dependency_failure_naming_s07():
    """No model call is made for it; the failure is not retried by s08."""
    failure = s08.missing_policy_failure("DentalAppointments")
    assert (failure.step, failure.item_key, failure.reason) == (
        "s08",
        "DentalAppointments",
        "dependency_failed",
    )
    assert failure.message == (
        "s07 produced no policy for DentalAppointments, so it gets no tool graph"
    )
    assert not failure.retryable
