"""r01 rollouts: one conversation per (query, trial), tools run over MCP.

Input: a checked query (s17/s17x), its validated task (s16/s16x), the
environment's policy (s07 or s13) and the artifacts the environment is made of.
The environment runs in the sandboxed worker (`tasks.served_environments`, one
per process and build); the rollout gets its own fresh named session (started
from the task's overlay for a cross-domain task) and reaches it over MCP
(`tasks.runtime.tool_session`). The assistant is the configured model (system
prompt: the preamble and the policy; tools: the environment's) or a built-in
reference agent; the user is a persona-driven model (the query's system prompt)
or scripted. Every turn is a call keyed `r01/<query>/trial-<n>/<role>/<i>`, so
cassettes record and replay rollouts per turn. Output: a `rollout` artifact
with the conversation, stop metadata, models, tool mapping, usage and cost,
and the session's final state hash and diff; per environment a `rollout_set`
exported as `rollouts/<Environment>.jsonl`. An endpoint that fails raises (the
item is not cached, so the next run retries it); an environment that stops
answering is a machinery failure, also retried. Side effects: model calls,
tool calls in the rollout's own session.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from schemas.artifact import Artifact, ItemOutcome, WorkItem
from schemas.blueprint import ServerBlueprint
from schemas.config import RolloutConfig
from schemas.database import DataTable
from schemas.entity import EntityCatalogue
from schemas.fusion import MergedPolicy
from schemas.policy import PolicyDocument
from schemas.rollout import (
    ChatMessage,
    Rollout,
    RolloutSet,
    TokenUsage,
    ToolCall,
    ToolRoute,
)
from schemas.server import McpServer
from schemas.validated_task import AgentTask, UserQuery
from tasks.core import reference_agents as agents
from tasks.core.conversation import Assistant, Conversation, converse, user_view
from tasks.items import producer
from tasks.llm.bound import StepLLM
from tasks.machinery import MachineryError
from tasks.resources import ItemEnv
from tasks.runtime.overlay import OverlayError
from tasks.runtime.sandboxed_environment import (
    SandboxedEnvironment,
    WorkerFailure,
    WorkerStartError,
)
from tasks.runtime.tool_session import EnvironmentLost, ToolSession
from tasks.served_environments import EnvironmentBuild, served_environment

STEP = "r01"
USER_PROMPT = "rollout/user_simulator"
ASSISTANT_PROMPT = "rollout/assistant_system"


def converse_rollout(
    work: WorkItem,
    env: ItemEnv,
    *,
    cfg: RolloutConfig,
    trial: int,
    query: Artifact[UserQuery],
    task: Artifact[AgentTask],
    policy: tuple[Artifact[PolicyDocument], ...],
    merged_policy: tuple[Artifact[MergedPolicy], ...],
    blueprints: tuple[Artifact[ServerBlueprint], ...],
    catalogue: Artifact[EntityCatalogue],
    tables: tuple[Artifact[DataTable], ...],
    servers: tuple[Artifact[McpServer], ...],
) -> ItemOutcome:
    """Run one trial of one query to its end; the rollout artifact."""
    agent_task = task.payload
    served = served_environment(
        environment_build(cfg, agent_task, blueprints, catalogue, tables, servers)
    )
    session = f"rollout-{uuid.uuid4().hex}"
    texts = [p.payload.markdown for p in (*policy, *merged_policy)]
    ledger = _Usage()
    system = env.prompts.render(ASSISTANT_PROMPT, policy="\n\n".join(texts)).text
    restarts = served.environment.restarts
    try:
        with (
            _ended(served.environment, session),
            ToolSession(served.link, session) as tools,
        ):
            opened = _OpenedSession(served.environment, session, agent_task.overlay)
            done = _converse(
                work, env, cfg, query.payload, agent_task, tools, system, ledger, opened
            )
            offered = tools.tools()
            opened.open()
            # The last state is read as the session is forgotten (one exchange).
            final = served.environment.end_session(session, ("state_hash", "diff"))
            format_errors = tools.format_errors
        if final.state_hash is None or final.diff is None:
            raise WorkerFailure("it did not report the session's final state")
        if served.environment.restarts != restarts:
            raise WorkerFailure(
                "its worker was restarted during the rollout, so a tool call may "
                "have failed for a reason that is not the assistant's"
            )
    except (EnvironmentLost, WorkerFailure, WorkerStartError, OverlayError) as exc:
        raise MachineryError(
            f"rollout {work.item_key}",
            f"its environment {agent_task.environment} failed: {exc}",
            "run again; the rollout restarts from its first message in a fresh session",
        ) from exc
    rollout = Rollout(
        id=query.payload.id,
        trial=trial,
        environment=agent_task.environment,
        messages=done.messages,
        success=True,
        stopped=bool(done.reply and done.reply.stopped),
        transferred=bool(done.reply and done.reply.transferred),
        out_of_scope=bool(done.reply and done.reply.out_of_scope),
        reached_max_turns=done.reached_max_turns,
        stop_reason="max_turns" if done.reached_max_turns else "user_token",
        total_turns=done.total_turns,
        has_reasoning=any(m.reasoning_content for m in done.messages),
        models=ledger.models,
        tool_names=_routes(served.environment),
        usage=ledger.usage,
        system_prompt=system,
        tools=tuple(offered),
        format_errors=format_errors,
        final_state_hash=final.state_hash,
        final_diff=final.diff,
    )
    artifact = Artifact[Rollout].build(
        kind="rollout",
        id=work.item_key,
        payload=rollout,
        parents=[query.ref, task.ref, *(p.ref for p in (*policy, *merged_policy))],
        producer=producer(work, seed=agent_task.seed),
    )
    return ItemOutcome(item_key=work.item_key, artifacts=(artifact,))


def environment_build(
    cfg: RolloutConfig,
    task: AgentTask,
    blueprints: Sequence[Artifact[ServerBlueprint]],
    catalogue: Artifact[EntityCatalogue],
    tables: Sequence[Artifact[DataTable]],
    servers: Sequence[Artifact[McpServer]],
) -> EnvironmentBuild:
    """The served environment a rollout of `task` runs in."""
    return EnvironmentBuild(
        environment=task.environment,
        blueprints=tuple(blueprints),
        catalogue=catalogue,
        tables=tuple(tables),
        servers=tuple(servers),
        simulation_time=task.simulation_time,
        seed=task.seed,
        call_timeout_s=cfg.tool_timeout_s,
    )


@contextlib.contextmanager
def _ended(environment: SandboxedEnvironment, session: str) -> Iterator[None]:
    """The rollout's session is forgotten by the worker however the rollout
    ends (a finished one reads its last state as it ends it; this ends one cut
    short), so a long step's worker holds only the sessions of rollouts in
    flight. A worker that cannot answer here has nothing of the session left
    to restore, and the rollout's own error is the one raised."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(WorkerFailure):
            environment.end_session(session)
        raise


class _OpenedSession:
    """The rollout's session, opened at its first use: the environment's worker
    has booted (it boots while the first model call is in flight) and a
    cross-domain task's overlay is in place."""

    def __init__(
        self, environment: SandboxedEnvironment, session: str, overlay: Any
    ) -> None:
        self._environment = environment
        self._session = session
        self._overlay = overlay
        self._open = False

    def open(self) -> None:
        """Raises:
        WorkerStartError, WorkerFailure, OverlayError: the environment failed."""
        if self._open:
            return
        self._environment.ready()
        if self._overlay:
            self._environment.start_session(self._session, self._overlay)
        self._open = True


class _Usage:
    """Tokens and cost per role of one rollout."""

    def __init__(self) -> None:
        self.models: dict[str, str] = {}
        self.usage: dict[str, TokenUsage] = {}

    def add(self, role: str, llm: StepLLM, reply: Any) -> None:
        self.models[role] = reply.model
        old = self.usage.get(role, TokenUsage())
        self.usage[role] = TokenUsage(
            calls=old.calls + 1,
            prompt_tokens=old.prompt_tokens + reply.prompt_tokens,
            completion_tokens=old.completion_tokens + reply.completion_tokens,
            cost_usd=old.cost_usd
            + llm.cost_usd(reply.prompt_tokens, reply.completion_tokens),
        )


def _converse(
    work: WorkItem,
    env: ItemEnv,
    cfg: RolloutConfig,
    query: UserQuery,
    task: AgentTask,
    tools: ToolSession,
    system: str,
    ledger: _Usage,
    opened: _OpenedSession,
) -> Conversation:
    offered = tools.tools()
    writes = tools.write_tools()
    opening = tuple(ChatMessage(role="user", content=m.content) for m in query.messages)

    def execute(calls: Sequence[ToolCall]) -> list[ChatMessage]:
        opened.open()
        return tools.call_all(calls)

    return converse(
        opening,
        assistant=_assistant(work, env, cfg, task, (offered, writes), system, ledger),
        user=_user(work, env, cfg, query, ledger),
        execute=execute,
        max_turns=cfg.max_turns,
        max_steps_per_turn=cfg.max_steps_per_turn,
    )


def _assistant(
    work: WorkItem,
    env: ItemEnv,
    cfg: RolloutConfig,
    task: AgentTask,
    tools: tuple[list[dict[str, Any]], frozenset[str]],
    system: str,
    ledger: _Usage,
) -> Assistant:
    offered, writes = tools
    if cfg.assistant == "oracle":
        ledger.models["assistant"] = "builtin:oracle"
        return agents.oracle(task)
    if cfg.assistant == "do_nothing":
        ledger.models["assistant"] = "builtin:do_nothing"
        return agents.do_nothing(task)
    if cfg.assistant == "wrong_argument":
        ledger.models["assistant"] = "builtin:wrong_argument"
        return agents.wrong_argument(task, writes, offered)
    llm = env.model("assistant")
    turns = iter(range(10**9))

    def answer(messages: Sequence[ChatMessage]) -> ChatMessage:
        prompt = [{"role": "system", "content": system}]
        prompt += [m.openai() for m in messages]
        reply = llm.chat(
            prompt, item_key=f"{work.item_key}/assistant/{next(turns)}", tools=offered
        )
        ledger.add("assistant", llm, reply)
        return reply.message

    return answer


def _user(
    work: WorkItem, env: ItemEnv, cfg: RolloutConfig, query: UserQuery, ledger: _Usage
) -> Callable[[Sequence[ChatMessage]], str]:
    if cfg.user == "scripted":
        ledger.models["user"] = "builtin:scripted_user"
        return lambda messages: agents.scripted_user([])
    llm = env.model("user")
    persona = env.prompts.render(
        USER_PROMPT,
        scenario=query.user_system_prompt,
        stop="###STOP###",
        transfer="###TRANSFER###",
        out_of_scope="###OUT-OF-SCOPE###",
    ).text
    turns = iter(range(10**9))

    def reply(messages: Sequence[ChatMessage]) -> str:
        answer = llm.chat(
            user_view(persona, messages), item_key=f"{work.item_key}/user/{next(turns)}"
        )
        ledger.add("user", llm, answer)
        return answer.message.content or ""

    return reply


def _routes(served: SandboxedEnvironment) -> dict[str, ToolRoute]:
    """Agent tool name -> (server, tool), for a single server as for a fused one."""
    if served.fused is not None:
        return {
            name: ToolRoute(server=route.server, tool=route.tool)
            for name, route in sorted(served.fused.tools.items())
        }
    server = served.spec.name
    return {t.name: ToolRoute(server=server, tool=t.name) for t in served.spec.tools}


def collect_rollouts(
    work: WorkItem,
    env: ItemEnv,
    *,
    environment: str,
    rollouts: tuple[Artifact[Rollout], ...],
) -> ItemOutcome:
    """The rollout set of one environment (its JSONL export), by query and trial."""
    del env
    ordered = sorted(rollouts, key=lambda r: (r.payload.id, r.payload.trial))
    artifact = Artifact[RolloutSet].build(
        kind="rollout_set",
        id=environment,
        payload=RolloutSet(
            environment=environment, rollouts=tuple(r.payload for r in ordered)
        ),
        parents=[r.ref for r in ordered],
        producer=producer(work),
    )
    return ItemOutcome(item_key=work.item_key, artifacts=(artifact,))


def rollouts_jsonl(rollouts: Sequence[Rollout]) -> str:
    """`rollouts/<Environment>.jsonl`: one reference-shaped record per line."""
    return "".join(json.dumps(r.record(), ensure_ascii=False) + "\n" for r in rollouts)
