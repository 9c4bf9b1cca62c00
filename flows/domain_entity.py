"""Flows of the "Domain & Entity" phase: s01 domain expansion, s02 entity
extraction, s03 entity graph. Each loads its inputs from the store, fans its items
out as cached Prefect tasks and closes the step with exports and a manifest."""

from __future__ import annotations

from prefect import flow

from schemas.artifact import Artifact
from schemas.domain import Domain, DomainBatch
from schemas.entity import EntityBatch, EntityCatalogue, RelationBatch
from schemas.report import StepReport
from schemas.run import RunRef
from tasks import domain_expansion as s01
from tasks import entity_extraction as s02
from tasks import entity_graph as s03
from tasks import inputs
from tasks.core import domains as core_domains
from tasks.core import entities as core_entities
from tasks.core import entity_graph as core_graph
from tasks.core.exports import domain_topics_export
from tasks.step_run import StepRun
from tasks.store.paths import (
    DOMAIN_TOPICS_RELPATH,
    ENTITIES_RELPATH,
    ENTITY_GRAPH_RELPATH,
)


@flow(name="s01-domain-expansion", validate_parameters=False)
def expand_domains(run: RunRef) -> StepReport:
    """Grow the seed domains to the target, one expansion call at a time."""
    step = StepRun("s01", run)
    cfg = step.config.steps.s01_domain_expansion
    llm = step.llm(cfg)
    seeds = tuple(dict.fromkeys(cfg.seed_domains))
    [seeded] = step.run_items(
        [step.item("seeds", s01.record_seeds, params={"seeds": seeds})]
    )
    if not seeded.ok:
        return step.finish(outputs=[], exports={})
    parent = seeded.artifacts[0].ref
    domains: list[Artifact[Domain]] = list(seeded.artifacts[1:])
    batches: list[Artifact[DomainBatch]] = []
    history: list[int] = []
    while (
        reason := core_domains.stop_reason(
            count=len(domains),
            target=cfg.target_domain_number,
            iteration=len(history),
            max_iterations=cfg.max_iterations,
            accepted_history=history,
        )
    ) is None:
        work = step.item(
            f"iteration-{len(history):03d}",
            s01.expand_domain_batch,
            inputs={"parent": parent},
            params={
                **s01.expansion_params(step.config),
                "iteration": len(history),
                "accepted": sorted(d.payload.name for d in domains),
            },
            llm=llm,
            prompts=[s01.PROMPT],
        )
        [outcome] = step.run_items([work])
        if outcome.failure is not None and outcome.failure.blocking:
            break
        new: list[Artifact[Domain]] = []
        if outcome.ok:
            batch: Artifact[DomainBatch] = outcome.artifacts[0]
            new = list(outcome.artifacts[1:])
            parent = batch.ref
            batches.append(batch)
            domains.extend(new)
        history.append(len(new))
    finals = (
        step.run_items(
            [
                step.item(
                    "domain-topics",
                    s01.finalize_topics,
                    inputs={"domains": domains, "batches": batches},
                    params={
                        "stop_reason": reason,
                        "iterations": len(history),
                        "target": cfg.target_domain_number,
                    },
                )
            ]
        )
        if reason is not None
        else []
    )
    topics = finals[0].artifacts[0] if finals and finals[0].ok else None
    return step.finish(
        outputs=[
            seeded.artifacts[0],
            *batches,
            *domains,
            *([topics] if topics else []),
        ],
        exports={DOMAIN_TOPICS_RELPATH: (topics, domain_topics_export(topics.payload))}
        if topics
        else {},
        note=f"stop reason: {reason}; {len(domains)} domains after "
        f"{len(history)} expansion call(s)",
        inputs=len(seeds),
        produced=len(domains),
    )


@flow(name="s02-entity-extraction", validate_parameters=False)
def extract_entities(run: RunRef) -> StepReport:
    """Extract entities batch by batch, then merge them into one catalogue."""
    step = StepRun("s02", run)
    cfg = step.config.steps.s02_entity_extraction
    llm = step.llm(cfg)
    domains = sorted(
        step.store.load_outputs("s01_domain_expansion", Domain, kind="domain"),
        key=lambda a: a.payload.name,
    )
    size = cfg.domains_per_batch
    chunks = [tuple(domains[i : i + size]) for i in range(0, len(domains), size)]
    outcomes = step.run_items(
        [
            step.item(
                f"batch-{i:03d}",
                s02.extract_entity_batch,
                inputs={"domains": chunk},
                params={"cfg": cfg},
                llm=llm,
                prompts=[s02.PROMPT],
            )
            for i, chunk in enumerate(chunks)
        ]
    )
    batches: tuple[Artifact[EntityBatch], ...] = tuple(
        a for o in outcomes for a in o.artifacts
    )
    [merged] = step.run_items(
        [step.item("merge", s02.merge_entity_batches, inputs={"batches": batches})]
    )
    catalogue: Artifact[EntityCatalogue] | None = (
        merged.artifacts[-1] if merged.ok else None
    )
    return step.finish(
        outputs=[*batches, *merged.artifacts],
        exports={
            ENTITIES_RELPATH: (
                catalogue,
                core_entities.entities_export(catalogue.payload),
            )
        }
        if catalogue
        else {},
        note=f"{len(catalogue.payload.entities) if catalogue else 0} entities "
        f"from {len(chunks)} batch(es)",
        inputs=len(domains),
        produced=len(catalogue.payload.entities) if catalogue else 0,
    )


@flow(name="s03-entity-graph", validate_parameters=False)
def relate_entities(run: RunRef) -> StepReport:
    """Relate each person entity to candidate entities, batch by batch."""
    step = StepRun("s03", run)
    cfg = step.config.steps.s03_entity_graph
    llm = step.llm(cfg)
    catalogue = inputs.entity_catalogue(step.store)
    entities = inputs.entities_by_name(step.store)
    works = [
        step.item(
            f"{person}-{batch_index}",
            s03.relate_entity_batch,
            inputs={
                "person": entities[person],
                "candidates": [entities[n] for n in names],
            },
            params={"batch_index": batch_index},
            llm=llm,
            prompts=[s03.PROMPT],
        )
        for person, batch_index, names in core_graph.person_batches(
            catalogue.payload, cfg.relation_batch_size
        )
    ]
    outcomes = step.run_items(works)
    batches: tuple[Artifact[RelationBatch], ...] = tuple(
        a for o in outcomes for a in o.artifacts
    )
    [built] = step.run_items(
        [
            step.item(
                "graph",
                s03.build_entity_graph,
                inputs={"catalogue": catalogue, "batches": batches},
            )
        ]
    )
    graph = built.artifacts[0] if built.ok else None
    return step.finish(
        outputs=[*batches, *built.artifacts],
        exports={ENTITY_GRAPH_RELPATH: (graph, core_graph.graph_export(graph.payload))}
        if graph
        else {},
        note=f"{len(graph.payload.links) if graph else 0} edges "
        f"from {len(works)} call(s)",
        inputs=len(catalogue.payload.entities),
        produced=len(graph.payload.links) if graph else 0,
    )
