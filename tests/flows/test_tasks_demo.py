"""End-to-end: the demo world in `both` mode through the single-domain task steps
(s14-s17) and the fusion steps (s10, s13), under a real (temporary) Prefect API.

Every query's golden calls are replayed against its environment served over
stdio (`check-task`), a query is traced back to the seed domains, the scripted
failures are recorded with their typed reasons, and a re-run makes no model call
and rewrites the queries byte for byte.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import DEMO_CONFIG

pytestmark = pytest.mark.slow


def _run(out):
    from flows.pipeline import run_pipeline

    return run_pipeline(config_path=str(DEMO_CONFIG), output_dir=str(out))


@pytest.fixture(scope="module")
def demo(prefect_harness, tmp_path_factory):
    out = tmp_path_factory.mktemp("demo-tasks")
    first = _run(out)
    queries = {p.name: p.read_bytes() for p in (out / "queries").glob("*.jsonl")}
    return out, first, queries, _run(out)


def test_the_task_steps_run_in_order_with_their_scripted_failures(demo):
    """s14 -> s17 run after the environments and before fusion; each scripted
    failure is a typed failed item and the run still ends ok."""
    _, report, _, _ = demo
    assert report.status == "ok"
    names = list(report.steps)
    order = ["s09_mcp_server_implementation", "s14_task_templates"]
    order += ["s15_instance_combinations", "s16_task_filtering"]
    order += ["s17_query_generation", "s10_combination_selection", "s13_policy_merge"]
    assert [n for n in names if n in order] == order
    reasons = {(f.step, f.reason) for s in report.steps.values() for f in s.failures}
    assert ("s14", "rejected_by_judge") in reasons
    assert ("s15", "validation_failed") in reasons
    [dropped] = report.steps["s17_query_generation"].failures
    assert dropped.reason == "invalid_output"
    assert "not in the task's data: [[$4,200]]" in dropped.message


def test_every_query_is_a_checked_record_with_a_unique_id(demo):
    """Each JSONL line is the reference record plus environment, expected state
    hash and lineage; ids are unique across every file; user-facing texts carry
    no [[ ]] markers."""
    from schemas.validated_task import UserQuery

    out, _, _, _ = demo
    records = [
        UserQuery.model_validate_json(line)
        for path in sorted((out / "queries").glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    assert len(records) == 11
    assert len({r.id for r in records}) == len(records)
    for record in records:
        assert "[[" not in record.messages[0].content
        assert "[[" not in record.user_system_prompt
        assert "[[" in record.task_info.instruction
        assert len(record.expected_state_hash) == 64
        keys = json.loads(record.model_dump_json())
        assert {"id", "messages", "user_system_prompt", "task_info"} <= set(keys)


def test_every_querys_golden_calls_replay_to_its_recorded_state(demo):
    """check-task serves each environment over stdio in a fresh session and
    gets the recorded final state hash back."""
    from tasks.check_task import check_task

    out, _, _, _ = demo
    ids = [
        json.loads(line)["id"]
        for path in sorted((out / "queries").glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    results = [check_task(out, query_id) for query_id in ids]
    assert [r.query_id for r in results if not r.ok] == []


def test_a_query_traces_back_to_the_seed_domains(demo, capsys):
    """`lineage user_query:<id>` walks query -> agent task -> combination ->
    template -> tool graph -> blueprint -> entity -> domain -> seed domains."""
    from flows.cli import main

    out, _, _, _ = demo
    path = sorted((out / "queries").glob("*.jsonl"))[0]
    query_id = json.loads(path.read_text().splitlines()[0])["id"]
    assert main(["lineage", f"user_query:{query_id}", "--output-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    kinds = [line.split()[0] for line in printed.splitlines() if line.strip()]
    for kind in (
        "user_query",
        "agent_task",
        "instance_combination",
        "task_template",
        "tool_graph",
        "blueprint",
        "entity",
        "domain",
        "seed_domains",
    ):
        assert kind in kinds, kind


def test_a_rerun_makes_no_model_call_and_rewrites_the_queries_identically(demo):
    out, _, queries, again = demo
    assert again.status == "ok"
    assert again.llm_calls == 0
    assert {p.name: p.read_bytes() for p in (out / "queries").glob("*.jsonl")} == (
        queries
    )
