"""End-to-end: the demo world through s01-s05 under a real (temporary) Prefect API.

These runs use the scripted cassette (no network). They check the reference output
layout, the scripted failures, the lineage chain back to the seed domains, the
zero-call re-run, prompt-change invalidation and byte-for-byte determinism.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from uuid import UUID

import pytest

from tests.conftest import DEMO_CASSETTE, DEMO_CONFIG, REPO, ancestor_kinds

pytestmark = pytest.mark.slow


def _run(config: Path, out: Path):
    from flows.pipeline import run_pipeline

    return run_pipeline(config_path=str(config), output_dir=str(out), until="s05")


@pytest.fixture(scope="module")
def demo(prefect_harness, tmp_path_factory):
    out = tmp_path_factory.mktemp("demo-run")
    return out, _run(DEMO_CONFIG, out)


def test_demo_run_writes_the_reference_layout(demo):
    """domain_topics, entities, entity_graph, blueprints and tool lists are written."""
    out, report = demo
    assert report.status == "ok"
    topics = json.loads((out / "domain_topics.json").read_text())
    assert topics["domains"] == [
        "airline",
        "dental_clinic",
        "finance",
        "healthcare",
        "personal_banking",
        "travel",
    ]
    entities = json.loads((out / "entities.json").read_text())
    assert sorted(entities) == [
        "AccountHolder",
        "BankAccount",
        "Card",
        "Clinic",
        "Flight",
        "Hotel",
        "Patient",
        "Traveler",
        "Treatment",
    ]
    persons = {n for n, e in entities.items() if e["is_person"]}
    assert persons == {"AccountHolder", "Patient", "Traveler"}
    for name in persons:
        assert len(entities[name]["source_domains"]) == 2
    graph = json.loads((out / "entity_graph.json").read_text())
    assert all(link["source"] != link["target"] for link in graph["links"])
    blueprints = json.loads((out / "blueprints.json").read_text())
    names = sorted(b["MCP_server_name"] for b in blueprints)
    assert names == [
        "AccountServicing",
        "CardServices",
        "DentalAppointments",
        "FlightBooking",
        "TreatmentBilling",
    ]
    cores = [b["core_entity"] for b in blueprints]
    assert cores.count("Patient") == 2 and cores.count("AccountHolder") == 2
    tool_files = sorted(p.name for p in (out / "tool_lists").glob("*.json"))
    assert tool_files == [f"{n}.json" for n in names]


def test_demo_run_reports_each_scripted_failure_as_data(demo):
    """Near-duplicates are rejected with their neighbour; a bad blueprint is dropped."""
    out, report = demo
    from schemas.domain import DomainBatch
    from tasks.store.artifacts import ArtifactStore
    from tasks.store.paths import OutputLayout

    store = ArtifactStore(OutputLayout(out))
    batches = store.load_outputs(
        "s01_domain_expansion", DomainBatch, kind="domain_batch"
    )
    rejected = {r.candidate: r for b in batches for r in b.payload.rejected}
    assert rejected["healthcare"].kind == "exact"
    assert rejected["dental_clinics"].kind == "semantic"
    assert rejected["dental_clinics"].nearest == "dental_clinic"
    assert rejected["dental_clinics"].similarity >= 0.9
    s04 = report.steps["s04_blueprint_generation"]
    assert [(f.item_key, f.reason) for f in s04.failures] == [
        ("Traveler-1", "invalid_output")
    ]
    assert "Room" in " ".join(s04.failures[0].details)
    manifest = store.read_manifest("s04_blueprint_generation")
    assert [f.item_key for f in manifest.failed] == ["Traveler-1"]


def test_blueprint_lineage_reaches_the_seed_domains(demo):
    """A tool list traces back through blueprint, entities and domains to the seeds."""
    out, _ = demo
    from tasks.store.artifacts import ArtifactStore
    from tasks.store.paths import OutputLayout

    store = ArtifactStore(OutputLayout(out))
    kinds = ancestor_kinds(store, "tool_lists/DentalAppointments.json")
    assert {
        "tool_list",
        "blueprint",
        "blueprint_detail",
        "blueprint_outline_set",
        "entity",
        "entity_graph",
        "entity_batch",
        "domain",
        "domain_batch",
        "seed_domains",
    } <= kinds


def test_rerun_of_unchanged_config_makes_no_model_calls(demo):
    """Every item is a Prefect cache hit the second time."""
    out, first = demo
    second = _run(DEMO_CONFIG, out)
    assert first.llm_calls > 0
    assert second.llm_calls == 0
    for name, step in second.steps.items():
        assert step.cached == step.items, name
        assert step.ok == first.steps[name].ok


def test_changing_one_prompt_reruns_exactly_the_items_that_use_it(demo, tmp_path):
    """A prompt override for s03 re-runs the six s03 calls (plus one re-ask) only."""
    out, _ = demo
    config = tmp_path / "demo.yaml"
    text = DEMO_CONFIG.read_text().replace(
        "cassette: demo/cassette",
        f"cassette: {DEMO_CASSETTE}\n  prompt_overrides: prompts",
    )
    config.write_text(text)
    template = REPO / "tasks" / "llm" / "prompts" / "s03" / "relate_entities.md.j2"
    (tmp_path / "prompts" / "s03").mkdir(parents=True)
    shutil.copy(template, tmp_path / "prompts" / "s03" / template.name)
    with (tmp_path / "prompts" / "s03" / template.name).open("a") as fh:
        fh.write("Prefer entities the person would use at least monthly.\n")
    report = _run(config, out)
    calls = {name: step.llm_calls for name, step in report.steps.items()}
    assert calls == {
        "s01_domain_expansion": 0,
        "s02_entity_extraction": 0,
        "s03_entity_graph": 7,
        "s04_blueprint_generation": 0,
        "s05_tool_list_formulation": 0,
    }


def test_same_config_and_cassette_give_byte_identical_artifacts(demo, tmp_path):
    """A fresh run elsewhere reproduces every export and artifact object exactly."""
    out, _ = demo
    other = tmp_path / "again"
    _run(DEMO_CONFIG, other)
    for rel in (
        "domain_topics.json",
        "entities.json",
        "entity_graph.json",
        "blueprints.json",
    ):
        assert (out / rel).read_bytes() == (other / rel).read_bytes(), rel
    objects = sorted(
        p.relative_to(out) for p in (out / ".agentskiller" / "objects").rglob("*.json")
    )
    again = sorted(
        p.relative_to(other)
        for p in (other / ".agentskiller" / "objects").rglob("*.json")
    )
    assert objects == again
    for rel in objects:
        assert (out / rel).read_bytes() == (other / rel).read_bytes(), rel


def test_run_publishes_step_summary_and_report_to_the_prefect_ui(demo):
    """The run's table and markdown artifacts are stored by the Prefect API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )

    _, report = demo
    keys = ["agentskiller-step-summary", "agentskiller-run-report"]
    wanted = ArtifactFilter(
        key=ArtifactFilterKey(any_=keys),
        flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(report.flow_run_id)]),
    )
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=wanted)
    assert {a.key for a in found} == set(keys)
    markdown = next(a for a in found if a.key == "agentskiller-run-report")
    assert "s04_blueprint_generation" in str(markdown.data)
