"""Flows of the "Blueprint & Tools" phase: s04 blueprint generation and s05 tool
list formulation."""

from __future__ import annotations

from prefect import flow

from schemas.artifact import Artifact
from schemas.blueprint import OutlineSet, ServerBlueprint
from schemas.entity import EntityGraph
from schemas.report import StepReport
from schemas.run import RunRef
from tasks import blueprint_generation as s04
from tasks import inputs
from tasks import tool_list_formulation as s05
from tasks.core.blueprints import blueprints_export
from tasks.core.entity_graph import neighbours
from tasks.core.server_tables import entity_names
from tasks.core.tool_lists import tool_list_export
from tasks.step_run import StepRun
from tasks.store.paths import BLUEPRINTS_RELPATH, tool_list_relpath


@flow(name="s04-blueprint-generation", validate_parameters=False)
def design_blueprints(run: RunRef) -> StepReport:
    """Outline servers per person, detail each outline, then name them uniquely."""
    step = StepRun("s04", run)
    cfg = step.config.steps.s04_blueprint_generation
    llm = step.llm(cfg)
    catalogue = inputs.entity_catalogue(step.store)
    entities = inputs.entities_by_name(step.store)
    [graph] = step.store.load_outputs(
        "s03_entity_graph", EntityGraph, kind="entity_graph"
    )
    outline_works = []
    lonely: list[str] = []
    for name, person in entities.items():
        if not person.payload.is_person:
            continue
        near = [entities[n] for n in neighbours(graph.payload, name) if n in entities]
        if not near:
            lonely.append(name)
            continue
        outline_works.append(
            step.item(
                f"outline/{name}",
                s04.outline_blueprints,
                inputs={"person": person, "candidates": near, "graph": graph},
                params={"cfg": cfg},
                llm=llm,
                prompts=[s04.OUTLINE_PROMPT],
            )
        )
    outline_sets: list[Artifact[OutlineSet]] = [
        a for o in step.run_items(outline_works) for a in o.artifacts
    ]
    detail_works = [
        step.item(
            f"{outline.core_entity}-{outline.index}",
            s04.detail_blueprint,
            inputs={
                "outlines": outlines,
                "catalogue": catalogue,
                "entities": [entities[n] for n in entity_names(outline)],
            },
            params={"cfg": cfg, "index": outline.index},
            llm=llm,
            prompts=[s04.DETAIL_PROMPT, s04.FIXUP_PROMPT],
        )
        for outlines in outline_sets
        for outline in outlines.payload.outlines
    ]
    outcomes = step.run_items(detail_works)
    details: tuple[Artifact[ServerBlueprint], ...] = tuple(
        a for o in outcomes for a in o.artifacts
    )
    dropped = tuple(o.item_key for o in outcomes if not o.ok)
    [final] = step.run_items(
        [
            step.item(
                "finalize",
                s04.finalize_blueprints,
                inputs={"details": details},
                params={"dropped": dropped},
            )
        ]
    )
    blueprint_set = final.artifacts[-1] if final.ok else None
    note = f"{len(details)} blueprint(s), {len(dropped)} dropped"
    if lonely:
        note += f"; no related entities for: {', '.join(lonely)}"
    return step.finish(
        outputs=[*outline_sets, *details, *final.artifacts],
        exports={
            BLUEPRINTS_RELPATH: (
                blueprint_set,
                blueprints_export(blueprint_set.payload.blueprints),
            )
        }
        if blueprint_set
        else {},
        note=note,
        inputs=len(entities),
        produced=len(blueprint_set.payload.blueprints) if blueprint_set else 0,
    )


@flow(name="s05-tool-list-formulation", validate_parameters=False)
def formulate_tool_lists(run: RunRef) -> StepReport:
    """One OpenAI tool list per blueprint."""
    step = StepRun("s05", run)
    blueprints = inputs.blueprints(step.store)
    outcomes = step.run_items(
        [
            step.item(b.id, s05.formulate_tool_list, inputs={"blueprint": b})
            for b in blueprints
        ]
    )
    lists = [a for o in outcomes for a in o.artifacts]
    return step.finish(
        outputs=lists,
        exports={
            tool_list_relpath(a.id): (a, tool_list_export(a.payload)) for a in lists
        },
        note=f"{len(lists)} tool list(s)",
        inputs=len(blueprints),
        produced=len(lists),
    )
