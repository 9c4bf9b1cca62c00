"""s03 entity graph: which entities each person entity interacts with.

Inputs: the `entity` artifacts and `entity_catalogue` of s02. Outputs: one
`relation_batch` per (person, batch of candidates) call and the `entity_graph`
(exported as `entity_graph.json`). Returned names must come from the offered batch;
self-loops are impossible.
"""

from __future__ import annotations

from schemas.artifact import Artifact, ItemOutcome, WorkItem
from schemas.entity import (
    Entity,
    EntityCatalogue,
    EntityGraph,
    RelationBatch,
    RelationBatchDraft,
)
from tasks.core import entity_graph as core
from tasks.items import invalid_output, producer
from tasks.llm.errors import InvalidModelOutput
from tasks.resources import ItemEnv

STEP = "s03"
PROMPT = "s03/relate_entities"


def relate_entity_batch(
    work: WorkItem,
    env: ItemEnv,
    *,
    person: Artifact[Entity],
    candidates: tuple[Artifact[Entity], ...],
    batch_index: int,
) -> ItemOutcome:
    """Ask which candidates one person relates to."""
    names = [c.payload.name for c in candidates]
    try:
        answer = env.llm.ask(
            PROMPT,
            RelationBatchDraft,
            item_key=work.item_key,
            check=lambda d: core.check_relations(
                d, person=person.payload.name, candidates=names
            ),
            person=person.payload,
            candidates=[c.payload for c in candidates],
        )
    except InvalidModelOutput as exc:
        return invalid_output(work, exc)
    batch = core.relation_batch(
        answer.value,
        person=person.payload.name,
        batch_index=batch_index,
        candidates=names,
    )
    artifact = Artifact[RelationBatch].build(
        kind="relation_batch",
        id=work.item_key,
        payload=batch,
        parents=[person.ref, *(c.ref for c in candidates)],
        producer=producer(work, prompt=answer.prompt, model_id=answer.model_id),
    )
    return ItemOutcome(item_key=work.item_key, artifacts=(artifact,))


def build_entity_graph(
    work: WorkItem,
    env: ItemEnv,
    *,
    catalogue: Artifact[EntityCatalogue],
    batches: tuple[Artifact[RelationBatch], ...],
) -> ItemOutcome:
    """Assemble the star-shaped graph from every relation batch."""
    graph = core.build_graph(catalogue.payload, [b.payload for b in batches])
    artifact = Artifact[EntityGraph].build(
        kind="entity_graph",
        id="entity_graph",
        payload=graph,
        parents=[catalogue.ref, *(b.ref for b in batches)],
        producer=producer(work),
    )
    return ItemOutcome(item_key=work.item_key, artifacts=(artifact,))
