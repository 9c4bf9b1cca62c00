"""End-to-end: the demo world in `both` mode through the single-domain task steps
(s14-s17), the fusion steps (s10-s13) and the cross-domain pass (s14x-s17x),
under a real (temporary) Prefect API.

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
    filtered = report.steps["s16_task_filtering"].failures
    assert len(filtered) == 2  # bookings the server refuses never become tasks
    assert all("does not accept new patients" in f.message for f in filtered)
    assert all("(tool_error)" in f.message for f in filtered)
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
    assert len(records) == 11  # 9 single-domain, 2 cross-domain
    assert len({r.id for r in records}) == len(records)
    for record in records:
        assert "[[" not in record.messages[0].content
        assert "[[" not in record.user_system_prompt
        assert "[[" in record.task_info.instruction
        assert len(record.expected_state_hash) == 64
        keys = json.loads(record.model_dump_json())
        assert {"id", "messages", "user_system_prompt", "task_info"} <= set(keys)


def test_the_cross_domain_pass_keeps_only_combinations_that_executed(demo):
    """s15x's first creation script makes cards block_card refuses; the
    execution errors go back, one edit repairs it (two runs), and the two
    sampled combinations, each with its own overlay of new records, executed
    and are kept; s16x passes them, and s17x writes a query for each (one
    re-asked for the card it left out) under the fused name. The expected diff
    is against the untouched base: the overlay rows show as inserted."""
    from schemas.instance_plan import InstanceSelection
    from schemas.validated_task import AgentTask

    out, report, _, _ = demo
    names = list(report.steps)
    cross = ["s14x_cross_domain_task_templates"]
    cross += ["s15x_cross_domain_instance_combinations"]
    cross += ["s16x_cross_domain_task_filtering"]
    cross += ["s17x_cross_domain_query_generation"]
    assert [n for n in names if n in cross] == cross
    assert names.index("s13_policy_merge") < names.index(cross[0])
    fused = "AccountServicing_CardServices"
    [exported] = (out / "combinations" / fused).glob("*.json")
    combos = json.loads(exported.read_text())["combos"]
    assert len(combos) == 2
    assert all("CardServices.Card" in c["overlay"] for c in combos)
    assert list((out / "sampling_codes" / f"{fused}_creation").glob("*.py"))
    store = _store(out)
    [selection] = store.load_outputs(
        "s15x_cross_domain_instance_combinations",
        InstanceSelection,
        kind="instance_selection",
    )
    assert selection.payload.runs == 2
    assert '"status": "active"' in selection.payload.script
    tasks = store.load_outputs(
        "s16x_cross_domain_task_filtering", AgentTask, kind="agent_task"
    )
    assert len(tasks) == 2
    for task in tasks:
        diff = task.payload.expected_diff.tables
        assert task.payload.scope == "cross_domain"
        assert set(diff) == set(task.payload.overlay)
        assert diff["CardServices.Card"].inserted == (
            task.payload.instances["CardServices.Card"]["card_id"],
        )
    lines = (out / "queries" / f"{fused}.jsonl").read_text().splitlines()
    assert len(lines) == 2
    assert report.steps["s17x_cross_domain_query_generation"].failures == ()


def _store(out):
    from tasks.store.artifacts import ArtifactStore
    from tasks.store.paths import OutputLayout

    return ArtifactStore(OutputLayout(out))


def test_every_querys_golden_calls_replay_to_its_recorded_state(demo):
    """check-task serves each environment over stdio in a fresh session (a
    cross-domain task's with its overlay) and gets the recorded final state
    hash back."""
    from tasks.check_task import check_task

    out, _, _, _ = demo
    ids = [
        json.loads(line)["id"]
        for path in sorted((out / "queries").glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    results = [check_task(out, query_id) for query_id in ids]
    assert [r.query_id for r in results if not r.ok] == []
    fused = [r for r in results if r.environment == "AccountServicing_CardServices"]
    assert len(fused) == 2
    assert all(r.diff == r.expected_diff for r in fused)


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


def test_creation_code_that_never_executes_keeps_nothing(demo, tmp_path):
    """The demo's s15x item on a cassette whose repair does not help: both
    sampled candidates fail block_card in both runs, so the template gets no
    combination (typed `execution_failed`, the tool's refusal in its details)
    rather than unexecuted ones, and the shared data is untouched."""
    import yaml

    from tasks import cross_instance_combinations as s15x
    from tasks import instance_combinations as s15
    from tasks.cross_combination_plan import cross_domain_templates
    from tests.tasks.step_calls import call_task
    from tests.tasks.test_policy_generation import replay_context

    out, _, _, _ = demo
    scripted = yaml.safe_load(
        (DEMO_CONFIG.parent / "demo" / "cassette" / "s15x.yaml").read_text()
    )["calls"]
    key = "AccountServicing_CardServices/05ae286945c0"
    unhelpful = (
        '<<<<<<< SEARCH\n        "status": "issued",\n=======\n'
        '        "status": "frozen",\n>>>>>>> REPLACE\n'
    )
    calls = {
        f"s15x/{key}/plan": scripted[f"s15x/{key}/plan"],
        f"s15x/{key}": scripted[f"s15x/{key}"],
        f"s15x/{key}/fix-1": [{"edits": unhelpful}],
    }
    step = replay_context(tmp_path, calls, step_id="s15x")
    [source], unready = cross_domain_templates(_store(out))
    assert unready == []
    data = sorted((out / "database").rglob("*.json"))
    before = {path: path.read_bytes() for path in data}
    cfg = step.config.steps.s15_instance_combinations
    outcome = call_task(
        step,
        s15x.create_instance_combinations,
        key,
        model=cfg,
        models={s15x.PLAN_MODEL: s15.plan_model(cfg)},
        prompts=s15x.PROMPTS,
        settings=s15.SelectionSettings(
            cfg=cfg,
            seed=step.config.run.seed,
            simulation_time=step.config.run.simulation_time,
        ),
        round_number=1,
        template=source.template,
        **source.artifacts,
    )
    assert outcome.artifacts == ()
    failure = outcome.failure
    assert failure.details[0] == "execution_failed"
    assert any(
        "CardServices__block_card" in d and "frozen" in d for d in failure.details
    )
    assert {path: path.read_bytes() for path in data} == before
