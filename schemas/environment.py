"""Environment runtime payloads: the executable description of one MCP server
(`EnvironmentSpec` with its `TableSpec`s and `ToolSpec`s), what a tool call returns
(`ToolResult`), how generated code crashed (`ToolCrash`), what loading data found
(`DataIssue`), how a session's database differs from the base one
(`DatabaseDiff`) and a session's state as a call reports it (`SessionState`).
Inputs: plain values; output: frozen models; no side effects."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from schemas.base import NAME_MAX_LENGTH, Frozen, PascalName, ToolName
from schemas.fusion import is_fused

CONFIRM_PARAMETER = "confirm"
"""The boolean parameter a confirmation tool takes: the call acts only when true."""
CONTRACT_VIOLATION = "ContractViolation"
"""The `ToolCrash.error_type` of a tool body that broke a runtime rule."""
RuntimeRule = Literal["json_result", "read_only", "confirmation"]
"""The runtime rules a tool body can break: a JSON result, no write in a read tool,
no write before confirmation."""
TableKind = Literal["entity", "relationship"]
NAMESPACE_SEPARATOR = "."
"""Joins a member server and its table in a fused environment's table names."""
TableName = Annotated[
    str,
    StringConstraints(
        pattern=r"^([A-Z][A-Za-z0-9]*\.)?[A-Z][A-Za-z0-9]*$",
        max_length=2 * NAME_MAX_LENGTH + 1,
    ),
]
"""A table name: an entity or relationship name (`Appointment`), or in a fused
environment one namespaced by its member server (`DentalAppointments.Appointment`)."""
EnvironmentName = Annotated[
    str, StringConstraints(pattern=r"^[A-Z][A-Za-z0-9]*(_[A-Z][A-Za-z0-9]*)*$")
]
"""A server name, or a fused name (member server names joined by `_`)."""
DataIssueKind = Literal[
    "missing_file",
    "invalid_json",
    "not_an_array",
    "not_an_object",
    "missing_primary_key",
    "invalid_primary_key",
    "duplicate_primary_key",
    "dangling_foreign_key",
    "unknown_column",
    "missing_column",
    "unknown_table",
    "invalid_value",
]


class TableSpec(Frozen):
    """One table of an environment database, keyed by its primary key.

    Attributes:
        name: Entity name (`Clinic`) or relationship name (`Appointment`),
            namespaced by a member server in a fused environment.
        primary_key: The column whose value identifies a row.
        kind: Entity tables are shared by every server; relationship tables are
            private to one server. (A fused environment shares only its core
            entity's table; each member has its own copy of the others.)
        columns: Every column, the primary key included, in blueprint order.
        foreign_keys: Column -> name of the table whose primary key it holds.
    """

    name: TableName
    primary_key: str
    kind: TableKind
    columns: tuple[str, ...]
    foreign_keys: dict[str, TableName] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _key_and_foreign_keys_are_columns(self) -> TableSpec:
        if self.primary_key not in self.columns:
            raise ValueError(
                f"table {self.name}: primary key '{self.primary_key}' is not a column"
            )
        if len(set(self.columns)) != len(self.columns):
            raise ValueError(f"table {self.name} repeats a column")
        unknown = sorted(set(self.foreign_keys) - set(self.columns))
        if unknown:
            raise ValueError(
                f"table {self.name}: foreign keys on unknown columns {unknown}"
            )
        return self


class ToolSpec(Frozen):
    """One tool as agents see it.

    Attributes:
        name: The tool (and tool-body function) name.
        description: What the tool does, shown to agents.
        effect: "read" tools never change the database; "write" tools may.
        is_authorization: True for the tool that binds the core entity.
        needs_confirmation: True when a call must carry `confirm: true` to act;
            without it the call returns a preview and changes nothing.
        parameters: The JSON schema of the arguments (an object schema with
            `properties`, `required` and `additionalProperties: false`).
    """

    name: ToolName
    description: str
    effect: Literal["read", "write"]
    is_authorization: bool = False
    needs_confirmation: bool = False
    parameters: dict[str, Any]

    @model_validator(mode="after")
    def _object_schema_and_confirmable_write(self) -> ToolSpec:
        if self.parameters.get("type") != "object" or not isinstance(
            self.parameters.get("properties"), dict
        ):
            raise ValueError(
                f"tool {self.name}: parameters must be an object schema with properties"
            )
        if self.needs_confirmation:
            if self.effect != "write":
                raise ValueError(
                    f"tool {self.name}: only write tools can need confirmation"
                )
            confirm = self.parameters["properties"].get(CONFIRM_PARAMETER, {})
            if confirm.get("type") != "boolean":
                raise ValueError(
                    f"tool {self.name} needs confirmation but has no boolean "
                    f"'{CONFIRM_PARAMETER}' parameter"
                )
        return self


class EnvironmentSpec(Frozen):
    """Everything the runtime needs to know about one server besides its data.

    Attributes:
        name: The server name (`DentalAppointments`); relationship tables live in
            `database/outputs/relationships/<name>/`. A fused environment's
            name joins its members' (`DentalAppointments_TreatmentBilling`) and
            its tables other than the core entity's are namespaced
            (`DentalAppointments.Appointment`, read from that member's data).
        core_entity: The entity the user is (the authorization target).
        core_key: The core entity's primary key.
        tables: Table name -> spec.
        tools: The tools in blueprint order.
        simulation_time: The fixed "now" of the environment, ISO 8601.
        seed: Seed of per-session id generation.
    """

    name: EnvironmentName
    core_entity: PascalName
    core_key: str
    tables: dict[TableName, TableSpec]
    tools: tuple[ToolSpec, ...]
    simulation_time: str
    seed: int

    @field_validator("simulation_time")
    @classmethod
    def _iso_time(cls, value: str) -> str:
        try:
            datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"simulation_time {value!r} is not ISO 8601") from exc
        return value

    @model_validator(mode="after")
    def _consistent(self) -> EnvironmentSpec:
        core = self.tables.get(self.core_entity)
        if core is None or core.kind != "entity":
            raise ValueError(f"core entity {self.core_entity} has no entity table")
        if core.primary_key != self.core_key:
            raise ValueError(
                f"core key '{self.core_key}' is not the primary key of "
                f"{self.core_entity} ('{core.primary_key}')"
            )
        for name, table in self.tables.items():
            if name != table.name:
                raise ValueError(f"table {table.name} is filed under {name}")
            for column, target in table.foreign_keys.items():
                if target not in self.tables:
                    raise ValueError(
                        f"table {name}: column '{column}' references unknown table "
                        f"{target}"
                    )
        names = [tool.name for tool in self.tools]
        if len(set(names)) != len(names):
            raise ValueError("tool names repeat")
        # A fused environment keeps each member's authorization tool; they all
        # bind the one shared core entity.
        if len(self.auth_tools) > 1 and not is_fused(self.name):
            raise ValueError("more than one authorization tool")
        return self

    @property
    def auth_tool(self) -> str | None:
        """Name of the (first) authorization tool, if the server has one."""
        return next(iter(self.auth_tools), None)

    @property
    def auth_tools(self) -> tuple[str, ...]:
        """Every authorization tool (one per member in a fused environment)."""
        return tuple(t.name for t in self.tools if t.is_authorization)

    def tool(self, name: str) -> ToolSpec | None:
        """The tool called `name`, or None."""
        return next((t for t in self.tools if t.name == name), None)


class DataIssue(Frozen):
    """One problem found while loading or checking environment data.

    Attributes:
        table: The table concerned.
        kind: What is wrong.
        message: A sentence naming the file, row and column where known.
        row: The row's primary id (or `#<index>` when it has none).
        column: The column concerned, if any.
    """

    table: str
    kind: DataIssueKind
    message: str
    row: str | None = None
    column: str | None = None


class TableDiff(Frozen):
    """Row-level changes of one table between two database states.

    Attributes:
        inserted: Primary ids present only in the later state, sorted.
        updated: Primary id -> column -> (old value, new value).
        deleted: Primary ids present only in the earlier state, sorted.
    """

    inserted: tuple[str, ...] = ()
    updated: dict[str, dict[str, tuple[Any, Any]]] = Field(default_factory=dict)
    deleted: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """True when nothing changed."""
        return not (self.inserted or self.updated or self.deleted)


class DatabaseDiff(Frozen):
    """Changes between two database states; only changed tables are listed."""

    tables: dict[str, TableDiff] = Field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """True when no table changed."""
        return all(diff.empty for diff in self.tables.values())


StateField = Literal["state_hash", "diff"]
"""What a call can be asked to report about its session afterwards."""


class SessionState(Frozen):
    """A session's state right after a call, as far as the caller asked for it
    (both empty for a call in a private session, which leaves no state).

    Attributes:
        state_hash: sha256 of the session's database state.
        diff: What the session holds beyond the base data.
    """

    state_hash: str | None = None
    diff: DatabaseDiff | None = None


class ToolResult(Frozen):
    """The outcome of one tool call, transport-independent.

    Attributes:
        tool: The tool called.
        is_error: True for a tool error (bad id, policy rejection, invalid
            arguments, unknown tool) or a crash of the tool body.
        content: The JSON value the tool returned (None for errors).
        error: The human-readable error message (None on success).
        needs_confirmation: True when the call only previewed a write that needs
            `confirm: true`; `content` then holds the preview.
    """

    tool: str
    is_error: bool = False
    content: Any = None
    error: str | None = None
    needs_confirmation: bool = False

    @model_validator(mode="after")
    def _error_iff_message(self) -> ToolResult:
        if self.is_error != (self.error is not None):
            raise ValueError("an error result needs a message, and only it")
        return self


class ToolCrash(Frozen):
    """A tool body that raised something other than a tool error (a code bug).

    Attributes:
        tool: The tool whose body crashed.
        session_id: The session it ran in.
        arguments: The (validated) arguments of the call.
        error_type: The exception class name, or `CONTRACT_VIOLATION` when the
            body broke a runtime rule (e.g. returned a non-JSON value).
        message: The exception message.
        traceback: The formatted traceback, for the build report.
    """

    tool: str
    session_id: str
    arguments: dict[str, Any]
    error_type: str
    message: str
    traceback: str = ""
    rule: RuntimeRule | None = None
    """The runtime rule the body broke; None for any other crash."""


def namespaced_table(server: str, table: str) -> str:
    """The name of a member server's table in a fused environment."""
    return f"{server}{NAMESPACE_SEPARATOR}{table}"


def table_origin(environment: str, table: str) -> tuple[str, str]:
    """The server whose data holds a table, and the table's own name there:
    `("DentalAppointments", "Appointment")` for `DentalAppointments.Appointment`,
    `(environment, table)` for a table without a namespace."""
    server, _, name = table.rpartition(NAMESPACE_SEPARATOR)
    return (server or environment), name
