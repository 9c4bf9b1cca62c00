"""The executable description of a fused (cross-domain) environment: takes nothing,
defines `FusedEnvironmentSpec` (member specs, the shared core entity, the table
namespaces and the tool-name mapping) and `ToolRoute`. Naming rules: the core
entity is one shared table under its own name; every other table of member M is
`M.<Table>`; the tool an agent sees as `M__tool` (or a shortened form that fits
64 characters) routes to M's `tool`, and the reference tool's `M.tool` form is
accepted as an alias. Data only, no side effects."""

from __future__ import annotations

from pydantic import Field, model_validator

from schemas.base import Frozen, PascalName, ToolName
from schemas.environment import EnvironmentName, EnvironmentSpec, TableName
from schemas.fusion import dotted_tool_name, fused_name, is_fused


class ToolRoute(Frozen):
    """Where a tool an agent calls in a fused environment runs.

    Attributes:
        server: The member server.
        tool: The tool's name in that server (its tool-module function).
    """

    server: PascalName
    tool: ToolName

    @property
    def compat_name(self) -> str:
        """The reference tool's form of the name, `Server.tool`."""
        return dotted_tool_name(self.server, self.tool)


class FusedEnvironmentSpec(Frozen):
    """Everything the runtime needs to serve several servers as one environment.

    Attributes:
        name: The fused name (members sorted, joined by `_`).
        core_entity: The person entity every member serves; one shared table,
            and one authorization binding per session shared by all members.
        members: Member server -> its own spec (unqualified table and tool
            names, as its generated tool module addresses them).
        tables: Member server -> its table name -> the fused table name.
        tools: Agent-facing tool name -> member tool, members in name order
            and each member's tools in its order.
    """

    name: EnvironmentName
    core_entity: PascalName
    members: dict[PascalName, EnvironmentSpec]
    tables: dict[PascalName, dict[PascalName, TableName]]
    tools: dict[ToolName, ToolRoute] = Field(
        description="Agent-facing name -> (server, tool)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> FusedEnvironmentSpec:
        if not is_fused(self.name) or self.name != fused_name(list(self.members)):
            raise ValueError(
                f"{self.name} is not the fused name of its members "
                f"({fused_name(list(self.members))})"
            )
        for server, spec in self.members.items():
            if spec.name != server or spec.core_entity != self.core_entity:
                raise ValueError(
                    f"member {server}: spec of {spec.name} with core entity "
                    f"{spec.core_entity}, not {self.core_entity}"
                )
            if set(self.tables.get(server, {})) != set(spec.tables):
                raise ValueError(f"member {server}: table namespace is incomplete")
        routes = sorted((r.server, r.tool) for r in self.tools.values())
        expected = sorted(
            (server, tool.name)
            for server, spec in self.members.items()
            for tool in spec.tools
        )
        if routes != expected:
            raise ValueError("the tool mapping must route to every member tool once")
        return self

    @property
    def aliases(self) -> dict[str, str]:
        """Compatibility name (`Server.tool`) -> agent-facing name."""
        return {route.compat_name: name for name, route in self.tools.items()}


ServedSpec = EnvironmentSpec | FusedEnvironmentSpec
"""What an environment serves: one server, or several fused."""


class FusedEnvironmentSummary(Frozen):
    """s12's output unit: what a fused environment is made of, without its data
    (exported as `database/outputs/fused/<Fused>.json`).

    Attributes:
        name: The fused name.
        core_entity: The one shared table.
        members: The member servers, sorted.
        tables: Member -> its table name -> the table's name in the fused
            environment (the core entity's own name, else `Member.Table`).
        tools: Agent-facing tool name -> (server, tool).
    """

    name: EnvironmentName
    core_entity: PascalName
    members: tuple[PascalName, ...] = Field(min_length=2)
    tables: dict[PascalName, dict[PascalName, TableName]]
    tools: dict[ToolName, ToolRoute]

    @classmethod
    def of(cls, spec: FusedEnvironmentSpec) -> FusedEnvironmentSummary:
        return cls(
            name=spec.name,
            core_entity=spec.core_entity,
            members=tuple(spec.members),
            tables=spec.tables,
            tools=spec.tools,
        )
