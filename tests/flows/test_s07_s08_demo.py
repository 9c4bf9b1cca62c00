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


def test_server_whose_policy_never_validates_is_a_failed_s08_item(
    prefect_harness, tmp_path
):
    """s07 gives TreatmentBilling no policy: s08 records it as `dependency_failed`,
    makes no model call for it, and builds the other four graphs."""
    import shutil

    import yaml

    from flows.pipeline import run_pipeline
    from tasks.store.paths import OutputLayout
    from tests.conftest import DEMO_CASSETTE

    cassette = tmp_path / "cassette"
    shutil.copytree(DEMO_CASSETTE, cassette)
    part = cassette / "s07.yaml"
    document = yaml.safe_load(part.read_text())
    unusable = {"markdown": "No markers at all.", "confirmation_required": []}
    document["calls"]["s07/write/TreatmentBilling"] = [unusable] * 5
    part.write_text(yaml.safe_dump(document, sort_keys=False))
    config = yaml.safe_load(DEMO_CONFIG.read_text())
    config["llm"]["cassette"] = str(cassette)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    out = tmp_path / "out"

    report = run_pipeline(
        config_path=str(config_path), output_dir=str(out), until="s08"
    )

    s07 = report.steps["s07_policy_generation"]
    assert [(f.item_key, f.reason) for f in s07.failures] == [
        ("TreatmentBilling", "invalid_output")
    ]
    s08 = report.steps["s08_tool_graph_generation"]
    assert (s08.ok, s08.failed) == (4, 1)
    [failure] = s08.failures
    assert (failure.step, failure.item_key, failure.reason) == (
        "s08",
        "TreatmentBilling",
        "dependency_failed",
    )
    assert failure.message == (
        "s07 produced no policy for TreatmentBilling, so it gets no tool graph"
    )
    assert not (out / "tool_graphs" / "TreatmentBilling.json").exists()
    ledger = OutputLayout(out).ledger_dir / f"{report.flow_run_id}.jsonl"
    keys = [json.loads(line)["call_key"] for line in ledger.read_text().splitlines()]
    assert not [k for k in keys if k.startswith("s08/") and "TreatmentBilling" in k]
    assert "s08/graph/AccountServicing" in keys
