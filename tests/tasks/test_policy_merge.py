"""s13 policy merge on a replayed cassette: a draft with problems is re-asked, a
merge that never validates is a failed item, and a member without a policy is a
dependency failure found before any call."""

from __future__ import annotations

from schemas.fusion import MergedPolicy, ServerCombination
from schemas.policy import PolicyDocument
from tasks import policy_merge as s13
from tasks.core.policy import parse_policy
from tests.core.test_policy_merge import BILLING, GOOD
from tests.dental_policy import POLICY
from tests.dental_policy import artifact as _artifact
from tests.tasks.step_calls import call_task
from tests.tasks.test_policy_generation import _attempts, replay_context

COMBO = ServerCombination(
    servers=("DentalAppointments", "TreatmentBilling"),
    core_entity="Patient",
    shared_entities=("Clinic", "Patient"),
)
KEY = "s13/merge/DentalAppointments_TreatmentBilling"


def _policy(server: str, markdown: str, confirm: tuple[str, ...]) -> PolicyDocument:
    return PolicyDocument(
        server_name=server,
        markdown=markdown,
        parsed=parse_policy(markdown),
        confirm_tools=confirm,
    )


def _merge(step):
    cfg = step.config.steps.s13_policy_merge
    return call_task(
        step,
        s13.merge_policies,
        COMBO.name,
        model=cfg,
        prompts=[s13.MERGE_PROMPT],
        cfg=cfg,
        simulation_time=step.config.run.simulation_time,
        combination=_artifact("server_combination", COMBO.name, COMBO),
        policies=(
            _artifact(
                "policy",
                "DentalAppointments",
                _policy("DentalAppointments", POLICY, ("book_appointment",)),
            ),
            _artifact(
                "policy",
                "TreatmentBilling",
                _policy("TreatmentBilling", BILLING, ("pay_invoice",)),
            ),
        ),
    )


def test_a_bare_tool_name_is_reasked_then_the_merged_policy_is_kept(tmp_path):
    """Attempt 0 names a tool without its service, attempt 1 is clean; the
    result keeps every member tool, qualified confirmation tools, the bridge
    rule and the name mapping, parented by the combination and the policies."""
    bare = GOOD.model_dump() | {"global_rules": "- Call `pay_invoice` last."}
    step = replay_context(tmp_path, {KEY: [bare, GOOD.model_dump()]}, step_id="s13")
    outcome = _merge(step)
    assert outcome.failure is None
    (artifact,) = outcome.artifacts
    merged = artifact.payload
    assert isinstance(merged, MergedPolicy)
    assert merged.fused_name == "DentalAppointments_TreatmentBilling"
    assert merged.confirm_tools == (
        "DentalAppointments__book_appointment",
        "TreatmentBilling__pay_invoice",
    )
    assert merged.tool_names["TreatmentBilling__authorize_patient"] == (
        "TreatmentBilling",
        "authorize_patient",
    )
    assert merged.bridge_rules[0].servers == ("DentalAppointments", "TreatmentBilling")
    assert [p.kind for p in artifact.parents] == [
        "server_combination",
        "policy",
        "policy",
    ]
    assert _attempts(step) == [(KEY, 0), (KEY, 1)]


def test_a_merge_that_never_validates_is_a_failed_item(tmp_path):
    """Every attempt keeps a one-sided bridge rule: an invalid_output failure
    naming the problem, nothing kept."""
    one_sided = GOOD.model_dump() | {
        "bridge_rules": [{"rule": "x", "servers": ["TreatmentBilling"]}]
    }
    step = replay_context(tmp_path, {KEY: [one_sided] * 4}, step_id="s13")
    outcome = _merge(step)
    assert outcome.artifacts == ()
    assert outcome.failure.reason == "invalid_output"
    assert "must connect at least two member services" in outcome.failure.message


def test_a_member_without_a_policy_is_a_dependency_failure():
    failure = s13.missing_policies_failure(COMBO.name, ["TreatmentBilling"])
    assert failure.reason == "dependency_failed"
    assert failure.message == (
        "s07 produced no policy for TreatmentBilling, so "
        "DentalAppointments_TreatmentBilling gets no merged policy"
    )
