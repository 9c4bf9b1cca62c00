"""Fused (cross-domain) environments: takes the `EnvironmentSpec`s of two or more
built servers that serve the same person (their core entity) and returns the
`FusedEnvironmentSpec` (table namespaces, agent-facing tool names), the one
`EnvironmentSpec` the runtime serves for it (`served_spec`), and the
`Environment` running each member's tool bodies against its own namespace
(`fused_environment`).

Decisions: the core entity is ONE table under its own name (its rows are the
global entity table), so a user authorized through any member's authorization
tool is the user of every member (one binding per session; a later
authorization, through any member, switches it for all). Every other table of
member M, peripheral entity or relationship, is `M.<Table>`: two members'
same-named tables coexist, and a write in one member's namespace never shows in
another's. Tool bodies keep their unqualified table names; `ToolBinding` maps
them. Agent-facing tool names are `M__tool` when that fits 64 characters, else
the first 55 characters of it, `_` and 8 hex digits of the sha256 of `M.tool`
(extended on a clash), so they match `^[a-zA-Z0-9_-]{1,64}$` and stay unique.
Pure: no side effects."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from schemas.environment import EnvironmentSpec, TableSpec, ToolSpec, namespaced_table
from schemas.fused_environment import FusedEnvironmentSpec, ServedSpec, ToolRoute
from schemas.fusion import agent_tool_names as _agent_tool_names
from schemas.fusion import fused_name
from tasks.runtime.database import Database
from tasks.runtime.environment import Environment
from tasks.runtime.overlay import Overlay
from tasks.runtime.session import ToolBinding


def fuse_specs(
    members: Sequence[EnvironmentSpec], *, core_entity: str | None = None
) -> FusedEnvironmentSpec:
    """The fused spec of member servers.

    Args:
        members: The member specs (any order; at least two, distinct).
        core_entity: The combination's core entity (default: the members'
            common one).

    Returns:
        The fused spec, named `fused_name` of the members.

    Raises:
        ValueError: If fewer than two distinct members are given, or the
            members do not all have the core entity as theirs (the message
            names each member's core entity), or their simulation time or seed
            differ.
    """
    by_name = {spec.name: spec for spec in sorted(members, key=lambda s: s.name)}
    if len(by_name) < 2 or len(by_name) != len(members):
        raise ValueError("a fused environment needs at least two distinct servers")
    name = fused_name(list(by_name))
    cores = {server: spec.core_entity for server, spec in by_name.items()}
    listed = ", ".join(f"{server}: {entity}" for server, entity in cores.items())
    if core_entity is None and len(set(cores.values())) > 1:
        raise ValueError(
            f"{name}: the members do not share their core entity ({listed})"
        )
    core = core_entity or next(iter(cores.values()))
    if set(cores.values()) != {core}:
        raise ValueError(
            f"{name}: every member must have the core entity {core} ({listed})"
        )
    if len({(s.simulation_time, s.seed) for s in by_name.values()}) > 1:
        raise ValueError(f"{name}: members differ in simulation time or seed")
    routes = [
        ToolRoute(server=server, tool=tool.name)
        for server, spec in by_name.items()
        for tool in spec.tools
    ]
    return FusedEnvironmentSpec(
        name=name,
        core_entity=core,
        members=by_name,
        tables={
            server: {
                table: table if table == core else namespaced_table(server, table)
                for table in spec.tables
            }
            for server, spec in by_name.items()
        },
        tools=agent_tool_names(routes),
    )


def agent_tool_names(routes: Sequence[ToolRoute]) -> dict[str, ToolRoute]:
    """Unique agent-facing names of member tools, in the given order
    (`schemas.fusion.agent_tool_names`).

    Raises:
        ValueError: If a route repeats.
    """
    named = _agent_tool_names([(r.server, r.tool) for r in routes])
    return {name: ToolRoute(server=s, tool=t) for name, (s, t) in named.items()}


def member_specs(target: ServedSpec) -> dict[str, EnvironmentSpec]:
    """Server -> spec of every server an environment runs (one when not fused)."""
    if isinstance(target, FusedEnvironmentSpec):
        return dict(target.members)
    return {target.name: target}


def served_spec(target: ServedSpec) -> EnvironmentSpec:
    """The spec the runtime serves: a server's own, or for a fused environment
    one whose tables are the namespaced ones and whose tools carry the
    agent-facing names (schemas and descriptions as in their members)."""
    if isinstance(target, EnvironmentSpec):
        return target
    tables: dict[str, TableSpec] = {}
    for server, spec in target.members.items():
        names = target.tables[server]
        for table in spec.tables.values():
            tables[names[table.name]] = table.model_copy(
                update={
                    "name": names[table.name],
                    "foreign_keys": {
                        column: names[referenced]
                        for column, referenced in table.foreign_keys.items()
                    },
                }
            )
    first = next(iter(target.members.values()))
    return EnvironmentSpec(
        name=target.name,
        core_entity=target.core_entity,
        core_key=first.core_key,
        tables=tables,
        tools=tuple(
            _member_tool(target, route).model_copy(update={"name": name})
            for name, route in target.tools.items()
        ),
        simulation_time=first.simulation_time,
        seed=first.seed,
    )


def fused_environment(
    target: FusedEnvironmentSpec,
    base_db: Database,
    bodies: Mapping[str, Mapping[str, Callable[..., Any]]],
    *,
    overlay: Overlay | None = None,
) -> Environment:
    """The runnable fused environment.

    Args:
        target: The fused spec.
        base_db: Its data, loaded for `served_spec(target)`.
        bodies: Member server -> tool name -> tool body.
        overlay: Rows every new session starts with, by fused table name.

    Returns:
        An environment whose tools carry the agent-facing names (their
        `Server.tool` forms are accepted too).

    Raises:
        ValueError: As `Environment` (tables, bodies or signatures that do not
            fit), naming the agent-facing tool; `OverlayError` for an overlay
            that does not fit.
    """
    bindings = tool_bindings(target)
    implementations = {
        name: body
        for name, route in target.tools.items()
        if (body := bodies.get(route.server, {}).get(route.tool)) is not None
    }
    return Environment(
        served_spec(target),
        base_db,
        implementations,
        bindings=bindings,
        aliases=target.aliases,
        overlay=overlay,
    )


def tool_bindings(target: FusedEnvironmentSpec) -> dict[str, ToolBinding]:
    """Agent-facing tool name -> how its body sees the fused environment: its
    member's spec, its member's table names mapped to the namespaces, and an
    authorization tool to name in messages (its member's, else the first)."""
    auth_names = {
        (route.server, route.tool): name for name, route in target.tools.items()
    }
    first_auth = next(
        (
            auth_names[(server, spec.auth_tool)]
            for server, spec in target.members.items()
            if spec.auth_tool
        ),
        None,
    )
    bindings: dict[str, ToolBinding] = {}
    for name, route in target.tools.items():
        member = target.members[route.server]
        own_auth = member.auth_tool
        bindings[name] = ToolBinding(
            spec=member,
            tool=_member_tool(target, route),
            auth_tool=auth_names[(route.server, own_auth)] if own_auth else first_auth,
            tables=target.tables[route.server],
        )
    return bindings


def _member_tool(target: FusedEnvironmentSpec, route: ToolRoute) -> ToolSpec:
    tool = target.members[route.server].tool(route.tool)
    assert tool is not None  # the spec's validator checked every route
    return tool
