"""Flows of the "Blueprint & Tools" phase: s04 blueprint generation and s05 tool
list formulation."""

from __future__ import annotations

import time

from prefect import flow

from schemas.artifact import Artifact
from schemas.blueprint import OutlineSet, ServerBlueprint
from schemas.entity import EntityGraph
from schemas.report import StepReport
from tasks import blueprint_generation as s04
from tasks import inputs
from tasks import tool_list_formulation as s05
from tasks.context import lookup
from tasks.core.blueprints import blueprints_export
from tasks.core.entity_graph import neighbours
from tasks.core.tool_lists import tool_list_export
from tasks.fanout import StepTally, run_items
from tasks.items import work_item
from tasks.reporting import finish_step
from tasks.steps import resolve_step


@flow(name="s04-blueprint-generation", validate_parameters=False)
def design_blueprints(run_token: str) -> StepReport:
    """Outline servers per person, detail each outline, then name them uniquely."""
    ctx, info, started = lookup(run_token), resolve_step("s04"), time.perf_counter()
    cfg = ctx.config.steps.s04_blueprint_generation
    llm = ctx.step_llm(s04.STEP, cfg)
    tally = StepTally(info.name)
    catalogue = inputs.entity_catalogue(ctx.store)
    entities = inputs.entities_by_name(ctx.store)
    [graph] = ctx.store.load_outputs(
        "s03_entity_graph", EntityGraph, kind="entity_graph"
    )
    outline_calls = []
    lonely: list[str] = []
    for name, person in entities.items():
        if not person.payload.is_person:
            continue
        near = tuple(
            entities[n] for n in neighbours(graph.payload, name) if n in entities
        )
        if not near:
            lonely.append(name)
            continue
        work = work_item(
            "s04",
            f"outline/{name}",
            inputs=[person, graph, *near],
            params=cfg,
            llm=llm,
            prompt_ids=[s04.OUTLINE_PROMPT],
            module=s04.__name__,
        )
        outline_calls.append(
            (work, {"person": person, "candidates": near, "graph": graph.ref})
        )
    outline_sets: list[Artifact[OutlineSet]] = [
        a
        for o in run_items(ctx, s04.outline_blueprints, outline_calls, tally)
        for a in o.artifacts
    ]
    detail_calls = []
    for outlines in outline_sets:
        for outline in outlines.payload.outlines:
            involved = tuple(
                entities[n] for n in (outline.core_entity, *outline.peripheral_entities)
            )
            work = work_item(
                "s04",
                f"{outline.core_entity}-{outline.index}",
                inputs=[outlines, catalogue, *involved],
                params=cfg,
                llm=llm,
                prompt_ids=[s04.DETAIL_PROMPT, s04.FIXUP_PROMPT],
                module=s04.__name__,
            )
            detail_calls.append(
                (
                    work,
                    {
                        "outlines": outlines,
                        "index": outline.index,
                        "entities": involved,
                        "catalogue": catalogue,
                    },
                )
            )
    outcomes = run_items(ctx, s04.detail_blueprint, detail_calls, tally)
    details: tuple[Artifact[ServerBlueprint], ...] = tuple(
        a for o in outcomes for a in o.artifacts
    )
    dropped = tuple(o.item_key for o in outcomes if not o.ok)
    final_work = work_item(
        "s04",
        "finalize",
        inputs=details,
        params={"dropped": dropped},
        module=s04.__name__,
    )
    [final] = run_items(
        ctx,
        s04.finalize_blueprints,
        [(final_work, {"details": details, "dropped": dropped})],
        tally,
    )
    blueprint_set = final.artifacts[-1] if final.ok else None
    note = f"{len(details)} blueprint(s), {len(dropped)} dropped"
    if lonely:
        note += f"; no related entities for: {', '.join(lonely)}"
    return finish_step(
        ctx,
        info,
        tally,
        outputs=[*outline_sets, *details, *final.artifacts],
        exports={
            "blueprints.json": (
                blueprint_set,
                blueprints_export(blueprint_set.payload.blueprints),
            )
        }
        if blueprint_set
        else {},
        seconds=time.perf_counter() - started,
        note=note,
        inputs=len(entities),
        produced=len(blueprint_set.payload.blueprints) if blueprint_set else 0,
    )


@flow(name="s05-tool-list-formulation", validate_parameters=False)
def formulate_tool_lists(run_token: str) -> StepReport:
    """One OpenAI tool list per blueprint."""
    ctx, info, started = lookup(run_token), resolve_step("s05"), time.perf_counter()
    tally = StepTally(info.name)
    blueprints = inputs.blueprints(ctx.store)
    calls = [
        (work_item("s05", b.id, inputs=[b], module=s05.__name__), {"blueprint": b})
        for b in blueprints
    ]
    outcomes = run_items(ctx, s05.formulate_tool_list, calls, tally)
    lists = [a for o in outcomes for a in o.artifacts]
    return finish_step(
        ctx,
        info,
        tally,
        outputs=lists,
        exports={
            f"tool_lists/{a.id}.json": (a, tool_list_export(a.payload)) for a in lists
        },
        seconds=time.perf_counter() - started,
        note=f"{len(lists)} tool list(s)",
        inputs=len(blueprints),
        produced=len(lists),
    )
