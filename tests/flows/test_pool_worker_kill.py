"""A work-pool worker killed in the middle of a batch loses nothing and redoes
nothing that was persisted.

A real `prefect server start`, a process pool with two workers of its own, and a
live demo run (the replay server answers with latency, so calls are in flight)
through s07 with its items on the pool, beside an uninterrupted local run. The
worker running the big s07 batch is SIGKILLed together with its flow-run process,
as a machine that dies would be. Everything started is stopped by process group.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.flows.live_replay import (
    calls,
    compared_files,
    item_of,
    ledger_files,
    live_config,
    live_env,
    persisted_policies,
    replay_server,
)
from tests.flows.pool_cluster import BIN, Cluster
from tests.processes import alive, descendants

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    """A Prefect server; the test makes its own pool and workers."""
    c = Cluster(tmp_path_factory.mktemp("kill"))
    try:
        c.start_server()
        yield c
    finally:
        c.stop()


KILL_POOL = "agentskiller-kill"
KILL_WORKERS = ("kill-a", "kill-b")


def _ledger_pid(part: Path) -> int:
    """The pid in a ledger part's name `<run_id>.<host>-<pid>.jsonl`; -1 for the
    orchestrator's own part, `<run_id>.jsonl`."""
    _, dot, tag = part.name.removesuffix(".jsonl").partition(".")
    return int(tag.rsplit("-", 1)[1]) if dot else -1


def _running_s07_batches(cluster: Cluster) -> list[str]:
    runs = httpx.post(
        f"{cluster.url}/flow_runs/filter",
        json={
            "flow_runs": {
                "tags": {"all_": ["s07"]},
                "state": {"type": {"any_": ["RUNNING"]}},
            },
            "work_pools": {"name": {"any_": [KILL_POOL]}},
        },
        timeout=10,
    ).json()
    return [r["name"] for r in runs]


def test_a_worker_killed_mid_batch_loses_nothing_and_redoes_nothing_persisted(
    cluster, tmp_path
):
    """Two workers share a live demo run through s07; the one running the big s07
    batch is SIGKILLed (with its flow-run process) once a policy is persisted. Its
    silence is noticed (no heartbeat for lost_after_s), the batch is marked crashed
    and its unfinished items go to the other worker; the run ends ok with the same
    outputs as an uninterrupted local run, and no call whose item was persisted is
    made again."""
    cluster.deploy_items(KILL_POOL, "items-kill", tmp_path)
    workers = {
        name: cluster.start_worker(KILL_POOL, name, **live_env({}))
        for name in KILL_WORKERS
    }
    deadline = time.monotonic() + 900
    ref_out, pool_out = tmp_path / "ref", tmp_path / "pool"
    results = pool_out / ".agentskiller" / "prefect-results"
    with replay_server(tmp_path) as url:
        ref_config = live_config(tmp_path, url)
        pool_config = live_config(
            tmp_path,
            url,
            executor="work_pool",
            work_pool={
                "name": KILL_POOL,
                "deployment": "agentskiller-items/items-kill",
                "batch_size": 4,
                "poll_interval_s": 0.5,
                "heartbeat_s": 1,
                "lost_after_s": 20,
                "batch_retries": 2,
            },
        )
        argv = [str(BIN / "agentskiller"), "run", "--until", "s07"]
        # the reference runs items in its own process (executor local)
        ref = cluster.start(
            "ref-run",
            [*argv, "--config", str(ref_config), "--output-dir", str(ref_out)],
            **live_env({}),
        )
        pool = cluster.start(
            "pool-run",
            [*argv, "--config", str(pool_config), "--output-dir", str(pool_out)]
            + ["--report-json", str(tmp_path / "pool.json")],
            **live_env({}),
        )
        seen: dict[str, str | None] = {}
        victim = None
        while victim is None:
            assert pool.poll() is None, (tmp_path / "pool-run.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the pool run never reached s07"
            if persisted_policies(results, seen):
                big = [n for n in _running_s07_batches(cluster) if "-batch-1-of-" in n]
                if big:
                    victim = big[0].rpartition("@")[2]
            time.sleep(0.05)
        worker = workers[victim]
        family = [worker.pid, *descendants(worker.pid)]
        for pid in family:  # the machine dies: worker and flow run at once
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        worker.wait(timeout=30)
        persisted = persisted_policies(results, seen)
        killed_parts = {p for p in ledger_files(pool_out) if _ledger_pid(p) in family}
        killed_calls = calls(pool_out, killed_parts) if killed_parts else []
        assert pool.wait(timeout=max(1, deadline - time.monotonic())) == 0, (
            tmp_path / "pool-run.log"
        ).read_text()[-3000:]
        assert ref.wait(timeout=max(1, deadline - time.monotonic())) == 0, (
            tmp_path / "ref-run.log"
        ).read_text()[-3000:]
    assert not [pid for pid in family if alive(pid)]
    report = json.loads((tmp_path / "pool.json").read_text())
    assert report["status"] == "ok", report.get("error")

    # the same outputs as the uninterrupted local run, byte for byte
    ref_files, pool_files = compared_files(ref_out), compared_files(pool_out)
    assert sorted(ref_files) == sorted(pool_files)
    assert any(name.startswith("policies/") for name in ref_files)
    assert [n for n in ref_files if ref_files[n] != pool_files[n]] == []

    # nothing persisted asked for again: of the killed worker's calls, only those
    # of s07 items it had not persisted were made again
    ref_policies = {item_of(k) for k in calls(ref_out)} - {None}
    unpersisted = ref_policies - persisted
    later = calls(pool_out, ledger_files(pool_out) - killed_parts)
    redone = [
        k for k in later if k in set(killed_calls) and item_of(k) not in unpersisted
    ]
    assert redone == []
    assert persisted and unpersisted, f"the kill came too late: {persisted}"

    # the lost batch was marked crashed for its silence and resubmitted
    runs = httpx.post(
        f"{cluster.url}/flow_runs/filter",
        json={
            "flow_runs": {"tags": {"all_": ["s07"]}},
            "work_pools": {"name": {"any_": [KILL_POOL]}},
        },
        timeout=10,
    ).json()
    by_name = {r["name"]: r for r in runs}
    lost = [
        r for r in runs if r["name"].endswith(f"@{victim}") and "-1-of-" in r["name"]
    ]
    assert lost and lost[0]["state"]["type"] == "CRASHED", by_name
    assert "no heartbeat" in lost[0]["state"]["message"]
    retried = [n for n in by_name if "-retry-" in n]
    assert retried and all(
        n.endswith(f"@{({*KILL_WORKERS} - {victim}).pop()}") for n in retried
    )
    print(
        f"\nkilled {victim} with s07 items persisted {sorted(persisted)} and in "
        f"flight {sorted(unpersisted)}; its calls {len(killed_calls)}, later calls "
        f"{len(later)}; s07 flow runs: {sorted(by_name)}"
    )
