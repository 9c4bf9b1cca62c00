"""Run LLM-written code (data scripts, MCP tool modules, pytest files, selection
code) in a child process under OS limits, never inside the orchestrator.

Input: a `SandboxRequest`. Output: a `SandboxResult` with a typed status, capped
stdout/stderr, the collected output files and a one-sentence message. Side
effects: those of `sandbox_launch.launched` (a private run directory under
`sandbox_dirs.runs_dir()` holding the scratch directory the program works in, a
boot directory with the guard and the output streams, removed afterwards unless
`keep`; a sweep of run directories whose orchestrator died; a pool uid lock and
other-read/traverse bits on readable paths when running as root). The long-lived
variant, with pipes instead of files, is `sandbox_process.SandboxProcess`.

Enforced by the OS, for every program: wall-clock timeout, after which the whole
process group (and, as root, every process of the run's uid) gets SIGKILL; the
same kill for stragglers when the main process ends; RLIMIT_CPU (SIGXCPU, then
SIGKILL), RLIMIT_AS, RLIMIT_FSIZE, RLIMIT_NPROC and RLIMIT_CORE=0; a total size
bound of the scratch directory (checked every 50 ms and at the end: "disk_limit");
death with the orchestrator (parent-death signal SIGKILL); a scrubbed
environment (PATH, HOME and TMPDIR in the scratch dir, LANG, PYTHONHASHSEED=0,
PYTHONDONTWRITEBYTECODE=1, PYTHONPATH = guard dir + `python_path`, then
`request.env`; never the parent's secrets); no network through `unshare -n` when
the host allows it. As root, additionally: the program runs as a dedicated
unprivileged uid from a pool (`setpriv`, no supplementary groups, no_new_privs),
which owns only the scratch dir, so writing anywhere else that is not
world-writable fails, RLIMIT_NPROC counts exactly the run's processes, and
processes that left the group are still found and killed.

Enforced by the audit hook (`sandbox_guard`, installed in Python children as
`sitecustomize`): refusal of writes outside the scratch dir, of sockets and name
lookups when the network is off, and of fork/exec/subprocess unless
`allow_subprocess`; refusals raise `PermissionError("sandbox: ...")` and the run is
reported as "forbidden". Code using ctypes or native extensions bypasses the hook;
the OS limits and the unprivileged uid are the real walls.

Not enforced when not root: the program runs as the orchestrator's user, so only
the hook protects that user's files (and world-writable dirs such as /tmp are
never protected at the OS level); RLIMIT_NPROC is the user's current task count
plus `max_processes`, an approximation; processes that call `setsid` escape the
final kill; the network namespace needs unprivileged user namespaces. Reading
world-readable files is never prevented. `sandbox_capabilities()` tells which
case applies.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from schemas.sandbox import SandboxRequest, SandboxResult
from tasks.runtime.sandbox_dirs import disk_watch
from tasks.runtime.sandbox_files import SandboxSetupError
from tasks.runtime.sandbox_host import host_support, kill_uid
from tasks.runtime.sandbox_launch import Launch, Layout, launched, open_private
from tasks.runtime.sandbox_outcome import classify, disk_message, read_capped

WATCH_INTERVAL_S = 0.05

Ending = Literal["exited", "timeout", "disk_limit"]


@dataclass(frozen=True)
class _Exit:
    """How the main process ended."""

    returncode: int
    ending: Ending
    cpu_s: float
    duration_s: float


def sandbox_capabilities() -> dict[str, bool]:
    """Which protections this host gives, for the README and run reports.

    Returns:
        Flags: `is_root`, `network_namespace`, `drop_privileges`,
        `exact_process_limit`, `kill_escaped_processes`, `resource_limits` and
        `audit_hook`.
    """
    host = host_support()
    dropped = host.setpriv is not None
    return {
        "is_root": host.is_root,
        "network_namespace": bool(host.netns_prefix),
        "drop_privileges": dropped,
        "exact_process_limit": dropped,
        "kill_escaped_processes": dropped,
        "resource_limits": True,
        "audit_hook": hasattr(sys, "addaudithook"),
    }


def run_sandboxed(request: SandboxRequest) -> SandboxResult:
    """Run one program in a fresh scratch directory under the sandbox.

    Failures of the program, and of the host to set up the run, are returned as
    data (`status`), never raised.

    Args:
        request: What to run, with its files, permissions and limits.

    Returns:
        The typed outcome; `scratch_dir` is set only when `request.keep`.
    """
    try:
        with launched(request) as launch:
            result = _run(request, launch)
            if request.keep:
                result = result.model_copy(
                    update={"scratch_dir": str(launch.layout.scratch)}
                )
    except (OSError, SandboxSetupError, subprocess.SubprocessError) as exc:
        result = SandboxResult(
            status="sandbox_error",
            message=f"The sandbox could not run the program: {exc}.",
            notes=host_support().notes,
        )
    return result


def _run(request: SandboxRequest, launch: Launch) -> SandboxResult:
    layout = launch.layout
    over_disk = disk_watch(layout.scratch, request.disk_mb)
    ended = _execute(launch, request.timeout_s, over_disk)
    stdout = read_capped(layout.stream("stdout"), request.max_output_chars)
    stderr = read_capped(layout.stream("stderr"), request.max_output_chars)
    files = _collect(request, layout, launch.notes)
    status, message = classify(
        request,
        returncode=ended.returncode,
        timed_out=ended.ending == "timeout",
        stdout=stdout,
        stderr=stderr,
    )
    if ended.ending == "disk_limit" or (status != "timeout" and over_disk()):
        status, message = "disk_limit", disk_message(request)
    elif status == "memory_limit" and ended.cpu_s >= request.cpu_s:
        # SIGKILL at the hard CPU limit looks like the OOM killer.
        status = "cpu_limit"
        message = f"The program used more than {request.cpu_s} s of CPU time."
    return SandboxResult(
        status=status,
        returncode=ended.returncode,
        stdout=stdout,
        stderr=stderr,
        duration_s=ended.duration_s,
        files=files,
        message=message,
        notes=tuple(launch.notes),
    )


def _execute(launch: Launch, timeout_s: float, over_disk: Callable[[], bool]) -> _Exit:
    layout = launch.layout
    with contextlib.ExitStack() as stack:
        stdin = stack.enter_context(open_private(layout.stream("stdin"), "rb"))
        stdout = stack.enter_context(open_private(layout.stream("stdout")))
        stderr = stack.enter_context(open_private(layout.stream("stderr")))
        started = time.monotonic()
        process = launch.popen(stdin, stdout, stderr)
    ending = _await_exit(process.pid, timeout_s, over_disk)
    # Until it is reaped, the main process keeps its pid, so its group id cannot
    # name someone else's group: kill the group first, then reap.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    duration = time.monotonic() - started
    if launch.identity is not None:
        kill_uid(launch.identity.uid)
    return _Exit(
        returncode=process.returncode,
        ending=ending,
        cpu_s=usage.ru_utime + usage.ru_stime,
        duration_s=duration,
    )


def _await_exit(pid: int, timeout_s: float, over_disk: Callable[[], bool]) -> Ending:
    """Wait (without reaping) until `pid` exits, the timeout passes or the scratch
    directory outgrows its bound, checking the bound every `WATCH_INTERVAL_S`."""
    deadline = time.monotonic() + timeout_s
    try:
        fd: int | None = os.pidfd_open(pid)
    except OSError:
        fd = None
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "timeout"
            if _exited_within(pid, fd, min(WATCH_INTERVAL_S, remaining)):
                return "exited"
            if over_disk():
                return "disk_limit"
    finally:
        if fd is not None:
            os.close(fd)


def _exited_within(pid: int, fd: int | None, wait_s: float) -> bool:
    if fd is not None:
        readable, _, _ = select.select([fd], [], [], wait_s)
        return bool(readable)
    end = time.monotonic() + wait_s
    delay = 0.001
    while os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
        if time.monotonic() >= end:
            return False
        time.sleep(min(delay, wait_s))
        delay = min(delay * 2, 0.02)
    return True


def _collect(
    request: SandboxRequest, layout: Layout, notes: list[str]
) -> dict[str, str]:
    root = os.path.realpath(layout.scratch)
    files: dict[str, str] = {}
    for relative in request.collect:
        real = os.path.realpath(layout.scratch / relative)
        if not real.startswith(root + os.sep) or not os.path.isfile(real):
            notes.append(f"{relative} was not produced as a file in the scratch dir")
            continue
        files[relative] = Path(real).read_text(encoding="utf-8", errors="replace")
    return files
