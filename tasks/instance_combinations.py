"""s15 instance combinations (single-domain): one template's plan, selection code
and combinations.

Input: an s14 `task_template`, its server's s09 build (the live tool listing),
s04 blueprint, s06 tables and summaries, s07 policy, the step config, the run
seed and simulation time. Output: one `instance_selection` (the checked plan
and the script that worked) and up to `samples_per_template`
`instance_combination`s, whose calls bind every argument declaratively (entity
field, picked value, earlier result). Failures are typed
(`schemas.instance_plan.CombinationFailure`, the first entry of the failed
item's `details`): the plan never validated, the script failed after its
repairs, found no combination, timed out, or every combination referenced a
missing row, field or value. Side effects: model calls (`s15/<item>/plan` on the
plan role, `s15/<item>` and `s15/<item>/fix-<k>`, `/rewrite-<k>` on the coding
role) and sandboxed runs of the script on copies of the tables. The plan call,
the script job, the end of its loop and the item's artifacts are s15x's too
(`tasks.instance_scripts`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from schemas.agent_task import TaskTemplate
from schemas.artifact import Artifact, ItemOutcome, WorkItem
from schemas.blueprint import ServerBlueprint
from schemas.config import InstanceConfig, StepModel
from schemas.database import DataTable, TableSummary
from schemas.instance_plan import InstancePlan
from schemas.policy import PolicyDocument
from schemas.server import McpServer
from tasks.code_loop import LoopResult
from tasks.core.data_contract import table_seed
from tasks.core.instance_plans import table_columns, tool_parameters
from tasks.core.instance_selection import (
    SelectionRun,
    TableRows,
    choose,
    combo_id,
    selection_request,
    selection_run,
)
from tasks.core.policy import filter_policy
from tasks.instance_scripts import (
    ScriptJob,
    SelectionSettings,
    checked_plan,
    finished_loop,
    kept_outcome,
    template_combination,
)
from tasks.resources import ItemEnv

STEP = "s15"
PLAN_MODEL = "plan"
PLAN_PROMPT = "s15/plan_combinations"
WRITE_PROMPT = "s15/write_selection"
FIX_PROMPT = "s15/fix_selection"
PROMPTS = (PLAN_PROMPT, WRITE_PROMPT, FIX_PROMPT)


def plan_model(cfg: InstanceConfig) -> StepModel:
    """Model choice of the plan call (the plan role)."""
    return StepModel(role=cfg.plan_role)


def item_key(server: str, trajectory_hash: str, round_number: int) -> str:
    """Item key of one template in one round; later rounds get their own key, so
    their model calls and cache entries are new."""
    base = f"{server}/{trajectory_hash}"
    return base if round_number == 1 else f"{base}/round-{round_number}"


def select_instance_combinations(
    work: WorkItem,
    env: ItemEnv,
    *,
    settings: SelectionSettings,
    round_number: int,
    template: Artifact[TaskTemplate],
    server: Artifact[McpServer],
    blueprint: Artifact[ServerBlueprint],
    tables: tuple[Artifact[DataTable], ...],
    summaries: tuple[Artifact[TableSummary], ...],
    policy: Artifact[PolicyDocument],
) -> ItemOutcome:
    """Plan, select and keep the combinations of one template."""
    tmpl = template.payload
    rows = {
        t.payload.table: TableRows(t.payload.primary_key, t.payload.rows)
        for t in tables
    }
    context = {
        "template": tmpl,
        "blueprint": blueprint.payload,
        "summaries": [s.payload for s in summaries],
        "policy": filter_policy(policy.payload.parsed, tmpl.trajectory),
        "simulation_time": settings.simulation_time,
    }
    plan = checked_plan(
        work,
        env.model(PLAN_MODEL),
        PLAN_PROMPT,
        tool_parameters(server.payload.tools),
        table_columns({name: t.rows for name, t in rows.items()}),
        context,
        tables=sorted(rows),
    )
    if not isinstance(plan, InstancePlan):
        return plan
    seed = table_seed(settings.seed, work.item_key)
    job = _SelectionJob(
        llm=env.llm, key=work.item_key, settings=settings, plan=plan, seed=seed,
        context=context, rows=rows,
    )  # fmt: skip
    loop = finished_loop(work, job)
    if not isinstance(loop, LoopResult):
        return loop
    combos = [
        template_combination(
            template,
            combo,
            combo_id=combo_id(tmpl.source, tmpl.trajectory_hash, combo),
            scope="single",
            sample_index=index,
        )
        for index, combo in enumerate(
            choose(loop.final.run.combinations, settings.cfg.samples_per_template, seed)
        )
    ]
    return kept_outcome(work, template, plan, loop, seed, combos)


@dataclass(frozen=True)
class _SelectionJob(ScriptJob):
    """The selection script of one template as a `CodeJob`: a run passes when at
    least one combination holds; every repaired version is kept."""

    write_prompt: ClassVar[str] = WRITE_PROMPT
    fix_prompt: ClassVar[str] = FIX_PROMPT
    script_name: ClassVar[str] = "selection script"
    exhausted: ClassVar[str] = (
        "no usable combination after {runs} run(s) of the selection script"
    )
    rows: Mapping[str, TableRows]

    def run(self, code: str) -> SelectionRun:
        request = selection_request(
            code,
            self.plan,
            self.rows,
            seed=self.seed,
            simulation_time=self.settings.simulation_time,
            timeout_s=self.settings.cfg.code_timeout_s,
        )
        return selection_run(self.sandboxed(request), self.plan, self.rows)
