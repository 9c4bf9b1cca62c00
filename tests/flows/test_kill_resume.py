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
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import DEMO_CASSETTE, DEMO_CONFIG, REPO

# Generous: about 2 minutes on an idle machine, much more on a loaded one.
OVERALL_S = 420.0
POLL_S = 0.05
UNTIL = "s07_policy_generation"
POLICY_KIND = "policy"
KEY_ENV = "KILL_RESUME_DUMMY_KEY"
# Written by each run for itself, or records of the run rather than its outputs:
# reports, the usage ledger, lineage records, Prefect's result records (keyed by
# run-independent cache keys, but a killed run has fewer of them), the run lock,
# the output id, run state, and the LanceDB tables (their files carry uuids).
NOT_COMPARED = {"reports", "ledger", "lineage", "prefect-results", "lancedb"}
NOT_COMPARED_FILES = {"run.lock", "output-id", "state.json"}


def _deadline_left(deadline: float) -> float:
    left = deadline - time.monotonic()
    assert left > 0, "the test ran out of its overall time budget"
    return left


def _children(pid: int) -> set[int]:
    """Direct children of a process (the run's Prefect server is one, in a
    session of its own, so a kill of the run's group does not reach it)."""
    found = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":\t", 1) for line in status.read_text().splitlines()
            )
        except (OSError, ValueError):
            continue
        if fields.get("PPid", "").strip() == str(pid):
            found.add(int(status.parent.name))
    return found


def _alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _stop(process: subprocess.Popen, group: bool) -> None:
    """Kill a process we started (and its group, if it leads one) and reap it."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.kill()
    process.wait(timeout=30)


@contextlib.contextmanager
def _replay_server(tmp_path: Path) -> Iterator[str]:
    log = (tmp_path / "replay-server.err").open("wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tasks.llm.replay_server",
            "--cassette",
            str(DEMO_CASSETTE),
            "--port",
            "0",
            "--latency",
            "0.4",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        line = server.stdout.readline() if server.stdout else ""
        assert " at http" in line, f"replay server did not start: {line!r}"
        yield line.rsplit(" at ", 1)[1].strip()
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        if server.stdout is not None:
            server.stdout.close()
        log.close()


def _live_config(tmp_path: Path, url: str) -> Path:
    config = yaml.safe_load(DEMO_CONFIG.read_text())
    llm = config["llm"]
    llm["mode"] = "live"
    llm.pop("cassette", None)
    # Two calls at a time: s07's five items cannot all finish together.
    llm["max_concurrency"] = 2
    for role in llm["roles"].values():
        role["base_url"] = url
        role["api_key_env"] = KEY_ENV
    path = tmp_path / "live.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env["PREFECT_HOME"] = str(home)
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    env[KEY_ENV] = "not-a-real-key"
    return env


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
            env=_env(home),
            cwd=REPO,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        sink.close()


def _policy_item(record_path: Path) -> str | None:
    """The item key of a persisted s07 item outcome, None for anything else.
    Raises ValueError on a record that does not parse (yet)."""
    record = json.loads(record_path.read_text())
    outcome = record.get("result")
    if not isinstance(outcome, str) or "agentskiller-item-outcome" not in outcome:
        return None
    outcome = json.loads(outcome)
    kinds = {entry["artifact"]["kind"] for entry in outcome.get("artifacts") or []}
    return outcome["item_key"] if POLICY_KIND in kinds else None


def _persisted_policies(results: Path, seen: dict[str, str | None]) -> set[str]:
    """Scan Prefect's result records; parsed ones are remembered in `seen`."""
    if results.is_dir():
        for path in results.iterdir():
            if path.name in seen or not path.is_file():
                continue
            try:
                seen[path.name] = _policy_item(path)
            except (OSError, ValueError, KeyError, TypeError):
                continue  # still being written: look again next time
    return {item for item in seen.values() if item is not None}


def _ledger(path: Path) -> list[str]:
    """Call keys of one ledger file; an unterminated last line (a write cut by
    the kill) is not a finished call."""
    text = path.read_text()
    lines = text.split("\n")
    complete = lines[:-1]  # the part after the last newline is empty or cut
    return [json.loads(line)["call_key"] for line in complete if line.strip()]


def _ledger_files(out: Path) -> set[Path]:
    return set((out / ".agentskiller" / "ledger").glob("*.jsonl"))


def _compared_files(out: Path) -> dict[str, bytes]:
    files = {}
    for path in out.rglob("*"):
        if not path.is_file():
            continue
        parts = path.relative_to(out).parts
        if parts[0] == ".agentskiller":
            if len(parts) < 2 or parts[1] != "objects":
                continue
        elif NOT_COMPARED.intersection(parts) or path.name in NOT_COMPARED_FILES:
            continue
        files["/".join(parts)] = path.read_bytes()
    return files


def _item_of(call_key: str) -> str | None:
    """The s07 item a call key belongs to, None for other steps."""
    parts = call_key.split("/")
    return parts[2] if parts[0] == "s07" and len(parts) >= 3 else None


@pytest.mark.slow
def test_a_run_killed_in_s07_resumes_without_redoing_persisted_items(tmp_path):
    deadline = time.monotonic() + OVERALL_S
    out_a, out_b = tmp_path / "out_a", tmp_path / "out_b"
    results_b = out_b / ".agentskiller" / "prefect-results"
    started: list[subprocess.Popen] = []
    orphans: set[int] = set()
    try:
        with _replay_server(tmp_path) as url:
            config = _live_config(tmp_path, url)
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
            while not _persisted_policies(results_b, seen):
                assert run_b.poll() is None, (tmp_path / "b.log").read_text()[-3000:]
                _deadline_left(deadline)
                time.sleep(POLL_S)
            orphans = _children(run_b.pid)
            os.killpg(run_b.pid, signal.SIGKILL)
            run_b.wait(timeout=30)
            while [pid for pid in orphans if _alive(pid)]:
                assert time.monotonic() < deadline, "the killed run left processes"
                time.sleep(POLL_S)
            # What was on disk when the group died (a record cut by the kill would
            # not parse and counts as not persisted).
            persisted = _persisted_policies(results_b, seen)
            killed_ledgers = _ledger_files(out_b)
            killed_calls = [k for p in killed_ledgers for k in _ledger(p)]
            answered = {_item_of(k) for k in killed_calls} - {None}

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
            a_calls = [k for p in _ledger_files(out_a) for k in _ledger(p)]
            policies = {_item_of(k) for k in a_calls} - {None}
            assert len(policies) == 5, policies
            unpersisted = policies - persisted
            assert persisted and unpersisted, (
                f"the kill came too late (or too early): persisted {persisted}"
            )
        report = json.loads((tmp_path / "b.json").read_text())
        assert report["status"] == "ok"
        rerun_calls = [
            k for p in _ledger_files(out_b) - killed_ledgers for k in _ledger(p)
        ]

        # (a) The same outputs, byte for byte.
        files_a, files_b = _compared_files(out_a), _compared_files(out_b)
        assert sorted(files_a) == sorted(files_b)
        assert any(name.startswith("policies/") for name in files_a)
        differing = [name for name in files_a if files_a[name] != files_b[name]]
        assert differing == []

        # (b) Nothing persisted is asked for again, and the kill cost no more
        # calls than the items it cut short.
        redone = [
            k
            for k in rerun_calls
            if k in set(killed_calls) and _item_of(k) not in unpersisted
        ]
        assert redone == []
        cut_short = [k for k in killed_calls if _item_of(k) in unpersisted]
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
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        shutil.rmtree(tmp_path / "home-a", ignore_errors=True)
        shutil.rmtree(tmp_path / "home-b", ignore_errors=True)
