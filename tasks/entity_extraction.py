"""s02 entity extraction: an entity catalogue built from batches of domains.

Inputs: the `domain` artifacts of s01. Outputs: one `entity_batch` per batch of
domains (each entity with a real primary key and the domains it came from), one
`entity` per merged entity, and `entity_catalogue` (exported as `entities.json`).
Batching keeps each call small, so 300 domains never need one giant answer.
"""

from __future__ import annotations

from schemas.artifact import Artifact, ArtifactRef, ItemOutcome, WorkItem
from schemas.config import EntityExtractionConfig
from schemas.domain import Domain
from schemas.entity import Entity, EntityBatch, EntityBatchDraft, EntityCatalogue
from tasks.core import entities as core
from tasks.items import invalid_output, producer
from tasks.llm.errors import InvalidModelOutput
from tasks.resources import ItemEnv

STEP = "s02"
PROMPT = "s02/extract_entities"


def extract_entity_batch(
    work: WorkItem,
    env: ItemEnv,
    *,
    cfg: EntityExtractionConfig,
    domains: tuple[Artifact[Domain], ...],
) -> ItemOutcome:
    """Entities of one batch of domains, validated and canonicalised."""
    names = [d.payload.name for d in domains]
    try:
        answer = env.llm.ask(
            PROMPT,
            EntityBatchDraft,
            item_key=work.item_key,
            check=lambda d: core.check_entity_batch(d, domains=names),
            domains=names,
            per_domain=cfg.entities_per_domain,
        )
    except InvalidModelOutput as exc:
        return invalid_output(work, exc)
    batch = EntityBatch(
        domains=tuple(names),
        subfields=tuple(answer.value.subfields),
        entities=tuple(core.canonical_entities(answer.value, domains=names)),
    )
    artifact = Artifact[EntityBatch].build(
        kind="entity_batch",
        id=work.item_key,
        payload=batch,
        parents=[d.ref for d in domains],
        producer=producer(work, prompt=answer.prompt, model_id=answer.model_id),
    )
    return ItemOutcome(item_key=work.item_key, artifacts=(artifact,))


def merge_entity_batches(
    work: WorkItem, env: ItemEnv, *, batches: tuple[Artifact[EntityBatch], ...]
) -> ItemOutcome:
    """One entity per name across batches; each parented by the batches naming it."""
    catalogue = core.merge_batches([b.payload for b in batches])
    made = producer(work)
    naming: dict[str, list[ArtifactRef]] = {}  # one pass, not entities x batches
    for batch in batches:
        for name in dict.fromkeys(e.name for e in batch.payload.entities):
            naming.setdefault(name, []).append(batch.ref)
    entities = [
        Artifact[Entity].build(
            kind="entity",
            id=name,
            payload=entity,
            parents=naming.get(name, []),
            producer=made,
        )
        for name, entity in catalogue.entities.items()
    ]
    whole = Artifact[EntityCatalogue].build(
        kind="entity_catalogue",
        id="entities",
        payload=catalogue,
        parents=[e.ref for e in entities],
        producer=made,
    )
    return ItemOutcome(item_key=work.item_key, artifacts=(*entities, whole))
