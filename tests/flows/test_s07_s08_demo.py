"""End-to-end: the demo world through s08 under a real (temporary) Prefect API.

The scripted cassette (no network) drives every repair path of s07 and s08: a
policy re-asked for a missing section and an unknown column, auditor edits that
apply (one only after being sent back), a graph re-asked for unknown tool names,
a cycle repaired deterministically, and preconditions re-asked for an unknown tool.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import DEMO_CONFIG, ancestor_kinds

pytestmark = pytest.mark.slow

SERVERS = [
    "AccountServicing",
    "CardServices",
    "DentalAppointments",
    "TreatmentBilling",
    "FlightBooking",
]
TRAJECTORIES = {
    "AccountServicing": 7,
    "CardServices": 4,
    "DentalAppointments": 5,
    "TreatmentBilling": 4,
    "FlightBooking": 5,
}


@pytest.fixture(scope="module")
def demo(prefect_harness, tmp_path_factory):
    from flows.pipeline import run_pipeline
    from tasks.store.artifacts import ArtifactStore
    from tasks.store.paths import OutputLayout

    out = tmp_path_factory.mktemp("demo-s08")
    report = run_pipeline(
        config_path=str(DEMO_CONFIG), output_dir=str(out), until="s08"
    )
    return out, report, ArtifactStore(OutputLayout(out))


def _policies(store):
    from schemas.policy import PolicyDocument

    found = store.load_outputs("s07_policy_generation", PolicyDocument, kind="policy")
    return {a.id: a for a in found}


def test_every_demo_server_gets_a_valid_policy_with_markers(demo):
    """policies/<Server>.md parse cleanly and cover every tool of the blueprint."""
    from schemas.blueprint import ServerBlueprint
    from tasks.core.policy import parse_policy

    out, report, store = demo
    assert report.status == "ok"
    s07 = report.steps["s07_policy_generation"]
    assert (s07.ok, s07.failed) == (5, 0)
    # five policies, one re-ask, five audits, one audit sent back
    assert s07.llm_calls == 12
    blueprints = {
        b.id: b.payload
        for b in store.load_outputs(
            "s04_blueprint_generation", ServerBlueprint, kind="blueprint"
        )
    }
    policies = _policies(store)
    assert sorted(policies) == sorted(SERVERS)
    for server in SERVERS:
        text = (out / "policies" / f"{server}.md").read_text()
        assert text == policies[server].payload.markdown
        parsed = parse_policy(text)
        assert parsed.problems == ()
        assert list(parsed.tools) == [f.name for f in blueprints[server].functions]
        writes = {f.name for f in blueprints[server].functions if f.effect == "write"}
        assert set(policies[server].payload.confirm_tools) <= writes


def test_scripted_policy_failures_were_repaired_and_recorded(demo):
    """The re-asked policy is complete; auditor edits are applied and noted."""
    from tasks import policy_generation as s07

    _, _, store = demo
    policies = {k: a.payload for k, a in _policies(store).items()}
    dental = policies["DentalAppointments"]
    assert "cancel_appointment" in dental.parsed.tools
    assert "opening_hours" not in dental.markdown
    assert dental.confirm_tools == ("book_appointment", "cancel_appointment")
    billing, cards = policies["TreatmentBilling"], policies["CardServices"]
    assert billing.audit_notes[0] == s07.AUDIT_APPLIED
    assert "overdue" not in billing.markdown
    assert cards.audit_notes[0] == s07.AUDIT_APPLIED
    assert "expired" not in cards.markdown
    for server in ("AccountServicing", "DentalAppointments", "FlightBooking"):
        assert policies[server].audit_notes == (s07.AUDIT_CLEAN,)


def test_tool_graphs_are_rooted_dags_and_report_their_trajectories(demo):
    """Every trajectory starts at the real authorization tool and uses real tools."""
    out, report, _ = demo
    s08 = report.steps["s08_tool_graph_generation"]
    assert (s08.ok, s08.failed, s08.llm_calls) == (5, 0, 12)
    counts = ", ".join(f"{name} {n}" for name, n in TRAJECTORIES.items())
    assert s08.note == f"5 tool graph(s); trajectories per server: {counts}"
    for server, expected in TRAJECTORIES.items():
        graph = json.loads((out / "tool_graphs" / f"{server}.json").read_text())
        names = {node["id"] for node in graph["nodes"]}
        assert graph["root"].startswith("authorize_")
        assert graph["trajectory_stats"]["trajectories"] == expected
        assert len(graph["valid_trajectories"]) == expected
        for path in graph["valid_trajectories"]:
            assert path[0] == graph["root"]
            assert 2 <= len(path) <= 4
            assert set(path) <= names
    flights = json.loads((out / "tool_graphs" / "FlightBooking.json").read_text())
    assert flights["root"] == "authorize_traveler"
    assert flights["repairs"] == [
        "Dropped link 'cancel_booking' -> 'search_flights' to break a cycle."
    ]
    billing = json.loads((out / "tool_graphs" / "TreatmentBilling.json").read_text())
    assert billing["tool_preconditions"]["pay_invoice"] == ["authorize_patient"]


def test_tool_graph_lineage_reaches_policy_data_and_blueprint(demo):
    """tool_graphs/<Server>.json -> tool graph -> policy -> summaries, blueprint."""

    _, _, store = demo
    kinds = ancestor_kinds(store, "tool_graphs/DentalAppointments.json")
    assert {
        "tool_graph",
        "policy",
        "table_summary",
        "entity_catalogue",
        "blueprint",
        "domain",
    } <= kinds


def test_rerun_of_s07_and_s08_is_all_cache_hits(demo):
    """Unchanged inputs: no model call, every item cached, same files."""
    from flows.pipeline import run_pipeline

    out, _, _ = demo
    before = {
        p: p.read_bytes()
        for folder in ("policies", "tool_graphs")
        for p in (out / folder).iterdir()
    }
    again = run_pipeline(
        config_path=str(DEMO_CONFIG), output_dir=str(out), start="s07", until="s08"
    )
    assert again.llm_calls == 0
    for step in again.steps.values():
        assert step.cached == step.ok == 5
    assert {p: p.read_bytes() for p in before} == before
