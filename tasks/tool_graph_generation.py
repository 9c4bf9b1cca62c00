"""s08 tool graph generation: a dependency DAG, preconditions and trajectories.

Input: s04's `blueprint` and s07's `policy` of one server. Output: one `tool_graph`
artifact (`ToolGraph`, exported as `tool_graphs/<Server>.json`): the model's graph,
with every name checked against the blueprint (unknown names are re-asked), then
repaired deterministically into a DAG whose only source is the authorization tool
(each repair recorded); the model's hard preconditions, checked the same way; and
the trajectories enumerated between the configured lengths and filtered by those
preconditions. A server whose graph or preconditions never validate is a failed
item; a server that s07 gave no policy is a `dependency_failed` item and gets no
model call. Side effects: model calls only.
"""

from __future__ import annotations

from typing import Any

from schemas.artifact import Artifact, FailedItem, ItemOutcome, WorkItem
from schemas.blueprint import ServerBlueprint
from schemas.config import ToolGraphConfig
from schemas.policy import PolicyDocument
from schemas.tool_graph import PreconditionsDraft, ToolGraph, ToolGraphDraft
from tasks.core.tool_graph import build_tool_graph
from tasks.core.tool_graph_checks import (
    authorization_tool,
    graph_checker,
    preconditions_checker,
)
from tasks.items import dependency_failed, invalid_output, producer
from tasks.llm.bound import Answer, StepLLM
from tasks.llm.errors import InvalidModelOutput
from tasks.resources import ItemEnv

STEP = "s08"
GRAPH_PROMPT = "s08/draft_tool_graph"
PRECONDITIONS_PROMPT = "s08/extract_preconditions"


def missing_policy_failure(server: str) -> FailedItem:
    """The failure of a server that s07 gave no policy (no model call).

    Args:
        server: The server name (the item key).

    Returns:
        A `dependency_failed` item; a re-run of s07 may fix it, not one of s08.
    """
    return dependency_failed(
        STEP, server, f"s07 produced no policy for {server}, so it gets no tool graph"
    )


def _drafts(
    llm: StepLLM, work: WorkItem, server: ServerBlueprint, context: dict[str, Any]
) -> tuple[Answer[ToolGraphDraft], Answer[PreconditionsDraft]]:
    """The graph call, then the preconditions call, each re-asked on problems.

    Raises:
        InvalidModelOutput: an answer still failed its check after every re-ask.
    """
    graph = llm.ask(
        GRAPH_PROMPT,
        ToolGraphDraft,
        item_key=f"graph/{work.item_key}",
        check=graph_checker(server),
        **context,
    )
    preconditions = llm.ask(
        PRECONDITIONS_PROMPT,
        PreconditionsDraft,
        item_key=f"preconditions/{work.item_key}",
        check=preconditions_checker(server),
        **context,
    )
    return graph, preconditions


def derive_tool_graph(
    work: WorkItem,
    env: ItemEnv,
    *,
    cfg: ToolGraphConfig,
    blueprint: Artifact[ServerBlueprint],
    policy: Artifact[PolicyDocument],
) -> ItemOutcome:
    """The repaired tool graph of one server with its trajectories."""
    server = blueprint.payload
    try:
        root = authorization_tool(server)
    except ValueError as exc:
        failure = FailedItem(
            step=STEP,
            item_key=work.item_key,
            reason="validation_failed",
            message=str(exc),
        )
        return ItemOutcome(item_key=work.item_key, failure=failure)
    context = {"blueprint": server, "root": root, "policy": policy.payload.markdown}
    try:
        graph, preconditions = _drafts(env.llm, work, server, context)
    except InvalidModelOutput as exc:
        return invalid_output(work, exc)
    artifact = Artifact[ToolGraph].build(
        kind="tool_graph",
        id=server.server_name,
        payload=build_tool_graph(
            graph.value,
            preconditions.value,
            blueprint=server,
            min_length=cfg.min_trajectory_length,
            max_length=cfg.max_trajectory_length,
            max_paths=cfg.max_trajectories_per_server,
        ),
        parents=[blueprint.ref, policy.ref],
        producer=producer(work, prompt=graph.prompt, model_id=graph.model_id),
    )
    return ItemOutcome(item_key=work.item_key, artifacts=(artifact,))
