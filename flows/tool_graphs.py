"""Flow of s08 tool graph generation: one repaired DAG and its trajectories per
server that has a policy.

Input: s04's blueprints and s07's policies. Output: `tool_graph` artifacts, exported
as `tool_graphs/<Server>.json` (the reference node-link shape plus the root, the
repairs and the trajectory counts); the step note says how many trajectories each
server yields.
"""

from __future__ import annotations

import time

from prefect import flow

from schemas.policy import PolicyDocument
from schemas.report import StepReport
from tasks import inputs
from tasks import tool_graph_generation as s08
from tasks.context import lookup
from tasks.core.tool_graph import tool_graph_export
from tasks.core.tool_graph_paths import trajectory_stats
from tasks.fanout import StepTally, run_items
from tasks.items import work_item
from tasks.reporting import finish_step
from tasks.steps import resolve_step
from tasks.store.paths import tool_graph_relpath


@flow(name="s08-tool-graph-generation", validate_parameters=False)
def build_tool_graphs(run_token: str) -> StepReport:
    """Graph, preconditions and trajectories for every server with a policy."""
    ctx, info, started = lookup(run_token), resolve_step("s08"), time.perf_counter()
    cfg = ctx.config.steps.s08_tool_graph_generation
    llm = ctx.step_llm(s08.STEP, cfg)
    tally = StepTally(info.name)
    blueprints = {b.payload.server_name: b for b in inputs.blueprints(ctx.store)}
    policies = ctx.store.load_outputs(
        "s07_policy_generation", PolicyDocument, kind="policy"
    )
    calls = [
        (
            work_item(
                s08.STEP,
                policy.payload.server_name,
                inputs=[blueprints[policy.payload.server_name], policy],
                params=cfg,
                llm=llm,
                prompt_ids=[s08.GRAPH_PROMPT, s08.PRECONDITIONS_PROMPT],
                module=s08.__name__,
            ),
            {"blueprint": blueprints[policy.payload.server_name], "policy": policy},
        )
        for policy in policies
    ]
    outcomes = run_items(ctx, s08.derive_tool_graph, calls, tally)
    graphs = [a for o in outcomes for a in o.artifacts]
    counts = ", ".join(f"{g.id} {len(g.payload.trajectories)}" for g in graphs)
    without = sorted(set(blueprints) - {p.payload.server_name for p in policies})
    note = f"{len(graphs)} tool graph(s); trajectories per server: {counts or 'none'}"
    if without:
        note += f"; no policy for: {', '.join(without)}"
    return finish_step(
        ctx,
        info,
        tally,
        outputs=graphs,
        exports={
            tool_graph_relpath(g.id): (
                g,
                tool_graph_export(g.payload)
                | {"trajectory_stats": trajectory_stats(g.payload)},
            )
            for g in graphs
        },
        seconds=time.perf_counter() - started,
        note=note,
        inputs=len(policies),
        produced=len(graphs),
    )
