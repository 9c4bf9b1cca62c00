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
item. The rules themselves live in `tasks.core.policy_rules`. Side effects: model
calls only.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from schemas.artifact import Artifact, FailedItem, ItemOutcome, WorkItem
from schemas.blueprint import ServerBlueprint
from schemas.config import PolicyConfig
from schemas.database import TableSummary
from schemas.entity import EntityCatalogue
from schemas.policy import PolicyAuditDraft, PolicyDocument, PolicyDraft
from tasks.core.policy import parse_policy, policy_export
from tasks.core.policy_rules import PolicyValidator, revise_policy, schema_tables
from tasks.core.server_tables import select_owned
from tasks.items import dependency_failed, invalid_output, producer
from tasks.llm.bound import StepLLM
from tasks.llm.errors import InvalidModelOutput
from tasks.resources import ItemEnv

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
