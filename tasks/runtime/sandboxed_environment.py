"""A served environment whose generated code runs in a sandboxed worker process.

Input: an output directory, a server's `EnvironmentSpec` or a fused environment's
`FusedEnvironmentSpec` (built in the serving process from the exports, never from
the generated modules) and the limits. Output:
`SandboxedEnvironment`, with the interface the MCP exposure uses (`spec`,
`call(session, tool, arguments) -> ToolResult`) plus `state_hash` and `diff`, and
`call_reporting`, which brings the session's state back with a call's result in
the same exchange (`tasks.runtime.session_state`), and `end_session`, which
forgets a session that is over (its rows and its journal entries); every
call crosses a pipe as one JSON line each way to `tasks.runtime.env_worker`, started
through `sandbox_process.SandboxProcess` (pool uid when root, scrubbed environment,
no network, memory, file-size, process and scratch-size limits, audit hook). Limits
decided for a long-lived worker: no CPU-time limit (a server must not die for living
long); instead each request has a wall-clock deadline, after which the worker is
killed. Any failure of the worker (deadline, exit, scratch-size bound, an invalid or
oversized reply) becomes an error `ToolResult` naming what happened, never a hang or
an exception. The next request starts a fresh worker and restores every session by
replaying, in order, the session starts (`start_session`, from an overlay) and
the successful calls made so far (the runtime is deterministic:
fixed clock, seeded ids), checking that each gives the same result; if a replay
differs or fails, or more than `MAX_REPLAYED_CALLS` calls were made, that request's
result says every session starts again from the base data. Side effects: copies the
server's data files and tool module (every member's, for a fused environment)
into the worker's scratch directory (the output
directory itself is never made readable to the worker); the worker dies with the
thread that started it, so create and use this object from one long-lived thread
(the serving event loop's).
"""

from __future__ import annotations

import hashlib
import signal
import subprocess
import threading
from collections.abc import Collection, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from schemas.environment import (
    DatabaseDiff,
    EnvironmentSpec,
    SessionState,
    StateField,
    ToolResult,
)
from schemas.fused_environment import FusedEnvironmentSpec, ServedSpec
from schemas.sandbox import SandboxRequest
from tasks.runtime.database import data_paths
from tasks.runtime.env_worker import (
    CONFIG_FILE,
    WORKER_MODULE,
    WorkerConfig,
    WorkerHello,
    WorkerReply,
    WorkerRequest,
)
from tasks.runtime.fusion import served_spec
from tasks.runtime.harness import PROJECT_ROOT
from tasks.runtime.implementations import ImplementationError
from tasks.runtime.overlay import Overlay, OverlayError
from tasks.runtime.sandbox_process import Reply, SandboxProcess

MODULE_FILE = "tool_module/{name}.py"
DEFAULT_CALL_TIMEOUT_S = 30.0
START_TIMEOUT_S = 120.0
# How long a worker that closed its output may take to exit before it is killed.
EXIT_GRACE_S = 2.0
MAX_REPLY_BYTES = 16 * 1024 * 1024
WORKER_MEMORY_MB = 2048
WORKER_FILE_SIZE_MB = 16
WORKER_DISK_MB = 256
WORKER_PROCESSES = 4
MAX_REPLAYED_CALLS = 100_000


class WorkerStartError(ValueError):
    """The worker could not start serving (bad data, bad module, sandbox)."""


class WorkerFailure(RuntimeError):
    """A state request (hash or diff) that the worker could not answer."""


def worker_request(
    output_dir: Path,
    spec: ServedSpec,
    module: Path | Mapping[str, Path],
    *,
    strict: bool = True,
    overlay: Overlay | None = None,
) -> SandboxRequest:
    """The sandboxed run of a worker serving `spec` from `output_dir`'s data.

    Args:
        output_dir: The pipeline's output root (its files are copied, not shared).
        spec: The environment spec the server exposes (or the fused spec).
        module: The tool module file, or server -> tool module file (every
            member of a fused environment).
        strict: Refuse data with issues.
        overlay: Rows every new session starts with (`tasks.runtime.overlay`).

    Returns:
        The request.

    Raises:
        ImplementationError: If a tool module file does not exist.
    """
    modules = {spec.name: module} if isinstance(module, Path) else dict(module)
    files: dict[str, str] = {}
    module_files: dict[str, str] = {}
    for server, path in modules.items():
        if not path.is_file():
            raise ImplementationError(str(path), ["the module file does not exist"])
        module_files[server] = MODULE_FILE.format(name=path.stem)
        files[module_files[server]] = path.read_text(encoding="utf-8")
    for path in data_paths(output_dir, served_spec(spec)).values():
        if path.is_file():
            files[path.relative_to(output_dir).as_posix()] = path.read_text("utf-8")
    config = WorkerConfig(
        spec=spec,
        modules=module_files,
        strict=strict,
        overlay={table: list(rows) for table, rows in (overlay or {}).items()},
    )
    files[CONFIG_FILE] = config.model_dump_json()
    return SandboxRequest(
        argv=("python", "-m", WORKER_MODULE, CONFIG_FILE),
        files=files,
        python_path=(str(PROJECT_ROOT),),
        memory_mb=WORKER_MEMORY_MB,
        file_size_mb=WORKER_FILE_SIZE_MB,
        disk_mb=WORKER_DISK_MB,
        max_processes=WORKER_PROCESSES,
        warm=True,
    )


class SandboxedEnvironment:
    """An environment whose tool bodies run in a sandboxed worker."""

    def __init__(
        self,
        spec: ServedSpec,
        request: SandboxRequest,
        *,
        call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
        wait: bool = True,
    ) -> None:
        """Start the worker and (by default) wait until it serves.

        Args:
            spec: The spec, or the fused spec (also sent to the worker inside
                `request`); `self.spec` is the spec served (`served_spec`).
            request: The worker's sandboxed run (see `worker_request`).
            call_timeout_s: Wall-clock deadline of one request.
            wait: False returns as soon as the worker is launched; it boots
                while the caller does other work (a model call), and `ready`
                (or the first request) waits for it. `spec` and the tool
                listing need no worker.

        Raises:
            WorkerStartError: The data or module cannot be served, or the
                sandbox cannot start the worker; the message says which (with
                `wait=False`, only a launch failure raises here; the rest is
                raised by `ready`).
        """
        self.spec: EnvironmentSpec = served_spec(spec)
        self.fused = spec if isinstance(spec, FusedEnvironmentSpec) else None
        self._aliases = self.fused.aliases if self.fused else {}
        self.call_timeout_s = call_timeout_s
        self.restarts = 0
        self._request = request
        self._lock = threading.Lock()
        self._worker: SandboxProcess | None = None
        # Successful calls in order, to restore every session in a new worker;
        # None once there were too many to keep.
        self._journal: list[tuple[WorkerRequest, str]] | None = []
        # A launched worker whose greeting has not been read yet, and the error
        # its greeting turned out to be.
        self._booting: SandboxProcess | None = None
        self._boot_error: WorkerStartError | None = None
        self.issues: tuple[str, ...] = ()
        if wait:
            self.issues = self._start()
        else:
            self._booting = self._launch()

    def __enter__(self) -> SandboxedEnvironment:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def call(
        self,
        session_id: str | None,
        tool: str,
        arguments: dict[str, Any] | None = None,
    ) -> ToolResult:
        """Run one tool call in the worker (see `Environment.call`).

        Returns:
            The worker's result, or an error result naming the worker failure.
        """
        return self.call_reporting(session_id, tool, arguments, ())[0]

    def call_reporting(
        self,
        session_id: str | None,
        tool: str,
        arguments: dict[str, Any] | None,
        report: Collection[StateField],
        *,
        end: bool = False,
    ) -> tuple[ToolResult, SessionState]:
        """Run one tool call and get the session's state after it, in one
        exchange with the worker (`tasks.runtime.session_state`); with `end`,
        the worker then forgets the session, as `end_session` does.

        Returns:
            The result as `call` returns it, and the state `report` asks for
            (empty for a private session or when the worker failed).
        """
        tool = self._aliases.get(tool, tool)
        request = WorkerRequest(
            op="call",
            session=session_id,
            tool=tool,
            arguments=arguments or {},
            report=tuple(report),
            end=end and session_id is not None,
        )
        with self._lock:
            reply = self._exchange(request, f"the call of {tool}")
            if request.end:
                self._forget(session_id)
            if isinstance(reply, str):
                return ToolResult(tool=tool, is_error=True, error=reply), SessionState()
            result = reply.result
            if result is None or result.tool != tool:
                message = self._discard("it answered a call with something else")
                failed = ToolResult(tool=tool, is_error=True, error=message)
                return failed, SessionState()
            # A private (None) session is dropped after its call: nothing to restore.
            if session_id is not None and not result.is_error and not request.end:
                if not result.needs_confirmation:
                    self._remember(request, reply)
            return result, SessionState(state_hash=reply.state_hash, diff=reply.diff)

    def start_session(self, session_id: str, overlay: Overlay) -> None:
        """Create a session in the worker from the base data plus `overlay`
        (see `Environment.start_session`); remembered like a call, so a
        restarted worker starts it again before replaying the session's calls.

        Raises:
            OverlayError: If the worker refuses the overlay (its issues).
            WorkerFailure: If the worker could not answer, or the session exists.
        """
        request = WorkerRequest(
            op="start_session",
            session=session_id,
            overlay={table: list(rows) for table, rows in overlay.items()},
        )
        with self._lock:
            reply = self._exchange(request, f"the start of session {session_id}")
            if isinstance(reply, str):
                raise WorkerFailure(reply)
            if reply.overlay_issues:
                raise OverlayError(self.spec.name, reply.overlay_issues)
            if reply.started != session_id:
                raise WorkerFailure(self._discard("it did not start the session"))
            self._remember(request, reply)

    def end_session(
        self, session_id: str, report: Collection[StateField] = ()
    ) -> SessionState:
        """Forget a session: the worker drops its rows and its calls leave the
        journal, so neither the worker's memory nor the replay after a restart
        grows with sessions that are over. Its next use starts from the base
        state.

        Args:
            session_id: The session.
            report: Its last state to read first, in the same exchange.

        Returns:
            The state `report` asked for.

        Raises:
            WorkerFailure: If the worker could not answer (the session is
                forgotten all the same).
        """
        with self._lock:
            # A stopped worker is started (and every session restored) only when
            # the session's state is wanted, never just to forget one.
            running = self._worker is not None or self._booting is not None
            reply: WorkerReply | str | None = None
            if report or running:
                request = WorkerRequest(
                    op="end_session", session=session_id, report=tuple(report)
                )
                reply = self._exchange(request, f"the end of session {session_id}")
            self._forget(session_id)
        if reply is None:
            return SessionState()
        if isinstance(reply, str):
            raise WorkerFailure(reply)
        if reply.ended != session_id:
            raise WorkerFailure(f"the worker did not end session {session_id}")
        return SessionState(state_hash=reply.state_hash, diff=reply.diff)

    def state_hash(self, session_id: str | None) -> str:
        """sha256 of the session's database state (None: the base state).

        Raises:
            WorkerFailure: The worker could not answer.
        """
        state_hash = self._query("state_hash", session_id).state_hash
        assert state_hash is not None  # _query checked it
        return state_hash

    def diff(self, session_id: str | None) -> DatabaseDiff:
        """What the session changed relative to the base data (None: nothing).

        Raises:
            WorkerFailure: The worker could not answer.
        """
        diff = self._query("diff", session_id).diff
        assert diff is not None  # _query checked it
        return diff

    def _query(
        self, op: Literal["state_hash", "diff"], session_id: str | None
    ) -> WorkerReply:
        """Ask the worker for a session's `op`; the reply has that field set.

        Raises:
            WorkerFailure: The worker could not answer, or answered without it.
        """
        with self._lock:
            reply = self._exchange(WorkerRequest(op=op, session=session_id))
        if isinstance(reply, str):
            raise WorkerFailure(reply)
        if getattr(reply, op) is None:
            raise WorkerFailure(f"the worker answered {op} without one")
        return reply

    def ready(self) -> tuple[str, ...]:
        """Wait until a worker launched with `wait=False` serves.

        Returns:
            The data issues the worker reported.

        Raises:
            WorkerStartError: The worker refused the data, the modules or the
                overlay (raised again by every later `ready`).
        """
        with self._lock:
            self._finish_boot()
        return self.issues

    def close(self) -> None:
        """Stop the worker (and everything it started)."""
        with self._lock:
            self._stop()

    def _finish_boot(self) -> None:
        """Read the launched worker's greeting (the caller holds the lock)."""
        if self._boot_error is not None:
            raise self._boot_error
        if self._booting is None:
            return
        worker, self._booting = self._booting, None
        try:
            self.issues = self._greet(worker)
        except WorkerStartError as exc:
            self._boot_error = exc
            raise

    def _start(self) -> tuple[str, ...]:
        return self._greet(self._launch())

    def _launch(self) -> SandboxProcess:
        try:
            return SandboxProcess(self._request)
        except (OSError, RuntimeError) as exc:
            raise WorkerStartError(
                f"the sandbox cannot start the worker: {exc}"
            ) from exc

    def _greet(self, worker: SandboxProcess) -> tuple[str, ...]:
        """Wait for a launched worker's greeting; it serves from now on."""
        reply = worker.receive(START_TIMEOUT_S, MAX_REPLY_BYTES)
        hello = _hello(reply)
        if hello is None or not hello.ready:
            detail = (
                hello.error
                if hello is not None
                else _ended(reply, worker, START_TIMEOUT_S)
            )
            worker.stop()
            raise WorkerStartError(detail or "the worker did not start")
        self._worker = worker
        return hello.issues

    def _exchange(
        self, request: WorkerRequest, what: str = "a state request"
    ) -> WorkerReply | str:
        """One request and its reply (the caller holds the lock); a failure is
        returned as the sentence for the caller's error result."""
        try:
            self._finish_boot()
        except WorkerStartError as exc:
            return f"the environment worker could not start: {exc}"
        if self._worker is None:
            problem = self._restart()
            if problem is not None:
                return problem
        worker = self._worker
        assert worker is not None
        line = request.model_dump_json().encode("utf-8")
        if not worker.send(line, self.call_timeout_s):
            return self._discard(f"it stopped reading requests ({what})")
        reply = worker.receive(self.call_timeout_s, MAX_REPLY_BYTES)
        if reply.line is None:
            ended = _ended(reply, worker, self.call_timeout_s)
            return self._discard(f"{ended} during {what}")
        try:
            parsed = WorkerReply.model_validate_json(reply.line)
        except ValueError:
            return self._discard(f"it sent an invalid reply to {what}")
        if parsed.error is not None:
            return f"the environment worker refused {what}: {parsed.error}"
        return parsed

    def _restart(self) -> str | None:
        """Start a fresh worker and replay the remembered calls into it."""
        try:
            self._start()
        except WorkerStartError as exc:
            return f"the environment worker could not be restarted: {exc}"
        self.restarts += 1
        journal, self._journal = self._journal, []
        if journal is None:
            return _LOST.format(why="too many calls were made to replay them")
        for request, digest in journal:
            what = request.tool or f"the start of session {request.session}"
            reply = self._exchange(request, f"the replay of {what}")
            if isinstance(reply, str) or _digest(reply) != digest:
                self._stop()
                self._journal = []
                why = f"replaying {what} did not give the same result"
                return _LOST.format(why=reply if isinstance(reply, str) else why)
            self._journal.append((request, digest))
        return None

    def _forget(self, session_id: str | None) -> None:
        """Drop a session's entries from the journal (the caller holds the lock)."""
        if self._journal is not None and session_id is not None:
            self._journal = [
                (made, digest)
                for made, digest in self._journal
                if made.session != session_id
            ]

    def _remember(self, request: WorkerRequest, reply: WorkerReply) -> None:
        if self._journal is None:
            return
        if len(self._journal) >= MAX_REPLAYED_CALLS:
            self._journal = None
            return
        self._journal.append((request, _digest(reply)))

    def _discard(self, reason: str) -> str:
        self._stop()
        return (
            f"the environment worker failed: {reason}. It was stopped; the next "
            "request starts a fresh worker and restores every session by "
            "replaying its earlier successful calls."
        )

    def _stop(self) -> None:
        if self._booting is not None:
            self._booting.stop()
            self._booting = None
        if self._worker is not None:
            self._worker.stop()
            self._worker = None


_LOST = (
    "the environment worker was restarted after a failure, but the sessions could "
    "not be restored ({why}); every session starts again from the base data"
)


def _digest(reply: WorkerReply) -> str:
    return hashlib.sha256(reply.model_dump_json().encode("utf-8")).hexdigest()


def _hello(reply: Reply) -> WorkerHello | None:
    if reply.line is None:
        return None
    try:
        return WorkerHello.model_validate_json(reply.line)
    except ValueError:
        return None


def _ended(reply: Reply, worker: SandboxProcess, timeout_s: float) -> str:
    """One phrase saying how the worker failed (it reads the worker's stderr)."""
    if reply.failure == "timeout":
        return f"it did not answer within {timeout_s:g} s and was killed"
    if reply.failure == "disk_limit":
        return "its scratch directory outgrew its size limit and it was killed"
    if reply.failure == "too_long":
        return f"its reply exceeded {MAX_REPLY_BYTES} bytes"
    lines = [line for line in worker.stderr_tail().splitlines() if line.strip()]
    try:
        status = worker.process.wait(timeout=EXIT_GRACE_S)
    except subprocess.TimeoutExpired:
        return "it closed its reply channel"
    if status < 0:
        try:
            how = f"it was killed by {signal.Signals(-status).name}"
        except ValueError:
            how = f"it was killed by signal {-status}"
    else:
        how = f"it exited with status {status}"
    return f"{how} ({lines[-1].strip()})" if lines else how
