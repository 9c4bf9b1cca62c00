"""Items fanned out to a real Prefect work pool with two process workers.

A real `prefect server start` on 127.0.0.1 (own PREFECT_HOME), a process work pool,
`prefect deploy` of the item-batch deployment from prefect.yaml, and two `prefect
worker start` processes with different names (`tests.flows.pool_cluster`, which
stops everything it started by process group). A worker killed mid-batch is in
`test_pool_worker_kill.py`.
"""

from __future__ import annotations

import filecmp
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import DEMO_CASSETTE, DEMO_CONFIG, REPO
from tests.flows.pool_cluster import BIN, Cluster, free_port

pytestmark = pytest.mark.slow

POOL = "agentskiller-test"
WORKERS = ("worker-a", "worker-b")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    started = time.monotonic()
    c = Cluster(tmp_path_factory.mktemp("pool"))
    try:
        c.start_server()
        c.prefect("work-pool", "create", POOL, "--type", "process")
        deployed = REPO / "prefect.yaml"
        spec = yaml.safe_load(deployed.read_text())
        for d in spec["deployments"]:
            d["work_pool"]["name"] = POOL
        local_yaml = c.root / "prefect.yaml"
        local_yaml.write_text(yaml.safe_dump(spec))
        c.prefect("deploy", "--prefect-file", str(local_yaml), "--name", "items")
        for name in WORKERS:
            c.start_worker(POOL, name)
        c.setup_s = time.monotonic() - started
        yield c
    finally:
        c.stop()


def _config(root: Path, **run: object) -> Path:
    data = yaml.safe_load(DEMO_CONFIG.read_text())
    data["llm"]["cassette"] = str(DEMO_CASSETTE)
    data["run"].update(run)
    path = root / f"demo-{run.get('executor', 'local')}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _problems(cluster: Cluster, tmp_path: Path, **pool: object) -> list[str]:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from tasks.pool import pool_problems
    from tasks.store.config_loader import load_config

    cfg = load_config(
        _config(
            tmp_path,
            executor="work_pool",
            work_pool={"name": POOL, "deployment": "agentskiller-items/items", **pool},
        )
    ).config
    url = str(pool.pop("_url", cluster.url)) if "_url" in pool else cluster.url
    with temporary_settings(updates={PREFECT_API_URL: url}):
        return pool_problems(cfg, {"PREFECT_API_URL": url})


def test_a_pool_that_does_not_exist_is_named_before_any_work(cluster, tmp_path):
    problems = _problems(cluster, tmp_path, name="no-such-pool")
    assert len(problems) == 1
    assert "run.work_pool.name" in problems[0] and "'no-such-pool'" in problems[0]
    assert "does not exist" in problems[0] and POOL in problems[0]


def test_a_deployment_that_is_not_deployed_is_named(cluster, tmp_path):
    problems = _problems(cluster, tmp_path, deployment="agentskiller-items/nope")
    assert len(problems) == 1
    assert "run.work_pool.deployment" in problems[0] and "not deployed" in problems[0]


def test_the_deployed_item_deployment_passes(cluster, tmp_path):
    assert _problems(cluster, tmp_path) == []


def test_an_api_that_does_not_answer_is_named(tmp_path):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from tasks.pool import pool_problems
    from tasks.store.config_loader import load_config

    url = f"http://127.0.0.1:{free_port()}/api"
    cfg = load_config(_config(tmp_path, executor="work_pool")).config
    with temporary_settings(updates={PREFECT_API_URL: url}):
        problems = pool_problems(cfg, {"PREFECT_API_URL": url})
    assert len(problems) == 1 and "no Prefect API answers at" in problems[0]
    assert url in problems[0]


def test_a_work_pool_run_without_an_api_url_is_refused(tmp_path, monkeypatch):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from tasks.pool import pool_problems
    from tasks.store.config_loader import load_config

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    cfg = load_config(_config(tmp_path, executor="work_pool")).config
    with temporary_settings(updates={PREFECT_API_URL: None}):
        problems = pool_problems(cfg, {})
    assert len(problems) == 1 and "PREFECT_API_URL is not set" in problems[0]


def test_a_parameter_of_the_wrong_type_fails_naming_it(cluster):
    done = cluster.prefect(
        "deployment",
        "run",
        "agentskiller-items/items",
        "--param",
        "items=oops",
        "--param",
        'run={"run_id": "x"}',
        check=False,
    )
    text = done.stdout + done.stderr
    if done.returncode != 0:  # the server enforces the parameter schema
        assert "items" in text and "Traceback" not in text, text
        return
    # otherwise the flow run must fail, naming the parameter, before its body runs
    flow_run_id = text.split("UUID:")[1].split()[0]
    state = _await_final(cluster, flow_run_id)
    assert state["type"] == "FAILED"
    assert "items" in state["message"], state


def _await_final(cluster: Cluster, flow_run_id: str, timeout_s: float = 180) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = httpx.get(f"{cluster.url}/flow_runs/{flow_run_id}", timeout=10).json()
        if run["state"]["type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}:
            return run["state"]
        time.sleep(1)
    raise AssertionError(f"flow run {flow_run_id} did not finish")


def _agentskiller(cluster: Cluster | None, config: Path, out: Path) -> float:
    env = dict(cluster.env if cluster else os.environ)
    if cluster is None:
        env.pop("PREFECT_API_URL", None)
    started = time.monotonic()
    done = subprocess.run(
        [str(BIN / "agentskiller"), "run", "--config", str(config)]
        + ["--output-dir", str(out), "--until", "s09"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return time.monotonic() - started


def _tree(root: Path) -> list[str]:
    skip = ".agentskiller"
    files = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
    exports = [f for f in files if not f.startswith(skip)]
    objects = [f for f in files if f.startswith(f"{skip}/objects/")]
    return sorted(exports + objects)


def test_the_demo_on_two_workers_equals_a_local_run(cluster, tmp_path):
    local_out, pool_out = tmp_path / "local", tmp_path / "pool"
    local_s = _agentskiller(None, _config(tmp_path), local_out)
    pool_config = _config(
        tmp_path,
        executor="work_pool",
        work_pool={"name": POOL, "batch_size": 4, "poll_interval_s": 0.5},
    )
    pool_s = _agentskiller(cluster, pool_config, pool_out)
    print(
        f"\nsetup {cluster.setup_s:.1f} s, local run {local_s:.1f} s, "
        f"work-pool run {pool_s:.1f} s"
    )
    files = _tree(local_out)
    assert files == _tree(pool_out)
    assert any(f.startswith(".agentskiller/objects/") for f in files)
    different = [
        f
        for f in files
        if not filecmp.cmp(local_out / f, pool_out / f, shallow=False)
        and not f.startswith("mcp_global_record")
    ]
    assert different == []
    # which worker ran which item: the lineage stamps of the pool run
    ran: dict[str, list[str]] = {}
    for record in (pool_out / ".agentskiller" / "lineage").glob("*.json"):
        data = json.loads(record.read_text())
        worker = data["run"].get("worker")
        if worker:
            ran.setdefault(worker, []).append(data["producer"]["item_key"])
    print({w: len(items) for w, items in ran.items()})
    assert set(ran) == set(WORKERS), ran


def test_items_run_on_the_workers_and_a_raising_item_comes_back_typed(
    cluster, tmp_path
):
    """Two batches of one s07 item each, whose inputs are not in the store: each
    task raises on a worker; the orchestrator gets typed failures and the report
    names the worker that ran each item."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from schemas.artifact import WorkItem
    from schemas.run import RunRef
    from tasks.caching import code_version
    from tasks.fanout import StepTally, run_items
    from tasks.resources import forget, process_tag
    from tasks.store.config_loader import load_config, with_overrides

    config = _config(
        tmp_path,
        executor="work_pool",
        work_pool={"name": POOL, "batch_size": 1, "poll_interval_s": 0.5},
    )
    out = tmp_path / "out"
    loaded = with_overrides(load_config(config), overrides={"run.output_dir": str(out)})
    run = RunRef(
        run_id="pooltest",
        config_path=str(config),
        config_hash=loaded.config_hash,
        overrides={"run.output_dir": str(out)},
        output=str(out),
        results=str(out / ".agentskiller" / "prefect-results"),
        origin=process_tag(),
    )
    missing = "0" * 64
    works = [
        WorkItem(
            step="s07",
            item_key=f"Server{n}",
            task="tasks.policy_generation:write_policy",
            inputs={"blueprint": missing, "catalogue": missing, "summaries": ()},
            params={"n": n},
            code_version=code_version("tasks.policy_generation"),
        )
        for n in range(2)
    ]
    tally = StepTally("s07_policy_generation")
    started = time.monotonic()
    with temporary_settings(updates={PREFECT_API_URL: cluster.url}):
        try:
            outcomes = run_items(run, works, tally)
        finally:
            forget(run)
        took = time.monotonic() - started
        runs = httpx.post(
            f"{cluster.url}/flow_runs/filter",
            json={"flow_runs": {"tags": {"all_": ["run:pooltest"]}}},
            timeout=10,
        ).json()
    print(f"\ntwo one-item batches on the pool: {took:.1f} s")
    assert [o.item_key for o in outcomes] == ["Server0", "Server1"]
    assert all(o.failure is not None for o in outcomes)
    assert {o.failure.reason for o in outcomes} == {"error"}
    assert tally.failed == 2 and tally.ok == 0
    assert len(runs) == 2
    for flow_run in runs:
        worker = flow_run["name"].rpartition("@")[2]
        assert worker in WORKERS, flow_run["name"]
        assert f"worker:{worker}" in flow_run["tags"]


def test_a_batch_no_worker_starts_is_retried_then_reported_worker_lost(
    cluster, tmp_path
):
    """A pool without workers: each batch waits start_timeout_s, is marked
    crashed, is resubmitted once, and its items end as worker_lost failures."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from schemas.artifact import WorkItem
    from schemas.run import RunRef
    from tasks.caching import code_version
    from tasks.fanout import StepTally, run_items
    from tasks.resources import forget, process_tag
    from tasks.store.config_loader import load_config, with_overrides

    idle = "agentskiller-idle"
    cluster.deploy_items(idle, "items-idle", tmp_path)
    config = _config(
        tmp_path,
        executor="work_pool",
        work_pool={
            "name": idle,
            "deployment": "agentskiller-items/items-idle",
            "start_timeout_s": 3,
            "batch_retries": 1,
            "poll_interval_s": 0.5,
        },
    )
    out = tmp_path / "out"
    overrides = {"run.output_dir": str(out)}
    loaded = with_overrides(load_config(config), overrides=overrides)
    run = RunRef(
        run_id="idletest",
        config_path=str(config),
        config_hash=loaded.config_hash,
        overrides=overrides,
        output=str(out),
        results=str(out / ".agentskiller" / "prefect-results"),
        origin=process_tag(),
    )
    work = WorkItem(
        step="s07",
        item_key="Lonely",
        task="tasks.policy_generation:write_policy",
        inputs={"blueprint": "0" * 64, "catalogue": "0" * 64, "summaries": ()},
        code_version=code_version("tasks.policy_generation"),
    )
    tally = StepTally("s07_policy_generation")
    with temporary_settings(updates={PREFECT_API_URL: cluster.url}):
        try:
            [outcome] = run_items(run, [work], tally)
        finally:
            forget(run)
        runs = httpx.post(
            f"{cluster.url}/flow_runs/filter",
            json={"flow_runs": {"tags": {"all_": ["run:idletest"]}}},
            timeout=10,
        ).json()
    assert outcome.failure is not None and outcome.failure.reason == "worker_lost"
    assert "start_timeout_s" in outcome.failure.message
    assert outcome.failure.blocking  # the step stops; a re-run picks it up
    assert sorted(r["name"] for r in runs) == [
        "s07-batch-1-of-1",
        "s07-batch-1-of-1-retry-1",
    ]
    assert {r["state"]["type"] for r in runs} == {"CRASHED"}


def test_two_workers_share_one_run_through_an_s3_store(cluster, s3_endpoint, tmp_path):
    """The demo through s04 on the pool with its output at s3://bucket/prefix: the
    workers reach the store, the LanceDB table and the result storage only through
    the configuration (endpoint and keys in run.storage_options, none in their
    environment), the run ends ok, items ran on the workers, and every model call
    is in a ledger part of the bucket (each worker writes its own)."""
    from tests.s3_server import create_bucket

    create_bucket(s3_endpoint, "pool-run")
    url = "s3://pool-run/demo"
    options = {
        "endpoint_url": s3_endpoint,
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"region_name": "us-east-1"},
    }
    config = _config(
        tmp_path,
        executor="work_pool",
        work_pool={"name": POOL, "batch_size": 2, "poll_interval_s": 0.5},
        storage_options=options,
    )
    report = tmp_path / "report.json"
    done = subprocess.run(
        [str(BIN / "agentskiller"), "run", "--config", str(config)]
        + ["--output-dir", url, "--until", "s04", "--report-json", str(report)],
        cwd=REPO,
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert json.loads(report.read_text())["status"] == "ok"
    from tasks.store.location import RemotePath, store_path

    root = store_path(url, options)
    assert isinstance(root, RemotePath)
    ran: set[str] = set()
    for record in (root / ".agentskiller" / "lineage").glob("*.json"):
        worker = json.loads(record.read_bytes())["run"].get("worker")
        if worker:
            ran.add(worker)
    print(f"\nworkers that ran items of the S3 run: {sorted(ran)}")
    assert ran and ran <= set(WORKERS)
    parts = [p.name for p in (root / ".agentskiller" / "ledger").glob("*.*.jsonl")]
    assert parts, "no worker wrote a ledger part"
    assert any(
        k.name.startswith("domains")
        for k in (root / ".agentskiller" / "lancedb").iterdir()
    )
    lines = sum(
        len(p.read_bytes().splitlines())
        for p in (root / ".agentskiller" / "ledger").glob("*.jsonl")
    )
    assert lines == json.loads(report.read_text())["llm_calls"]
