"""s12 database fusion: one fused environment per server combination (no model).

Input: an s10 `server_combination` with its members' s04 `blueprint`s, the s02
`entity_catalogue`, the members' s07 `policy`s (confirmation tools) and s09
`mcp_server`s. Output: one `fused_environment` artifact
(`FusedEnvironmentSummary`, exported as `database/outputs/fused/<Fused>.json`):
the members, the one shared core-entity table, each member's table namespace and
the agent-facing tool names, as `tasks.runtime.fusion.fuse_specs` derives them
from the members' specs. Nothing is copied: the fused environment reads the
members' own data files, each non-core table under its member's namespace, so
two members' same-named tables both stay. Members that cannot be fused (their
specs do not derive, or their core entities differ) make a `validation_failed`
item; a member without a build is a `dependency_failed` item found when
planning. Side effects: none.
"""

from __future__ import annotations

from collections.abc import Sequence

from schemas.artifact import Artifact, FailedItem, ItemOutcome, WorkItem
from schemas.blueprint import ServerBlueprint
from schemas.entity import EntityCatalogue
from schemas.fused_environment import FusedEnvironmentSummary
from schemas.fusion import ServerCombination
from schemas.policy import PolicyDocument
from schemas.server import McpServer
from tasks.items import dependency_failed, producer
from tasks.resources import ItemEnv
from tasks.runtime.fusion import fuse_specs
from tasks.runtime.spec import environment_spec

STEP = "s12"


def unbuilt_members_failure(fused: str, lacking: Sequence[str]) -> FailedItem:
    """The failure of a combination some of whose members have no build."""
    return dependency_failed(
        STEP,
        fused,
        f"{', '.join(lacking)} has no passing s09 build or no s07 policy, so "
        f"{fused} cannot be fused",
    )


def fuse_databases(
    work: WorkItem,
    env: ItemEnv,
    *,
    simulation_time: str,
    seed: int,
    combination: Artifact[ServerCombination],
    blueprints: tuple[Artifact[ServerBlueprint], ...],
    catalogue: Artifact[EntityCatalogue],
    policies: tuple[Artifact[PolicyDocument], ...],
    servers: tuple[Artifact[McpServer], ...],
) -> ItemOutcome:
    """The fused environment of one combination, or why there is none."""
    combo = combination.payload
    confirm = {p.payload.server_name: p.payload.confirm_tools for p in policies}
    try:
        specs = [
            environment_spec(
                b.payload,
                catalogue.payload,
                simulation_time=simulation_time,
                seed=seed,
                confirm_tools=frozenset(confirm.get(b.payload.server_name, ())),
            )
            for b in blueprints
        ]
        fused = fuse_specs(specs, core_entity=combo.core_entity)
    except ValueError as exc:
        return ItemOutcome(
            item_key=work.item_key,
            failure=FailedItem(
                step=STEP,
                item_key=work.item_key,
                reason="validation_failed",
                message=f"{combo.name} cannot be fused: {exc}",
            ),
        )
    artifact = Artifact[FusedEnvironmentSummary].build(
        kind="fused_environment",
        id=combo.name,
        payload=FusedEnvironmentSummary.of(fused),
        parents=[
            p.ref for p in (combination, *blueprints, catalogue, *policies, *servers)
        ],
        producer=producer(work),
    )
    return ItemOutcome(item_key=work.item_key, artifacts=(artifact,))
