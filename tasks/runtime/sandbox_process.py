"""A long-lived sandboxed program that talks through pipes (an environment worker).

Input: a `SandboxRequest`; its `argv`, `files`, `env`, paths and the memory,
file-size, process and total-disk limits apply exactly as for `run_sandboxed`
(the same preparation in `sandbox_launch`), while `timeout_s`, `cpu_s`, `stdin`
and `collect` do not: the program lives until `stop`, and whoever talks to it
bounds each exchange with its own deadline. Output: a `SandboxProcess` with the
program's stdin and stdout as binary pipes, a wait for one reply line bounded by
a deadline and by the disk limit, and the capped tail of its stderr. Side
effects: those of `sandbox_launch.launched`, held until `stop` (or until the
starting thread ends, which kills a cold-started program through the parent-death
signal; a warm-started one dies with this process, see `sandbox_warm`).
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

from schemas.sandbox import SandboxRequest
from tasks.runtime.sandbox_dirs import disk_watch
from tasks.runtime.sandbox_launch import (
    close_quietly,
    kill_group,
    launched,
    open_private,
)
from tasks.runtime.sandbox_outcome import read_capped

WATCH_INTERVAL_S = 0.05
_CHUNK = 65536

Failure = Literal["timeout", "exited", "disk_limit", "too_long"]


@dataclass(frozen=True)
class Reply:
    """One line read from the program, or why there is none."""

    line: bytes | None
    failure: Failure | None = None


class SandboxProcess:
    """A started sandboxed program; use as a context manager or call `stop`."""

    def __init__(self, request: SandboxRequest) -> None:
        """Start the program.

        Args:
            request: What to run (see the module docstring for what applies).

        Raises:
            SandboxSetupError: The host cannot prepare the run.
            OSError: Preparing or starting the program failed.
        """
        self._stack = contextlib.ExitStack()
        try:
            launch = self._stack.enter_context(launched(request, cpu_limit=False))
            self._stderr_path = launch.layout.stream("stderr")
            stderr = self._stack.enter_context(open_private(self._stderr_path))
            self.process = launch.popen(subprocess.PIPE, subprocess.PIPE, stderr)
        except BaseException:
            self._stack.close()
            raise
        self._stack.callback(self._kill)
        assert self.process.stdin is not None
        # A program that stops reading must not block the writer past its deadline.
        os.set_blocking(self.process.stdin.fileno(), False)
        self.scratch = launch.layout.scratch
        self.notes = tuple(launch.notes)
        self._over_disk = disk_watch(launch.layout.scratch, request.disk_mb)
        self._buffer = b""

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def alive(self) -> bool:
        """True while the program runs."""
        return self.process.poll() is None

    def send(self, line: bytes, timeout_s: float) -> bool:
        """Write one line to the program's stdin.

        Returns:
            False when the program is gone or did not take the line in time.
        """
        assert self.process.stdin is not None
        fd = self.process.stdin.fileno()
        data = memoryview(line if line.endswith(b"\n") else line + b"\n")
        deadline = time.monotonic() + timeout_s
        while data:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            _, writable, _ = select.select([], [fd], [], remaining)
            if not writable:
                return False
            try:
                written = os.write(fd, data[:_CHUNK])
            except BlockingIOError:
                continue
            except OSError:  # BrokenPipeError: the program is gone
                return False
            data = data[written:]
        return True

    def receive(self, timeout_s: float, max_bytes: int) -> Reply:
        """Read one line from the program's stdout.

        Args:
            timeout_s: How long to wait for the whole line.
            max_bytes: Longest acceptable line.

        Returns:
            The line without its newline, or the failure: "timeout", "exited"
            (end of output), "disk_limit" (the scratch dir outgrew its bound)
            or "too_long".
        """
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buffer:
            if len(self._buffer) > max_bytes:
                return Reply(None, "too_long")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return Reply(None, "timeout")
            readable, _, _ = select.select(
                [fd], [], [], min(WATCH_INTERVAL_S, remaining)
            )
            if readable:
                chunk = os.read(fd, _CHUNK)
                if not chunk:
                    return Reply(None, "exited")
                self._buffer += chunk
            elif self._over_disk():
                return Reply(None, "disk_limit")
        line, _, self._buffer = self._buffer.partition(b"\n")
        if len(line) > max_bytes:
            return Reply(None, "too_long")
        return Reply(line)

    def over_disk_limit(self) -> bool:
        """True when the scratch directory exceeds the request's `disk_mb`."""
        return self._over_disk()

    def stderr_tail(self, chars: int = 2000) -> str:
        """The program's standard error so far, capped to about `chars`."""
        try:
            return read_capped(self._stderr_path, chars)
        except OSError:
            return ""

    def stop(self) -> int | None:
        """Kill the program and everything it started; remove its run directory.

        Returns:
            The program's exit status (negative: the signal that ended it).
        """
        self._stack.close()
        return self.process.returncode

    def _kill(self) -> None:
        close_quietly(self.process.stdin)
        kill_group(self.process)
        self.process.wait()
        close_quietly(self.process.stdout)
