"""Materialising an environment from artifacts, so a step that runs one reads
only its work item.

Input: the blueprints, entity catalogue, data tables and built servers (s04, s02,
s06, s09 artifacts) of the servers an environment serves. Output: a private
folder in the output layout (`blueprints.json`, `entities.json`, the data files,
the tool modules) that the runtime opens like any output directory, single or
fused. Side effects: writes that folder only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from schemas.artifact import Artifact
from schemas.blueprint import ServerBlueprint
from schemas.database import DataTable
from schemas.entity import EntityCatalogue
from schemas.server import McpServer
from tasks.core.blueprints import blueprints_export
from tasks.core.entities import entities_export
from tasks.store.paths import (
    OutputLayout,
    entity_data_relpath,
    mcp_server_relpath,
    relationship_data_relpath,
)


def materialize_environment(
    folder: Path,
    *,
    blueprints: Sequence[Artifact[ServerBlueprint]],
    catalogue: Artifact[EntityCatalogue],
    tables: Sequence[Artifact[DataTable]],
    servers: Sequence[Artifact[McpServer]],
) -> Path:
    """Write the exports the runtime reads for these servers under `folder`.

    Returns:
        `folder`, to open with `tasks.runtime.serve.open_environment`.
    """
    layout = OutputLayout(folder)
    _write(layout.blueprints, blueprints_export([b.payload for b in blueprints]))
    _write(layout.entities, entities_export(catalogue.payload))
    for table in tables:
        data = table.payload
        relpath = (
            entity_data_relpath(data.table)
            if data.kind == "entity"
            else relationship_data_relpath(data.server or "", data.table)
        )
        _write(folder / relpath, list(data.rows))
    for server in servers:
        path = folder / mcp_server_relpath(server.payload.server_name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(server.payload.module_code, encoding="utf-8")
    return folder


def _write(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
