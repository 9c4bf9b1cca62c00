"""Per-session state and the API tool bodies are written against. Inputs: an
`EnvironmentSpec`, a session's private `Database` copy, the simulation time and the
seed. Output: `SimulationClock` (a fixed "now", never the wall clock),
`IdGenerator` (seeded uuid4-formatted ids), `Session`, `ToolBinding` (what a tool
body was written against: its server's spec, and in a fused environment the
session tables its table names stand for), and `Env`, the object every tool body
receives as its first argument. Side effects: `Env` writes only to its session's
tables and authorization binding."""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from schemas.environment import EnvironmentSpec, ToolSpec
from tasks.runtime.database import Database
from tasks.runtime.table import Table, ToolError


class ConfirmationRequired(Exception):
    """Raised by `Env.confirm` to stop an unconfirmed write; carries the preview.

    The runtime turns it into `{"needs_confirmation": true, "action_preview": ...}`
    and undoes anything the call wrote. Tool bodies never catch it.
    """

    def __init__(self, preview: str) -> None:
        super().__init__(preview)
        self.preview = preview


@dataclass(frozen=True)
class SimulationClock:
    """The fixed current time of an environment.

    Attributes:
        current: The simulation time (timezone-aware when the spec's is).
    """

    current: datetime

    @classmethod
    def from_iso(cls, text: str) -> SimulationClock:
        """Parse an ISO 8601 simulation time.

        Raises:
            ValueError: If the text is not ISO 8601.
        """
        return cls(datetime.fromisoformat(text))

    def now(self) -> datetime:
        """The simulation time."""
        return self.current

    def today(self) -> date:
        """The simulation date."""
        return self.current.date()


class IdGenerator:
    """Deterministic uuid4-formatted ids from a seeded `random.Random`."""

    def __init__(self, seed: int, stream: str) -> None:
        """Start a stream of ids.

        Args:
            seed: The environment seed.
            stream: What distinguishes this stream (the runtime uses the
                environment name, so every session of one environment produces
                the same ids for the same sequence of writes).
        """
        self._rng = random.Random(f"{seed}:{stream}")

    def new(self) -> str:
        """The next id, e.g. "6f0c5d1e-...-4...-..."."""
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def state(self) -> object:
        """An opaque snapshot of the stream position."""
        return self._rng.getstate()

    def restore(self, state: Any) -> None:
        """Return to a position taken with `state()`."""
        self._rng.setstate(state)


@dataclass
class Session:
    """One conversation's isolated view of an environment.

    Attributes:
        id: The session id: a name a client or episode chose, an id the MCP
            exposure assigned to one client, or "private" for a session that
            lives for a single call.
        db: A private copy of the base database.
        clock: The simulation clock.
        ids: The id stream.
        authorized_id: The core entity id bound by authorization, if any.
    """

    id: str
    db: Database
    clock: SimulationClock
    ids: IdGenerator
    authorized_id: str | int | None = None


@dataclass(frozen=True)
class ToolBinding:
    """How a tool body sees its environment.

    Attributes:
        spec: The spec of the server the body was written for.
        tool: The body's tool, as that server names it.
        auth_tool: The tool an agent calls to authorize (named as the agent
            sees it), for "not authorized" messages.
        tables: The body's table names -> the session's table names (a fused
            environment's namespaces); None when they are the same.
    """

    spec: EnvironmentSpec
    tool: ToolSpec
    auth_tool: str | None
    tables: Mapping[str, str] | None = None

    @classmethod
    def direct(cls, spec: EnvironmentSpec, tool: ToolSpec) -> ToolBinding:
        """The binding of a tool served by its own server."""
        return cls(spec=spec, tool=tool, auth_tool=spec.auth_tool)

    def table_name(self, name: str) -> str:
        """The session table a body's table name stands for.

        Raises:
            KeyError: If the body's server has no such table.
        """
        if self.tables is None:
            return name
        try:
            return self.tables[name]
        except KeyError:
            raise KeyError(
                f"no table {name!r} in {self.spec.name}; its tables are "
                f"{', '.join(self.tables)}"
            ) from None


class Env:
    """What a tool body receives first: tables, clock, ids, auth, confirmation.

    Example:
        def cancel_appointment(env: Env, appointment_id: str) -> dict:
            patient = env.require_auth()
            appointment = env.table("Appointment").get(appointment_id)
            ...
            return env.table("Appointment").update(appointment_id, status="cancelled")
    """

    def __init__(self, binding: ToolBinding, session: Session) -> None:
        self._binding = binding
        self._spec = binding.spec
        self._session = session
        self._tool = binding.tool

    @property
    def tool_name(self) -> str:
        """The tool being called (as its server names it)."""
        return self._tool.name

    @property
    def session_id(self) -> str:
        """The session the call runs in."""
        return self._session.id

    @property
    def user_id(self) -> str | int | None:
        """The authorized core entity id, or None before authorization."""
        return self._session.authorized_id

    def table(self, name: str) -> Table:
        """The session's table called `name` (an entity or relationship name).

        Raises:
            KeyError: If there is no such table (a bug in the tool body).
        """
        return self._session.db.table(self._binding.table_name(name))

    def now(self) -> datetime:
        """The simulation time; never the wall clock."""
        return self._session.clock.now()

    def today(self) -> date:
        """The simulation date."""
        return self._session.clock.today()

    def new_id(self) -> str:
        """A fresh uuid4-formatted id (deterministic for a given call sequence)."""
        return self._session.ids.new()

    def authorize(self, core_id: Any) -> dict[str, Any]:
        """Bind the core entity with this id to the session.

        Args:
            core_id: The core entity's primary id.

        Returns:
            `{"authorized": True, <core key>: <id>}`.

        Raises:
            ToolError: If no core row has this id.
        """
        row = self.table(self._spec.core_entity).get(core_id)
        self._session.authorized_id = row[self._spec.core_key]
        return {"authorized": True, self._spec.core_key: row[self._spec.core_key]}

    def require_auth(self) -> dict[str, Any]:
        """The authorized core row (a copy).

        Raises:
            ToolError: "not authorized: call <auth tool> first" before
                authorization.
        """
        if self._session.authorized_id is None:
            auth_tool = self._binding.auth_tool
            how = (
                f"call {auth_tool} first"
                if auth_tool
                else "this server has no authorization tool"
            )
            raise ToolError(f"not authorized: {how}")
        return self.table(self._spec.core_entity).get(self._session.authorized_id)

    def confirm(self, confirm: bool, preview: str) -> None:
        """Stop here unless the user confirmed (for tools that need confirmation).

        Call it after validating the request and before the first write. For a
        tool that needs confirmation, `confirm=False` ends the call with
        `{"needs_confirmation": true, "action_preview": preview}` and no state
        change; `confirm=True` (or a tool that needs no confirmation) returns.

        Args:
            confirm: The tool's `confirm` argument.
            preview: What the write would do, in words the user can check.

        Raises:
            TypeError: If `preview` is not a string (a bug in the tool body).
        """
        if not isinstance(preview, str):
            raise TypeError(f"confirm(): preview must be a str, not {type(preview)}")
        if self._tool.needs_confirmation and confirm is not True:
            raise ConfirmationRequired(preview)
