"""End-to-end: the demo world through the fusion phase (s10, s13) under a real
(temporary) Prefect API.

The demo's four passing servers form two candidates that each share two entities
(DentalAppointments + TreatmentBilling: Patient, Clinic; AccountServicing +
CardServices: AccountHolder, BankAccount); the demo asks for one combination, so
one is chosen and the other is recorded as not selected, with its score. s10
makes no model call, and a re-run is served from the cache with identical files.
s13 merges the chosen pair's policies (its scripted first answer is re-asked).
"""

from __future__ import annotations

import pytest

from tests.conftest import DEMO_CONFIG

pytestmark = pytest.mark.slow

STEP = "s10_combination_selection"
PASSING = ["AccountServicing", "CardServices", "DentalAppointments", "TreatmentBilling"]
PAIRS = {
    "AccountServicing_CardServices": ["AccountHolder", "BankAccount"],
    "DentalAppointments_TreatmentBilling": ["Patient", "Clinic"],
}
FILES = ("_combinations.json", "_candidates.json")


def _run(out):
    from flows.pipeline import run_pipeline

    return run_pipeline(config_path=str(DEMO_CONFIG), output_dir=str(out), until="s13")


@pytest.fixture(scope="module")
def demo(prefect_harness, tmp_path_factory):
    out = tmp_path_factory.mktemp("demo-s10")
    first = _run(out)
    folder = out / "cross_domain_combinations"
    written = {name: (folder / name).read_bytes() for name in FILES}
    return out, first, written, _run(out)


def test_one_combination_is_chosen_and_exported_in_the_reference_format(demo):
    """_combinations.json has the reference keys plus a score, for one pair."""
    import json

    out, report, _, _ = demo
    assert report.status == "ok"
    assert report.steps[STEP].llm_calls == 0
    [entry] = json.loads(
        (out / "cross_domain_combinations" / "_combinations.json").read_text()
    )["combinations"]
    assert list(entry) == [
        "domains",
        "core_entities",
        "servers",
        "fused_name",
        "shared_entities",
        "constraint_mappings",
        "score",
    ]
    assert entry["fused_name"] in PAIRS
    assert entry["fused_name"] == "_".join(entry["servers"])
    assert entry["shared_entities"] == PAIRS[entry["fused_name"]]
    assert entry["core_entities"] == [entry["shared_entities"][0]] * 2
    assert entry["constraint_mappings"] == {}
    blueprints = {
        b["MCP_server_name"]: b
        for b in json.loads((out / "blueprints.json").read_text())
    }
    assert entry["domains"] == [blueprints[s]["description"] for s in entry["servers"]]


def test_every_candidate_is_recorded_with_its_score_and_status(demo):
    """_candidates.json: the chosen pair and the outranked one, with score parts."""
    import json

    out, _, _, _ = demo
    doc = json.loads(
        (out / "cross_domain_combinations" / "_candidates.json").read_text()
    )
    assert doc["servers"] == PASSING
    assert doc["settings"]["combinations"] == 1
    chosen, other = doc["candidates"]
    assert {chosen["fused_name"], other["fused_name"]} == set(PAIRS)
    assert (chosen["status"], chosen["rank"]) == ("chosen", 1)
    assert (other["status"], other["rank"]) == ("not_selected", 2)
    assert other["score"] <= chosen["score"]
    assert other["reason"].startswith("rank 2: score")
    for candidate in (chosen, other):
        assert candidate["shared_entities"] == PAIRS[candidate["fused_name"]]
        assert candidate["shared_score"] == 2.0
        assert 0 < candidate["similarity"] < 0.97
        assert candidate["score"] == pytest.approx(
            candidate["shared_score"] + candidate["similarity_score"]
        )


def test_the_chosen_combination_is_an_artifact_traced_to_its_servers(demo):
    """The manifest holds the selection and one server_combination whose parents
    are the selection and the members' servers and blueprints; the servers'
    embeddings are in the run's LanceDB table."""
    from schemas.fusion import ServerCombination
    from tasks.store.artifacts import ArtifactStore
    from tasks.store.paths import OutputLayout
    from tasks.store.vectors import VectorIndex, WordLlamaEmbedder

    out, _, _, _ = demo
    layout = OutputLayout(out)
    store = ArtifactStore(layout)
    manifest = store.read_manifest(STEP)
    assert sorted(r.kind for r in manifest.outputs) == [
        "combination_selection",
        "server_combination",
    ]
    [combo] = store.load_outputs(STEP, ServerCombination, kind="server_combination")
    assert combo.id == combo.payload.name
    assert sorted((p.kind, p.id) for p in combo.parents) == sorted(
        [("combination_selection", "combination_selection")]
        + [("mcp_server", s) for s in combo.payload.servers]
        + [("blueprint", s) for s in combo.payload.servers]
    )
    index = VectorIndex(layout.lancedb_dir, "servers", WordLlamaEmbedder())
    assert sorted(index.all_ids()) == PASSING


def test_a_rerun_is_cached_and_writes_identical_files(demo):
    """Unchanged inputs: s10's item is a cache hit and the exports are the same
    bytes."""
    out, _, written, again = demo
    assert again.status == "ok"
    assert again.llm_calls == 0
    step = again.steps[STEP]
    assert (step.ok, step.cached) == (1, 1)
    folder = out / "cross_domain_combinations"
    assert {name: (folder / name).read_bytes() for name in FILES} == written


def test_the_chosen_pairs_policies_merge_with_every_tool_and_bridge_rules(demo):
    """policies/<Fused>.md keeps every member tool under its agent-facing name,
    parses without marker problems, and carries bridge rules between both
    services; the scripted first answer was re-asked once."""
    import json

    from tasks.core.policy import parse_policy

    out, report, _, _ = demo
    assert report.steps["s13_policy_merge"].llm_calls == 2
    [entry] = json.loads(
        (out / "cross_domain_combinations" / "_combinations.json").read_text()
    )["combinations"]
    fused = entry["fused_name"]
    parsed = parse_policy((out / "policies" / f"{fused}.md").read_text())
    assert parsed.problems == ()
    expected = set()
    for server in entry["servers"]:
        member = parse_policy((out / "policies" / f"{server}.md").read_text())
        expected |= {f"{server}__{tool}" for tool in member.tools}
    assert set(parsed.tools) == expected
    assert "### Bridge rules" in parsed.global_rules
    assert f"(services: {', '.join(entry['servers'])})" in parsed.global_rules


def test_cross_domain_alone_refuses_before_any_work_without_single_domain_tasks(
    prefect_harness, tmp_path
):
    """task_mode cross_domain on a fresh output folder stops at once, naming the
    missing single-domain task work and the modes that make it."""
    from flows.pipeline import run_pipeline
    from tasks.store.config_loader import ConfigError

    config = tmp_path / "config.yaml"
    text = DEMO_CONFIG.read_text().replace("task_mode: both", "task_mode: cross_domain")
    text = text.replace(
        "cassette: demo/cassette", f"cassette: {DEMO_CONFIG.parent}/demo/cassette"
    )
    config.write_text(text)
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match="outputs of the single_tasks phase"):
        run_pipeline(config_path=str(config), output_dir=str(out))
    assert not (out / "blueprints.json").exists()
