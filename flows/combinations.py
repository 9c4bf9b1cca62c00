"""Flow of s10 combination selection: which passing servers are fused (no model).

Input: s09's passing servers (`mcp_server`), their s04 blueprints and s03's entity
graph. Output: one `combination_selection` (every candidate, scored) and one
`server_combination` per chosen combination. Exports:
`cross_domain_combinations/_combinations.json` (the reference format plus a
`score`) and `cross_domain_combinations/_candidates.json` (every candidate's score
parts and status).
"""

from __future__ import annotations

from prefect import flow

from schemas.entity import EntityGraph
from schemas.report import StepReport
from schemas.run import RunRef
from schemas.server import McpServer
from tasks import combination_selection as s10
from tasks import inputs
from tasks.step_run import StepRun


@flow(name="s10-combination-selection", validate_parameters=False)
def select_combinations(run: RunRef) -> StepReport:
    """Score every group of passing servers that serve one user; choose some."""
    step = StepRun("s10", run)
    cfg = step.config.steps.s10_combination_selection
    servers = step.store.load_outputs(
        "s09_mcp_server_implementation", McpServer, kind="mcp_server"
    )
    passing = {s.id for s in servers}
    blueprints = [b for b in inputs.blueprints(step.store) if b.id in passing]
    [graph] = step.store.load_outputs(
        "s03_entity_graph", EntityGraph, kind="entity_graph"
    )
    work = step.item(
        "select",
        s10.select_combinations,
        inputs={"servers": servers, "blueprints": blueprints, "graph": graph},
        params={
            "cfg": cfg,
            "seed": step.config.run.seed,
            "embedder": step.res.embedder.name,
        },
    )
    [outcome] = step.run_items([work])
    selection, chosen = s10.split_outcome(outcome)
    candidates = len(selection.payload.candidates) if selection else 0
    return step.finish(
        outputs=[*([selection] if selection else []), *chosen],
        exports=s10.selection_exports(selection, blueprints) if selection else {},
        note=f"{len(chosen)} of {candidates} candidate(s) chosen from "
        f"{len(servers)} passing server(s)",
        inputs=len(servers),
        produced=len(chosen),
    )
