"""What later steps load from earlier ones, in the shapes they use.

Input: the artifact store of a run. Output: the entity catalogue and the entities of
s02 (keyed by name), the blueprints of s04 and the passing server builds of s09,
read from those steps' manifests.
Raises the store's `MissingStepOutput` (naming the step to run) when a step has not
run. No other side effects.
"""

from __future__ import annotations

from schemas.artifact import Artifact
from schemas.blueprint import ServerBlueprint
from schemas.entity import Entity, EntityCatalogue
from schemas.server import McpServer
from tasks.store.artifacts import ArtifactStore

ENTITY_STEP = "s02_entity_extraction"
BLUEPRINT_STEP = "s04_blueprint_generation"
SERVER_STEP = "s09_mcp_server_implementation"


def entity_catalogue(store: ArtifactStore) -> Artifact[EntityCatalogue]:
    """The one entity catalogue s02 produced."""
    [catalogue] = store.load_outputs(
        ENTITY_STEP, EntityCatalogue, kind="entity_catalogue"
    )
    return catalogue


def entities_by_name(store: ArtifactStore) -> dict[str, Artifact[Entity]]:
    """Every entity artifact of s02, keyed by entity name, in manifest order."""
    return {a.id: a for a in store.load_outputs(ENTITY_STEP, Entity, kind="entity")}


def blueprints(store: ArtifactStore) -> list[Artifact[ServerBlueprint]]:
    """The final (uniquely named) blueprints of s04, in manifest order."""
    return store.load_outputs(BLUEPRINT_STEP, ServerBlueprint, kind="blueprint")


def servers_by_name(store: ArtifactStore) -> dict[str, Artifact[McpServer]]:
    """Every server build that passed s09, keyed by server name."""
    return {
        s.payload.server_name: s
        for s in store.load_outputs(SERVER_STEP, McpServer, kind="mcp_server")
    }
