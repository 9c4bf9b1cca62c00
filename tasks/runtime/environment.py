"""A runnable environment: takes an `EnvironmentSpec`, the base `Database` and one
tool body per tool; runs tool calls in isolated sessions (named ones, kept until
reset, or a private one that lives for a single call) and returns `ToolResult`s,
per-session state hashes and diffs against the base, and the `ToolCrash`es of
generated code; `ToolServer` is the part of that interface MCP exposure uses.
A fused environment (`tasks.runtime.fusion`) is one `Environment` whose tools
are bound to their members' bodies and tables, with `Server.tool` aliases.
A session may start from the base data plus an overlay of new rows (the
environment's own, for every new session, or one given to `start_session`;
`tasks.runtime.overlay`); hashes and diffs stay against the base.
Every call is atomic: arguments are validated against the tool's
JSON schema first, and a tool error, a confirmation preview or a crash undoes the
call's writes. A body that breaks a runtime rule crashes with a `ContractViolation`
whose rule the `ToolCrash` names. Build reports keep tracebacks with this module's
line numbers: lines added above `_run` change them. Side effects: only on session
copies (the base database, and so the data files, are never changed); crashes are
also logged."""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from schemas.environment import (
    CONFIRM_PARAMETER,
    CONTRACT_VIOLATION,
    DatabaseDiff,
    EnvironmentSpec,
    RuntimeRule,
    ToolCrash,
    ToolResult,
    ToolSpec,
)
from tasks.runtime.arguments import parse_arguments
from tasks.runtime.database import Database
from tasks.runtime.implementations import signature_problems
from tasks.runtime.overlay import Overlay, apply_overlay
from tasks.runtime.session import (
    ConfirmationRequired,
    Env,
    IdGenerator,
    Session,
    SimulationClock,
    ToolBinding,
)
from tasks.runtime.table import ToolError

DEFAULT_SESSION = "default"
PRIVATE_SESSION = "private"
"""The id a single-call private session carries (it is never stored or shared)."""

logger = logging.getLogger(__name__)


class ToolServer(Protocol):
    """What the MCP exposure needs: an in-process `Environment` or a sandboxed one
    (`tasks.runtime.sandboxed_environment.SandboxedEnvironment`)."""

    spec: EnvironmentSpec

    def call(
        self, session_id: str | None, tool: str, arguments: dict[str, Any] | None = None
    ) -> ToolResult:
        """Run one tool call in a session (None: a private one for this call);
        errors are results."""
        ...

    def state_hash(self, session_id: str | None) -> str:
        """sha256 of the session's database state (None: the base state)."""
        ...

    def diff(self, session_id: str | None) -> DatabaseDiff:
        """What the session changed relative to the base (None: nothing)."""
        ...


class Environment:
    """An environment serving tool calls over isolated sessions."""

    def __init__(
        self,
        spec: EnvironmentSpec,
        base_db: Database,
        implementations: Mapping[str, Callable[..., Any]],
        *,
        bindings: Mapping[str, ToolBinding] | None = None,
        aliases: Mapping[str, str] | None = None,
        overlay: Overlay | None = None,
    ) -> None:
        """Assemble an environment.

        Args:
            spec: The environment spec.
            base_db: The loaded data; it is copied per session, never changed.
            implementations: Tool name -> tool body.
            bindings: Tool name -> how its body sees the environment (default:
                the body was written for `spec` itself).
            aliases: Other names a caller may use for a tool -> its name.
            overlay: Rows every new session starts with on top of the base
                (`tasks.runtime.overlay`); hashes and diffs stay against the base.

        Raises:
            ValueError: If the tables do not match the spec, a tool has no body,
                a body has no tool, or a body's signature does not fit its schema.
            OverlayError: If the overlay does not fit the tables.
        """
        if set(base_db.tables) != set(spec.tables):
            raise ValueError(
                f"database tables {sorted(base_db.tables)} do not match the spec's "
                f"{sorted(spec.tables)}"
            )
        tools = {tool.name: tool for tool in spec.tools}
        problems = [
            f"no body for tool '{n}'" for n in tools if n not in implementations
        ]
        problems += [
            f"body '{n}' has no tool" for n in implementations if n not in tools
        ]
        for name, fn in implementations.items():
            if name in tools:
                problems += signature_problems(fn, tools[name])
        if problems:
            raise ValueError(f"environment {spec.name}: " + "; ".join(problems))
        self.spec = spec
        self._base = base_db
        self._start = apply_overlay(spec, base_db, overlay) if overlay else base_db
        self._tools = tools
        self._bodies = dict(implementations)
        self._bindings = {
            name: (bindings or {}).get(name) or ToolBinding.direct(spec, tool)
            for name, tool in tools.items()
        }
        self._aliases = dict(aliases or {})
        self._clock = SimulationClock.from_iso(spec.simulation_time)
        self._sessions: dict[str, Session] = {}
        self._crashes: list[ToolCrash] = []

    @property
    def base(self) -> Database:
        """The base database (read it, never write it: sessions copy it)."""
        return self._base

    @property
    def crashes(self) -> tuple[ToolCrash, ...]:
        """Every crash of a tool body so far, oldest first (for the build report)."""
        return tuple(self._crashes)

    @property
    def session_ids(self) -> tuple[str, ...]:
        """The sessions created so far."""
        return tuple(self._sessions)

    def session(self, session_id: str = DEFAULT_SESSION) -> Session:
        """The session with this id, created on first use from a base copy."""
        session = self._sessions.get(session_id)
        if session is None:
            session = self._fresh_session(session_id)
            self._sessions[session_id] = session
        return session

    def start_session(self, session_id: str, overlay: Overlay) -> None:
        """Create a session from the base data plus `overlay` (instead of the
        environment's own start); only this session ever sees the rows.

        Raises:
            OverlayError: If the overlay does not fit (no session is created).
            ValueError: If the session already exists.
        """
        if session_id in self._sessions:
            raise ValueError(f"session {session_id!r} has already started")
        db = apply_overlay(self.spec, self._start, overlay)
        self._sessions[session_id] = self._fresh_session(session_id, db)

    def reset_session(self, session_id: str = DEFAULT_SESSION) -> None:
        """Forget a session; its next use starts again from the base state."""
        self._sessions.pop(session_id, None)

    def call(
        self,
        session_id: str | None,
        tool: str,
        arguments: Mapping[str, Any] | None = None,
    ) -> ToolResult:
        """Run one tool call in a session.

        Args:
            session_id: The session (created on first use), or None for a
                private session made from the base state for this call alone
                and dropped afterwards (so nothing it does is ever seen again).
            tool: The tool name (or an alias of it).
            arguments: The tool's arguments, as an agent sent them.

        Returns:
            The result, naming the tool by its own name even when called by an
            alias. Errors are results, never exceptions: "Unknown tool: X",
            "invalid arguments for X: ...", the tool's own `ToolError` message, or
            "internal error in tool X: <Type>: <message>" for a crash.
        """
        spec = self._tools.get(self._aliases.get(tool, tool))
        if spec is None:
            return _error(tool, f"Unknown tool: {tool}")
        try:
            parsed = parse_arguments(tool, spec.parameters, arguments or {})
        except ToolError as exc:
            return _error(tool, str(exc))
        session = (
            self._fresh_session(PRIVATE_SESSION)
            if session_id is None
            else self.session(session_id)
        )
        return self._run(session, spec, parsed)

    def state_hash(self, session_id: str | None = DEFAULT_SESSION) -> str:
        """sha256 of the session's database state; None (a private session
        that no call outlives) is the state every new session starts from."""
        if session_id is None:
            return self._start.state_hash()
        return self.session(session_id).db.state_hash()

    def diff(self, session_id: str | None = DEFAULT_SESSION) -> DatabaseDiff:
        """What the session holds beyond the base database: its overlay rows
        as inserted, then its writes (None: a private session, which keeps only
        the environment's overlay)."""
        if session_id is None:
            return self._base.diff(self._start)
        return self._base.diff(self.session(session_id).db)

    def _fresh_session(self, session_id: str, db: Database | None = None) -> Session:
        return Session(
            id=session_id,
            db=self._start.copy() if db is None else db,
            clock=self._clock,
            ids=IdGenerator(self.spec.seed, self.spec.name),
        )

    def _run(
        self, session: Session, spec: ToolSpec, arguments: dict[str, Any]
    ) -> ToolResult:
        transaction = session.db.begin()
        ids = session.ids.state()
        authorized = session.authorized_id
        try:
            env = Env(self._bindings[spec.name], session)
            value = self._bodies[spec.name](env, **arguments)
            content = _json_content(value)
            _check_writes(spec, arguments, transaction.changed)
        except ConfirmationRequired as signal:
            outcome = ToolResult(
                tool=spec.name,
                content={"needs_confirmation": True, "action_preview": signal.preview},
                needs_confirmation=True,
            )
        except ToolError as exc:
            outcome = _error(spec.name, str(exc) or f"{spec.name} failed")
        except Exception as exc:
            outcome = self._crashed(session, spec, arguments, exc)
        except BaseException:
            # SystemExit or KeyboardInterrupt: leave the session consistent.
            transaction.rollback()
            raise
        else:
            if not transaction.changed:
                # Ids are spent only by calls that change state, so previews,
                # reads and failed attempts do not shift later ids.
                session.ids.restore(ids)
            transaction.commit()
            return ToolResult(tool=spec.name, content=content)
        transaction.rollback()
        session.ids.restore(ids)
        session.authorized_id = authorized
        return outcome

    def _crashed(
        self,
        session: Session,
        spec: ToolSpec,
        arguments: dict[str, Any],
        exc: Exception,
    ) -> ToolResult:
        rule = exc.rule if isinstance(exc, ContractViolation) else None
        error_type = CONTRACT_VIOLATION if rule else type(exc).__name__
        self._crashes.append(
            ToolCrash(
                tool=spec.name,
                session_id=session.id,
                arguments=_json_safe(arguments),
                error_type=error_type,
                message=str(exc),
                traceback="".join(traceback.format_exception(exc)),
                rule=rule,
            )
        )
        logger.warning("tool %s crashed: %s: %s", spec.name, error_type, exc)
        return _error(
            spec.name, f"internal error in tool {spec.name}: {error_type}: {exc}"
        )


class ContractViolation(Exception):
    """A tool body broke a runtime rule (non-JSON result, write in a read tool,
    write before confirmation); `rule` names it for whoever classifies crashes."""

    def __init__(self, rule: RuntimeRule, message: str) -> None:
        super().__init__(message)
        self.rule: RuntimeRule = rule


def _error(tool: str, message: str) -> ToolResult:
    return ToolResult(tool=tool, is_error=True, error=message)


def _json_content(value: Any) -> Any:
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ContractViolation(
            "json_result",
            f"the result is not JSON-serialisable ({type(exc).__name__}: {exc})",
        ) from exc


def _check_writes(spec: ToolSpec, arguments: Mapping[str, Any], changed: bool) -> None:
    if not changed:
        return
    if spec.effect == "read":
        raise ContractViolation("read_only", "a read tool changed the database")
    if spec.needs_confirmation and arguments.get(CONFIRM_PARAMETER) is not True:
        raise ContractViolation(
            "confirmation",
            "the database changed without confirm=true; call "
            "env.confirm(confirm, preview) before the first write",
        )


def _json_safe(arguments: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(arguments, default=repr))
