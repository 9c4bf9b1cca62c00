"""The environment worker: runs INSIDE the sandbox, never in the serving process.

Input: `python -m tasks.runtime.env_worker <config.json>`, where the config (a
`WorkerConfig`, written into the scratch directory by the server) carries the
`EnvironmentSpec` (or a fused environment's `FusedEnvironmentSpec`), the path of
each server's tool module and the data strictness; the data files lie in the
scratch dir in the output layout, and an optional overlay every new session
starts with (`tasks.runtime.overlay`). Then one JSON request per stdin line
(`WorkerRequest`: a tool call, which may also ask for the session's state hash
and diff after it, a state hash or a diff of a session, the start of a
session from its own overlay, or the end of a session, which forgets it). Output, one
JSON line per message on the original stdout: first a `WorkerHello` (ready, with
the data issues, or the reason the environment cannot be served), then one
`WorkerReply` per request. Side effects: imports and runs the generated tool
module; fd 1 and fd 0 are re-pointed at stderr and /dev/null before that, so
prints and reads of the generated code cannot touch the protocol.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import Field

from schemas.base import Frozen
from schemas.environment import (
    DatabaseDiff,
    DataIssue,
    EnvironmentSpec,
    StateField,
    ToolResult,
)
from schemas.fused_environment import FusedEnvironmentSpec
from tasks.runtime.data_checks import DataLoadError
from tasks.runtime.database import Database
from tasks.runtime.environment import Environment
from tasks.runtime.fusion import fused_environment, member_specs, served_spec
from tasks.runtime.implementations import (
    ImplementationError,
    implementations_from,
    load_tool_module,
)
from tasks.runtime.overlay import OverlayError
from tasks.runtime.session_state import session_state

WORKER_MODULE = "tasks.runtime.env_worker"
CONFIG_FILE = "worker.json"


class WorkerConfig(Frozen):
    """What the worker serves."""

    spec: EnvironmentSpec | FusedEnvironmentSpec
    modules: dict[str, str] = Field(
        description="Server -> its tool module, relative to scratch."
    )
    strict: bool = True
    overlay: dict[str, list[dict[str, Any]]] = Field(
        default_factory=dict, description="Rows every new session starts with."
    )


class WorkerHello(Frozen):
    """The worker's first line: ready to serve, or why not."""

    ready: bool
    issues: tuple[str, ...] = ()
    error_kind: Literal["data", "implementation", "overlay"] | None = None
    error: str | None = None


class WorkerRequest(Frozen):
    """One request to the worker."""

    op: Literal["call", "state_hash", "diff", "start_session", "end_session"]
    session: str | None = Field(
        description="The runtime session; None runs a call in a private session "
        "that is dropped afterwards."
    )
    tool: str = ""
    arguments: dict[str, Any] = Field(default_factory=dict)
    overlay: dict[str, list[dict[str, Any]]] = Field(
        default_factory=dict, description="start_session: the session's rows."
    )
    report: tuple[StateField, ...] = Field(
        default=(),
        description="call: the session's state to send back with the result "
        "(ignored for a private session, which leaves none); end_session: its "
        "last state, read before it is forgotten.",
    )
    end: bool = Field(
        default=False,
        description="call: forget the session after the call and its state "
        "report, as end_session does.",
    )


class WorkerReply(Frozen):
    """The answer to one request (exactly one field besides `error` is set,
    except that a call's `result` comes with the state it asked for;
    a started session sets `started`, a refused overlay `overlay_issues`)."""

    result: ToolResult | None = None
    state_hash: str | None = None
    diff: DatabaseDiff | None = None
    started: str | None = None
    ended: str | None = None
    overlay_issues: tuple[DataIssue, ...] = ()
    error: str | None = None


def main(argv: list[str]) -> int:
    """Serve requests until stdin closes; returns the exit status."""
    channel, requests = _claim_stdio()
    config = WorkerConfig.model_validate_json(Path(argv[0]).read_text("utf-8"))
    try:
        environment = _load(config)
    except (DataLoadError, ImplementationError, ValueError) as exc:
        kind = (
            "data"
            if isinstance(exc, DataLoadError)
            else "overlay"
            if isinstance(exc, OverlayError)
            else "implementation"
        )
        _write(channel, WorkerHello(ready=False, error_kind=kind, error=str(exc)))
        return 1
    issues = tuple(issue.message for issue in environment.base.issues)
    _write(channel, WorkerHello(ready=True, issues=issues))
    for line in requests:
        _write(channel, answer(environment, line))
    return 0


def answer(environment: Environment, line: str) -> WorkerReply:
    """The reply to one request line (malformed requests get an `error`)."""
    try:
        request = WorkerRequest.model_validate_json(line)
    except ValueError as exc:
        return WorkerReply(error=f"malformed request: {exc}")
    if request.op == "call":
        result = environment.call(request.session, request.tool, request.arguments)
        state = session_state(environment, request.session, request.report)
        ended = request.session if request.end else None
        if ended is not None:
            environment.reset_session(ended)
        return WorkerReply(
            result=result, state_hash=state.state_hash, diff=state.diff, ended=ended
        )
    if request.op == "start_session":
        return _start_session(environment, request)
    if request.op == "end_session":
        if request.session is None:
            return WorkerReply(error="end_session needs a session id")
        state = session_state(environment, request.session, request.report)
        environment.reset_session(request.session)
        return WorkerReply(
            ended=request.session, state_hash=state.state_hash, diff=state.diff
        )
    if request.op == "state_hash":
        return WorkerReply(state_hash=environment.state_hash(request.session))
    return WorkerReply(diff=environment.diff(request.session))


def _start_session(environment: Environment, request: WorkerRequest) -> WorkerReply:
    if request.session is None:
        return WorkerReply(error="start_session needs a session id")
    try:
        environment.start_session(request.session, request.overlay)
    except OverlayError as exc:
        return WorkerReply(overlay_issues=exc.issues)
    except ValueError as exc:
        return WorkerReply(error=str(exc))
    return WorkerReply(started=request.session)


def _load(config: WorkerConfig) -> Environment:
    root = Path.cwd()
    target = config.spec
    database = Database.load(served_spec(target), root, strict=config.strict)
    bodies = {
        server: implementations_from(
            load_tool_module(root / config.modules[server]),
            [tool.name for tool in spec.tools],
        )
        for server, spec in member_specs(target).items()
    }
    if isinstance(target, FusedEnvironmentSpec):
        return fused_environment(target, database, bodies, overlay=config.overlay)
    return Environment(target, database, bodies[target.name], overlay=config.overlay)


def _claim_stdio() -> tuple[IO[str], IO[str]]:
    """Keep private copies of stdin/stdout for the protocol; point fd 0 at
    /dev/null and fd 1 at stderr for everything else in this process."""
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    requests = os.fdopen(os.dup(0), "r", encoding="utf-8")
    os.dup2(2, 1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    sys.stdout = sys.stderr
    return channel, requests


def _write(channel: IO[str], message: Frozen) -> None:
    channel.write(json.dumps(message.model_dump(mode="json"), ensure_ascii=False))
    channel.write("\n")
    channel.flush()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
