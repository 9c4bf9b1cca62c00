"""A Python child process for tests that kill or outlive it."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator

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
