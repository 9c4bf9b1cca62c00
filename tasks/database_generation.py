"""s06 database generation: the step's tasks, one per item.

Input: s02's `entity` artifacts and s04's `blueprint`s. Output: one `data_table` per
entity used by a blueprint and per (server, relationship), one `table_constraints`
per relationship, and one `table_summary` per table (facts computed from the rows,
prose checked against them). A table whose script never validates is a failed item
(`validation_failed`, with the problems); a relationship whose inputs failed is
`dependency_failed`; the step goes on. Side effects: model calls and sandboxed
script runs (`tasks.database_authoring`).
"""

from __future__ import annotations

from collections.abc import Sequence

from schemas.artifact import Artifact, ArtifactRef, FailedItem, ItemOutcome, WorkItem
from schemas.base import Frozen
from schemas.blueprint import ServerBlueprint
from schemas.config import DatabaseConfig, PipelineConfig, StepModel
from schemas.database import (
    ConstraintSetDraft,
    DataTable,
    SummaryProseDraft,
    TableConstraints,
    TableContract,
    TableSummary,
)
from schemas.entity import Entity
from tasks.core.constraints import canonical_constraints, constraint_checker
from tasks.core.data_contract import (
    TableData,
    entity_contract,
    relationship_contract,
    table_seed,
)
from tasks.core.data_prose import prose_problems
from tasks.core.data_summary import summarize_table
from tasks.database_authoring import (
    FIX_PROMPT,
    WRITE_PROMPT,
    AuthoredTable,
    author_table,
)
from tasks.items import dependency_failed, invalid_output, producer
from tasks.llm.errors import InvalidModelOutput
from tasks.resources import ItemEnv

STEP = "s06"
CONSTRAINTS_PROMPT = "s06/identify_constraints"
SUMMARY_PROMPT = "s06/summarize_table"
TABLE_PROMPTS = (WRITE_PROMPT, FIX_PROMPT)


def entity_key(entity: str) -> str:
    """Item key (and seed source) of an entity table."""
    return f"entity/{entity}"


def relationship_key(server: str, relationship: str) -> str:
    """Item key (and seed source) of a relationship table."""
    return f"relationship/{server}/{relationship}"


class TableSettings(Frozen):
    """The run settings every s06 item reads: the step config, the run seed (table
    seeds) and the simulation time."""

    cfg: DatabaseConfig
    seed: int
    simulation_time: str


def step_params(config: PipelineConfig) -> dict:
    """The parameters every s06 item depends on (part of its cache key)."""
    return {
        "settings": TableSettings(
            cfg=config.steps.s06_database_generation,
            seed=config.run.seed,
            simulation_time=config.run.simulation_time,
        )
    }


def analysis_model(config: PipelineConfig) -> StepModel:
    """Model choice of the constraint and summary calls (the analysis role)."""
    return StepModel(role=config.steps.s06_database_generation.analysis_role)


def dependency_failure(item_key: str, missing: Sequence[str]) -> FailedItem:
    """The failure of an item whose input tables or constraints failed."""
    return dependency_failed(
        STEP, item_key, f"{item_key} needs {', '.join(missing)}, which failed"
    )


def _entity_contract(settings: TableSettings, entity: Entity) -> TableContract:
    return entity_contract(
        entity,
        n=settings.cfg.entities_per_table,
        seed=table_seed(settings.seed, entity_key(entity.name)),
        simulation_time=settings.simulation_time,
    )


def _relationship_contract(
    settings: TableSettings,
    blueprint: ServerBlueprint,
    index: int,
    entities: Sequence[Artifact[Entity]],
    constraints: TableConstraints | None = None,
) -> TableContract:
    relationship = blueprint.relationships[index]
    key = relationship_key(blueprint.server_name, relationship.name)
    return relationship_contract(
        relationship,
        server=blueprint.server_name,
        entities={e.payload.name: e.payload for e in entities},
        n=settings.cfg.entities_per_table,
        seed=table_seed(settings.seed, key),
        simulation_time=settings.simulation_time,
        constraints=[r.rule for r in constraints.rules] if constraints else (),
    )


def _table_id(contract: TableContract) -> str:
    return f"{contract.server}/{contract.table}" if contract.server else contract.table


def generate_entity_table(
    work: WorkItem,
    env: ItemEnv,
    *,
    settings: TableSettings,
    entity: Artifact[Entity],
    blueprints: tuple[ArtifactRef, ...],
) -> ItemOutcome:
    """The shared table of one entity."""
    contract = _entity_contract(settings, entity.payload)
    context = {"referenced": [], "summaries": {}, "rules": []}
    return _generate(
        work, env, settings.cfg, contract, {}, context, [entity.ref, *blueprints]
    )


def generate_relationship_table(
    work: WorkItem,
    env: ItemEnv,
    *,
    settings: TableSettings,
    blueprint: Artifact[ServerBlueprint],
    index: int,
    entities: tuple[Artifact[Entity], ...],
    tables: tuple[Artifact[DataTable], ...],
    constraints: Artifact[TableConstraints],
) -> ItemOutcome:
    """One (server, relationship) table, pointing into the entity tables."""
    rules = constraints.payload
    contract = _relationship_contract(
        settings, blueprint.payload, index, entities, rules
    )
    referenced = _referenced(settings, entities, tables)
    context = {**_reference_context(referenced), "rules": list(rules.rules)}
    parents = [blueprint.ref, *(t.ref for t in tables), constraints.ref]
    return _generate(work, env, settings.cfg, contract, referenced, context, parents)


def _referenced(
    settings: TableSettings,
    entities: Sequence[Artifact[Entity]],
    tables: Sequence[Artifact[DataTable]],
) -> dict[str, TableData]:
    """The validated entity tables a relationship points into, by name."""
    by_name = {e.payload.name: e.payload for e in entities}
    return {
        t.payload.table: TableData(
            _entity_contract(settings, by_name[t.payload.table]), t.payload.rows
        )
        for t in tables
    }


def _reference_context(referenced: dict[str, TableData]) -> dict:
    """Prompt inputs describing the referenced tables: contracts and data facts."""
    return {
        "referenced": [table.contract for table in referenced.values()],
        "summaries": {
            name: summarize_table(table.contract, table.rows)
            for name, table in referenced.items()
        },
    }


def _generate(
    work: WorkItem,
    env: ItemEnv,
    cfg: DatabaseConfig,
    contract: TableContract,
    referenced: dict[str, TableData],
    context: dict,
    parents: Sequence[ArtifactRef],
) -> ItemOutcome:
    llm = env.llm
    try:
        authored = author_table(
            llm, contract, referenced, cfg=cfg, item_key=work.item_key, context=context
        )
    except InvalidModelOutput as exc:
        return invalid_output(work, exc)
    if authored.rows is None:
        return ItemOutcome(item_key=work.item_key, failure=_never_valid(work, authored))
    table = DataTable(
        table=contract.table,
        kind=contract.kind,
        server=contract.server,
        primary_key=contract.primary_key,
        rows=authored.rows,
        script=authored.script,
        seed=contract.seed,
        attempts=authored.attempts,
    )
    made = producer(
        work,
        prompt=authored.first.prompt,
        model_id=authored.first.model_id,
        seed=contract.seed,
    )
    artifact = Artifact[DataTable].build(
        kind="data_table",
        id=_table_id(contract),
        payload=table,
        parents=parents,
        producer=made,
    )
    return ItemOutcome(item_key=work.item_key, artifacts=(artifact,))


def _never_valid(work: WorkItem, authored: AuthoredTable) -> FailedItem:
    return FailedItem(
        step=work.step,
        item_key=work.item_key,
        reason="validation_failed",
        message=f"{work.item_key}: no valid data after {authored.attempts} run(s) "
        f"of its script; {authored.problems[0]}",
        details=authored.problems,
    )


def identify_constraints(
    work: WorkItem,
    env: ItemEnv,
    *,
    settings: TableSettings,
    blueprint: Artifact[ServerBlueprint],
    index: int,
    entities: tuple[Artifact[Entity], ...],
    tables: tuple[Artifact[DataTable], ...],
) -> ItemOutcome:
    """Machine-checkable rules (and notes) for one relationship table."""
    contract = _relationship_contract(settings, blueprint.payload, index, entities)
    referenced = _referenced(settings, entities, tables)
    try:
        answer = env.llm.ask(
            CONSTRAINTS_PROMPT,
            ConstraintSetDraft,
            item_key=work.item_key,
            check=constraint_checker(
                contract, {name: t.contract for name, t in referenced.items()}
            ),
            contract=contract,
            blueprint=blueprint.payload,
            simulation_time=contract.simulation_time,
            **_reference_context(referenced),
        )
    except InvalidModelOutput as exc:
        return invalid_output(work, exc)
    payload = canonical_constraints(
        answer.value,
        table=contract.table,
        server=blueprint.payload.server_name,
        simulation_time=contract.simulation_time,
    )
    artifact = Artifact[TableConstraints].build(
        kind="table_constraints",
        id=_table_id(contract),
        payload=payload,
        parents=[blueprint.ref, *(t.ref for t in tables)],
        producer=producer(work, prompt=answer.prompt, model_id=answer.model_id),
    )
    return ItemOutcome(item_key=work.item_key, artifacts=(artifact,))


def summarize_entity_table(
    work: WorkItem,
    env: ItemEnv,
    *,
    settings: TableSettings,
    table: Artifact[DataTable],
    entity: Artifact[Entity],
) -> ItemOutcome:
    """Facts and checked prose of one entity table."""
    contract = _entity_contract(settings, entity.payload)
    return _summarize(work, env, contract, table, None, [table.ref, entity.ref])


def summarize_relationship_table(
    work: WorkItem,
    env: ItemEnv,
    *,
    settings: TableSettings,
    table: Artifact[DataTable],
    blueprint: Artifact[ServerBlueprint],
    index: int,
    entities: tuple[Artifact[Entity], ...],
    constraints: Artifact[TableConstraints],
) -> ItemOutcome:
    """Facts and checked prose of one relationship table."""
    rules = constraints.payload
    contract = _relationship_contract(
        settings, blueprint.payload, index, entities, rules
    )
    parents = [table.ref, constraints.ref]
    return _summarize(work, env, contract, table, rules, parents)


def _summarize(
    work: WorkItem,
    env: ItemEnv,
    contract: TableContract,
    table: Artifact[DataTable],
    constraints: TableConstraints | None,
    parents: Sequence[ArtifactRef],
) -> ItemOutcome:
    rows = table.payload.rows
    facts = summarize_table(contract, rows)
    try:
        answer = env.llm.ask(
            SUMMARY_PROMPT,
            SummaryProseDraft,
            item_key=work.item_key,
            check=lambda d: prose_problems(d.prose, facts, contract, rows),
            summary=facts,
            contract=contract,
            constraints=constraints,
        )
    except InvalidModelOutput as exc:
        return invalid_output(work, exc)
    artifact = Artifact[TableSummary].build(
        kind="table_summary",
        id=table.id,
        payload=facts.model_copy(update={"prose": answer.value.prose.strip()}),
        parents=parents,
        producer=producer(work, prompt=answer.prompt, model_id=answer.model_id),
    )
    return ItemOutcome(item_key=work.item_key, artifacts=(artifact,))
