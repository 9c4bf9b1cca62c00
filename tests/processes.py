"""Child processes for tests that kill or outlive them, and what `/proc` says of a
process family. Inputs: pids and `/proc`. Side effects: `python_child` starts (and
always reaps) a process; the rest only read `/proc`."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import REPO


@contextlib.contextmanager
def python_child(code: str, *args: str) -> Iterator[subprocess.Popen[str]]:
    """Run `python -c code args...` in the repository with text pipes to its
    stdin and stdout; on exit it is killed if still running, reaped, and its pipes
    are closed."""
    child = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield child
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=60)
        for pipe in (child.stdin, child.stdout):
            if pipe is not None:
                pipe.close()


def children(pid: int) -> set[int]:
    """Processes whose parent is `pid` (found whatever their session or group)."""
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


def descendants(pid: int) -> list[int]:
    """Every live descendant of `pid`, children before grandchildren."""
    found: list[int] = []
    pending = [pid]
    while pending:
        current = pending.pop(0)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                kids = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            found += kids
            pending += kids
    return found


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")
