"""s07 policy generation: one deterministic, tool-by-tool policy per server.

Input: s04's `blueprint`, s02's `entity_catalogue` and s06's `table_summary` artifacts
of the server's tables. Output: one `policy` artifact (`PolicyDocument`, exported as
`policies/<Server>.md`) per server whose policy validates: its markers parse, every
tool has a section, nothing outside the schema is referenced, and each confirmation
tool is a write tool whose section asks for confirmation. Problems are re-asked with
the exact sentences. Then, if enabled, an auditor answers "no issues" or
SEARCH/REPLACE edits, which are applied and re-validated; edits that do not apply or
break a check are sent back within `max_audit_rounds`, else the last valid policy is
kept, and `audit_notes` say what happened. A policy that never validates is a failed
item. Side effects: model calls only.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from schemas.artifact import Artifact, FailedItem, ItemOutcome, WorkItem
from schemas.blueprint import ServerBlueprint
from schemas.config import PolicyConfig
from schemas.database import TableKind, TableSummary
from schemas.entity import EntityCatalogue
from schemas.policy import (
    PolicyAuditDraft,
    PolicyDocument,
    PolicyDraft,
    SchemaColumn,
    SchemaTable,
)
from tasks.core.block_editor import apply_edit_answer
from tasks.core.entities import enum_values
from tasks.core.policy import parse_policy, policy_export
from tasks.core.policy_checks import check_policy
from tasks.core.server_tables import entity_names, select_owned
from tasks.items import dependency_failed, invalid_output, producer
from tasks.llm.bound import StepLLM
from tasks.llm.errors import InvalidModelOutput
from tasks.resources import ItemEnv
from tasks.runtime.spec import CONFIRM_PARAMETER

STEP = "s07"
WRITE_PROMPT = "s07/write_policy"
AUDIT_PROMPT = "s07/audit_policy"
AUDIT_SKIPPED = "Audit: skipped (enable_validation is false)."
AUDIT_CLEAN = "Audit: no issues found."
AUDIT_APPLIED = "Audit: the auditor's edits were applied and the policy re-validated."


def server_summaries(
    blueprint: ServerBlueprint, summaries: Sequence[Artifact[TableSummary]]
) -> tuple[tuple[Artifact[TableSummary], ...], tuple[str, ...]]:
    """The s06 summaries of a server's tables, and the tables that have none.

    Args:
        blueprint: The server.
        summaries: Every `table_summary` artifact of s06.

    Returns:
        The summaries in table order (core entity, peripherals, relationships) and
        the names of the server's tables without a summary.
    """
    return select_owned(blueprint, summaries)


def missing_data_failure(server: str, missing: Sequence[str]) -> FailedItem:
    """The failure of a server whose tables s06 did not produce (no model call).

    Args:
        server: The server name (the item key).
        missing: The tables without data.

    Returns:
        A `dependency_failed` item; a re-run of s06 may fix it, not one of s07.
    """
    return dependency_failed(
        STEP,
        server,
        f"s06 produced no data for {', '.join(missing)}, so {server} gets no policy",
    )


def schema_tables(
    blueprint: ServerBlueprint,
    catalogue: EntityCatalogue,
    summaries: Sequence[TableSummary],
) -> tuple[SchemaTable, ...]:
    """The server's closed world: its entity and relationship tables with data facts.

    Args:
        blueprint: The server.
        catalogue: The entity catalogue (column types and descriptions).
        summaries: The s06 summaries of the server's tables; a table without one
            is listed with no data facts.

    Returns:
        One table per core/peripheral entity, then per relationship; each lists
        its primary key first.
    """
    facts = {(s.kind, s.table): s for s in summaries}
    names = entity_names(blueprint)
    tables = [
        _table(
            (entity.name, "entity", entity.primary_key, entity.description),
            {c: a.model_dump(exclude={"enum"}) for c, a in entity.attributes.items()},
            facts.get(("entity", entity.name)),
        )
        for entity in (catalogue.entities[name] for name in names)
    ]
    tables += [
        _table(
            (r.name, "relationship", r.primary_key, r.description),
            {
                c: column.model_dump(exclude={"value_from_entity"})
                for c, column in r.attributes.items()
            },
            facts.get(("relationship", r.name)),
        )
        for r in blueprint.relationships
    ]
    return tuple(tables)


def _table(
    head: tuple[str, TableKind, str, str],
    declared: dict[str, dict[str, Any]],
    summary: TableSummary | None,
) -> SchemaTable:
    """(name, kind, primary key, description) and columns, with the data facts."""
    name, kind, primary_key, description = head
    found = summary.columns if summary else {}
    columns = {}
    for column in [primary_key, *(c for c in declared if c != primary_key)]:
        data = dict(declared[column])
        if (facts := found.get(column)) is not None:
            data |= facts.model_dump(include={"values", "minimum", "maximum"})
            data["references"] = data.get("references") or facts.references
        columns[column] = SchemaColumn.model_validate(data)
    return SchemaTable(
        name=name,
        kind=kind,
        primary_key=primary_key,
        description=description,
        row_count=summary.row_count if summary else 0,
        columns=columns,
        prose=summary.prose if summary else "",
    )


def known_terms(
    blueprint: ServerBlueprint,
    catalogue: EntityCatalogue,
    tables: Sequence[SchemaTable],
) -> frozenset[str]:
    """Identifiers a policy may use besides tables, columns and tools.

    Args:
        blueprint: The server.
        catalogue: The entity catalogue.
        tables: The server's schema tables.

    Returns:
        Parameter names, declared enum values of parameters and columns, the
        values seen in the data, and the runtime's `confirm` parameter.
    """
    terms = {CONFIRM_PARAMETER}
    for function in blueprint.functions:
        for name, parameter in function.parameters.items():
            terms.add(name)
            terms.update(parameter.enum or ())
    for name in entity_names(blueprint):
        for attr in catalogue.entities[name].attributes.values():
            if attr.type == "enum":
                terms.update(enum_values(attr.enum, attr.range))
    for relationship in blueprint.relationships:
        for column in relationship.attributes.values():
            if column.type == "enum":
                terms.update(enum_values(None, column.range))
    for table in tables:
        for column in table.columns.values():
            terms.update(column.values or ())
    return frozenset(terms)


@dataclass(frozen=True)
class PolicyValidator:
    """The checks every policy text of one server must pass."""

    blueprint: ServerBlueprint
    tables: Mapping[str, tuple[str, ...]]
    terms: frozenset[str]

    @classmethod
    def of(
        cls,
        blueprint: ServerBlueprint,
        catalogue: EntityCatalogue,
        tables: Sequence[SchemaTable],
    ) -> PolicyValidator:
        return cls(
            blueprint=blueprint,
            tables={t.name: tuple(t.columns) for t in tables},
            terms=known_terms(blueprint, catalogue, tables),
        )

    def problems(self, markdown: str, confirm: Sequence[str]) -> list[str]:
        """Marker, coverage, closed-world and confirmation problems, as sentences."""
        parsed = parse_policy(markdown)
        problems = check_policy(
            parsed,
            tool_names=[f.name for f in self.blueprint.functions],
            tables=self.tables,
            core_entity=self.blueprint.core_entity,
            known_terms=self.terms,
        )
        writes = [f.name for f in self.blueprint.functions if f.effect == "write"]
        for name in dict.fromkeys(confirm):
            if name not in writes:
                problems.append(
                    f"'{name}' is in confirmation_required but is not a write tool "
                    f"of {self.blueprint.server_name}; only these tools change "
                    f"data: {', '.join(writes) or 'none'}."
                )
            elif (
                name in parsed.tools
                and "confirm" not in parsed.tools[name].text.lower()
            ):
                problems.append(
                    f"Tool section '{name}' must say that the call acts only after "
                    "the user explicitly confirms, since it is in "
                    "confirmation_required."
                )
        return problems

    def confirm_tools(self, names: Sequence[str]) -> tuple[str, ...]:
        """The named tools in blueprint function order, without repeats."""
        wanted = set(names)
        return tuple(f.name for f in self.blueprint.functions if f.name in wanted)


def revise_policy(
    markdown: str, audit: PolicyAuditDraft, problems_of: Callable[[str], list[str]]
) -> tuple[str, list[str]]:
    """Apply an auditor's answer to a policy and re-validate the result.

    Args:
        markdown: The current (valid, canonical) policy.
        audit: The auditor's answer.
        problems_of: The policy checks, given a policy text.

    Returns:
        The revised canonical policy and no problems; or the unchanged policy and
        the problems to send back (edits that do not apply, change nothing, or
        leave a policy that fails its checks).
    """
    if audit.verdict == "no_issues":
        if audit.edits.strip():
            return markdown, [
                "The verdict is no_issues but edits were given; answer edits with "
                "the blocks, or no_issues with empty edits."
            ]
        return markdown, []
    outcome = apply_edit_answer(
        markdown, audit.edits, original_error="\n".join(audit.issues)
    )
    if outcome.failed or not outcome.changed:
        failed = [
            f"block {r.index + 1}: {r.detail}" for r in outcome.results if r.failed
        ]
        why = "; ".join(failed) or (
            "no block changed the policy" if outcome.results else "no edit blocks"
        )
        return markdown, [
            f"The edits were not applied ({why}), so the policy is unchanged; resend "
            f"them with SEARCH text copied exactly from the policy.\n{outcome.report}"
        ]
    revised = policy_export(parse_policy(outcome.text))
    problems = problems_of(revised)
    if problems:
        return markdown, [f"After the edits: {problem}" for problem in problems]
    return revised, []


def _audit(
    llm: StepLLM,
    cfg: PolicyConfig,
    work: WorkItem,
    markdown: str,
    problems_of: Callable[[str], list[str]],
    context: dict[str, Any],
) -> tuple[str, tuple[str, ...]]:
    """The auditor pass: the policy to keep and the notes on what happened."""
    try:
        answer = llm.ask(
            AUDIT_PROMPT,
            PolicyAuditDraft,
            item_key=f"audit/{work.item_key}",
            check=lambda draft: revise_policy(markdown, draft, problems_of)[1],
            max_retries=1 + cfg.max_audit_rounds,
            policy=markdown,
            **context,
        )
    except InvalidModelOutput as exc:
        return markdown, (
            f"Audit: the auditor's edits were sent back {exc.attempts} time(s) and "
            "never validated; kept the policy as generated.",
            *(f"Rejected: {problem}" for problem in exc.problems),
        )
    audit = answer.value
    if audit.verdict == "no_issues":
        return markdown, (AUDIT_CLEAN,)
    revised, _ = revise_policy(markdown, audit, problems_of)
    return revised, (AUDIT_APPLIED, *(f"Fixed: {issue}" for issue in audit.issues))


def write_policy(
    work: WorkItem,
    env: ItemEnv,
    *,
    cfg: PolicyConfig,
    simulation_time: str,
    blueprint: Artifact[ServerBlueprint],
    catalogue: Artifact[EntityCatalogue],
    summaries: tuple[Artifact[TableSummary], ...],
) -> ItemOutcome:
    """The validated, audited policy of one server."""
    llm = env.llm
    server, known = blueprint.payload, catalogue.payload
    tables = schema_tables(server, known, [s.payload for s in summaries])
    rules = PolicyValidator.of(server, known, tables)
    context = {
        "blueprint": server,
        "tables": tables,
        "core_key": known.entities[server.core_entity].primary_key,
        "simulation_time": simulation_time,
    }
    try:
        answer = llm.ask(
            WRITE_PROMPT,
            PolicyDraft,
            item_key=f"write/{work.item_key}",
            check=lambda d: rules.problems(d.markdown, d.confirmation_required),
            **context,
        )
    except InvalidModelOutput as exc:
        return invalid_output(work, exc)
    confirm = rules.confirm_tools(answer.value.confirmation_required)
    markdown = policy_export(parse_policy(answer.value.markdown))
    notes: tuple[str, ...] = (AUDIT_SKIPPED,)
    if cfg.enable_validation:
        check = functools.partial(rules.problems, confirm=confirm)
        context |= {"confirm_tools": confirm}
        markdown, notes = _audit(llm, cfg, work, markdown, check, context)
    artifact = Artifact[PolicyDocument].build(
        kind="policy",
        id=server.server_name,
        payload=PolicyDocument(
            server_name=server.server_name,
            markdown=markdown,
            parsed=parse_policy(markdown),
            confirm_tools=confirm,
            audit_notes=notes,
        ),
        parents=[blueprint.ref, catalogue.ref, *(s.ref for s in summaries)],
        producer=producer(work, prompt=answer.prompt, model_id=answer.model_id),
    )
    return ItemOutcome(item_key=work.item_key, artifacts=(artifact,))
