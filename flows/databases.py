"""Flow of step s06, database generation: entity tables, then constraints and
relationship tables, each table with a summary checked against its data.

Input: s02's entities and s04's blueprints (from the store). Output: the step's
`StepReport`. Side effects: artifacts and the step manifest in the store, and the
reference layout: `database/outputs/...` (data), `database/scripts/...`,
`database/constraints/...` and `database_summary/...` (markdown).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from prefect import Task, flow

from schemas.artifact import Artifact, WorkItem
from schemas.blueprint import ServerBlueprint
from schemas.database import DataTable, TableConstraints, TableSummary
from schemas.entity import Entity
from schemas.report import StepReport
from tasks import database_generation as s06
from tasks import inputs
from tasks.context import StepContext, lookup
from tasks.core.constraints import constraints_export
from tasks.core.data_contract import pointed_entities, used_entities
from tasks.core.data_summary import summary_markdown
from tasks.fanout import StepTally, run_items
from tasks.items import work_item
from tasks.reporting import finish_step
from tasks.steps import resolve_step
from tasks.store.paths import (
    constraints_relpath,
    entity_data_relpath,
    entity_script_relpath,
    entity_summary_relpath,
    relationship_data_relpath,
    relationship_script_relpath,
    relationship_summary_relpath,
)

Calls = list[tuple[WorkItem, dict[str, Any]]]


class _Items:
    """Work items of this step and running them; artifacts come back by id."""

    def __init__(self, ctx: StepContext, tally: StepTally) -> None:
        cfg = ctx.config.steps.s06_database_generation
        self.ctx, self.tally = ctx, tally
        self.coding = ctx.step_llm(s06.STEP, cfg)
        self.analysis = s06.analysis_llm(ctx)
        self.params = s06.step_params(ctx)

    def work(self, key: str, inputs: Sequence[Artifact], prompt: str) -> WorkItem:
        """A table item (coding role, both script prompts) or an analysis item."""
        table = prompt == s06.WRITE_PROMPT
        return work_item(
            s06.STEP,
            key,
            inputs=inputs,
            params=self.params,
            llm=self.coding if table else self.analysis,
            prompt_ids=s06.TABLE_PROMPTS if table else (prompt,),
            module=s06.__name__,
        )

    def run(self, step_task: Task, calls: Calls) -> dict[str, Artifact]:
        outcomes = run_items(self.ctx, step_task, calls, self.tally)
        return {a.id: a for o in outcomes for a in o.artifacts}

    def blocked(self, key: str, missing: Sequence[str]) -> None:
        self.tally.failures.append(s06.dependency_failure(key, missing))


@flow(name="s06-database-generation", validate_parameters=False)
def generate_databases(run_token: str) -> StepReport:
    """Entity tables, constraints, relationship tables and their summaries."""
    ctx, info, started = lookup(run_token), resolve_step("s06"), time.perf_counter()
    tally = StepTally(info.name)
    items = _Items(ctx, tally)
    blueprints = inputs.blueprints(ctx.store)
    entities = inputs.entities_by_name(ctx.store)
    tables = items.run(
        s06.generate_entity_table, _entity_calls(items, blueprints, entities)
    )
    summaries = items.run(
        s06.summarize_entity_table,
        [
            (
                items.work(f"summary/entity/{n}", [t, entities[n]], s06.SUMMARY_PROMPT),
                {"table": t, "entity": entities[n]},
            )
            for n, t in tables.items()
        ],
    )
    plans = _relationship_plans(items, blueprints, entities, tables)
    constraints = items.run(
        s06.identify_constraints,
        [
            (items.work(f"constraints/{rid}", _artifacts(p), s06.CONSTRAINTS_PROMPT), p)
            for rid, p in plans.items()
        ],
    )
    relations = items.run(
        s06.generate_relationship_table, _relationship_calls(items, plans, constraints)
    )
    summaries |= items.run(
        s06.summarize_relationship_table,
        [
            (
                items.work(
                    f"summary/relationship/{rid}",
                    [t, constraints[rid]],
                    s06.SUMMARY_PROMPT,
                ),
                {"table": t, "constraints": constraints[rid]}
                | {k: plans[rid][k] for k in ("blueprint", "index", "entities")},
            )
            for rid, t in relations.items()
        ],
    )
    every_table = {**tables, **relations}
    return finish_step(
        ctx,
        info,
        tally,
        outputs=[*every_table.values(), *constraints.values(), *summaries.values()],
        exports={
            **_json_exports(every_table, constraints),
            **_text_exports(every_table, summaries, constraints),
        },
        seconds=time.perf_counter() - started,
        note=f"{len(tables)} entity and {len(relations)} relationship table(s)",
        inputs=len(blueprints),
        produced=len(every_table),
    )


def _entity_calls(
    items: _Items,
    blueprints: Sequence[Artifact[ServerBlueprint]],
    entities: dict[str, Artifact[Entity]],
) -> Calls:
    """One item per entity used by a blueprint; its parents include those users."""
    calls: Calls = []
    for name in used_entities(b.payload for b in blueprints):
        users = [b for b in blueprints if name in _involved(b.payload)]
        work = items.work(
            s06.entity_key(name), [entities[name], *users], s06.WRITE_PROMPT
        )
        refs = tuple(b.ref for b in users)
        calls.append((work, {"entity": entities[name], "blueprints": refs}))
    return calls


def _relationship_calls(
    items: _Items, plans: dict[str, dict[str, Any]], constraints: dict[str, Artifact]
) -> Calls:
    """One item per planned relationship whose constraints were identified."""
    calls: Calls = []
    for rid, plan in plans.items():
        key, found = f"relationship/{rid}", constraints.get(rid)
        if found is None:
            items.blocked(key, [f"constraints/{rid}"])
            continue
        work = items.work(key, [*_artifacts(plan), found], s06.WRITE_PROMPT)
        calls.append((work, {**plan, "constraints": found}))
    return calls


def _involved(blueprint: ServerBlueprint) -> tuple[str, ...]:
    return (blueprint.core_entity, *blueprint.peripheral_entities)


def _artifacts(plan: dict[str, Any]) -> list[Artifact]:
    """The input artifacts of a relationship plan, for its cache key."""
    return [plan["blueprint"], *plan["entities"], *plan["tables"]]


def _relationship_plans(
    items: _Items,
    blueprints: Sequence[Artifact[ServerBlueprint]],
    entities: dict[str, Artifact[Entity]],
    tables: dict[str, Artifact],
) -> dict[str, dict[str, Any]]:
    """Inputs of each (server, relationship) whose entity tables all exist."""
    plans: dict[str, dict[str, Any]] = {}
    for blueprint in blueprints:
        scope = {n: entities[n].payload for n in _involved(blueprint.payload)}
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
