"""s04 blueprint generation: outlines, details, fix-up and deterministic repair.

Inputs: s02's entities and catalogue, s03's entity graph. Outputs: one
`blueprint_outline_set` per person entity, one `blueprint_detail` per outline that
validates, the final `blueprint`s (unique server names) and `blueprint_set`
(exported as `blueprints.json`). Every blueprint is validated; problems are re-asked
through instructor with the exact sentences, then given one fix-up call; a blueprint
that still fails is dropped with its reasons recorded, and the step goes on.
"""

from __future__ import annotations

from schemas.artifact import Artifact, ArtifactRef, ItemOutcome, WorkItem
from schemas.blueprint import (
    BlueprintDraft,
    BlueprintOutline,
    BlueprintSet,
    OutlineSet,
    OutlineSetDraft,
    ServerBlueprint,
)
from schemas.config import BlueprintConfig
from schemas.entity import Entity, EntityCatalogue
from tasks.core import blueprints as core
from tasks.core.naming import entity_key
from tasks.items import invalid_output, producer
from tasks.llm.bound import Answer, StepLLM
from tasks.llm.errors import InvalidModelOutput
from tasks.resources import ItemEnv

STEP = "s04"
OUTLINE_PROMPT = "s04/outline_blueprints"
DETAIL_PROMPT = "s04/detail_blueprint"
FIXUP_PROMPT = "s04/fixup_blueprint"


def outline_blueprints(
    work: WorkItem,
    env: ItemEnv,
    *,
    cfg: BlueprintConfig,
    person: Artifact[Entity],
    candidates: tuple[Artifact[Entity], ...],
    graph: ArtifactRef,
) -> ItemOutcome:
    """Distinct server outlines for one person entity."""
    core_name = person.payload.name
    names = [c.payload.name for c in candidates]
    try:
        answer = env.llm.ask(
            OUTLINE_PROMPT,
            OutlineSetDraft,
            item_key=work.item_key,
            check=lambda d: core.check_outlines(
                d, core=core_name, candidates=names, limits=cfg
            ),
            core=person.payload,
            candidates=[c.payload for c in candidates],
            n=core.outline_target(len(names), cfg),
            max_peripherals=cfg.max_peripheral_entities,
            max_relationships=cfg.max_relationships_per_blueprint,
        )
    except InvalidModelOutput as exc:
        return invalid_output(work, exc)
    artifact = Artifact[OutlineSet].build(
        kind="blueprint_outline_set",
        id=work.item_key,
        payload=core.canonical_outlines(answer.value, core=core_name, candidates=names),
        parents=[person.ref, graph, *(c.ref for c in candidates)],
        producer=producer(work, prompt=answer.prompt, model_id=answer.model_id),
    )
    return ItemOutcome(item_key=work.item_key, artifacts=(artifact,))


def _design(
    llm: StepLLM,
    cfg: BlueprintConfig,
    work: WorkItem,
    outline: BlueprintOutline,
    entities: tuple[Artifact[Entity], ...],
    catalogue: EntityCatalogue,
) -> Answer[BlueprintDraft]:
    """The detail call with its re-asks, then (if still invalid) one fix-up call.

    Raises:
        InvalidModelOutput: the last failure, chained to the detail call's one.
    """
    check = core.blueprint_checker(outline=outline, catalogue=catalogue, limits=cfg)
    limits = {
        "max_relationships": cfg.max_relationships_per_blueprint,
        "min_functions": cfg.min_functions_per_blueprint,
    }
    try:
        return llm.ask(
            DETAIL_PROMPT,
            BlueprintDraft,
            item_key=f"detail/{work.item_key}",
            check=check,
            max_retries=1 + cfg.max_feedback_attempts,
            outline=outline,
            entities=[e.payload for e in entities],
            core_key=entity_key(outline.core_entity),
            **limits,
        )
    except InvalidModelOutput as first:
        if not cfg.fixup or first.last_answer is None:
            raise
        try:
            return llm.ask(
                FIXUP_PROMPT,
                BlueprintDraft,
                item_key=f"fixup/{work.item_key}",
                check=check,
                max_retries=1,
                outline=outline,
                entity_names=sorted(catalogue.entities),
                problems=first.problems,
                blueprint_json=first.last_answer,
                **limits,
            )
        except InvalidModelOutput as second:
            raise second from first


def detail_blueprint(
    work: WorkItem,
    env: ItemEnv,
    *,
    cfg: BlueprintConfig,
    outlines: Artifact[OutlineSet],
    index: int,
    entities: tuple[Artifact[Entity], ...],
    catalogue: Artifact[EntityCatalogue],
) -> ItemOutcome:
    """A full blueprint for one outline, validated and deterministically repaired."""
    outline = outlines.payload.outlines[index]
    known = catalogue.payload
    try:
        answer = _design(env.llm, cfg, work, outline, entities, known)
    except InvalidModelOutput as exc:
        return invalid_output(work, exc)
    draft = core.normalize_blueprint(answer.value, outline=outline, catalogue=known)
    artifact = Artifact[ServerBlueprint].build(
        kind="blueprint_detail",
        id=work.item_key,
        payload=core.canonical_blueprint(draft, outline=outline, catalogue=known),
        parents=[outlines.ref, *(e.ref for e in entities)],
        producer=producer(work, prompt=answer.prompt, model_id=answer.model_id),
    )
    return ItemOutcome(item_key=work.item_key, artifacts=(artifact,))


def finalize_blueprints(
    work: WorkItem,
    env: ItemEnv,
    *,
    details: tuple[Artifact[ServerBlueprint], ...],
    dropped: tuple[str, ...],
) -> ItemOutcome:
    """Unique server names in outline order, then the blueprint set."""
    named = core.assign_unique_server_names([d.payload for d in details])
    made = producer(work)
    finals = [
        Artifact[ServerBlueprint].build(
            kind="blueprint",
            id=blueprint.server_name,
            payload=blueprint,
            parents=[detail.ref],
            producer=made,
        )
        for detail, blueprint in zip(details, named, strict=True)
    ]
    whole = Artifact[BlueprintSet].build(
        kind="blueprint_set",
        id="blueprints",
        payload=BlueprintSet(blueprints=tuple(named), dropped=dropped),
        parents=[f.ref for f in finals],
        producer=made,
    )
    return ItemOutcome(item_key=work.item_key, artifacts=(*finals, whole))
