"""The rules a server policy must keep: its closed world and its checks.

Input: a server's blueprint, the entity catalogue and the s06 summaries of its
tables (or a policy text and an auditor's answer). Output: the schema tables a
policy may name (`schema_tables`), the other identifiers it may use
(`known_terms`), the sentences that say what is wrong with a policy text
(`PolicyValidator`), and a policy revised by an auditor's SEARCH/REPLACE edits
(`revise_policy`). Pure: no I/O, no model calls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from schemas.blueprint import ServerBlueprint
from schemas.database import TableKind, TableSummary
from schemas.entity import EntityCatalogue
from schemas.environment import CONFIRM_PARAMETER
from schemas.policy import PolicyAuditDraft, SchemaColumn, SchemaTable
from tasks.core.block_editor import apply_edit_answer
from tasks.core.entities import enum_values
from tasks.core.policy import parse_policy, policy_export
from tasks.core.policy_checks import check_policy
from tasks.core.server_tables import entity_names


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
