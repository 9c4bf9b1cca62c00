"""s05 tool list formulation: OpenAI tool schemas derived from each blueprint.

Input: s04's `blueprint` artifacts. Output: one `tool_list` per server (exported as
`tool_lists/<Server>.json`) with enums, array item types, and required vs optional
parameters. No model calls.
"""

from __future__ import annotations

from schemas.artifact import Artifact, ItemOutcome, WorkItem
from schemas.blueprint import ServerBlueprint, ToolList
from tasks.core.tool_lists import tool_list
from tasks.items import producer
from tasks.resources import ItemEnv

STEP = "s05"


def formulate_tool_list(
    work: WorkItem, env: ItemEnv, *, blueprint: Artifact[ServerBlueprint]
) -> ItemOutcome:
    """The tool list of one server."""
    artifact = Artifact[ToolList].build(
        kind="tool_list",
        id=blueprint.payload.server_name,
        payload=tool_list(blueprint.payload),
        parents=[blueprint.ref],
        producer=producer(work),
    )
    return ItemOutcome(item_key=work.item_key, artifacts=(artifact,))
