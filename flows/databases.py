"""Flow of step s06, database generation: entity tables, then constraints and
relationship tables, each table with a summary checked against its data.

Input: s02's entities and s04's blueprints (from the store). Output: the step's
`StepReport`. Side effects: artifacts and the step manifest in the store, and the
reference layout: `database/outputs/...` (data), `database/scripts/...`,
`database/constraints/...` and `database_summary/...` (markdown).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prefect import flow

from schemas.artifact import Artifact, WorkItem
from schemas.blueprint import ServerBlueprint
from schemas.database import DataTable, TableConstraints, TableSummary
from schemas.entity import Entity
from schemas.report import StepReport
from schemas.run import RunRef
from tasks import database_generation as s06
from tasks import inputs
from tasks.core.constraints import constraints_export
from tasks.core.data_contract import pointed_entities, used_entities
from tasks.core.data_summary import summary_markdown
from tasks.core.server_tables import entity_names
from tasks.step_run import StepRun
from tasks.store.paths import (
    constraints_relpath,
    entity_data_relpath,
    entity_script_relpath,
    entity_summary_relpath,
    relationship_data_relpath,
    relationship_script_relpath,
    relationship_summary_relpath,
)
from tasks.task_args import TaskFunction


class _Items:
    """Work items of this step and running them; artifacts come back by id."""

    def __init__(self, step: StepRun) -> None:
        self.step = step
        self.coding = step.llm(step.config.steps.s06_database_generation)
        self.analysis = step.llm(s06.analysis_model(step.config))
        self.params = s06.step_params(step.config)

    def work(
        self,
        key: str,
        task: TaskFunction,
        inputs: dict[str, Any],
        values: dict[str, Any] | None = None,
    ) -> WorkItem:
        """A table item (coding role, both script prompts) or an analysis item."""
        table = task in (s06.generate_entity_table, s06.generate_relationship_table)
        if table:
            prompts: tuple[str, ...] = s06.TABLE_PROMPTS
        elif task is s06.identify_constraints:
            prompts = (s06.CONSTRAINTS_PROMPT,)
        else:
            prompts = (s06.SUMMARY_PROMPT,)
        return self.step.item(
            key,
            task,
            inputs=inputs,
            params={**self.params, **(values or {})},
            llm=self.coding if table else self.analysis,
            prompts=prompts,
        )

    def run(self, works: Sequence[WorkItem]) -> dict[str, Artifact]:
        outcomes = self.step.run_items(works)
        return {a.id: a for o in outcomes for a in o.artifacts}

    def blocked(self, key: str, missing: Sequence[str]) -> None:
        self.step.fail(s06.dependency_failure(key, missing))


@flow(name="s06-database-generation", validate_parameters=False)
def generate_databases(run: RunRef) -> StepReport:
    """Entity tables, constraints, relationship tables and their summaries."""
    step = StepRun("s06", run)
    items = _Items(step)
    blueprints = inputs.blueprints(step.store)
    entities = inputs.entities_by_name(step.store)
    tables = items.run(_entity_works(items, blueprints, entities))
    summaries = items.run(
        [
            items.work(
                f"summary/entity/{n}",
                s06.summarize_entity_table,
                {"table": t, "entity": entities[n]},
            )
            for n, t in tables.items()
        ]
    )
    plans = _relationship_plans(items, blueprints, entities, tables)
    constraints = items.run(
        [
            items.work(
                f"constraints/{rid}",
                s06.identify_constraints,
                _plan_inputs(p),
                {"index": p["index"]},
            )
            for rid, p in plans.items()
        ]
    )
    relations = items.run(_relationship_works(items, plans, constraints))
    summaries |= items.run(
        [
            items.work(
                f"summary/relationship/{rid}",
                s06.summarize_relationship_table,
                {
                    "table": t,
                    "constraints": constraints[rid],
                    "blueprint": plans[rid]["blueprint"],
                    "entities": plans[rid]["entities"],
                },
                {"index": plans[rid]["index"]},
            )
            for rid, t in relations.items()
        ]
    )
    every_table = {**tables, **relations}
    return step.finish(
        outputs=[*every_table.values(), *constraints.values(), *summaries.values()],
        exports={
            **_json_exports(every_table, constraints),
            **_text_exports(every_table, summaries, constraints),
        },
        note=f"{len(tables)} entity and {len(relations)} relationship table(s)",
        inputs=len(blueprints),
        produced=len(every_table),
    )


def _entity_works(
    items: _Items,
    blueprints: Sequence[Artifact[ServerBlueprint]],
    entities: dict[str, Artifact[Entity]],
) -> list[WorkItem]:
    """One item per entity used by a blueprint; its parents include those users."""
    return [
        items.work(
            s06.entity_key(name),
            s06.generate_entity_table,
            {
                "entity": entities[name],
                "blueprints": [
                    b for b in blueprints if name in entity_names(b.payload)
                ],
            },
        )
        for name in used_entities(b.payload for b in blueprints)
    ]


def _relationship_works(
    items: _Items, plans: dict[str, dict[str, Any]], constraints: dict[str, Artifact]
) -> list[WorkItem]:
    """One item per planned relationship whose constraints were identified."""
    works: list[WorkItem] = []
    for rid, plan in plans.items():
        key, found = f"relationship/{rid}", constraints.get(rid)
        if found is None:
            items.blocked(key, [f"constraints/{rid}"])
            continue
        works.append(
            items.work(
                key,
                s06.generate_relationship_table,
                {**_plan_inputs(plan), "constraints": found},
                {"index": plan["index"]},
            )
        )
    return works


def _plan_inputs(plan: dict[str, Any]) -> dict[str, Any]:
    """The input artifacts of a relationship plan."""
    return {k: plan[k] for k in ("blueprint", "entities", "tables")}


def _relationship_plans(
    items: _Items,
    blueprints: Sequence[Artifact[ServerBlueprint]],
    entities: dict[str, Artifact[Entity]],
    tables: dict[str, Artifact],
) -> dict[str, dict[str, Any]]:
    """Inputs of each (server, relationship) whose entity tables all exist."""
    plans: dict[str, dict[str, Any]] = {}
    for blueprint in blueprints:
        scope = {n: entities[n].payload for n in entity_names(blueprint.payload)}
        for index, relationship in enumerate(blueprint.payload.relationships):
            rid = f"{blueprint.id}/{relationship.name}"
            names = pointed_entities(relationship, scope)
            missing = [s06.entity_key(n) for n in names if n not in tables]
            if missing:
                items.blocked(f"relationship/{rid}", missing)
                continue
            plans[rid] = {
                "blueprint": blueprint,
                "index": index,
                "entities": tuple(entities[n] for n in names),
                "tables": tuple(tables[n] for n in names),
            }
    return plans


def _data_relpath(table: DataTable) -> str:
    if table.server is None:
        return entity_data_relpath(table.table)
    return relationship_data_relpath(table.server, table.table)


def _json_exports(
    tables: dict[str, Artifact], constraints: dict[str, Artifact]
) -> dict[str, tuple[Artifact, Any]]:
    exports: dict[str, tuple[Artifact, Any]] = {
        _data_relpath(a.payload): (a, list(a.payload.rows)) for a in tables.values()
    }
    for a in constraints.values():
        payload: TableConstraints = a.payload
        exports[constraints_relpath(payload.server, payload.table)] = (
            a,
            constraints_export(payload),
        )
    return exports


def _text_exports(
    tables: dict[str, Artifact],
    summaries: dict[str, Artifact],
    constraints: dict[str, Artifact],
) -> dict[str, tuple[Artifact, str]]:
    """Scripts (exported with their table) and summaries (with their summary)."""
    texts: dict[str, tuple[Artifact, str]] = {}
    for tid, artifact in tables.items():
        table: DataTable = artifact.payload
        if table.server is None:
            texts[entity_script_relpath(table.table)] = (artifact, table.script)
        else:
            script_path = relationship_script_relpath(table.server, table.table)
            texts[script_path] = (artifact, table.script)
        if tid not in summaries:
            continue
        summary: TableSummary = summaries[tid].payload
        rules = constraints[tid].payload if tid in constraints else None
        markdown = summary_markdown(
            summary, primary_key=table.primary_key, constraints=rules
        )
        if table.server is None:
            relpath = entity_summary_relpath(table.table)
        else:
            relpath = relationship_summary_relpath(table.server, table.table)
        texts[relpath] = (summaries[tid], markdown)
    return texts
