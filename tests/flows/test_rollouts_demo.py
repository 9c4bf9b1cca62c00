"""End-to-end: rollouts (r01) and evaluation (r02) on the demo world.

The demo's scripted rollouts contain one fault each evaluator catches; the
built-in agents check the checkers on every query (single and cross-domain);
bad rollout files are reported per line and counted; the training exports load
as trainers load them; a re-run makes no model call.
"""

from __future__ import annotations

import json
import shutil
import time

import pytest

from tests.conftest import DEMO_CONFIG

pytestmark = pytest.mark.slow


def _run(out, step, **overrides):
    from flows.pipeline import run_pipeline

    return run_pipeline(
        config_path=str(DEMO_CONFIG),
        output_dir=str(out),
        step=step,
        overrides=overrides,
    )


def _results(out):
    lines = (out / "evaluation" / "results.jsonl").read_text().splitlines()
    return {(r["id"], r["trial"]): r for r in map(json.loads, lines)}


def _failing(result):
    return sorted(k for k, v in result["evaluators"].items() if not v["passed"])


def test_each_scripted_fault_is_caught_by_its_evaluator(demo_world):
    results = _results(demo_world)
    assert len(results) == 8
    failing = {key: _failing(r) for key, r in results.items() if not r["passed"]}
    # one fault per evaluator (see configs/demo/cassette/r01.yaml)
    assert sorted(failing.values()) == [
        ["action"],
        ["action", "state"],  # a block only previewed, then reported as done
        ["nl_assertions"],
        ["subjective"],
    ]
    summary = json.loads((demo_world / "evaluation" / "summary.json").read_text())
    overall = summary["overall"]
    assert overall["pass_at_1"] == 0.5
    assert overall["pass_hat_k"] == {"1": 0.5, "2": 0.25}
    assert overall["pass_at_k"] == {"1": 0.5, "2": 0.75}
    assert set(summary["by_domain"]) == {"AccountServicing", "CardServices"}


def test_rollout_records_keep_the_reference_shape_and_ours(demo_world):
    queries = {
        json.loads(line)["id"]
        for path in (demo_world / "queries").glob("*.jsonl")
        for line in path.read_text().splitlines()
    }
    lines = (demo_world / "rollouts" / "AccountServicing.jsonl").read_text()
    records = [json.loads(line) for line in lines.splitlines()]
    assert len(records) == 4
    for record in records:
        assert record["id"] in queries and record["success"] is True
        assert record["stopped"] is True and record["stop_reason"] == "user_token"
        assert record["models"] == {
            "assistant": "scripted-assistant",
            "user": "scripted-user",
        }
        assert record["final_state_hash"] and record["tools"]
        assert record["usage"]["assistant"]["calls"] > 0
        for message in record["messages"]:
            if message["role"] == "assistant":
                assert "tool_calls" in message
                for call in message["tool_calls"] or []:
                    assert isinstance(call["function"]["arguments"], str)
                    assert call["function"]["name"] in record["tool_names"]
    malformed = [r for r in records if r["format_errors"]]
    [record] = malformed
    errors = [
        m
        for m in record["messages"]
        if m["role"] == "tool" and '"error"' in m["content"]
    ]
    assert "not JSON" in json.loads(errors[0]["content"])["error"]


def test_builtin_agents_check_the_checkers_on_every_query(demo_world, tmp_path):
    """oracle passes everything; do_nothing fails every task that writes;
    wrong_argument fails the state check of every task that writes."""
    out = tmp_path / "out"
    shutil.copytree(demo_world, out)
    everything = {
        "steps.r01_rollouts.environments": [],
        "steps.r01_rollouts.trials": 1,
        "steps.r01_rollouts.user": "scripted",
        "steps.r02_evaluation.nl_assertions": False,
        "steps.r02_evaluation.subjective": False,
    }
    verdicts = {}
    for agent in ("oracle", "do_nothing", "wrong_argument"):
        keys = {**everything, "steps.r01_rollouts.assistant": agent}
        assert _run(out, "r01", **keys).status == "ok"
        assert _run(out, "r02", **keys).status == "ok"
        verdicts[agent] = _results(out)
    writes = {
        key
        for key, r in verdicts["oracle"].items()
        if _writes(out, r["environment"], key[0])
    }
    assert len(verdicts["oracle"]) == 11 and writes  # 9 single + 2 cross-domain
    assert all(r["passed"] for r in verdicts["oracle"].values())
    for key, result in verdicts["do_nothing"].items():
        assert not result["evaluators"]["action"]["passed"]
        assert result["evaluators"]["state"]["passed"] is (key not in writes)
    for key in writes:
        assert not verdicts["wrong_argument"][key]["evaluators"]["state"]["passed"]


def _writes(out, environment, query_id):
    """Whether the query's validated task changed the state (its expected diff)."""
    from schemas.validated_task import AgentTask
    from tasks.check_task import find_query
    from tasks.store.artifacts import ArtifactStore
    from tasks.store.paths import OutputLayout

    query = find_query(out, query_id)
    assert query.environment == environment
    store = ArtifactStore(OutputLayout(out))
    task = store.get(query.lineage.content_hash, AgentTask).payload
    return not task.expected_diff.empty


def test_bad_rollout_lines_and_unknown_queries_are_reported_and_counted(
    demo_world, tmp_path
):
    out = tmp_path / "out"
    shutil.copytree(demo_world, out)
    good = (out / "rollouts" / "CardServices.jsonl").read_text().splitlines()
    stranger = json.loads(good[0]) | {"id": "q-nobody"}
    own = tmp_path / "mine.jsonl"
    own.write_text(
        good[0] + "\n" + json.dumps(stranger) + "\n" + good[1][: len(good[1]) // 2]
    )
    report = _run(
        out,
        "r02",
        **{
            "steps.r02_evaluation.rollout_files": [str(own)],
            "steps.r02_evaluation.nl_assertions": False,
            "steps.r02_evaluation.subjective": False,
        },
    )
    assert report.status == "ok"
    messages = [f.message for f in report.steps["r02_evaluation"].failures]
    assert any("truncated last line" in m and "mine.jsonl:3" in m for m in messages)
    assert any("q-nobody" in m for m in messages)
    summary = json.loads((out / "evaluation" / "summary.json").read_text())
    assert summary["skipped_items"] == {
        "duplicate_rollout": 1,  # mine.jsonl repeats r01's first rollout
        "truncated_line": 1,
        "unknown_query": 1,
    }
    assert summary["overall"]["rollouts"] == 8


def test_exports_load_as_trainers_load_them_and_a_rerun_is_free(demo_world, tmp_path):
    import datasets

    from tasks.store.artifacts import ArtifactStore
    from tasks.store.paths import OutputLayout
    from tasks.training_export import export_training

    out = tmp_path / "out"
    shutil.copytree(demo_world, out)
    done = export_training(ArtifactStore(OutputLayout(out)))
    assert done.records == 4 and done.skipped == {"failed": 4}
    for fmt, path in done.written.items():
        rows = datasets.load_dataset("json", data_files=str(path), split="train")
        assert len(rows) == 4, fmt
    again = _run(out, None)
    assert again.status == "ok" and again.llm_calls == 0


def test_served_environments_launch_when_first_needed_and_outlive_the_thread(
    demo_world,
):
    """The environments a step expects are launched only when a rollout first
    needs one (a re-run served from the cache launches nothing), then all
    together; a worker, launched by the module's own launcher thread, keeps
    serving after the rollout thread that asked for it has ended, and the next
    rollout of the build gets the same environment."""
    import threading

    from schemas.database import DataTable
    from schemas.server import McpServer
    from tasks import inputs
    from tasks import served_environments as served_module
    from tasks.runtime.serve import DEFAULT_SIMULATION_TIME
    from tasks.served_environments import (
        EnvironmentBuild,
        close_served,
        expect,
        served_environment,
    )
    from tasks.store.artifacts import ArtifactStore
    from tasks.store.paths import OutputLayout
    from tasks.task_filter_plan import environment_inputs

    store = ArtifactStore(OutputLayout(demo_world))

    def build_of(name):
        parts = environment_inputs(
            name,
            blueprints={b.id: b for b in inputs.blueprints(store)},
            catalogue=inputs.entity_catalogue(store),
            tables=store.load_outputs(
                "s06_database_generation", DataTable, kind="data_table"
            ),
            servers={
                s.id: s
                for s in store.load_outputs(
                    "s09_mcp_server_implementation", McpServer, kind="mcp_server"
                )
            },
        )
        assert isinstance(parts, dict), parts
        return EnvironmentBuild(
            environment=name,
            simulation_time=DEFAULT_SIMULATION_TIME,
            seed=7,
            call_timeout_s=30.0,
            **parts,
        )

    accounts, cards = build_of("AccountServicing"), build_of("CardServices")
    first = []
    try:
        expect([cards, accounts])
        assert served_module._LAUNCHER is None and not served_module._SERVED
        thread = threading.Thread(
            target=lambda: first.append(
                served_environment(accounts).environment.ready()
            )
        )
        thread.start()
        thread.join()
        assert first == [()]
        launched = set(served_module._SERVED) | set(served_module._LAUNCHING)
        assert launched == {accounts.key, cards.key}
        served = served_environment(accounts)
        time.sleep(0.5)  # a worker tied to the ended thread would be gone by now
        listed = served.environment.call("s", "list_my_accounts", {})
        assert listed.is_error and "authorize" in (listed.error or ""), listed
        assert served.environment.restarts == 0
        assert served_environment(cards).environment.ready() == ()
    finally:
        close_served()
    assert served_module._LAUNCHER is None and not served_module._SERVED
