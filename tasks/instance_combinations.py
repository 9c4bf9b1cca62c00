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
role) and sandboxed runs of the script on copies of the tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from schemas.agent_task import TaskTemplate
from schemas.artifact import Artifact, FailedItem, ItemOutcome, WorkItem
from schemas.base import Frozen
from schemas.blueprint import ServerBlueprint
from schemas.config import InstanceConfig, StepModel
from schemas.database import DataTable, TableSummary
from schemas.instance_plan import (
    CombinationFailure,
    InstancePlan,
    InstancePlanDraft,
    InstanceSelection,
    SelectionFixDraft,
    SelectionScriptDraft,
)
from schemas.policy import PolicyDocument
from schemas.server import McpServer
from schemas.validated_task import InstanceCombination
from tasks.code_loop import Proposal, Verdict, Version, ask_for_edits, run_code_loop
from tasks.core.data_contract import table_seed
from tasks.core.data_scripts import script_problems
from tasks.core.instance_plans import (
    canonical_plan,
    plan_problems,
    table_columns,
    tool_parameters,
)
from tasks.core.instance_selection import (
    SelectionRun,
    TableRows,
    choose,
    combo_id,
    selection_request,
    selection_run,
)
from tasks.core.policy import filter_policy
from tasks.items import producer
from tasks.llm.bound import StepLLM
from tasks.llm.errors import InvalidModelOutput
from tasks.machinery import MachineryError
from tasks.resources import ItemEnv
from tasks.runtime.sandbox import run_sandboxed

STEP = "s15"
PLAN_MODEL = "plan"
PLAN_PROMPT = "s15/plan_combinations"
WRITE_PROMPT = "s15/write_selection"
FIX_PROMPT = "s15/fix_selection"
PROMPTS = (PLAN_PROMPT, WRITE_PROMPT, FIX_PROMPT)
EDIT_ATTEMPTS = 2


class SelectionSettings(Frozen):
    """What every s15 item reads besides its inputs."""

    cfg: InstanceConfig
    seed: int
    simulation_time: str


def plan_model(cfg: InstanceConfig) -> StepModel:
    """Model choice of the plan call (the plan role)."""
    return StepModel(role=cfg.plan_role)


def item_key(server: str, trajectory_hash: str, round_number: int) -> str:
    """Item key of one template in one round; later rounds get their own key, so
    their model calls and cache entries are new."""
    base = f"{server}/{trajectory_hash}"
    return base if round_number == 1 else f"{base}/round-{round_number}"


def typed_failure(
    work: WorkItem, kind: CombinationFailure, message: str, problems: Sequence[str]
) -> ItemOutcome:
    """A failed item whose first detail is its typed s15 reason."""
    reason = "invalid_output" if kind == "plan_invalid" else "validation_failed"
    return ItemOutcome(
        item_key=work.item_key,
        failure=FailedItem(
            step=work.step,
            item_key=work.item_key,
            reason=reason,
            message=f"{kind}: {message}",
            details=(kind, *problems),
        ),
    )


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
    try:
        plan = _plan(env.model(PLAN_MODEL), work.item_key, server, rows, context)
    except InvalidModelOutput as exc:
        return typed_failure(work, "plan_invalid", exc.summary, exc.problems)
    seed = table_seed(settings.seed, work.item_key)
    job = _SelectionJob(env.llm, work.item_key, settings, plan, rows, seed, context)
    try:
        loop = run_code_loop(job)
    except InvalidModelOutput as exc:
        return typed_failure(work, "script_failed", exc.summary, exc.problems)
    final = loop.final
    if final.run.status != "ok":
        return typed_failure(
            work,
            final.run.status,
            f"no usable combination after {loop.runs} run(s) of the selection script",
            final.run.problems,
        )
    return _outcome(work, template, plan, final, loop.runs, seed, settings.cfg)


def _plan(
    llm: StepLLM,
    key: str,
    server: Artifact[McpServer],
    rows: Mapping[str, TableRows],
    context: Mapping[str, Any],
) -> InstancePlan:
    tools = tool_parameters(server.payload.tools)
    columns = table_columns({name: t.rows for name, t in rows.items()})
    trajectory = context["template"].trajectory
    answer = llm.ask(
        PLAN_PROMPT,
        InstancePlanDraft,
        item_key=f"{key}/plan",
        check=lambda d: plan_problems(d, trajectory, tools, columns),
        tools={name: tools[name] for name in trajectory if name in tools},
        tables=sorted(rows),
        **context,
    )
    return canonical_plan(answer.value)


def _outcome(
    work: WorkItem,
    template: Artifact[TaskTemplate],
    plan: InstancePlan,
    final: Version[str, SelectionRun],
    runs: int,
    seed: int,
    cfg: InstanceConfig,
) -> ItemOutcome:
    tmpl = template.payload
    made = producer(work, seed=seed)
    selection = Artifact[InstanceSelection].build(
        kind="instance_selection",
        id=f"{tmpl.source}/{tmpl.trajectory_hash}",
        payload=InstanceSelection(
            environment=tmpl.source,
            template_id=template.id,
            trajectory=tmpl.trajectory,
            trajectory_hash=tmpl.trajectory_hash,
            plan=plan,
            script=final.code,
            runs=runs,
            found=len(final.run.combinations),
            rejected=final.run.rejected,
        ),
        parents=[template.ref],
        producer=made,
    )
    combos = []
    for index, combo in enumerate(
        choose(final.run.combinations, cfg.samples_per_template, seed)
    ):
        ident = combo_id(tmpl.source, tmpl.trajectory_hash, combo)
        payload = InstanceCombination(
            combo_id=ident,
            environment=tmpl.source,
            scope="single",
            template_id=template.id,
            trajectory=tmpl.trajectory,
            trajectory_hash=tmpl.trajectory_hash,
            instruction=tmpl.instruction,
            reason_for_call=tmpl.reason_for_call,
            instances=combo.instances,
            calls=combo.calls,
            sample_index=index,
        )
        combos.append(
            Artifact[InstanceCombination].build(
                kind="instance_combination",
                id=ident,
                payload=payload,
                parents=[template.ref, selection.ref],
                producer=made,
            )
        )
    return ItemOutcome(item_key=work.item_key, artifacts=(selection, *combos))


class ScriptJob:
    """What the selection (s15) and the creation (s15x) code jobs share: the
    first script, its repair by edit blocks (a rewrite when no edit applies),
    the score and keeping every repaired version. A subclass (a frozen
    dataclass) names its two prompts and holds `llm`, `key`, `settings`, `plan`
    and `context`; `fix_with_context` says whether repairs see the context too."""

    write_prompt: ClassVar[str]
    fix_prompt: ClassVar[str]
    fix_with_context: ClassVar[bool] = False
    llm: StepLLM
    key: str
    settings: SelectionSettings
    plan: InstancePlan
    context: Mapping[str, Any]

    @property
    def rounds(self) -> int:
        return self.settings.cfg.max_code_retries

    def write(self) -> str:
        return self._write(self.key, None, ())

    def score(self, run: Any) -> tuple[int, ...]:
        return (int(run.status == "ok"), len(run.combinations))

    def repair(self, current: Version[str, Any], number: int) -> Proposal[str]:
        try:
            return Proposal(self._fix(current.code, current.run.problems, number))
        except InvalidModelOutput as exc:
            note = f"repair {number} gave no usable script: {'; '.join(exc.problems)}"
            return Proposal(None, note=note, give_up=True)

    def judge(
        self,
        proposal: Proposal[str],
        candidate: Version[str, Any],
        best: Version[str, Any],
    ) -> Verdict:
        return "kept"

    def _fix(self, script: str, problems: Sequence[str], number: int) -> str:
        extra = dict(self.context) if self.fix_with_context else {}
        try:
            return ask_for_edits(
                self.llm,
                self.fix_prompt,
                SelectionFixDraft,
                item_key=f"{self.key}/fix-{number}",
                source=script,
                error="\n".join(problems),
                static=script_problems,
                max_retries=EDIT_ATTEMPTS,
                unapplied="The edit blocks did not change the script.",
                script=script,
                problems=list(problems),
                plan=self.plan,
                **extra,
            )
        except InvalidModelOutput:
            return self._write(f"{self.key}/rewrite-{number}", script, problems)

    def _write(self, key: str, previous: str | None, problems: Sequence[str]) -> str:
        answer = self.llm.ask(
            self.write_prompt,
            SelectionScriptDraft,
            item_key=key,
            check=lambda d: script_problems(d.script),
            plan=self.plan,
            previous_script=previous,
            problems=list(problems),
            **self.context,
        )
        return answer.value.script


@dataclass(frozen=True)
class _SelectionJob(ScriptJob):
    """The selection script of one template as a `CodeJob`: a run passes when at
    least one combination holds; every repaired version is kept."""

    write_prompt: ClassVar[str] = WRITE_PROMPT
    fix_prompt: ClassVar[str] = FIX_PROMPT
    llm: StepLLM
    key: str
    settings: SelectionSettings
    plan: InstancePlan
    rows: Mapping[str, TableRows]
    seed: int
    context: Mapping[str, Any]

    def run(self, code: str) -> SelectionRun:
        request = selection_request(
            code,
            self.plan,
            self.rows,
            seed=self.seed,
            simulation_time=self.settings.simulation_time,
            timeout_s=self.settings.cfg.code_timeout_s,
        )
        result = run_sandboxed(request)
        if result.status == "sandbox_error":
            raise MachineryError("running a selection script", result.message)
        return selection_run(result, self.plan, self.rows)

    def passed(self, run: SelectionRun) -> bool:
        return run.status == "ok"
