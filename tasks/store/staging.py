"""Copy what serving one generated server reads from a store to a local folder.

Input: an `OutputLayout` (local or at an fsspec URL), a server name and an empty
local folder. Output: that folder laid out as an output directory holding only
`entities.json`, `blueprints.json`, the server's tool module
`mcp_servers/<Server>.py` and the data files it may serve (every entity table,
and the server's own relationship tables). Side effects: reads the store, writes
the local copies. Nothing is executed: the copied tool module still runs only
inside the sandbox that serving starts.
"""

from __future__ import annotations

from pathlib import Path

from tasks.store.location import StorePath
from tasks.store.paths import (
    OutputLayout,
    entity_data_relpath,
    relationship_data_relpath,
)


def stage_server(layout: OutputLayout, server: str, dest: Path) -> list[str]:
    """Copy one server's serving inputs from `layout` to the folder `dest`.

    Missing files are not an error here: serving names whichever it needs.

    Args:
        layout: The store to read.
        server: The server (`MCP_server_name`).
        dest: A local folder; files keep their relative paths below it.

    Returns:
        The relative paths copied, sorted.
    """
    wanted: list[StorePath] = [
        layout.entities,
        layout.blueprints,
        layout.mcp_server(server),
    ]
    for relpath in (entity_data_relpath("x"), relationship_data_relpath(server, "x")):
        folder = layout.export_path(relpath).parent
        wanted += list(folder.glob("*.json"))
    copied: list[str] = []
    for source in wanted:
        try:
            data = source.read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            continue
        relpath = layout.relpath(source)
        target = dest.joinpath(relpath)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        copied.append(relpath)
    return sorted(copied)
