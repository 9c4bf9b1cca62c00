"""Warm starts: sandboxed runs of a trusted `python -m MODULE` program forked from
a template process that has already imported MODULE (`sandbox_template`).

A cold start of the environment worker spends most of its ~0.15 s importing
pydantic and the runtime's models, in every environment; several starting
together on a small machine take twice that each. A warm start forks a process
that has those modules in memory and then puts up, in the child, the same walls
the cold exec chain puts up (see `sandbox_template`), so each run still gets its
own process, pool uid, network namespace, limits, guard, scratch directory and
environment.

Input: a `WarmStart` (prepared by `sandbox_launch` for a request with
`warm=True`) and the run's three streams. Output: a `TemplateChild`, which
behaves as the `subprocess.Popen` of a cold start does where the sandbox uses it
(`pid`, `stdin`, `stdout`, `poll`, `wait`, `returncode`). Side effects: the first
warm start of a program starts its template from a daemon thread that lives as
long as this process and reads the template's reports of ended children; the
template dies with that thread (parent-death signal), and its children die with
it. A template that cannot start (its program does not import) is remembered,
and its runs start cold (`TemplateUnavailable`). `AGENTSKILLER_WARM_START=0` in
the orchestrator's environment turns warm starts off.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import IO, Any

from tasks.runtime.sandbox_host import Identity, parent_death_prefix
from tasks.runtime.sandbox_template import MAX_MESSAGE_BYTES
from tasks.runtime.spawn_limits import LimitPlan

TEMPLATE_MODULE = "tasks.runtime.sandbox_template"
SWITCH = "AGENTSKILLER_WARM_START"
TEMPLATE_START_TIMEOUT_S = 120.0
SPAWN_TIMEOUT_S = 30.0
# Variables that differ per run; everything else of a run's environment is the
# template's too, so the template imports its program as a cold start would.
_PER_RUN = ("HOME", "TMPDIR", "PYTHONPATH")


class TemplateUnavailable(RuntimeError):
    """The template cannot fork this run; start it cold."""


@dataclass(frozen=True)
class WarmStart:
    """What a template child needs to become one run.

    Attributes:
        module: The program (`python -m module args...`).
        args: Its arguments.
        python_path: The run's PYTHONPATH entries after the guard's boot
            directory (the template imports from the same).
        limits: The run's rlimits.
        netns: Start in a new network namespace.
        identity: The pool uid and gid to run as (None: keep the user's).
        cwd: The scratch directory.
        env: The run's whole environment.
        path: The run's import path before the interpreter's own entries.
        policy: The guard's policy (JSON).
    """

    module: str
    args: tuple[str, ...]
    python_path: tuple[str, ...]
    limits: LimitPlan
    netns: bool
    identity: Identity | None
    cwd: str
    env: dict[str, str]
    path: tuple[str, ...]
    policy: str

    def template_key(self) -> tuple[Any, ...]:
        shared = tuple(sorted((k, v) for k, v in self.env.items() if k not in _PER_RUN))
        return (self.module, self.python_path, shared)


def enabled() -> bool:
    """False when the orchestrator's environment turns warm starts off."""
    return os.environ.get(SWITCH, "1") != "0"


class TemplateChild:
    """A run forked by a template; the parts of `Popen` the sandbox uses."""

    def __init__(
        self, template: _Template, serial: int, pid: int, stdin: int, stdout: int
    ):
        self._template = template
        self._serial = serial
        self.pid = pid
        self.stdin: IO[bytes] | None = os.fdopen(stdin, "wb", buffering=0)
        self.stdout: IO[bytes] | None = os.fdopen(stdout, "rb", buffering=0)
        self.returncode: int | None = None

    def kill_group(self) -> None:
        """SIGKILL the run's process group, through the template (which alone
        knows whether the pid is still the run's)."""
        self._template.kill(self._serial)

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._template.status(self._serial)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            code = self._template.wait(self._serial, timeout)
            if code is None:
                raise subprocess.TimeoutExpired(f"warm run {self.pid}", timeout or 0.0)
            self.returncode = code
        return self.returncode


def spawn(warm: WarmStart, stderr: IO[Any]) -> TemplateChild:
    """Fork the run from its program's template, with pipes for stdin and stdout.

    Raises:
        TemplateUnavailable: Warm starts are off, or the template cannot start
            or fork (the caller starts the run cold).
    """
    if not enabled():
        raise TemplateUnavailable(f"{SWITCH}=0")
    return _template(warm).spawn(warm, stderr)


_TEMPLATES: dict[tuple[Any, ...], _Template] = {}
_TEMPLATES_LOCK = threading.Lock()


def _template(warm: WarmStart) -> _Template:
    key = warm.template_key()
    with _TEMPLATES_LOCK:
        template = _TEMPLATES.get(key)
        # A forked copy of this process must not share its parent's template.
        stale = template is not None and template.owner != os.getpid()
        if (
            template is None
            or stale
            or (template.dead and not template.failed_at_start)
        ):
            template = _TEMPLATES[key] = _Template(warm)
    return template


class _Template:
    """One template process, its control socket and the statuses it reported."""

    def __init__(self, warm: WarmStart) -> None:
        self.owner = os.getpid()
        self.dead = False
        self.failed_at_start = False
        self._error: str | None = None
        self._lock = threading.Lock()  # one spawn exchange at a time
        self._changed = threading.Condition()
        self._statuses: dict[int, int] = {}
        self._requests = 0
        self._control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        started = threading.Event()
        threading.Thread(
            target=self._serve,
            args=(warm, theirs, started),
            name=f"sandbox-template-{warm.module}",
            daemon=True,
        ).start()
        started.wait()
        theirs.close()
        self._control.settimeout(TEMPLATE_START_TIMEOUT_S)
        try:
            hello = json.loads(self._control.recv(MAX_MESSAGE_BYTES) or b"{}")
        except (OSError, ValueError) as exc:
            hello = {"error": f"no greeting ({exc})"}
        if "ready" not in hello:
            # Remembered: the program's runs start cold from now on.
            self.failed_at_start = True
            self._error = hello.get("error") or "the template exited at start"
            self._mark_dead()
            self._control.close()

    def spawn(self, warm: WarmStart, stderr: IO[Any]) -> TemplateChild:
        if self.dead:
            raise TemplateUnavailable(self._error or "the template is gone")
        stdin_read, stdin_write = os.pipe2(os.O_CLOEXEC)
        stdout_read, stdout_write = os.pipe2(os.O_CLOEXEC)
        theirs = (stdin_read, stdout_write, stderr.fileno())
        ours = (stdin_write, stdout_read)
        try:
            reply = self._exchange({"spawn": _spec(warm)}, theirs)
        except (OSError, ValueError) as exc:
            for fd in ours:
                os.close(fd)
            self._fail(f"the template did not answer ({exc})")
        finally:
            os.close(stdin_read)
            os.close(stdout_write)
        if "pid" not in reply:
            for fd in ours:
                os.close(fd)
            raise TemplateUnavailable(reply.get("error") or "the template refused")
        return TemplateChild(self, reply["serial"], reply["pid"], *ours)

    def kill(self, serial: int) -> None:
        if self.dead:
            return  # its runs died with it
        with contextlib.suppress(OSError, ValueError):
            # a template that does not answer is gone, with its runs
            self._exchange({"kill": serial}, ())

    def _exchange(
        self, message: dict[str, Any], fds: tuple[int, ...]
    ) -> dict[str, Any]:
        """Send one request and read its reply; a reply to an earlier request
        that was interrupted before reading it is skipped."""
        with self._lock:
            self._requests += 1
            asked = self._requests
            self._control.settimeout(SPAWN_TIMEOUT_S)
            data = json.dumps({"request": asked, **message}).encode("utf-8")
            socket.send_fds(self._control, [data], list(fds))
            while True:
                reply = json.loads(self._control.recv(MAX_MESSAGE_BYTES) or b"null")
                if reply is None:
                    raise OSError("the template closed its control socket")
                if reply.get("request") == asked:
                    return reply

    def status(self, serial: int) -> int | None:
        with self._changed:
            return self._status(serial)

    def wait(self, serial: int, timeout: float | None) -> int | None:
        with self._changed:
            self._changed.wait_for(lambda: self._status(serial) is not None, timeout)
            return self._status(serial)

    def _status(self, serial: int) -> int | None:
        if serial in self._statuses:
            return self._statuses[serial]
        # The children of a dead template die with it (parent-death signal).
        return -signal.SIGKILL if self.dead else None

    def _fail(self, why: str) -> None:
        self._error = why
        self._mark_dead()
        with contextlib.suppress(OSError):
            self._control.close()
        raise TemplateUnavailable(why)

    def _mark_dead(self) -> None:
        with self._changed:
            self.dead = True
            self._changed.notify_all()

    def _serve(
        self, warm: WarmStart, theirs: socket.socket, started: threading.Event
    ) -> None:
        """Start the template from this long-lived thread (it dies with the
        thread) and record the statuses it reports until it ends."""
        status_read, status_write = os.pipe2(os.O_CLOEXEC)
        env = {k: v for k, v in warm.env.items() if k not in _PER_RUN}
        env["PYTHONPATH"] = os.pathsep.join(warm.python_path)
        argv = [
            *parent_death_prefix(),
            sys.executable,
            "-P",
            "-m",
            TEMPLATE_MODULE,
            warm.module,
            str(theirs.fileno()),
            str(status_write),
        ]
        try:
            process = subprocess.Popen(
                argv,
                env=env,
                cwd="/",
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(), status_write),
                start_new_session=True,
            )
        except OSError:
            os.close(status_write)
            os.close(status_read)
            started.set()
            self._mark_dead()
            return
        os.close(status_write)
        started.set()
        with os.fdopen(status_read, encoding="ascii") as reports:
            for line in reports:
                serial, code = (int(part) for part in line.split())
                with self._changed:
                    self._statuses[serial] = code
                    self._changed.notify_all()
        process.wait()
        self._mark_dead()


def _spec(warm: WarmStart) -> dict[str, Any]:
    identity = warm.identity
    return {
        "module": warm.module,
        "args": list(warm.args),
        "limits": [list(limit) for limit in warm.limits],
        "netns": warm.netns,
        "uid": identity.uid if identity is not None else None,
        "gid": identity.gid if identity is not None else None,
        "cwd": warm.cwd,
        "env": warm.env,
        "path": list(warm.path),
        "policy": warm.policy,
    }
