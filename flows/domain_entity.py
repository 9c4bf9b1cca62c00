"""Flows of the "Domain & Entity" phase: s01 domain expansion, s02 entity
extraction, s03 entity graph. Each loads its inputs from the store, fans its items
out as cached Prefect tasks and closes the step with exports and a manifest."""

from __future__ import annotations

import time

from prefect import flow

from schemas.artifact import Artifact
from schemas.base import stable_hash
from schemas.domain import Domain, DomainBatch
from schemas.entity import EntityBatch, EntityCatalogue, RelationBatch
from schemas.report import StepReport
from tasks import domain_expansion as s01
from tasks import entity_extraction as s02
from tasks import entity_graph as s03
from tasks import inputs
from tasks.context import lookup
from tasks.core import domains as core_domains
from tasks.core import entities as core_entities
from tasks.core import entity_graph as core_graph
from tasks.core.exports import domain_topics_export
from tasks.fanout import StepTally, run_items
from tasks.items import work_item
from tasks.reporting import finish_step
from tasks.steps import resolve_step
from tasks.store.vectors import VectorIndex


@flow(name="s01-domain-expansion", validate_parameters=False)
def expand_domains(run_token: str) -> StepReport:
    """Grow the seed domains to the target, one expansion call at a time."""
    ctx, info, started = lookup(run_token), resolve_step("s01"), time.perf_counter()
    cfg = ctx.config.steps.s01_domain_expansion
    llm = ctx.step_llm(s01.STEP, cfg)
    tally = StepTally(info.name)
    seeds = tuple(dict.fromkeys(cfg.seed_domains))
    seed_work = work_item("s01", "seeds", params={"seeds": seeds}, module=s01.__name__)
    [seeded] = run_items(ctx, s01.record_seeds, [(seed_work, {"seeds": seeds})], tally)
    if not seeded.ok:
        return finish_step(ctx, info, tally, outputs=[], exports={}, seconds=0.0)
    parent = seeded.artifacts[0].ref
    domains: list[Artifact[Domain]] = list(seeded.artifacts[1:])
    batches: list[Artifact[DomainBatch]] = []
    index = s01.DomainIndex(
        VectorIndex(ctx.layout.lancedb_dir, "domains", ctx.embedder), ctx.embedder
    )
    index.add([d.payload.name for d in domains])
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
        accepted = tuple(sorted(d.payload.name for d in domains))
        work = work_item(
            "s01",
            f"iteration-{len(history):03d}",
            inputs=[stable_hash(list(accepted)), parent.content_hash],
            params=s01.expansion_params(ctx),
            llm=llm,
            prompt_ids=[s01.PROMPT],
            module=s01.__name__,
        )
        kwargs = {
            "iteration": len(history),
            "accepted": accepted,
            "parent": parent,
            "index": index,
        }
        [outcome] = run_items(ctx, s01.expand_domain_batch, [(work, kwargs)], tally)
        if outcome.failure is not None and outcome.failure.blocking:
            break
        new: list[Artifact[Domain]] = []
        if outcome.ok:
            batch: Artifact[DomainBatch] = outcome.artifacts[0]
            new = list(outcome.artifacts[1:])
            parent = batch.ref
            batches.append(batch)
            domains.extend(new)
            index.add([d.payload.name for d in new])
        history.append(len(new))
    final_work = work_item(
        "s01",
        "domain-topics",
        inputs=[d.content_hash for d in (*domains, *batches)],
        params={
            "reason": reason,
            "iterations": len(history),
            "target": cfg.target_domain_number,
        },
        module=s01.__name__,
    )
    finals = (
        run_items(
            ctx,
            s01.finalize_topics,
            [
                (
                    final_work,
                    {
                        "domains": tuple(domains),
                        "batches": tuple(batches),
                        "stop_reason": reason or "iteration_cap",
                        "iterations": len(history),
                    },
                )
            ],
            tally,
        )
        if reason is not None
        else []
    )
    topics = finals[0].artifacts[0] if finals and finals[0].ok else None
    return finish_step(
        ctx,
        info,
        tally,
        outputs=[
            seeded.artifacts[0],
            *batches,
            *domains,
            *([topics] if topics else []),
        ],
        exports={"domain_topics.json": (topics, domain_topics_export(topics.payload))}
        if topics
        else {},
        seconds=time.perf_counter() - started,
        note=f"stop reason: {reason}; {len(domains)} domains after "
        f"{len(history)} expansion call(s)",
        inputs=len(seeds),
        produced=len(domains),
    )


@flow(name="s02-entity-extraction", validate_parameters=False)
def extract_entities(run_token: str) -> StepReport:
    """Extract entities batch by batch, then merge them into one catalogue."""
    ctx, info, started = lookup(run_token), resolve_step("s02"), time.perf_counter()
    cfg = ctx.config.steps.s02_entity_extraction
    llm = ctx.step_llm(s02.STEP, cfg)
    tally = StepTally(info.name)
    domains = sorted(
        ctx.store.load_outputs("s01_domain_expansion", Domain, kind="domain"),
        key=lambda a: a.payload.name,
    )
    size = cfg.domains_per_batch
    chunks = [tuple(domains[i : i + size]) for i in range(0, len(domains), size)]
    calls = [
        (
            work_item(
                "s02",
                f"batch-{i:03d}",
                inputs=chunk,
                params=cfg,
                llm=llm,
                prompt_ids=[s02.PROMPT],
                module=s02.__name__,
            ),
            {"domains": chunk},
        )
        for i, chunk in enumerate(chunks)
    ]
    outcomes = run_items(ctx, s02.extract_entity_batch, calls, tally)
    batches: tuple[Artifact[EntityBatch], ...] = tuple(
        a for o in outcomes for a in o.artifacts
    )
    merge_work = work_item("s02", "merge", inputs=batches, module=s02.__name__)
    [merged] = run_items(
        ctx, s02.merge_entity_batches, [(merge_work, {"batches": batches})], tally
    )
    catalogue: Artifact[EntityCatalogue] | None = (
        merged.artifacts[-1] if merged.ok else None
    )
    return finish_step(
        ctx,
        info,
        tally,
        outputs=[*batches, *merged.artifacts],
        exports={
            "entities.json": (
                catalogue,
                core_entities.entities_export(catalogue.payload),
            )
        }
        if catalogue
        else {},
        seconds=time.perf_counter() - started,
        note=f"{len(catalogue.payload.entities) if catalogue else 0} entities "
        f"from {len(chunks)} batch(es)",
        inputs=len(domains),
        produced=len(catalogue.payload.entities) if catalogue else 0,
    )


@flow(name="s03-entity-graph", validate_parameters=False)
def relate_entities(run_token: str) -> StepReport:
    """Relate each person entity to candidate entities, batch by batch."""
    ctx, info, started = lookup(run_token), resolve_step("s03"), time.perf_counter()
    cfg = ctx.config.steps.s03_entity_graph
    llm = ctx.step_llm(s03.STEP, cfg)
    tally = StepTally(info.name)
    catalogue = inputs.entity_catalogue(ctx.store)
    entities = inputs.entities_by_name(ctx.store)
    calls = []
    for person, batch_index, names in core_graph.person_batches(
        catalogue.payload, cfg.relation_batch_size
    ):
        members = tuple(entities[n] for n in names)
        work = work_item(
            "s03",
            f"{person}-{batch_index}",
            inputs=[entities[person], *members],
            params=cfg,
            llm=llm,
            prompt_ids=[s03.PROMPT],
            module=s03.__name__,
        )
        calls.append(
            (
                work,
                {
                    "person": entities[person],
                    "candidates": members,
                    "batch_index": batch_index,
                },
            )
        )
    outcomes = run_items(ctx, s03.relate_entity_batch, calls, tally)
    batches: tuple[Artifact[RelationBatch], ...] = tuple(
        a for o in outcomes for a in o.artifacts
    )
    graph_work = work_item(
        "s03", "graph", inputs=[catalogue, *batches], module=s03.__name__
    )
    [built] = run_items(
        ctx,
        s03.build_entity_graph,
        [(graph_work, {"catalogue": catalogue, "batches": batches})],
        tally,
    )
    graph = built.artifacts[0] if built.ok else None
    return finish_step(
        ctx,
        info,
        tally,
        outputs=[*batches, *built.artifacts],
        exports={"entity_graph.json": (graph, core_graph.graph_export(graph.payload))}
        if graph
        else {},
        seconds=time.perf_counter() - started,
        note=f"{len(graph.payload.links) if graph else 0} edges "
        f"from {len(calls)} call(s)",
        inputs=len(catalogue.payload.entities),
        produced=len(graph.payload.links) if graph else 0,
    )
