"""One SIGTERM or Ctrl-C ends a run promptly and in order.

A real `agentskiller run` of the demo (with its own temporary Prefect server) is
interrupted while s06 runs its generator scripts in the sandbox.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import DEMO_CONFIG
from tests.processes import alive, children

S06_CALL = '"call_key":"s06/'
"""A ledger line of an s06 model call: s06's items are running."""
DEADLINE_S = 600


def _s06_running(out: Path) -> bool:
    """Whether the run's usage ledger (appended call by call) holds an s06 call."""
    ledger = out / ".agentskiller" / "ledger"
    return ledger.is_dir() and any(
        S06_CALL in path.read_text(errors="replace") for path in ledger.glob("*.jsonl")
    )


def _interrupt_demo(tmp_path: Path, number: signal.Signals) -> tuple[int, dict, set]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    log = tmp_path / "run.log"
    report = tmp_path / "report.json"
    argv = [
        sys.executable,
        "-m",
        "flows.cli",
        "run",
        "--config",
        str(DEMO_CONFIG),
        "--output-dir",
        str(tmp_path / "out"),
        "--report-json",
        str(report),
    ]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            argv, env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=tmp_path
        )
        deadline = time.monotonic() + DEADLINE_S
        while not _s06_running(tmp_path / "out"):
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the demo never reached s06"
            time.sleep(0.2)
        started = children(process.pid)
        process.send_signal(number)
        code = process.wait(timeout=DEADLINE_S)
    return code, json.loads(report.read_text()), started


@pytest.mark.slow
@pytest.mark.parametrize(
    ("number", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)]
)
def test_a_signal_ends_the_run_with_a_report_and_stops_what_it_started(
    tmp_path, number, code
):
    """Exit 128+signal, an 'interrupted' report naming the signal and the step,
    finished steps kept in it, and no process the run started left behind (the
    temporary Prefect server, sandboxed programs)."""
    exit_code, report, started = _interrupt_demo(tmp_path, number)
    assert exit_code == code
    assert report["status"] == "interrupted"
    assert report["signal"] == number.name
    assert "s06_database_generation" in report["error"]
    assert report["steps"]["s05_tool_list_formulation"]["ok"] == 5
    assert started, "the run had started its Prefect server"
    assert [pid for pid in started if alive(pid)] == []
