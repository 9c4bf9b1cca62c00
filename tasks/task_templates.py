"""s14 task templates: one user-task template per chosen trajectory, judged.

Input: per source of trajectories (today: one server's s08 `tool_graph`; later a
fused combination whose steps are `Server.tool`), the s04 `blueprint`, s02
`entity_catalogue`, s06 `table_summary` and s07 `policy` artifacts of its
server(s), and its s09 `mcp_server` (only servers that passed s09 get
templates). Output: a `task_template` artifact per kept template and a
`task_template_set` per source (exported as `task_templates/<Server>.json`).
The writer's draft is re-asked until its placeholders name real tables and
columns and it holds no "if ... then ..."; the judge's five scores are averaged
by us, and a template under the threshold is a `rejected_by_judge` item. A judge
that never answers validly fails the item (`invalid_output`): no template is
kept unscored. Failed and rejected items are cached like kept ones. s14x
(`tasks.cross_templates`) writes, judges and collects through the same
`judged_template` and `template_set`. Side effects: model calls only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from schemas.agent_task import (
    TaskTemplate,
    TaskTemplateDraft,
    TaskTemplateSet,
    TemplateRubricDraft,
    TemplateScores,
    TemplateStats,
)
from schemas.artifact import Artifact, FailedItem, ItemOutcome, WorkItem
from schemas.blueprint import ServerBlueprint
from schemas.config import StepModel, TemplateConfig
from schemas.database import TableSummary
from schemas.entity import EntityCatalogue
from schemas.policy import PolicyDocument, SchemaTable
from schemas.server import McpServer
from schemas.tool_graph import ToolGraph
from tasks.core import task_templates as rules
from tasks.core.policy_rules import schema_tables
from tasks.items import dependency_failed, invalid_output, producer
from tasks.llm.bound import Answer
from tasks.llm.errors import InvalidModelOutput
from tasks.resources import ItemEnv

STEP = "s14"
WRITE_PROMPT = "s14/write_template"
JUDGE_PROMPT = "s14/judge_template"
PROMPTS = (WRITE_PROMPT, JUDGE_PROMPT)
JUDGE = "judge"


@dataclass(frozen=True)
class TemplateSource:
    """Where trajectories come from: the template file's name, its member
    servers (`domains`, empty for one server) and its trajectories."""

    name: str
    trajectories: tuple[tuple[str, ...], ...]
    domains: tuple[str, ...] = ()

    @property
    def is_cross_domain(self) -> bool:
        return bool(self.domains)


def judge_model(cfg: TemplateConfig) -> StepModel:
    """The judge's model choice: its own role, the step's model override."""
    return StepModel(role=cfg.judge_role, model=cfg.model)


def chosen(source: TemplateSource, cfg: TemplateConfig) -> tuple[tuple[str, ...], ...]:
    """The trajectories of a source that get a template: within the lengths and
    the cap for one server; every fused trajectory of a combination (s11 chose
    them, at most `trajectories_per_combo`, and they are longer by design)."""
    if source.is_cross_domain:
        return tuple(dict.fromkeys(tuple(t) for t in source.trajectories))
    return rules.choose_trajectories(
        source.trajectories,
        min_length=cfg.min_trajectory_length,
        max_length=cfg.max_trajectory_length,
        cap=cfg.max_templates_per_server,
    )


def item_key(source: TemplateSource, trajectory: Sequence[str]) -> str:
    return f"{source.name}/{rules.trajectory_hash(trajectory)}"


def missing_inputs_failure(server: str, *, built: bool, graph: bool) -> FailedItem:
    """The failure of a server without a passing s09 build or without an s08
    tool graph (no model call); a re-run of those steps may fix it."""
    lacking = [] if built else [f"{server} did not pass s09"]
    lacking += [] if graph else [f"s08 produced no tool graph for {server}"]
    return dependency_failed(
        STEP, server, f"{'; '.join(lacking)}, so it gets no task templates"
    )


def judged(
    env: ItemEnv, work: WorkItem, trajectory: list[str], draft: TaskTemplateDraft
) -> TemplateScores:
    """Our scores of the judge's rubric.

    Raises:
        InvalidModelOutput: the judge never gave a valid rubric.
    """
    answer = env.model(JUDGE).ask(
        JUDGE_PROMPT,
        TemplateRubricDraft,
        item_key=f"judge/{work.item_key}",
        trajectory=trajectory,
        template=draft,
    )
    return rules.rubric_scores(answer.value)


def rejected_outcome(
    work: WorkItem, scores: TemplateScores, threshold: float
) -> ItemOutcome:
    reason = scores.rejection_reason or "no reason given"
    failure = FailedItem(
        step=work.step,
        item_key=work.item_key,
        reason="rejected_by_judge",
        message=f"the judge scored {rules.score_summary(scores)}, under the "
        f"threshold {threshold}: {reason}",
    )
    return ItemOutcome(item_key=work.item_key, failure=failure)


def write_task_template(
    work: WorkItem,
    env: ItemEnv,
    *,
    cfg: TemplateConfig,
    source: str,
    domains: list[str],
    trajectory: list[str],
    graph: Artifact[ToolGraph],
    blueprint: Artifact[ServerBlueprint],
    catalogue: Artifact[EntityCatalogue],
    summaries: tuple[Artifact[TableSummary], ...],
    policy: Artifact[PolicyDocument],
    server: Artifact[McpServer],
) -> ItemOutcome:
    """The judged template of one trajectory, or why there is none."""
    tables = schema_tables(
        blueprint.payload, catalogue.payload, [s.payload for s in summaries]
    )
    policies = {policy.payload.server_name: policy.payload.parsed}
    return judged_template(
        work,
        env,
        cfg,
        prompt_id=WRITE_PROMPT,
        source=source,
        domains=domains,
        trajectory=trajectory,
        tables=tables,
        parents=[graph, blueprint, catalogue, *summaries, policy, server],
        blueprint=blueprint.payload,
        policy=rules.trajectory_policy(policies, trajectory, source),
    )


def judged_template(
    work: WorkItem,
    env: ItemEnv,
    cfg: TemplateConfig,
    *,
    prompt_id: str,
    source: str,
    domains: Sequence[str],
    trajectory: list[str],
    tables: Sequence[SchemaTable],
    parents: Sequence[Artifact],
    **context: Any,
) -> ItemOutcome:
    """The template of one trajectory (s14's or s14x's writer), or why there is
    none: the writer sees the trajectory, `tables` and `context` and is re-asked
    until its placeholders name real tables and columns; the judge (when
    enabled) scores the draft, and one under the threshold is rejected."""
    try:
        answer: Answer[TaskTemplateDraft] = env.llm.ask(
            prompt_id,
            TaskTemplateDraft,
            item_key=f"write/{work.item_key}",
            check=lambda draft: rules.template_problems(draft, tables),
            trajectory=trajectory,
            tables=tables,
            **context,
        )
        draft = answer.value
        scores = judged(env, work, trajectory, draft) if cfg.enable_judge else None
    except InvalidModelOutput as exc:
        return invalid_output(work, exc)
    if scores is not None and scores.overall_score < cfg.judge_threshold:
        return rejected_outcome(work, scores, cfg.judge_threshold)
    template = TaskTemplate(
        source=source,
        trajectory=tuple(trajectory),
        trajectory_hash=rules.trajectory_hash(trajectory),
        instruction=draft.instruction.strip(),
        reason_for_call=draft.reason_for_call.strip(),
        placeholders=rules.placeholders(draft.instruction),
        scores=scores,
        domains=tuple(domains),
        is_cross_domain=bool(domains),
    )
    artifact = Artifact[TaskTemplate].build(
        kind="task_template",
        id=work.item_key,
        payload=template,
        parents=[p.ref for p in parents],
        producer=producer(work, prompt=answer.prompt, model_id=answer.model_id),
    )
    return ItemOutcome(item_key=work.item_key, artifacts=(artifact,))


def collect_task_templates(
    work: WorkItem,
    env: ItemEnv,
    *,
    source: str,
    domains: list[str],
    stats: TemplateStats,
    graph: Artifact[ToolGraph],
    templates: tuple[Artifact[TaskTemplate], ...],
) -> ItemOutcome:
    """The template file of one source: its kept templates and their stats."""
    return template_set(work, source, domains, stats, graph, templates)


def template_set(
    work: WorkItem,
    source: str,
    domains: Sequence[str],
    stats: TemplateStats,
    origin: Artifact,
    templates: Sequence[Artifact[TaskTemplate]],
) -> ItemOutcome:
    """The `task_template_set` of one source (s14's or s14x's): its kept
    templates and their stats, built from `origin` (its trajectories)."""
    artifact = Artifact[TaskTemplateSet].build(
        kind="task_template_set",
        id=source,
        payload=TaskTemplateSet(
            source=source,
            templates=tuple(t.payload for t in templates),
            stats=stats,
            is_cross_domain=bool(domains),
        ),
        parents=[origin.ref, *(t.ref for t in templates)],
        producer=producer(work),
    )
    return ItemOutcome(item_key=work.item_key, artifacts=(artifact,))
