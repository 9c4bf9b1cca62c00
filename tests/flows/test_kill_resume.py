"""A run killed with SIGKILL in the middle of s07 resumes without losing or redoing
work.

Driven only through the `agentskiller` CLI as a subprocess and the files it writes.
The model is the replay server in its own process, serving the demo cassette over
HTTP with a fixed latency, so the run is `live` and s07 (five policies, each a
`s07/write/<Server>` and a `s07/audit/<Server>` call) has some items finished and
some in flight when the kill comes. Run A goes through uninterrupted, in parallel
with run B, which is killed (its whole process group) as soon as the first s07 item
result is persisted, then run again to completion.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
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
from tests.processes import alive, children

# Generous: about 2 minutes on an idle machine, much more on a loaded one.
OVERALL_S = 420.0
POLL_S = 0.05
UNTIL = "s07_policy_generation"


def _deadline_left(deadline: float) -> float:
    left = deadline - time.monotonic()
    assert left > 0, "the test ran out of its overall time budget"
    return left


def _stop(process: subprocess.Popen, group: bool) -> None:
    """Kill a process we started (and its group, if it leads one) and reap it."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.kill()
    process.wait(timeout=30)


def _start(config: Path, out: Path, report: Path, home: Path, log: Path):
    argv = [
        sys.executable,
        "-m",
        "flows.cli",
        "run",
        "--config",
        str(config),
        "--output-dir",
        str(out),
        "--until",
        UNTIL,
        "--report-json",
        str(report),
    ]
    sink = log.open("ab")
    try:
        return subprocess.Popen(
            argv,
            env=live_env(
                {
                    k: v
                    for k, v in os.environ.items()
                    if not k.startswith("PREFECT_API")
                },
                PREFECT_HOME=str(home),
            ),
            cwd=REPO,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        sink.close()


@pytest.mark.slow
def test_a_run_killed_in_s07_resumes_without_redoing_persisted_items(tmp_path):
    deadline = time.monotonic() + OVERALL_S
    out_a, out_b = tmp_path / "out_a", tmp_path / "out_b"
    results_b = out_b / ".agentskiller" / "prefect-results"
    started: list[subprocess.Popen] = []
    orphans: set[int] = set()
    try:
        with replay_server(tmp_path) as url:
            config = live_config(tmp_path, url)
            run_a = _start(
                config,
                out_a,
                tmp_path / "a.json",
                tmp_path / "home-a",
                tmp_path / "a.log",
            )
            started.append(run_a)
            run_b = _start(
                config,
                out_b,
                tmp_path / "b-killed.json",
                tmp_path / "home-b",
                tmp_path / "b.log",
            )
            started.append(run_b)

            # Kill B (its whole process group) as soon as one s07 item outcome is
            # on disk; its Prefect server must then die with it.
            seen: dict[str, str | None] = {}
            while not persisted_policies(results_b, seen):
                assert run_b.poll() is None, (tmp_path / "b.log").read_text()[-3000:]
                _deadline_left(deadline)
                time.sleep(POLL_S)
            orphans = children(run_b.pid)
            os.killpg(run_b.pid, signal.SIGKILL)
            run_b.wait(timeout=30)
            while [pid for pid in orphans if alive(pid)]:
                assert time.monotonic() < deadline, "the killed run left processes"
                time.sleep(POLL_S)
            # What was on disk when the group died (a record cut by the kill would
            # not parse and counts as not persisted).
            persisted = persisted_policies(results_b, seen)
            killed_ledgers = ledger_files(out_b)
            killed_calls = calls(out_b, killed_ledgers)
            answered = {item_of(k) for k in killed_calls} - {None}

            rerun = _start(
                config,
                out_b,
                tmp_path / "b.json",
                tmp_path / "home-b",
                tmp_path / "b.log",
            )
            started.append(rerun)
            rerun.wait(timeout=_deadline_left(deadline))
            assert rerun.returncode == 0, (tmp_path / "b.log").read_text()[-3000:]
            run_a.wait(timeout=_deadline_left(deadline))
            assert run_a.returncode == 0, (tmp_path / "a.log").read_text()[-3000:]
            a_calls = calls(out_a)
            policies = {item_of(k) for k in a_calls} - {None}
            assert len(policies) == 5, policies
            unpersisted = policies - persisted
            assert persisted and unpersisted, (
                f"the kill came too late (or too early): persisted {persisted}"
            )
        report = json.loads((tmp_path / "b.json").read_text())
        assert report["status"] == "ok"
        rerun_calls = calls(out_b, ledger_files(out_b) - killed_ledgers)

        # (a) The same outputs, byte for byte.
        files_a, files_b = compared_files(out_a), compared_files(out_b)
        assert sorted(files_a) == sorted(files_b)
        assert any(name.startswith("policies/") for name in files_a)
        differing = [name for name in files_a if files_a[name] != files_b[name]]
        assert differing == []

        # (b) Nothing persisted is asked for again, and the kill cost no more
        # calls than the items it cut short.
        redone = [
            k
            for k in rerun_calls
            if k in set(killed_calls) and item_of(k) not in unpersisted
        ]
        assert redone == []
        cut_short = [k for k in killed_calls if item_of(k) in unpersisted]
        assert len(rerun_calls) + len(killed_calls) <= len(a_calls) + len(cut_short)

        # (c) No half-written file.
        assert [p for p in out_b.rglob("*.tmp")] == []
        for path in out_b.rglob("*.json"):
            json.loads(path.read_text())

        print(
            f"\npersisted at kill: {sorted(persisted)}; in flight: "
            f"{sorted(unpersisted)}; s07 items with answered calls: "
            f"{sorted(answered)}; calls: run A {len(a_calls)}, killed run "
            f"{len(killed_calls)}, re-run {len(rerun_calls)} (saved "
            f"{len(a_calls) - len(rerun_calls)})"
        )
    finally:
        for process in started:
            _stop(process, group=True)
        for pid in orphans:  # only if the test failed before they were gone
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        shutil.rmtree(tmp_path / "home-a", ignore_errors=True)
        shutil.rmtree(tmp_path / "home-b", ignore_errors=True)
