"""s17 query generation: one user query per validated agent task.

Input: an s16 `agent_task` and the s05 tool lists of its environment's servers.
Output: a `user_query` artifact (`UserQuery`, the reference JSONL record plus
the environment, the expected final state hash and a lineage reference), and per
environment a `query_set` exported as `queries/<Environment>.jsonl`. The model
marks every concrete value as [[value]]; a draft that states a value the task's
data does not hold, or leaves out one the user must give, is re-asked with the
exact values (`tasks.core.query_checks`); after `max_attempts` the query is
dropped as a failed item naming them. The user sees the texts without markers;
`task_info.instruction` keeps them. Side effects: model calls only.
"""

from __future__ import annotations

import json
from typing import Any

from schemas.artifact import Artifact, ItemOutcome, WorkItem
from schemas.blueprint import ToolList
from schemas.config import QueryConfig
from schemas.fusion import agent_tool_names, dotted_tool_name
from schemas.validated_task import (
    AgentTask,
    QueryDraft,
    QueryLineage,
    QueryMessage,
    QuerySet,
    QueryTaskInfo,
    UserQuery,
)
from tasks.core.queries import known_info, query_id, user_system_prompt
from tasks.core.query_checks import query_problems, required_values, unmark
from tasks.items import invalid_output, producer
from tasks.llm.errors import InvalidModelOutput
from tasks.resources import ItemEnv

STEP = "s17"
QUERY_PROMPT = "s17/write_query"


def write_query(
    work: WorkItem,
    env: ItemEnv,
    *,
    cfg: QueryConfig,
    task: Artifact[AgentTask],
    tool_lists: tuple[Artifact[ToolList], ...],
) -> ItemOutcome:
    """The user query of one validated task, or its typed failure."""
    agent_task = task.payload
    instances, calls = agent_task.instances, agent_task.calls
    known = known_info(instances)
    try:
        answer = env.llm.ask(
            QUERY_PROMPT,
            QueryDraft,
            item_key=f"query/{work.item_key}",
            check=lambda draft: query_problems(draft, instances, calls),
            max_retries=cfg.max_attempts,
            environment=agent_task.environment,
            calls=[_shown(c) for c in agent_task.golden_calls],
            tools=_tools(agent_task, [t.payload for t in tool_lists]),
            instruction=agent_task.instruction,
            reason_for_call=agent_task.reason_for_call,
            known_info=known,
            required=required_values(instances, calls),
        )
    except InvalidModelOutput as exc:
        return invalid_output(work, exc)
    draft = answer.value
    query = UserQuery(
        id=query_id(agent_task.environment, agent_task.combo_id),
        messages=(QueryMessage(content=unmark(draft.start_up_query)),),
        user_system_prompt=user_system_prompt(
            unmark(draft.reason_for_call), unmark(draft.instruction), known
        ),
        task_info=QueryTaskInfo(
            trajectory=_reference_trajectory(
                agent_task, [t.payload for t in tool_lists]
            ),
            instruction=draft.instruction,
            reason_for_call=draft.reason_for_call,
            known_info=known,
            trajectory_hash=agent_task.trajectory_hash,
            combo_id=agent_task.combo_id,
        ),
        environment=agent_task.environment,
        expected_state_hash=agent_task.expected_state_hash,
        lineage=QueryLineage(id=task.id, content_hash=task.content_hash),
    )
    artifact = Artifact[UserQuery].build(
        kind="user_query",
        id=query.id,
        payload=query,
        parents=[task.ref, *(t.ref for t in tool_lists)],
        producer=producer(work, prompt=answer.prompt, model_id=answer.model_id),
    )
    return ItemOutcome(item_key=work.item_key, artifacts=(artifact,))


def collect_queries(
    work: WorkItem,
    env: ItemEnv,
    *,
    environment: str,
    queries: tuple[Artifact[UserQuery], ...],
) -> ItemOutcome:
    """The query set of one environment (its JSONL export), ordered by id."""
    del env
    ordered = sorted(queries, key=lambda q: q.payload.id)
    artifact = Artifact[QuerySet].build(
        kind="query_set",
        id=environment,
        payload=QuerySet(
            environment=environment, queries=tuple(q.payload for q in ordered)
        ),
        parents=[q.ref for q in ordered],
        producer=producer(work),
    )
    return ItemOutcome(item_key=work.item_key, artifacts=(artifact,))


def queries_jsonl(query_set: QuerySet) -> str:
    """`queries/<Environment>.jsonl`: one record per line."""
    return "".join(
        json.dumps(q.model_dump(mode="json"), ensure_ascii=False, sort_keys=True) + "\n"
        for q in query_set.queries
    )


def _shown(call: Any) -> Any:
    """A golden call as the prompt shows it: the confirmation flag is the
    assistant's business, so it is left out."""
    arguments = {k: v for k, v in call.arguments.items() if k != "confirm"}
    return call.model_copy(update={"arguments": arguments})


def _functions(
    task: AgentTask, lists: list[ToolList]
) -> dict[str, tuple[tuple[str, str], dict[str, Any]]]:
    """Each tool name the agent sees (bare for one server, qualified across
    servers) -> ((server, tool), its OpenAI function)."""
    functions = {
        (tool_list.server_name, tool.function["name"]): tool.function
        for tool_list in lists
        for tool in tool_list.tools
    }
    if task.scope == "single":
        return {key[1]: (key, function) for key, function in functions.items()}
    return {
        name: (key, functions[key])
        for name, key in agent_tool_names(list(functions)).items()
    }


def _tools(task: AgentTask, lists: list[ToolList]) -> list[dict[str, Any]]:
    """Name, description and parameters of each tool the trajectory calls."""
    known = _functions(task, lists)
    shown = []
    for name in dict.fromkeys(task.trajectory):
        if name not in known:
            continue
        function = known[name][1]
        parameters = function.get("parameters", {})
        shown.append(
            {
                "name": name,
                "description": function.get("description", ""),
                "parameters": parameters.get("properties", {}),
                "required": parameters.get("required", []),
            }
        )
    return shown


def _reference_trajectory(task: AgentTask, lists: list[ToolList]) -> tuple[str, ...]:
    """The trajectory as the original wrote it: bare tool names for a single
    server, `Server.tool` across servers."""
    if task.scope == "single":
        return task.trajectory
    known = _functions(task, lists)
    return tuple(
        dotted_tool_name(*known[name][0]) if name in known else name
        for name in task.trajectory
    )
