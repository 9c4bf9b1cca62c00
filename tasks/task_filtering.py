"""s16 task filtering: every combination's golden trajectory runs for real.

Input: one environment's s15 `instance_combination`s and the artifacts the
environment is made of (the members' blueprints, the catalogue, their data
tables and built servers). The environment is materialised from those artifacts
in a private folder (so the work item is all the task reads), started in the
sandbox and served over MCP in memory; each combination runs in one fresh named
session (`tasks.runtime.golden_run`): its arguments bound declaratively, every
call must succeed and every write must change the state. Output: one
`agent_task` per passing combination (golden calls with concrete arguments, the
expected final state hash and diff) and a `task_filter_report` with every
combination's result, filtered-out ones with their typed reason. Nothing is
cached per trajectory: a combination passes only by being executed. Side
effects: the sandboxed worker and a temporary folder, both gone afterwards.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from schemas.artifact import Artifact, ItemOutcome, WorkItem
from schemas.blueprint import ServerBlueprint
from schemas.config import TaskFilterConfig
from schemas.database import DataTable
from schemas.entity import EntityCatalogue
from schemas.environment import DatabaseDiff
from schemas.fusion import members
from schemas.golden import GoldenRun, PlannedCall
from schemas.server import McpServer
from schemas.validated_task import (
    AgentTask,
    CombinationResult,
    InstanceCombination,
    TaskFilterReport,
)
from tasks.environment_build import materialize_environment
from tasks.items import producer
from tasks.resources import ItemEnv
from tasks.runtime.golden_run import run_each, sent_last_call
from tasks.runtime.mcp_exposure import build_mcp_server
from tasks.runtime.overlay import Overlay, OverlayError
from tasks.runtime.sandboxed_environment import SandboxedEnvironment, WorkerFailure
from tasks.runtime.serve import open_environment

Instances = Mapping[str, Mapping[str, Any]]

STEP = "s16"


def validate_combinations(
    work: WorkItem,
    env: ItemEnv,
    *,
    cfg: TaskFilterConfig,
    simulation_time: str,
    seed: int,
    environment: str,
    combinations: tuple[Artifact[InstanceCombination], ...],
    blueprints: tuple[Artifact[ServerBlueprint], ...],
    catalogue: Artifact[EntityCatalogue],
    tables: tuple[Artifact[DataTable], ...],
    servers: tuple[Artifact[McpServer], ...],
) -> ItemOutcome:
    """Execute every combination of one environment; keep those that pass."""
    del env
    with tempfile.TemporaryDirectory(prefix="agentskiller-s16-") as scratch:
        folder = materialize_environment(
            Path(scratch),
            blueprints=blueprints,
            catalogue=catalogue,
            tables=tables,
            servers=servers,
        )
        runs = execute(folder, environment, combinations, cfg, simulation_time, seed)
    made = producer(work, seed=seed)
    tasks = [
        Artifact[AgentTask].build(
            kind="agent_task",
            id=combo.payload.combo_id,
            payload=agent_task(combo.payload, run, diff, simulation_time, seed),
            parents=[combo.ref, *(s.ref for s in servers)],
            producer=made,
        )
        for combo, (run, diff) in zip(combinations, runs, strict=True)
        if run.passed and diff is not None
    ]
    report = Artifact[TaskFilterReport].build(
        kind="task_filter_report",
        id=environment,
        payload=TaskFilterReport(
            environment=environment,
            results=tuple(
                result(c.payload, run)
                for c, (run, _) in zip(combinations, runs, strict=True)
            ),
        ),
        parents=[c.ref for c in combinations],
        producer=made,
    )
    return ItemOutcome(item_key=work.item_key, artifacts=(*tasks, report))


def execute(
    folder: Path,
    environment: str,
    combinations: Sequence[Artifact[InstanceCombination]],
    cfg: TaskFilterConfig,
    simulation_time: str,
    seed: int,
) -> list[tuple[GoldenRun, DatabaseDiff | None]]:
    """Serve the environment from `folder` and run every combination in its own
    session over an in-memory MCP connection (see `run_combinations`)."""
    with open_environment(
        folder,
        environment,
        simulation_time=simulation_time,
        seed=seed,
        call_timeout_s=cfg.call_timeout_s,
    ) as served:
        return run_combinations(served, [c.payload for c in combinations])


def run_combinations(
    served: SandboxedEnvironment, combinations: Sequence[InstanceCombination]
) -> list[tuple[GoldenRun, DatabaseDiff | None]]:
    """Run every combination in its own fresh session of `served`, in order; a
    combination with an overlay first has its session started from base +
    overlay through the runtime (no tool an agent could see), and one whose
    overlay is refused fails typed ("overlay") without a call. Session names
    are `golden-<combo_id>`, so each combination runs at most once per
    environment. Each session ends once its run is done (with its last call,
    or after the run for one that stopped early), so the worker holds only
    the session in use however many combinations there are."""
    done: dict[int, tuple[GoldenRun, DatabaseDiff | None]] = {}
    plans: list[tuple[str, Sequence[PlannedCall], Instances]] = []
    started: list[str] = []
    order: list[int] = []
    for index, combo in enumerate(combinations):
        session = f"golden-{combo.combo_id}"
        refused = start_overlay(served, session, combo.overlay)
        if refused is not None:
            done[index] = (refused, None)
            continue
        plans.append((session, combo.calls, combo.instances))
        started += [session] if combo.overlay else []
        order.append(index)

    async def main() -> list[tuple[GoldenRun, DatabaseDiff | None]]:
        async with Client(build_mcp_server(served)) as client:
            return await run_each(client, plans, started=started, end=True)

    runs = anyio.run(main)
    for (session, calls, _), (run, _) in zip(plans, runs, strict=True):
        if not sent_last_call(run, calls):
            # A run that stopped early still holds its session; a worker that
            # cannot answer keeps nothing of it to restore.
            with contextlib.suppress(WorkerFailure):
                served.end_session(session)
    done |= dict(zip(order, runs, strict=True))
    return [done[index] for index in range(len(combinations))]


def start_overlay(
    served: SandboxedEnvironment, session: str, overlay: Overlay
) -> GoldenRun | None:
    """Start `session` from base + `overlay` (nothing to do without one); the
    failed run of a refused overlay, or None."""
    if not overlay:
        return None
    try:
        served.start_session(session, overlay)
    except (OverlayError, WorkerFailure) as exc:
        return GoldenRun(session=session, steps=(), failure="overlay", message=str(exc))
    return None


def agent_task(
    combo: InstanceCombination,
    run: GoldenRun,
    diff: DatabaseDiff,
    simulation_time: str,
    seed: int,
) -> AgentTask:
    """The validated task a passing run makes of its combination."""
    return AgentTask(
        combo_id=combo.combo_id,
        environment=combo.environment,
        scope=combo.scope,
        domains=members(combo.environment) if combo.scope == "cross_domain" else (),
        template_id=combo.template_id,
        trajectory=combo.trajectory,
        trajectory_hash=combo.trajectory_hash,
        instruction=combo.instruction,
        reason_for_call=combo.reason_for_call,
        instances=combo.instances,
        overlay=combo.overlay,
        calls=combo.calls,
        golden_calls=run.calls,
        expected_state_hash=run.final_state_hash or "",
        expected_diff=diff,
        simulation_time=simulation_time,
        seed=seed,
    )


def result(combo: InstanceCombination, run: GoldenRun) -> CombinationResult:
    return CombinationResult(
        combo_id=combo.combo_id,
        trajectory_hash=combo.trajectory_hash,
        passed=run.passed,
        failure=run.failure,
        message=run.message,
        calls=len(run.calls),
    )
