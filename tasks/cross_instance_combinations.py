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

import tempfile
from collections.abc import Sequence
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
from schemas.instance_plan import InstancePlan
from schemas.server import McpServer
from schemas.validated_task import InstanceCombination
from tasks.code_loop import LoopResult
from tasks.core.data_contract import table_seed
from tasks.core.instance_creation import (
    Candidate,
    creation_check,
    creation_request,
)
from tasks.core.instance_plans import ToolParameters
from tasks.core.instance_plans import tool_parameters as listed_parameters
from tasks.core.instance_selection import choose
from tasks.core.policy import filter_policy
from tasks.environment_build import materialize_environment
from tasks.instance_scripts import (
    ScriptJob,
    SelectionSettings,
    checked_plan,
    finished_loop,
    kept_outcome,
    template_combination,
)
from tasks.resources import ItemEnv
from tasks.runtime.database import Database
from tasks.runtime.fusion import served_spec
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
        plan = checked_plan(
            work,
            env.model(PLAN_MODEL),
            PLAN_PROMPT,
            _agent_parameters(target, servers),
            {name: frozenset(t.columns) for name, t in spec.tables.items()},
            context,
        )
        if not isinstance(plan, InstancePlan):
            return plan
        seed = table_seed(settings.seed, work.item_key)
        job = _CreationJob(
            llm=env.llm, key=work.item_key, settings=settings, plan=plan, seed=seed,
            context=context, spec=spec, base=base, folder=folder, template=template,
        )  # fmt: skip
        loop = finished_loop(work, job)
    if not isinstance(loop, LoopResult):
        return loop
    return kept_outcome(work, template, plan, loop, seed, loop.final.run.combinations)


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


@dataclass(frozen=True)
class _CreationJob(ScriptJob):
    """The creation code of one fused template as a `CodeJob`: a run passes
    when at least one created combination executed successfully."""

    write_prompt: ClassVar[str] = WRITE_PROMPT
    fix_prompt: ClassVar[str] = FIX_PROMPT
    fix_with_context: ClassVar[bool] = True
    script_name: ClassVar[str] = "creation script"
    exhausted: ClassVar[str] = (
        "no combination executed after {runs} run(s) of the creation code"
    )
    spec: EnvironmentSpec
    base: Database
    folder: Path
    template: Artifact[TaskTemplate]

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
        check = creation_check(self.sandboxed(request), self.plan, self.spec, self.base)
        if check.status != "ok":
            return CreationRun(check.status, problems=check.problems)
        return self._execute(check.candidates, check.rejected)

    def _execute(self, candidates: Sequence[Candidate], rejected: int) -> CreationRun:
        """Execute the sampled candidates, each in a fresh session with its
        overlay; keep those that passed."""
        tmpl = self.template.payload
        combos = [
            template_combination(
                self.template,
                candidate.selected,
                combo_id=candidate.combo_id(tmpl.source, tmpl.trajectory_hash),
                scope="cross_domain",
                sample_index=index,
                overlay=candidate.overlay,
            )
            for index, candidate in enumerate(
                choose(candidates, self.settings.cfg.samples_per_template, self.seed)
            )
        ]
        with open_environment(
            self.folder,
            tmpl.source,
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
