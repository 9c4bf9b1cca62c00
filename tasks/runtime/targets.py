"""Which servers an environment name serves and what spec, read from an output
directory's exports: takes the output root and a server name or a fused name
(`DentalAppointments_TreatmentBilling`); reads `blueprints.json`,
`entities.json` and (statically, never importing it) a tool module's
`CONFIRM_TOOLS`; returns the members (each checked to be a built server: a
blueprint and a tool module `mcp_servers/<Server>.py`) and the `EnvironmentSpec`
or `FusedEnvironmentSpec`. Side effects: reads those files."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from pathlib import Path

from schemas.blueprint import ServerBlueprint
from schemas.entity import EntityCatalogue
from schemas.fused_environment import ServedSpec
from schemas.fusion import fused_name, is_fused, member_tool_name, members
from tasks.core.python_source import declared_strings, parse_python
from tasks.runtime.exports import (
    blueprint_from_export,
    catalogue_from_export,
    find_blueprint,
)
from tasks.runtime.fusion import fuse_specs
from tasks.runtime.implementations import (
    CONFIRM_TOOLS_ATTRIBUTE,
    ImplementationError,
)
from tasks.runtime.spec import environment_spec
from tasks.store.paths import OutputLayout, mcp_server_relpath


def tool_module_path(output_dir: Path, server_name: str) -> Path:
    """Where the tool module of a server lives (the output layout knows)."""
    return output_dir / mcp_server_relpath(server_name)


def served_members(output_dir: Path, name: str) -> tuple[str, ...]:
    """The servers an environment name serves: the server itself, or every
    member of a fused name, each checked to be a built server.

    Raises:
        FileNotFoundError: If `blueprints.json` is missing.
        ValueError: For a fused name whose members are not distinct and sorted,
            or that names a server without a blueprint or without a tool module
            (one message naming every such member).
    """
    if not is_fused(name):
        return (name,)
    names = members(name)
    if fused_name(list(set(names))) != name:
        raise ValueError(
            f"{name} is not a fused name: its members must be distinct and in "
            f"name order ({fused_name(list(set(names)))})"
        )
    exported = _read_json(OutputLayout(output_dir).blueprints)
    known = {
        str(b.get("MCP_server_name"))
        for b in (exported if isinstance(exported, list) else [])
        if isinstance(b, dict)
    }
    problems = [
        f"{member} is not a server of {output_dir} (servers: "
        f"{', '.join(sorted(known)) or 'none'})"
        if member not in known
        else f"{member} is not a built server ({mcp_server_relpath(member)} does "
        "not exist)"
        for member in names
        if member not in known or not tool_module_path(output_dir, member).is_file()
    ]
    if problems:
        raise ValueError(f"fused environment {name}: " + "; ".join(problems))
    return names


def served_target(
    output_dir: Path,
    name: str,
    *,
    simulation_time: str,
    seed: int,
    confirm_tools: Callable[[str], Collection[str]],
) -> ServedSpec:
    """The spec of a server, or the fused spec of a fused name, from the exports.

    Args:
        output_dir: The pipeline's output root.
        name: The server or fused name.
        simulation_time: The fixed "now", ISO 8601.
        seed: Seed of id generation.
        confirm_tools: Server -> its write tools that need confirmation.

    Raises:
        FileNotFoundError: If `blueprints.json` or `entities.json` is missing.
        ValueError: If a server is unknown or its blueprint invalid, or the
            members of a fused name do not share their core entity.
    """
    specs = []
    for member in members(name) if is_fused(name) else (name,):
        blueprint, catalogue = read_exports(output_dir, member)
        specs.append(
            environment_spec(
                blueprint,
                catalogue,
                simulation_time=simulation_time,
                seed=seed,
                confirm_tools=frozenset(confirm_tools(member)),
            )
        )
    return fuse_specs(specs) if is_fused(name) else specs[0]


def read_exports(
    output_dir: Path, server_name: str
) -> tuple[ServerBlueprint, EntityCatalogue]:
    """A server's blueprint and the entity catalogue, from the exports.

    Raises:
        FileNotFoundError: If `blueprints.json` or `entities.json` is missing.
        ValueError: If the server is unknown or its blueprint invalid.
    """
    layout = OutputLayout(output_dir)
    entities = _read_json(layout.entities)
    blueprints = _read_json(layout.blueprints)
    if not isinstance(entities, dict) or not isinstance(blueprints, list):
        raise ValueError(
            f"{layout.entities} must hold an object and {layout.blueprints} an array"
        )
    catalogue = catalogue_from_export(entities)
    exported = find_blueprint(blueprints, server_name)
    return blueprint_from_export(exported, catalogue), catalogue


def named_confirm_tools(
    environment: str, server: str, names: Collection[str]
) -> set[str]:
    """The tools of `server` among confirmation tools given by name: plain names
    for a single server, `Server.tool` or `Server__tool` in a fused environment.

    Raises:
        ValueError: If a fused environment's name does not spell a member tool.
    """
    if not is_fused(environment):
        return set(names)
    routes = [(name, member_tool_name(name)) for name in names]
    unknown = [name for name, route in routes if route is None]
    if unknown:
        raise ValueError(
            f"confirmation tools {unknown} of {environment} must be named "
            "Server.tool or Server__tool"
        )
    return {route[1] for _, route in routes if route and route[0] == server}


def declared_confirm_tools(path: Path) -> tuple[str, ...]:
    if not path.is_file():
        raise ImplementationError(str(path), ["the module file does not exist"])
    try:
        tree = parse_python(path.read_text(encoding="utf-8"))
        return declared_strings(tree, CONFIRM_TOOLS_ATTRIBUTE) or ()
    except (SyntaxError, ValueError) as exc:
        raise ImplementationError(str(path), [str(exc)]) from exc


def _read_json(path: Path) -> object:
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    return json.loads(path.read_text(encoding="utf-8"))
