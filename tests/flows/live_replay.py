"""The demo world as a live run against the replay server, for tests that kill runs.

The replay server (`tasks.llm.replay_server`) runs in its own process and serves
the demo cassette over HTTP with a fixed latency, so a run configured by
`live_config` is `live`: its calls are in flight when a test kills something. Also:
what a run persisted (Prefect result records of s07 policies, ledger call keys) and
the files two runs must agree on byte for byte. Side effects: `replay_server`
starts and stops one process; the rest only read and write files under the test's
own directories.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

from tests.conftest import DEMO_CASSETTE, DEMO_CONFIG, REPO

KEY_ENV = "KILL_RESUME_DUMMY_KEY"
POLICY_KIND = "policy"
# Written by each run for itself, or records of the run rather than its outputs:
# reports, the usage ledger, lineage records, Prefect's result records (keyed by
# run-independent cache keys, but a killed run has fewer of them), the run lock,
# the output id, run state, and the LanceDB tables (their files carry uuids).
NOT_COMPARED = {"reports", "ledger", "lineage", "prefect-results", "lancedb"}
NOT_COMPARED_FILES = {"run.lock", "output-id", "state.json"}


@contextlib.contextmanager
def replay_server(tmp_path: Path, latency_s: float = 0.4) -> Iterator[str]:
    """Serve the demo cassette over HTTP; yields the base URL."""
    log = (tmp_path / "replay-server.err").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "tasks.llm.replay_server"]
        + ["--cassette", str(DEMO_CASSETTE), "--port", "0"]
        + ["--latency", str(latency_s)],
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


def live_config(tmp_path: Path, url: str, **run: object) -> Path:
    """The demo configuration, live against `url`, two calls at a time (so s07's
    five items cannot all finish together); `run` updates the `run` section."""
    config = yaml.safe_load(DEMO_CONFIG.read_text())
    llm = config["llm"]
    llm["mode"] = "live"
    llm.pop("cassette", None)
    llm["max_concurrency"] = 2
    for role in llm["roles"].values():
        role["base_url"] = url
        role["api_key_env"] = KEY_ENV
    config["run"].update(run)
    path = tmp_path / f"live-{run.get('executor', 'local')}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def live_env(base: dict[str, str] | None = None, **extra: str) -> dict[str, str]:
    """The environment of a live run: `base` (default: ours) with the dummy key."""
    env = dict(os.environ if base is None else base)
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    env[KEY_ENV] = "not-a-real-key"
    env.update(extra)
    return env


def _policy_item(record_path: Path) -> str | None:
    """The item key of a persisted s07 item outcome, None for anything else.
    Raises ValueError on a record that does not parse."""
    record = json.loads(record_path.read_text())
    outcome = record.get("result")
    if not isinstance(outcome, str) or "agentskiller-item-outcome" not in outcome:
        return None
    outcome = json.loads(outcome)
    kinds = {entry["artifact"]["kind"] for entry in outcome.get("artifacts") or []}
    return outcome["item_key"] if POLICY_KIND in kinds else None


def persisted_policies(results: Path, seen: dict[str, str | None]) -> set[str]:
    """The s07 items whose outcome is in Prefect's result records under `results`;
    parsed records are remembered in `seen`."""
    if results.is_dir():
        for path in results.iterdir():
            if path.name in seen or not path.is_file() or path.name.startswith("."):
                continue
            try:
                seen[path.name] = _policy_item(path)
            except (OSError, ValueError, KeyError, TypeError):
                continue  # not a finished record: look again next time
    return {item for item in seen.values() if item is not None}


def ledger(path: Path) -> list[str]:
    """Call keys of one ledger file; an unterminated last line (a write cut by a
    kill) is not a finished call."""
    lines = path.read_text().split("\n")
    complete = lines[:-1]  # the part after the last newline is empty or cut
    return [json.loads(line)["call_key"] for line in complete if line.strip()]


def ledger_files(out: Path) -> set[Path]:
    return set((out / ".agentskiller" / "ledger").glob("*.jsonl"))


def calls(out: Path, files: set[Path] | None = None) -> list[str]:
    """Every finished call key in the run's ledger parts (or in `files`)."""
    return [key for part in sorted(files or ledger_files(out)) for key in ledger(part)]


def compared_files(out: Path) -> dict[str, bytes]:
    """The exports and content-addressed objects of an output directory."""
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


def item_of(call_key: str) -> str | None:
    """The s07 item a call key belongs to, None for other steps."""
    parts = call_key.split("/")
    return parts[2] if parts[0] == "s07" and len(parts) >= 3 else None
