"""End-to-end: the demo world through s14 under a real (temporary) Prefect API.

The scripted cassette (no network) gives two templates per server that passed s09:
DentalAppointments' first booking template is re-asked for unknown placeholders
and a condition, the judge rejects CardServices' vague credit-limit template, and
FlightBooking (no passing build) gets no model call. A re-run pays nothing, not
even for the rejected template.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import DEMO_CONFIG, ancestor_kinds

pytestmark = pytest.mark.slow

STEP = "s14_task_templates"
PASSING = ["AccountServicing", "CardServices", "DentalAppointments", "TreatmentBilling"]
REJECTED = "CardServices/1c0f77c53b30"


def _run(out):
    from flows.pipeline import run_pipeline

    return run_pipeline(config_path=str(DEMO_CONFIG), output_dir=str(out), until="s14")


@pytest.fixture(scope="module")
def demo(prefect_harness, tmp_path_factory):
    from tasks.store.artifacts import ArtifactStore
    from tasks.store.paths import OutputLayout

    out = tmp_path_factory.mktemp("demo-s14")
    return out, _run(out), ArtifactStore(OutputLayout(out))


def test_each_passing_server_gets_a_template_file_in_the_reference_shape(demo):
    """Two planned per server, seven kept, the rejection counted in the stats."""
    out, report, _ = demo
    assert report.status == "ok"
    step = report.steps[STEP]
    # eight writers, one re-ask, eight judges
    assert step.llm_calls == 17
    assert sorted(p.stem for p in (out / "task_templates").glob("*.json")) == PASSING
    kept = 0
    for server in PASSING:
        data = json.loads((out / "task_templates" / f"{server}.json").read_text())
        assert data["is_cross_domain"] is False
        stats = data["stats"]
        assert stats["planned"] == 2
        assert stats["generated_templates"] == len(data["templates"])
        assert stats["generated_templates"] + stats["rejected_by_judge"] == 2
        for template in data["templates"]:
            assert 3 <= len(template["trajectory"]) <= 4
            assert template["trajectory"][0].startswith("authorize_")
            assert set(template["task_template"]) == {
                "instruction",
                "reason_for_call",
                "known_info",
                "complexity",
                "category",
            }
            assert template["scores"]["overall_score"] >= 3.0
            assert (template["domains"], template["is_cross_domain"]) == ([], False)
            assert " if " not in template["task_template"]["instruction"].lower()
        kept += len(data["templates"])
    assert kept == 7
    cards = json.loads((out / "task_templates" / "CardServices.json").read_text())
    assert cards["stats"]["rejected_by_judge"] == 1


def test_rejections_and_unbuilt_servers_are_recorded_failures(demo):
    """The judge's rejection carries our mean, not the self-reported 4.5."""
    _, report, store = demo
    step = report.steps[STEP]
    assert sorted((f.item_key, f.reason) for f in step.failures) == [
        (REJECTED, "rejected_by_judge"),
        ("FlightBooking", "dependency_failed"),
    ]
    [rejected] = [f for f in step.failures if f.item_key == REJECTED]
    assert rejected.message.startswith("the judge scored overall 2.00")
    manifest = store.read_manifest(STEP)
    assert {f.item_key for f in manifest.failed} == {REJECTED, "FlightBooking"}


def test_template_lineage_reaches_the_server_build_and_the_seed_domains(demo):
    _, _, store = demo
    kinds = ancestor_kinds(store, "task_templates/DentalAppointments.json")
    assert {
        "task_template_set",
        "task_template",
        "tool_graph",
        "mcp_server",
        "policy",
        "table_summary",
        "blueprint",
        "domain",
        "seed_domains",
    } <= kinds


def test_a_rerun_pays_for_nothing_not_even_the_rejected_template(demo):
    """Reference defect 22: rejected items are cached, so they cost no new call."""
    out, first, _ = demo
    second = _run(out)
    assert second.llm_calls == 0
    step = second.steps[STEP]
    assert step.ok == first.steps[STEP].ok
    assert (
        step.cached == step.items == step.ok + step.failed - 1
    )  # FlightBooking never runs
