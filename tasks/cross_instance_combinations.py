"""s15x cross-domain instance combinations: one fused template's plan, creation
code, and the combinations that really executed.

Input: an s14x cross-domain `task_template` (its source the fused name, its
trajectory in agent-facing `Server__tool` names), the member servers' s04
blueprints, the s02 catalogue, the s06 tables, the s09 builds (their live tool
listings and modules), the s13 merged policy, the step config, the run seed and
simulation time. The environment is materialised in a private folder. A typed
plan (s15's plan schema and checks, over the fused session tables) says which
records the trajectory works on; the coding model writes creation code that
runs in the sandbox on a read-only copy of the fused data and creates NEW
records per combination (its overlay, never written into the shared tables);
each candidate that fits the tables is executed as a golden trajectory in a
fresh session started from base + its overlay (`tasks.task_filtering.
run_combinations`). A failed execution is undone by discarding the session and
its overlay; its error goes back to the model as the repair's problem. Output:
one `instance_selection` and up to `samples_per_template` cross-domain
`instance_combination`s, each one that executed successfully (reference defect
9), or a typed failed item (`schemas.instance_plan.CombinationFailure`). Side
effects: model calls (`s15x/<item>/plan`, `s15x/<item>`, `/fix-<k>`,
`/rewrite-<k>`), sandboxed runs of the script and of the environment, a
temporary folder.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from schemas.agent_task import TaskTemplate
from schemas.artifact import Artifact, ItemOutcome, WorkItem
from schemas.blueprint import ServerBlueprint
from schemas.database import DataTable
from schemas.entity import EntityCatalogue
from schemas.environment import EnvironmentSpec
from schemas.fused_environment import FusedEnvironmentSpec
from schemas.fusion import MergedPolicy
from schemas.instance_plan import (
    InstancePlan,
    InstancePlanDraft,
    InstanceSelection,
)
from schemas.server import McpServer
from schemas.validated_task import InstanceCombination
from tasks.code_loop import Version, run_code_loop
from tasks.core.data_contract import table_seed
from tasks.core.instance_creation import (
    Candidate,
    creation_check,
    creation_request,
)
from tasks.core.instance_plans import ToolParameters, canonical_plan, plan_problems
from tasks.core.instance_plans import tool_parameters as listed_parameters
from tasks.core.policy import filter_policy
from tasks.environment_build import materialize_environment
from tasks.instance_combinations import ScriptJob, SelectionSettings, typed_failure
from tasks.items import producer
from tasks.llm.bound import StepLLM
from tasks.llm.errors import InvalidModelOutput
from tasks.machinery import MachineryError
from tasks.resources import ItemEnv
from tasks.runtime.database import Database
from tasks.runtime.fusion import served_spec
from tasks.runtime.sandbox import run_sandboxed
from tasks.runtime.serve import open_environment
from tasks.runtime.targets import (
    declared_confirm_tools,
    served_target,
    tool_module_path,
)
from tasks.task_filtering import run_combinations

STEP = "s15x"
PLAN_MODEL = "plan"
PLAN_PROMPT = "s15x/plan_creation"
WRITE_PROMPT = "s15x/write_creation"
FIX_PROMPT = "s15x/fix_creation"
PROMPTS = (PLAN_PROMPT, WRITE_PROMPT, FIX_PROMPT)
EDIT_ATTEMPTS = 2


def create_instance_combinations(
    work: WorkItem,
    env: ItemEnv,
    *,
    settings: SelectionSettings,
    round_number: int,
    template: Artifact[TaskTemplate],
    blueprints: tuple[Artifact[ServerBlueprint], ...],
    catalogue: Artifact[EntityCatalogue],
    tables: tuple[Artifact[DataTable], ...],
    servers: tuple[Artifact[McpServer], ...],
    policy: Artifact[MergedPolicy],
) -> ItemOutcome:
    """Plan, create, execute and keep the combinations of one fused template."""
    del round_number  # part of the item's identity: a new round, new answers
    tmpl = template.payload
    with tempfile.TemporaryDirectory(prefix="agentskiller-s15x-") as scratch:
        folder = materialize_environment(
            Path(scratch),
            blueprints=blueprints,
            catalogue=catalogue,
            tables=tables,
            servers=servers,
        )
        target = served_target(
            folder,
            tmpl.source,
            simulation_time=settings.simulation_time,
            seed=settings.seed,
            confirm_tools=lambda name: declared_confirm_tools(
                tool_module_path(folder, name)
            ),
        )
        assert isinstance(target, FusedEnvironmentSpec)
        spec = served_spec(target)
        base = Database.load(spec, folder)
        context = {
            "template": tmpl,
            "environment": tmpl.source,
            "core_entity": target.core_entity,
            "tables": _table_facts(spec, base),
            "policy": filter_policy(policy.payload.parsed, tmpl.trajectory),
            "simulation_time": settings.simulation_time,
        }
        tools = _agent_parameters(target, servers)
        try:
            plan = _plan(env.model(PLAN_MODEL), work.item_key, spec, tools, context)
        except InvalidModelOutput as exc:
            return typed_failure(work, "plan_invalid", exc.summary, exc.problems)
        seed = table_seed(settings.seed, work.item_key)
        job = _CreationJob(
            env.llm, work.item_key, settings, plan, spec, base, folder, tmpl,
            template.id, seed, context,
        )  # fmt: skip
        try:
            loop = run_code_loop(job)
        except InvalidModelOutput as exc:
            return typed_failure(work, "script_failed", exc.summary, exc.problems)
    final = loop.final
    if final.run.status != "ok":
        return typed_failure(
            work,
            final.run.status,
            f"no combination executed after {loop.runs} run(s) of the creation code",
            final.run.problems,
        )
    return _outcome(work, template, plan, final, loop.runs, seed)


@dataclass(frozen=True)
class CreationRun:
    """One run of the creation code: its status, the combinations that
    executed successfully, and the problems that go back to the model."""

    status: str
    combinations: tuple[InstanceCombination, ...] = ()
    problems: tuple[str, ...] = ()
    rejected: int = 0


def _table_facts(spec: EnvironmentSpec, base: Database) -> list[dict[str, Any]]:
    """What the prompts show of each session table: key, columns, foreign keys,
    its size and two sample rows."""
    return [
        {
            "name": name,
            "primary_key": table.primary_key,
            "columns": list(table.columns),
            "foreign_keys": dict(table.foreign_keys),
            "rows": len(base.table(name)),
            "samples": base.table(name).all()[:2],
        }
        for name, table in spec.tables.items()
    ]


def _agent_parameters(
    target: FusedEnvironmentSpec, servers: Sequence[Artifact[McpServer]]
) -> dict[str, ToolParameters]:
    """Each agent-facing tool's parameters, from its member's live listing."""
    listed = {
        s.payload.server_name: listed_parameters(s.payload.tools) for s in servers
    }
    return {
        name: listed[route.server][route.tool]
        for name, route in target.tools.items()
        if route.tool in listed.get(route.server, {})
    }


def _plan(
    llm: StepLLM,
    key: str,
    spec: EnvironmentSpec,
    tools: Mapping[str, ToolParameters],
    context: Mapping[str, Any],
) -> InstancePlan:
    columns = {name: frozenset(t.columns) for name, t in spec.tables.items()}
    trajectory = context["template"].trajectory
    answer = llm.ask(
        PLAN_PROMPT,
        InstancePlanDraft,
        item_key=f"{key}/plan",
        check=lambda d: plan_problems(d, trajectory, tools, columns),
        tools={name: tools[name] for name in trajectory if name in tools},
        **context,
    )
    return canonical_plan(answer.value)


def _outcome(
    work: WorkItem,
    template: Artifact[TaskTemplate],
    plan: InstancePlan,
    final: Version[str, CreationRun],
    runs: int,
    seed: int,
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
    combos = [
        Artifact[InstanceCombination].build(
            kind="instance_combination",
            id=combo.combo_id,
            payload=combo,
            parents=[template.ref, selection.ref],
            producer=made,
        )
        for combo in final.run.combinations
    ]
    return ItemOutcome(item_key=work.item_key, artifacts=(selection, *combos))


@dataclass(frozen=True)
class _CreationJob(ScriptJob):
    """The creation code of one fused template as a `CodeJob`: a run passes
    when at least one created combination executed successfully."""

    write_prompt: ClassVar[str] = WRITE_PROMPT
    fix_prompt: ClassVar[str] = FIX_PROMPT
    fix_with_context: ClassVar[bool] = True
    llm: StepLLM
    key: str
    settings: SelectionSettings
    plan: InstancePlan
    spec: EnvironmentSpec
    base: Database
    folder: Path
    template: TaskTemplate
    template_id: str
    seed: int
    context: Mapping[str, Any]

    def run(self, code: str) -> CreationRun:
        request = creation_request(
            code,
            self.plan,
            self.spec,
            self.base,
            core_entity=self.context["core_entity"],
            seed=self.seed,
            simulation_time=self.settings.simulation_time,
            timeout_s=self.settings.cfg.code_timeout_s,
        )
        result = run_sandboxed(request)
        if result.status == "sandbox_error":
            raise MachineryError("running a creation script", result.message)
        check = creation_check(result, self.plan, self.spec, self.base)
        if check.status != "ok":
            return CreationRun(check.status, problems=check.problems)
        return self._execute(check.candidates, check.rejected)

    def _execute(self, candidates: Sequence[Candidate], rejected: int) -> CreationRun:
        """Execute the sampled candidates, each in a fresh session with its
        overlay; keep those that passed."""
        count = self.settings.cfg.samples_per_template
        picked = (
            sorted(random.Random(self.seed).sample(range(len(candidates)), count))
            if len(candidates) > count
            else range(len(candidates))
        )
        combos = [self._combination(candidates[i], n) for n, i in enumerate(picked)]
        with open_environment(
            self.folder,
            self.template.source,
            simulation_time=self.settings.simulation_time,
            seed=self.settings.seed,
        ) as served:
            runs = run_combinations(served, combos)
        kept = tuple(c for c, (run, _) in zip(combos, runs, strict=True) if run.passed)
        problems = tuple(
            f"combination {n} failed execution ({run.failure}): {run.message}"
            for n, (run, _) in enumerate(runs)
            if not run.passed
        )
        failed = len(combos) - len(kept)
        if not kept:
            return CreationRun("execution_failed", (), problems, rejected + failed)
        return CreationRun("ok", kept, problems, rejected + failed)

    def _combination(self, candidate: Candidate, index: int) -> InstanceCombination:
        tmpl = self.template
        return InstanceCombination(
            combo_id=candidate.combo_id(tmpl.source, tmpl.trajectory_hash),
            environment=tmpl.source,
            scope="cross_domain",
            template_id=self.template_id,
            trajectory=tmpl.trajectory,
            trajectory_hash=tmpl.trajectory_hash,
            instruction=tmpl.instruction,
            reason_for_call=tmpl.reason_for_call,
            instances=candidate.selected.instances,
            calls=candidate.selected.calls,
            overlay=candidate.overlay,
            sample_index=index,
        )

    def passed(self, run: CreationRun) -> bool:
        return run.status == "ok"
