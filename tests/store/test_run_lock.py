"""One run at a time holds an output location; a killed run's lock is taken over."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas.store import RunLockHolder
from tasks.store.paths import OutputLayout
from tasks.store.run_lock import RunLocked, acquire_run_lock, check_run_lock
from tests.processes import python_child

HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    from tasks.store.paths import OutputLayout
    from tasks.store.run_lock import acquire_run_lock

    lock = acquire_run_lock(OutputLayout(Path(sys.argv[1])), run_id="child-run",
                            command="agentskiller run --config child.yaml")
    print("held", flush=True)
    sys.stdin.readline()
    """
)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=60)
    return child.pid


def _plant(layout: OutputLayout, **changes: object) -> RunLockHolder:
    fields: dict[str, object] = {
        "pid": _dead_pid(),
        "host": socket.gethostname(),
        "since": datetime(2026, 12, 1, 7, 0, tzinfo=UTC),
        "run_id": "old-run",
        "command": "agentskiller run --config old.yaml",
    }
    holder = RunLockHolder.model_validate({**fields, **changes})
    layout.run_lock.parent.mkdir(parents=True)
    layout.run_lock.write_text(holder.model_dump_json())
    return holder


def test_second_acquisition_is_refused_naming_the_holder(tmp_path: Path) -> None:
    """The refusal names pid, host, start time, run id and command."""
    layout = OutputLayout(tmp_path)
    with acquire_run_lock(layout, run_id="run-a", command="agentskiller run -c a"):
        with pytest.raises(RunLocked) as info:
            acquire_run_lock(layout, run_id="run-b", command="b")
    message = str(info.value)
    assert f"pid {os.getpid()} on host {socket.gethostname()}" in message
    assert "run run-a" in message and "command: agentskiller run -c a" in message
    assert str(tmp_path) in message
    assert info.value.holder is not None
    assert info.value.holder.run_id == "run-a"


def test_released_lock_is_empty_and_can_be_taken_again(tmp_path: Path) -> None:
    """After release the file names no holder and the next run gets the lock."""
    layout = OutputLayout(tmp_path)
    acquire_run_lock(layout, run_id="run-a", command="a").release()
    assert layout.run_lock.read_text() == ""
    with acquire_run_lock(layout, run_id="run-b", command="b") as lock:
        assert RunLockHolder.model_validate_json(layout.run_lock.read_text()) == (
            lock.holder
        )


def test_lock_left_by_a_dead_pid_is_taken_over_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A record of a dead process on this host is stale: taken over, with a log."""
    layout = OutputLayout(tmp_path)
    stale = _plant(layout)
    with caplog.at_level(logging.WARNING, logger="tasks.store.run_lock"):
        with acquire_run_lock(layout, run_id="new-run", command="c") as lock:
            assert lock.holder.run_id == "new-run"
    [line] = [r.getMessage() for r in caplog.records]
    assert "taking over the stale run lock" in line
    assert f"pid {stale.pid}" in line and "no longer running" in line


def test_lock_left_on_another_host_is_not_taken_over(tmp_path: Path) -> None:
    """A holder on another host cannot be checked, so the run is refused."""
    layout = OutputLayout(tmp_path)
    _plant(layout, host="other-host.example", pid=4242)
    with pytest.raises(RunLocked) as info:
        acquire_run_lock(layout, run_id="new-run", command="c")
    assert "pid 4242 on host other-host.example" in str(info.value)
    assert f"delete {layout.run_lock}" in str(info.value)


def test_lock_of_a_live_process_refuses_until_that_process_is_killed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Held by another process: refused; after SIGKILL the lock is taken over."""
    layout = OutputLayout(tmp_path)
    with python_child(HOLDER, str(tmp_path)) as child:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(RunLocked) as info:
            acquire_run_lock(layout, run_id="mine", command="c")
        assert f"pid {child.pid}" in str(info.value)
        assert "agentskiller run --config child.yaml" in str(info.value)
        os.kill(child.pid, signal.SIGKILL)
    with caplog.at_level(logging.WARNING, logger="tasks.store.run_lock"):
        acquire_run_lock(layout, run_id="mine", command="c").release()
    assert f"pid {child.pid}" in caplog.text


def test_check_reports_a_held_lock_and_leaves_a_free_one_free(tmp_path: Path) -> None:
    """The pre-check refuses while held, creates nothing, and never takes the lock."""
    layout = OutputLayout(tmp_path / "out")
    check_run_lock(layout)
    assert not layout.internal.exists()
    with acquire_run_lock(layout, run_id="run-a", command="a"):
        with pytest.raises(RunLocked, match="run run-a"):
            check_run_lock(layout)
    check_run_lock(layout)
    acquire_run_lock(layout, run_id="run-b", command="b").release()
