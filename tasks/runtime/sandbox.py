"""Run LLM-written code (data scripts, MCP tool modules, pytest files, selection
code) in a child process under OS limits, never inside the orchestrator.

Input: a `SandboxRequest`. Output: a `SandboxResult` with a typed status, capped
stdout/stderr, the collected output files and a one-sentence message. Side
effects: a fresh run directory under the system temp dir (the scratch directory
the program works in, a boot directory holding the guard, the output streams),
removed afterwards unless `keep`; the host side effects of `sandbox_host` (a pool
uid lock, other-read/traverse bits on readable paths) when running as root.

Enforced by the OS, for every program: wall-clock timeout, after which the whole
process group (and, as root, every process of the run's uid) gets SIGKILL; the
same kill for stragglers when the main process ends; RLIMIT_CPU (SIGXCPU, then
SIGKILL), RLIMIT_AS, RLIMIT_FSIZE, RLIMIT_NPROC and RLIMIT_CORE=0; a scrubbed
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
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from schemas.sandbox import SandboxRequest, SandboxResult
from tasks.runtime import sandbox_guard
from tasks.runtime.sandbox_guard import POLICY_FILE, GuardPolicy
from tasks.runtime.sandbox_host import (
    SYSTEM_PATH,
    HostSupport,
    Identity,
    SandboxSetupError,
    chown_tree,
    drop_prefix,
    grant_read_tree,
    grant_traverse,
    host_support,
    kill_uid,
    remove_tree,
    reserve_identity,
    task_count,
)
from tasks.runtime.sandbox_outcome import classify, read_capped
from tasks.runtime.spawn_limits import limits_prefix

_RUN_PREFIX = "agentskiller-sandbox-"


@dataclass(frozen=True)
class _Layout:
    """The directories and files of one run."""

    root: Path

    @property
    def boot(self) -> Path:
        return self.root / "boot"

    @property
    def scratch(self) -> Path:
        return self.root / "scratch"

    @property
    def tmp(self) -> Path:
        return self.scratch / ".tmp"

    def stream(self, name: str) -> Path:
        return self.root / f"{name}.txt"


@dataclass(frozen=True)
class _Exit:
    """How the main process ended."""

    returncode: int
    timed_out: bool
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
    host = host_support()
    notes = list(host.notes)
    layout = _Layout(Path(tempfile.mkdtemp(prefix=_RUN_PREFIX)))
    try:
        with reserve_identity(host) as identity:
            result = _run(request, layout, host, identity, notes)
    except (OSError, SandboxSetupError, subprocess.SubprocessError) as exc:
        result = SandboxResult(
            status="sandbox_error",
            message=f"The sandbox could not run the program: {exc}.",
            notes=tuple(notes),
        )
    finally:
        if not request.keep:
            remove_tree(layout.root)
    if request.keep:
        result = result.model_copy(update={"scratch_dir": str(layout.scratch)})
    return result


def _run(
    request: SandboxRequest,
    layout: _Layout,
    host: HostSupport,
    identity: Identity | None,
    notes: list[str],
) -> SandboxResult:
    isolated = bool(host.netns_prefix) and not request.network
    _prepare(request, layout, identity, isolated, notes)
    env = _child_env(request, layout)
    owner = identity.uid if identity is not None else os.getuid()
    # Limits come from an exec'd prefix, not preexec_fn: see spawn_limits.
    limits = limits_prefix(
        cpu_s=request.cpu_s,
        memory_mb=request.memory_mb,
        file_size_mb=request.file_size_mb,
        nproc=task_count(owner) + request.max_processes,
    )
    argv = [*limits, *_child_argv(request, layout, host, identity, env["PATH"])]
    ended = _execute(argv, env, layout, request.timeout_s, identity)
    stdout = read_capped(layout.stream("stdout"), request.max_output_chars)
    stderr = read_capped(layout.stream("stderr"), request.max_output_chars)
    files = _collect(request, layout, notes)
    status, message = classify(
        request,
        returncode=ended.returncode,
        timed_out=ended.timed_out,
        stdout=stdout,
        stderr=stderr,
    )
    if status == "memory_limit" and ended.cpu_s >= request.cpu_s:
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
        notes=tuple(notes),
    )


def _prepare(
    request: SandboxRequest,
    layout: _Layout,
    identity: Identity | None,
    isolated: bool,
    notes: list[str],
) -> None:
    for path in (*request.read_only_paths, *request.python_path):
        if not os.path.exists(path):
            raise SandboxSetupError(f"readable path {path} does not exist")
    layout.boot.mkdir(mode=0o755)
    layout.tmp.mkdir(parents=True)
    for relative, text in request.files.items():
        target = layout.scratch / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    shutil.copyfile(sandbox_guard.__file__, layout.boot / "sitecustomize.py")
    policy = GuardPolicy(
        writable_roots=(os.path.realpath(layout.scratch),),
        network=request.network,
        isolated_loopback=isolated,
        allow_subprocess=request.allow_subprocess,
    )
    (layout.boot / POLICY_FILE).write_text(policy.to_json(), encoding="utf-8")
    layout.stream("stdin").write_text(request.stdin or "", encoding="utf-8")
    if identity is None:
        return
    layout.root.chmod(0o711)
    for name in ("sitecustomize.py", POLICY_FILE):
        (layout.boot / name).chmod(0o644)
    chown_tree(layout.scratch, identity)
    granted = [p for path in request.read_only_paths for p in grant_read_tree(path)]
    granted += [p for path in request.python_path for p in grant_traverse(path)]
    if granted:
        notes.append(
            f"made {len(granted)} path(s) readable or traversable by other users "
            f"for the sandbox uid, starting with {granted[0]}"
        )


def _child_env(request: SandboxRequest, layout: _Layout) -> dict[str, str]:
    env = {
        "PATH": os.pathsep.join(
            [os.path.dirname(os.path.abspath(sys.executable)), *SYSTEM_PATH]
        ),
        "HOME": str(layout.scratch),
        "TMPDIR": str(layout.tmp),
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.update(request.env)
    extra = [request.env["PYTHONPATH"]] if "PYTHONPATH" in request.env else []
    env["PYTHONPATH"] = os.pathsep.join(
        [str(layout.boot), *request.python_path, *extra]
    )
    return env


def _child_argv(
    request: SandboxRequest,
    layout: _Layout,
    host: HostSupport,
    identity: Identity | None,
    search_path: str,
) -> list[str]:
    name = request.argv[0]
    if name == "python":
        program: str | None = sys.executable
    elif "/" in name:
        program = str(layout.scratch / name) if not os.path.isabs(name) else name
    else:
        program = shutil.which(name, path=search_path)
    if program is None:
        raise SandboxSetupError(f"program {name!r} is not on the sandbox PATH")
    prefix: list[str] = []
    if host.netns_prefix and not request.network:
        prefix += host.netns_prefix
    if identity is not None and host.setpriv is not None:
        prefix += drop_prefix(host.setpriv, identity)
    return [*prefix, program, *request.argv[1:]]


def _execute(
    argv: list[str],
    env: dict[str, str],
    layout: _Layout,
    timeout_s: float,
    identity: Identity | None,
) -> _Exit:
    with contextlib.ExitStack() as stack:
        stdin = stack.enter_context(layout.stream("stdin").open("rb"))
        stdout = stack.enter_context(layout.stream("stdout").open("wb"))
        stderr = stack.enter_context(layout.stream("stderr").open("wb"))
        started = time.monotonic()
        process = subprocess.Popen(
            argv,
            cwd=layout.scratch,
            env=env,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
            close_fds=True,
        )
    timed_out = not _await_exit(process.pid, timeout_s)
    # Until it is reaped, the main process keeps its pid, so its group id cannot
    # name someone else's group: kill the group first, then reap.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    duration = time.monotonic() - started
    if identity is not None:
        kill_uid(identity.uid)
    return _Exit(
        returncode=process.returncode,
        timed_out=timed_out,
        cpu_s=usage.ru_utime + usage.ru_stime,
        duration_s=duration,
    )


def _await_exit(pid: int, timeout_s: float) -> bool:
    """Wait (without reaping) until `pid` exits; False when the timeout passed."""
    deadline = time.monotonic() + timeout_s
    with contextlib.suppress(OSError):
        fd = os.pidfd_open(pid)
        try:
            readable, _, _ = select.select([fd], [], [], timeout_s)
        finally:
            os.close(fd)
        return bool(readable)
    delay = 0.001
    while os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, 0.05)
    return True


def _collect(
    request: SandboxRequest, layout: _Layout, notes: list[str]
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
