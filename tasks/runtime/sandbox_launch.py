"""Preparing and starting one sandboxed process: the single place where a run's
directories, guard, environment, command line and limits are made.

Input: a `SandboxRequest` (and whether a CPU-time limit applies). Output, inside
the `launched` context: a `Launch` holding the run's layout, identity, argv,
environment and, for a `warm` request the host can warm-start, its
`sandbox_warm.WarmStart`; `popen` starts the program with any stdin/stdout/stderr
the caller chooses (files for run-to-completion, pipes for a long-lived worker,
which starts warm when it can). Side effects: sweeps run directories of dead orchestrators
(and kills what is left of their pool uids' processes, when no run holds them),
creates a private run directory under `sandbox_dirs.runs_dir()` (mode 0700, or
0711 with a scratch dir of mode 0700 owned by the run's pool uid, so concurrent
runs cannot list or read each other), reserves a pool uid, and on exit kills every
process of that uid and removes the run directory unless `request.keep`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO

from schemas.sandbox import SandboxRequest
from tasks.runtime import sandbox_guard
from tasks.runtime.sandbox_dirs import (
    locks_dir,
    new_run_dir,
    record_uid,
    sweep_dead_runs,
)
from tasks.runtime.sandbox_files import (
    SandboxSetupError,
    chown_tree,
    grant_read_tree,
    grant_traverse,
    remove_tree,
)
from tasks.runtime.sandbox_guard import POLICY_FILE, GuardPolicy
from tasks.runtime.sandbox_host import (
    SYSTEM_PATH,
    HostSupport,
    Identity,
    drop_prefix,
    host_support,
    kill_uid,
    kill_unreserved,
    parent_death_prefix,
    reserve_identity,
    task_count,
)
from tasks.runtime.sandbox_warm import (
    TemplateChild,
    TemplateUnavailable,
    WarmStart,
    spawn,
)
from tasks.runtime.spawn_limits import LimitPlan, limit_plan, limits_prefix


@dataclass(frozen=True)
class Layout:
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


@dataclass
class Launch:
    """A prepared run, ready to start."""

    layout: Layout
    identity: Identity | None
    argv: list[str]
    env: dict[str, str]
    notes: list[str] = field(default_factory=list)
    warm: WarmStart | None = None

    def popen(self, stdin: Any, stdout: Any, stderr: Any) -> Any:
        """Start the program in its own process group, in the scratch dir.

        A cold start (`subprocess.Popen`) dies when the calling thread ends
        (parent-death signal), so call this from a thread that outlives the
        program. A warm start (a request with `warm=True`, talking through
        pipes) is forked by its program's template instead and dies with this
        process (`sandbox_warm`); when the template cannot fork it, it starts
        cold and a note says why.
        """
        process: Any = None
        if (
            self.warm is not None
            and stdin is subprocess.PIPE
            and stdout is subprocess.PIPE
        ):
            try:
                process = spawn(self.warm, stderr)
            except TemplateUnavailable as exc:
                self.notes.append(f"started cold: {exc}")
        if process is None:
            process = subprocess.Popen(
                self.argv,
                cwd=self.layout.scratch,
                env=self.env,
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
                close_fds=True,
            )
        with _RUNNING_LOCK:
            _RUNNING[id(self)] = (process, self.identity)
        return process


_RUNNING: dict[int, tuple[Any, Identity | None]] = {}
"""Started programs of this process whose run has not ended: the process (its
group) and pool identity, so an interrupted orchestrator can stop them at once."""
_RUNNING_LOCK = threading.Lock()


def stop_running() -> int:
    """Kill every sandboxed program this process started and has not cleaned up
    (their process groups, and every process of their pool uids); the waiting
    threads then see them end. Returns how many runs were stopped."""
    with _RUNNING_LOCK:
        running = list(_RUNNING.values())
    for process, identity in running:
        kill_group(process)
        if identity is not None:
            kill_uid(identity.uid)
    return len(running)


def kill_group(process: Any) -> None:
    """SIGKILL a started program's process group (call it before reaping a cold
    start, while its id cannot be reused; a warm start's template reaps)."""
    if isinstance(process, TemplateChild):
        process.kill_group()
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def open_private(path: Path, mode: str = "wb") -> BinaryIO:
    """Open a run file readable and writable by the orchestrator only."""
    flags = os.O_RDONLY if mode == "rb" else os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    return os.fdopen(os.open(path, flags | os.O_CLOEXEC, 0o600), mode)


@contextlib.contextmanager
def launched(request: SandboxRequest, *, cpu_limit: bool = True) -> Iterator[Launch]:
    """Prepare a run; clean up its processes and directory on exit.

    Args:
        request: What to run, with its files, permissions and limits.
        cpu_limit: Apply `request.cpu_s` as RLIMIT_CPU (False for a server that
            lives long; its caller bounds each request instead).

    Yields:
        The prepared run.

    Raises:
        SandboxSetupError: The host cannot prepare the run (a state directory
            that is not private, every pool uid in use, a missing program).
        OSError: Preparing the files failed.
    """
    host = host_support()
    notes = list(host.notes)
    for uid in sweep_dead_runs():
        kill_unreserved(uid, locks_dir)
    layout = Layout(new_run_dir())
    try:
        with reserve_identity(host, locks_dir) as identity:
            if identity is not None:
                record_uid(layout.root, identity.uid)
            launch = _prepare(request, layout, host, identity, notes, cpu_limit)
            try:
                yield launch
            finally:
                with _RUNNING_LOCK:
                    _RUNNING.pop(id(launch), None)
                if identity is not None:
                    kill_uid(identity.uid)
    finally:
        if not request.keep:
            remove_tree(layout.root)


def _prepare(
    request: SandboxRequest,
    layout: Layout,
    host: HostSupport,
    identity: Identity | None,
    notes: list[str],
    cpu_limit: bool,
) -> Launch:
    isolated = bool(host.netns_prefix) and not request.network
    policy = _write_files(request, layout, identity, isolated, notes)
    env = _child_env(request, layout)
    owner = identity.uid if identity is not None else os.getuid()
    plan = limit_plan(
        cpu_s=request.cpu_s if cpu_limit else None,
        memory_mb=request.memory_mb,
        file_size_mb=request.file_size_mb,
        nproc=task_count(owner) + request.max_processes,
    )
    # Limits and the parent-death signal come from exec'd prefixes, never from a
    # preexec_fn, so no Python runs between fork and exec (see spawn_limits).
    limits = limits_prefix(plan)
    dropped = identity is not None and host.setpriv is not None
    dies = [] if dropped else parent_death_prefix()
    argv = [*limits, *dies, *_child_argv(request, layout, host, identity, env["PATH"])]
    warm = _warm_start(request, layout, host, identity, isolated, plan, env, policy)
    return Launch(layout, identity, argv, env, notes, warm)


def _warm_start(
    request: SandboxRequest,
    layout: Layout,
    host: HostSupport,
    identity: Identity | None,
    isolated: bool,
    plan: LimitPlan,
    env: dict[str, str],
    policy: GuardPolicy,
) -> WarmStart | None:
    """The warm start of a `warm` request, when this host lets a template put
    up the same walls as the exec chain: a network namespace needs root there
    (`unshare -r` as a user would need a user namespace too)."""
    if not request.warm or (isolated and not host.is_root):
        return None
    extra = [request.env["PYTHONPATH"]] if "PYTHONPATH" in request.env else []
    python_path = (*request.python_path, *extra)
    return WarmStart(
        module=request.argv[2],
        args=request.argv[3:],
        python_path=python_path,
        limits=plan,
        netns=isolated,
        identity=identity if host.setpriv is not None else None,
        cwd=str(layout.scratch),
        env=env,
        path=(str(layout.scratch), str(layout.boot), *python_path),
        policy=policy.to_json(),
    )


def _write_files(
    request: SandboxRequest,
    layout: Layout,
    identity: Identity | None,
    isolated: bool,
    notes: list[str],
) -> GuardPolicy:
    for path in (*request.read_only_paths, *request.python_path):
        if not os.path.exists(path):
            raise SandboxSetupError(f"readable path {path} does not exist")
    # The guard is found through a directory listing, so boot stays listable.
    layout.boot.mkdir(mode=0o755)
    layout.scratch.mkdir(mode=0o700)
    layout.tmp.mkdir(mode=0o700)
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
    with open_private(layout.stream("stdin")) as stdin:
        stdin.write((request.stdin or "").encode("utf-8"))
    if identity is None:
        return policy
    # mkdir applies the umask (0077 on some hosts), so modes are set explicitly.
    layout.root.chmod(0o711)
    layout.boot.chmod(0o755)
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
    return policy


def _child_env(request: SandboxRequest, layout: Layout) -> dict[str, str]:
    env = {
        "PATH": os.pathsep.join(
            [os.path.dirname(os.path.abspath(sys.executable)), *SYSTEM_PATH]
        ),
        "HOME": str(layout.scratch),
        "TMPDIR": str(layout.tmp),
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        # Installed pydantic plugins (found by scanning every package's entry
        # points at the first model) are third-party code the sandboxed
        # program did not ask for; skipping the scan also shortens start-up.
        "PYDANTIC_DISABLE_PLUGINS": "__all__",
    }
    env.update(request.env)
    extra = [request.env["PYTHONPATH"]] if "PYTHONPATH" in request.env else []
    env["PYTHONPATH"] = os.pathsep.join(
        [str(layout.boot), *request.python_path, *extra]
    )
    return env


def _child_argv(
    request: SandboxRequest,
    layout: Layout,
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


def close_quietly(handle: IO[Any] | None) -> None:
    """Close a pipe end, ignoring a peer that is already gone."""
    if handle is not None:
        with contextlib.suppress(OSError):
            handle.close()
