"""Flow of s12 database fusion: one fused environment per server combination.

Input: s10's server combinations, s04's blueprints, s02's catalogue, s07's
policies and s09's servers. Output: `fused_environment` artifacts, exported as
`database/outputs/fused/<Fused>.json`. No model call; a combination with a
member that has no build or no policy is a `dependency_failed` item.
"""

from __future__ import annotations

from prefect import flow

from schemas.fusion import ServerCombination
from schemas.policy import PolicyDocument
from schemas.report import StepReport
from schemas.run import RunRef
from schemas.server import McpServer
from tasks import database_fusion as s12
from tasks import inputs
from tasks.step_run import StepRun
from tasks.store.paths import fused_environment_relpath


@flow(name="s12-database-fusion", validate_parameters=False)
def fuse_databases(run: RunRef) -> StepReport:
    """Derive the fused environment of every chosen combination."""
    step = StepRun("s12", run)
    combos = step.store.load_outputs(
        "s10_combination_selection", ServerCombination, kind="server_combination"
    )
    blueprints = {b.payload.server_name: b for b in inputs.blueprints(step.store)}
    policies = {
        p.payload.server_name: p
        for p in step.store.load_outputs(
            "s07_policy_generation", PolicyDocument, kind="policy"
        )
    }
    servers = {
        s.id: s
        for s in step.store.load_outputs(
            "s09_mcp_server_implementation", McpServer, kind="mcp_server"
        )
    }
    catalogue = inputs.entity_catalogue(step.store)
    works = []
    for combo in combos:
        members = combo.payload.servers
        lacking = [
            s
            for s in members
            if s not in servers or s not in policies or s not in blueprints
        ]
        if lacking:
            step.fail(s12.unbuilt_members_failure(combo.payload.name, lacking))
            continue
        works.append(
            step.item(
                combo.payload.name,
                s12.fuse_databases,
                inputs={
                    "combination": combo,
                    "blueprints": [blueprints[s] for s in members],
                    "catalogue": catalogue,
                    "policies": [policies[s] for s in members],
                    "servers": [servers[s] for s in members],
                },
                params={
                    "simulation_time": step.config.run.simulation_time,
                    "seed": step.config.run.seed,
                },
            )
        )
    outcomes = step.run_items(works)
    fused = [a for o in outcomes for a in o.artifacts]
    return step.finish(
        outputs=fused,
        exports={
            fused_environment_relpath(f.id): (f, f.payload.model_dump(mode="json"))
            for f in fused
        },
        note=f"{len(fused)} fused environment(s), {step.tally.failed} failed",
        inputs=len(combos),
        produced=len(fused),
    )
