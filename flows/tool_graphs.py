"""Flow of s08 tool graph generation: one repaired DAG and its trajectories per
server that has a policy.

Input: s04's blueprints and s07's policies. Output: `tool_graph` artifacts, exported
as `tool_graphs/<Server>.json` (the reference node-link shape plus the root, the
repairs and the trajectory counts); the step note says how many trajectories each
server yields. A server without a policy is a failed item (`dependency_failed`)
and gets no model call.
"""

from __future__ import annotations

from prefect import flow

from schemas.policy import PolicyDocument
from schemas.report import StepReport
from schemas.run import RunRef
from tasks import inputs
from tasks import tool_graph_generation as s08
from tasks.core.tool_graph import tool_graph_export
from tasks.core.tool_graph_paths import trajectory_stats
from tasks.step_run import StepRun
from tasks.store.paths import tool_graph_relpath


@flow(name="s08-tool-graph-generation", validate_parameters=False)
def build_tool_graphs(run: RunRef) -> StepReport:
    """Graph, preconditions and trajectories for every server with a policy."""
    step = StepRun("s08", run)
    cfg = step.config.steps.s08_tool_graph_generation
    llm = step.llm(cfg)
    blueprints = {b.payload.server_name: b for b in inputs.blueprints(step.store)}
    policies = step.store.load_outputs(
        "s07_policy_generation", PolicyDocument, kind="policy"
    )
    outcomes = step.run_items(
        [
            step.item(
                policy.payload.server_name,
                s08.derive_tool_graph,
                inputs={
                    "blueprint": blueprints[policy.payload.server_name],
                    "policy": policy,
                },
                params={"cfg": cfg},
                llm=llm,
                prompts=[s08.GRAPH_PROMPT, s08.PRECONDITIONS_PROMPT],
            )
            for policy in policies
        ]
    )
    graphs = [a for o in outcomes for a in o.artifacts]
    counts = ", ".join(f"{g.id} {len(g.payload.trajectories)}" for g in graphs)
    without = sorted(set(blueprints) - {p.payload.server_name for p in policies})
    step.fail(*(s08.missing_policy_failure(name) for name in without))
    note = f"{len(graphs)} tool graph(s); trajectories per server: {counts or 'none'}"
    if without:
        note += f"; no policy for: {', '.join(without)}"
    return step.finish(
        outputs=graphs,
        exports={
            tool_graph_relpath(g.id): (
                g,
                tool_graph_export(g.payload)
                | {"trajectory_stats": trajectory_stats(g.payload)},
            )
            for g in graphs
        },
        note=note,
        inputs=len(policies),
        produced=len(graphs),
    )
