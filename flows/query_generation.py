"""Flow of s17 query generation: one checked user query per validated task.

Input: s16's agent tasks and s05's tool lists. Output: `user_query` artifacts
and, per environment, a `query_set` exported as `queries/<Environment>.jsonl`
(one reference-shaped record per line). A query whose values never check out
after the configured re-asks is a failed item naming the values; the run goes
on.
"""

from __future__ import annotations

from prefect import flow

from schemas.blueprint import ToolList
from schemas.report import StepReport
from schemas.run import RunRef
from schemas.validated_task import AgentTask
from tasks import query_generation as s17
from tasks.step_run import StepRun
from tasks.store.paths import queries_relpath


@flow(name="s17-query-generation", validate_parameters=False)
def generate_queries(run: RunRef) -> StepReport:
    """Write a user query for every validated task, then one JSONL per environment."""
    return query_step(StepRun("s17", run), "s16_task_filtering")


def query_step(step: StepRun, source: str) -> StepReport:
    """s17's work on the agent tasks of step `source`: s17 on s16's, s17x (the
    cross-domain pass) on s16x's; same config and prompt, one JSONL per
    environment."""
    cfg = step.config.steps.s17_query_generation
    llm = step.llm(cfg)
    tasks = step.store.load_outputs(source, AgentTask, kind="agent_task")
    tool_lists = {
        t.payload.server_name: t
        for t in step.store.load_outputs(
            "s05_tool_list_formulation", ToolList, kind="tool_list"
        )
    }
    works = [
        step.item(
            task.id,
            s17.write_query,
            inputs={
                "task": task,
                "tool_lists": [
                    tool_lists[s]
                    for s in (task.payload.domains or (task.payload.environment,))
                    if s in tool_lists
                ],
            },
            params={"cfg": cfg},
            llm=llm,
            prompts=[s17.QUERY_PROMPT],
        )
        for task in tasks
    ]
    outcomes = step.run_items(works)
    queries = [a for o in outcomes for a in o.artifacts]
    by_env: dict[str, list] = {}
    for query in queries:
        by_env.setdefault(query.payload.environment, []).append(query)
    collected = step.run_items(
        [
            step.item(
                f"set/{environment}",
                s17.collect_queries,
                inputs={"queries": group},
                params={"environment": environment},
            )
            for environment, group in sorted(by_env.items())
        ]
    )
    sets = [a for o in collected for a in o.artifacts]
    return step.finish(
        outputs=[*queries, *sets],
        exports={
            queries_relpath(s.id): (s, s17.queries_jsonl(s.payload)) for s in sets
        },
        note=f"{len(queries)} of {len(tasks)} validated task(s) got a query",
        inputs=len(tasks),
        produced=len(queries),
    )
