"""s15 planning: the templates to combine, their inputs, and the rounds.

Input: the run's store (s14 templates; s04 blueprints, s06 tables and
summaries, s07 policies, s09 servers with their live tool listings) and the
step's configuration. Output: one
`TemplateInputs` per single-domain template whose server has every input (the
others as `dependency_failed` items), and `run_rounds`: round 1 runs every
template; each later round runs only the templates that failed the round before,
under new item keys (so neither the Prefect cache nor the cassette serves the
old answer), until nothing fails, the failures shrink by less than
`min_progress_rate`, or `max_rounds` ran (reference 8.3). Only the last failure
of a template reaches the step's tally. A cross-domain template source (fused
environments, writing to a per-combination overlay) is another function
returning `TemplateInputs`. No side effects beyond reading the store and the
items' own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from schemas.agent_task import TaskTemplate
from schemas.artifact import Artifact, FailedItem, ItemOutcome, WorkItem
from schemas.config import InstanceConfig
from schemas.database import DataTable, TableSummary
from schemas.instance_plan import InstanceSelection
from schemas.policy import PolicyDocument
from tasks import inputs
from tasks import instance_combinations as s15
from tasks.core.combination_exports import (
    combinations_export,
    skipped_entry,
    skipped_export,
)
from tasks.core.instance_selection import keep_going
from tasks.core.server_tables import select_owned
from tasks.fanout import StepTally, run_items
from tasks.instance_scripts import SelectionSettings
from tasks.items import InputValue, dependency_failed
from tasks.step_run import StepRun
from tasks.store.artifacts import ArtifactStore
from tasks.store.paths import combinations_relpath, sampling_code_relpath
from tasks.task_args import TaskFunction

TEMPLATE_STEP = "s14_task_templates"


@dataclass(frozen=True)
class TemplateInputs:
    """A template with the artifacts its items read."""

    template: Artifact[TaskTemplate]
    artifacts: dict[str, InputValue] = field(default_factory=dict)

    @property
    def server(self) -> str:
        return self.template.payload.source


@dataclass
class Rounds:
    """What the rounds left: every outcome that succeeded, each template's last
    failure, and the failure count of each round."""

    succeeded: list[tuple[TemplateInputs, ItemOutcome]] = field(default_factory=list)
    failed: list[tuple[TemplateInputs, FailedItem]] = field(default_factory=list)
    failed_per_round: list[int] = field(default_factory=list)


def single_domain_templates(
    store: ArtifactStore,
) -> tuple[list[TemplateInputs], list[tuple[Artifact[TaskTemplate], FailedItem]]]:
    """Every single-domain template with its server's inputs; a template whose
    server lacks one is a `dependency_failed` item (with its template)."""
    templates = store.load_outputs(TEMPLATE_STEP, TaskTemplate, kind="task_template")
    blueprints = {b.payload.server_name: b for b in inputs.blueprints(store)}
    servers = inputs.servers_by_name(store)
    policies = {
        p.payload.server_name: p
        for p in store.load_outputs(
            "s07_policy_generation", PolicyDocument, kind="policy"
        )
    }
    tables = store.load_outputs("s06_database_generation", DataTable, kind="data_table")
    summaries = store.load_outputs(
        "s06_database_generation", TableSummary, kind="table_summary"
    )
    found, missing = [], []
    for template in templates:
        tmpl = template.payload
        if tmpl.is_cross_domain:
            continue
        server = tmpl.source
        blueprint = blueprints.get(server)
        owned, absent = (
            select_owned(blueprint.payload, tables) if blueprint else ((), ())
        )
        lacking = [
            name
            for name, ok in (
                ("a blueprint", blueprint is not None),
                ("a passing server build", server in servers),
                ("a policy", server in policies),
                ("every table", blueprint is not None and not absent),
            )
            if not ok
        ]
        if lacking:
            missing.append(unready_template(s15.STEP, template, lacking))
            continue
        assert blueprint is not None
        found.append(
            TemplateInputs(
                template,
                {
                    "server": servers[server],
                    "blueprint": blueprint,
                    "tables": owned,
                    "summaries": select_owned(blueprint.payload, summaries)[0],
                    "policy": policies[server],
                },
            )
        )
    return found, missing


def unready_template(
    step: str, template: Artifact[TaskTemplate], lacking: Sequence[str]
) -> tuple[Artifact[TaskTemplate], FailedItem]:
    """A template whose environment (`source`) lacks inputs, with the
    `dependency_failed` item of its first round."""
    tmpl = template.payload
    return template, dependency_failed(
        step,
        s15.item_key(tmpl.source, tmpl.trajectory_hash, 1),
        f"{tmpl.source} lacks {', '.join(lacking)}, so its template "
        f"{tmpl.trajectory_hash} gets no combinations",
    )


@dataclass(frozen=True)
class RoundItem:
    """Makes the item of one template in one round for a step's `task` (s15's
    selection, s15x's creation), its plan call on the plan role under
    `plan_model`."""

    task: TaskFunction
    plan_model: str
    prompts: tuple[str, ...]

    def __call__(
        self, step: StepRun, cfg: InstanceConfig, src: TemplateInputs, round_number: int
    ) -> WorkItem:
        tmpl = src.template.payload
        return step.item(
            s15.item_key(src.server, tmpl.trajectory_hash, round_number),
            self.task,
            inputs={"template": src.template, **src.artifacts},
            params={
                "settings": SelectionSettings(
                    cfg=cfg,
                    seed=step.config.run.seed,
                    simulation_time=step.config.run.simulation_time,
                ),
                "round_number": round_number,
            },
            llm=step.llm(cfg),
            models={self.plan_model: step.llm(s15.plan_model(cfg))},
            prompts=self.prompts,
        )


combination_item = RoundItem(
    s15.select_instance_combinations, s15.PLAN_MODEL, s15.PROMPTS
)
"""The s15 item of one template in one round."""

ItemBuilder = Callable[[StepRun, InstanceConfig, TemplateInputs, int], WorkItem]
"""Makes the item of one template in one round (s15's, or s15x's creation)."""


def run_rounds(
    step: StepRun,
    cfg: InstanceConfig,
    sources: Sequence[TemplateInputs],
    item: ItemBuilder | None = None,
) -> Rounds:
    """Run the rounds; the step's tally gets the successes and final failures.
    `item` builds each round's items (default: s15's `combination_item`)."""
    build = item or combination_item
    rounds = Rounds()
    pending = list(sources)
    number = 1
    while pending:
        works = [build(step, cfg, src, number) for src in pending]
        tally = StepTally(step.info.name)
        exports = {
            f"{s.server}/{s.template.payload.trajectory_hash}": combinations_relpath(
                s.server, s.template.payload.trajectory_hash
            )
            for s in pending
        }
        outcomes = run_items(step.run, works, tally, exports=exports)
        step.tally.ok += tally.ok
        step.tally.cached += tally.cached
        step.tally.items += tally.items
        again: list[tuple[TemplateInputs, FailedItem]] = []
        for src, outcome in zip(pending, outcomes, strict=True):
            if outcome.failure is None:
                rounds.succeeded.append((src, outcome))
            elif _final(outcome.failure):
                rounds.failed.append((src, outcome.failure))
            else:
                again.append((src, outcome.failure))
        rounds.failed_per_round.append(len(again))
        if not keep_going(
            rounds.failed_per_round,
            min_progress_rate=cfg.min_progress_rate,
            max_rounds=cfg.max_rounds,
        ):
            rounds.failed += again
            break
        pending = [src for src, _ in again]
        number += 1
    step.fail(*(failure for _, failure in rounds.failed))
    return rounds


def _final(failure: FailedItem) -> bool:
    """A failure another round cannot fix: the step stops on it, or an input is
    missing."""
    return failure.blocking or failure.reason == "dependency_failed"


def template_exports(
    rounds: Rounds, code_relpath: Callable[[str, str], str] = sampling_code_relpath
) -> dict[str, tuple[Artifact, Any]]:
    """`combinations/<Environment>/<hash>.json` and the script's file
    (`code_relpath`: `sampling_codes/<Server>/<hash>.py` for s15) of every
    template that got combinations (the selection artifact first)."""
    exports: dict[str, tuple[Artifact, Any]] = {}
    for src, outcome in rounds.succeeded:
        selection, *combos = outcome.artifacts
        sel: InstanceSelection = selection.payload
        tmpl = src.template.payload
        exports[combinations_relpath(sel.environment, sel.trajectory_hash)] = (
            selection,
            combinations_export(
                sel,
                tmpl.instruction,
                tmpl.reason_for_call,
                [c.payload for c in combos],
            ),
        )
        exports[code_relpath(sel.environment, sel.trajectory_hash)] = (
            selection,
            sel.script,
        )
    return exports


def skipped_trajectories(
    rounds: Rounds, unready: Sequence[tuple[Artifact[TaskTemplate], FailedItem]]
) -> dict[str, list[dict[str, Any]]]:
    """`_skipped_trajectories.json`: every template left without combinations."""
    failed = [(s.template, f) for s, f in rounds.failed] + list(unready)
    return skipped_export(
        (
            t.payload.source,
            skipped_entry(t.payload.trajectory, t.payload.trajectory_hash, f),
        )
        for t, f in failed
    )
