"""Process helpers of the sandbox tests: find a descendant of a process by its
command line, and wait (with a bounded deadline, polling) until a process is gone.
Inputs: pids and `/proc`. No side effects besides reading `/proc`."""

from __future__ import annotations

import time
from pathlib import Path

from tests.processes import descendants

DEADLINE_S = 60.0
_POLL_S = 0.05


def await_descendant(parent: int, marker: bytes) -> int:
    """The first descendant of `parent` whose command line contains `marker`,
    once it runs its own program: a launcher (`setpriv ... -- python x.py`)
    names the program before it has set the parent-death signal and exec'd it,
    so a process whose command line is still the launcher's does not count."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        for pid in descendants(parent):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                if any(marker in a for a in argv) and b"setpriv" not in argv[0]:
                    return pid
            except OSError:
                continue
        time.sleep(_POLL_S)
    raise AssertionError(f"no descendant of {parent} runs {marker!r}")


def await_descendants(parent: int, marker: bytes, count: int) -> list[int]:
    """At least `count` descendants of `parent` whose command line contains
    `marker` (a warm-started worker shares its template's command line)."""
    deadline = time.monotonic() + DEADLINE_S
    found: list[int] = []
    while time.monotonic() < deadline:
        found = []
        for pid in descendants(parent):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(marker in a for a in argv) and b"setpriv" not in argv[0]:
                found.append(pid)
        if len(found) >= count:
            return found
        time.sleep(_POLL_S)
    raise AssertionError(
        f"{len(found)} of {count} descendants of {parent} run {marker!r}"
    )


def await_gone(pid: int) -> None:
    """Return once `pid` has exited (a zombie counts as gone)."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return
        if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return
        time.sleep(_POLL_S)
    raise AssertionError(f"process {pid} is still alive")
