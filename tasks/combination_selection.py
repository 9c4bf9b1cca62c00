"""s10 combination selection: groups of passing servers that serve the same user,
chosen by shared entities and embedding similarity (no model call).

Input: s09's `mcp_server` artifacts (the passing servers), their s04 `blueprint`s
and s03's `entity_graph`. Output: one `combination_selection` artifact (every
candidate with its score parts, status and reason; exported as
`cross_domain_combinations/_candidates.json`) and one `server_combination` per
chosen combination (id = fused name; together exported as
`cross_domain_combinations/_combinations.json`). The rules live in
`tasks.core.combinations`. Side effects: the servers' embeddings are written to
the run's LanceDB table `servers` (rebuilt on every run of the item).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from schemas.artifact import Artifact, ItemOutcome, WorkItem
from schemas.blueprint import ServerBlueprint
from schemas.combination import CombinationSelection
from schemas.config import CombinationConfig
from schemas.entity import EntityGraph
from schemas.fusion import ServerCombination
from schemas.server import McpServer
from tasks.core import combinations as core
from tasks.items import producer
from tasks.resources import ItemEnv
from tasks.store.paths import CANDIDATES_RELPATH, COMBINATIONS_RELPATH
from tasks.store.vectors import cosine_matrix

STEP = "s10"
VECTOR_TABLE = "servers"


class EmbedderMismatch(RuntimeError):
    """The process's embedder is not the one the item was planned with."""


def _similarity(
    env: ItemEnv,
    servers: tuple[Artifact[McpServer], ...],
    blueprints: dict[str, ServerBlueprint],
) -> core.PairSimilarity:
    """Embed every server into LanceDB; their pairwise cosine, by name."""
    names = [s.id for s in servers]
    texts = [core.server_text(blueprints[s.id], s.payload.tools) for s in servers]
    vectors = env.embedder.embed(texts)
    index = env.vectors(VECTOR_TABLE)
    index.reset()
    index.add(names, texts, vectors)
    matrix = cosine_matrix(vectors, vectors)
    at = {name: i for i, name in enumerate(names)}
    return lambda a, b: float(matrix[at[a], at[b]])


def select_combinations(
    work: WorkItem,
    env: ItemEnv,
    *,
    cfg: CombinationConfig,
    seed: int,
    embedder: str,
    servers: tuple[Artifact[McpServer], ...],
    blueprints: tuple[Artifact[ServerBlueprint], ...],
    graph: Artifact[EntityGraph],
) -> ItemOutcome:
    """Score every candidate group of the passing servers; choose `combinations`."""
    if env.embedder.name != embedder:
        raise EmbedderMismatch(
            f"planned with embedder {embedder}, this process has {env.embedder.name}"
        )
    by_name = {b.payload.server_name: b.payload for b in blueprints}
    blueprint_refs = {b.payload.server_name: b.ref for b in blueprints}
    similarity = _similarity(env, servers, by_name)
    candidates = core.choose_combinations(
        [by_name[s.id] for s in servers], graph.payload, similarity, cfg, seed=seed
    )
    made = producer(work, model_id=embedder, seed=seed)
    selection = Artifact[CombinationSelection].build(
        kind="combination_selection",
        id="combination_selection",
        payload=CombinationSelection(
            seed=seed,
            embedder=embedder,
            settings=cfg,
            servers=tuple(sorted(by_name)),
            candidates=candidates,
        ),
        parents=[graph.ref, *(s.ref for s in servers), *(b.ref for b in blueprints)],
        producer=made,
    )
    members = {s.id: (s.ref, blueprint_refs[s.id]) for s in servers}
    chosen = [
        Artifact[ServerCombination].build(
            kind="server_combination",
            id=c.fused_name,
            payload=core.as_combination(c),
            parents=[selection.ref, *(r for n in c.servers for r in members[n])],
            producer=made,
        )
        for c in selection.payload.chosen
    ]
    return ItemOutcome(item_key=work.item_key, artifacts=(selection, *chosen))


def split_outcome(
    outcome: ItemOutcome,
) -> tuple[Artifact[CombinationSelection] | None, list[Artifact[ServerCombination]]]:
    """The selection (None: the item failed) and the chosen combinations."""
    selection = next(
        (a for a in outcome.artifacts if a.kind == "combination_selection"), None
    )
    chosen = [a for a in outcome.artifacts if a.kind == "server_combination"]
    return selection, chosen


def selection_exports(
    selection: Artifact[CombinationSelection],
    blueprints: Sequence[Artifact[ServerBlueprint]],
) -> dict[str, tuple[Artifact, Any]]:
    """`_combinations.json` (reference format plus `score`) and `_candidates.json`."""
    members = {b.payload.server_name: b.payload for b in blueprints}
    picked = selection.payload
    return {
        COMBINATIONS_RELPATH: (
            selection,
            core.combinations_export(picked.chosen, members),
        ),
        CANDIDATES_RELPATH: (selection, core.candidates_export(picked)),
    }
