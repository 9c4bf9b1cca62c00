"""Episodes: one verified task as an isolated, scored conversation with its
environment, for our rollouts and for anyone training agents.

Input: an output directory (or an `EnvironmentPool` over one) and a query id.
`Episode.start` finds the query and its s16 task, gets a served process of the
task's environment from the pool (one per environment, clock, seed and overlay;
a private pool of one process when none is given) and names a fresh runtime
session for the episode. The episode gives what an agent needs: the tools in
OpenAI format (from the live server's `list_tools`), the policy as system
prompt, and the conversation so far (starting with the query's user message).
`step` runs one OpenAI tool call in the episode's session and appends the tool
message: the tool's JSON text, or `{"error": "..."}` for a tool error, an
unknown tool or arguments that are not a JSON object (counted as format errors).
`finish` reads the session's final state hash and diff from the environment's
MCP resources, builds the `Rollout` and returns its `EvaluationResult`
(`tasks.core.evaluation.evaluate_rollout`); `reward` is its composite score. A
served process that dies makes `step` raise `EnvironmentLost`; the episode's
rollout then has no final state and never passes. The API is synchronous
(the MCP client lives in the pool's event loop); `a`-prefixed twins await it
from async code. Side effects: tool calls in the episode's session only.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio
from mcp.shared.exceptions import MCPError

from schemas.environment import DatabaseDiff
from schemas.evaluation import EvaluationResult
from schemas.rollout import ChatMessage, Rollout, ToolCall
from schemas.validated_task import AgentTask, UserQuery
from tasks.core.conversation import Conversation
from tasks.runtime.chat import (
    arguments_error,
    as_tool_call,
    error_content,
    openai_tool,
    parse_arguments,
    result_content,
)
from tasks.runtime.environment_pool import EnvironmentPool
from tasks.runtime.served_environment import EnvironmentLost, ServedEnvironment
from tasks.runtime.served_task import policy_text, tool_routes
from tasks.runtime.transcript import MessageLike, Transcript

ToolCallLike = ToolCall | Mapping[str, Any] | Any


class Episode:
    """One isolated session of a query's environment and its conversation.

    Attributes:
        episode_id: Also the name of its runtime session (unguessable: knowing
            it is what lets another client join the session).
        query: The user query.
        task: The validated task (golden calls, expected state).
        tools: The environment's tools as OpenAI function tools.
        write_tools: Names of the tools that change state.
        system_prompt: The environment's policy.
        transcript: The conversation and how it ended (`messages`,
            `format_errors` and `stopped` read it).
        lost: Why the environment went away, if it did.
    """

    def __init__(
        self,
        pool: EnvironmentPool,
        served: ServedEnvironment,
        query: UserQuery,
        task: AgentTask,
        *,
        episode_id: str,
        trial: int = 0,
        models: Mapping[str, str] | None = None,
        owns_pool: bool = False,
    ) -> None:
        self.pool = pool
        self.query = query
        self.task = task
        self.episode_id = episode_id
        self.trial = trial
        self.models = dict(models or {})
        self.tools = [openai_tool(tool) for tool in served.tools]
        self.write_tools = served.write_tools
        self.system_prompt = policy_text(pool.output_dir, task.environment)
        self.transcript = Transcript(
            [ChatMessage(role="user", content=m.content) for m in query.messages]
        )
        self.lost: EnvironmentLost | None = None
        self._served: ServedEnvironment | None = served
        self._owns_pool = owns_pool
        self._rollout: Rollout | None = None

    @classmethod
    def start(
        cls,
        output_dir: Path,
        query_id: str,
        *,
        pool: EnvironmentPool | None = None,
        trial: int = 0,
        models: Mapping[str, str] | None = None,
        episode_id: str | None = None,
    ) -> Episode:
        """Start an episode of a query in a fresh session.

        Args:
            output_dir: The pipeline's output root.
            query_id: The query's id (`queries/*.jsonl`).
            pool: Served environments to share (same output root); default a
                private one, closed with the episode.
            trial: The trial index its rollout records.
            models: Role -> model, for the rollout record.
            episode_id: The session name (default: a new unguessable one).

        Returns:
            The episode; use it as a context manager or `close` it.

        Raises:
            QueryNotFound: If no query has this id.
            StoreError: If the query's task artifact is missing or corrupt.
            EnvironmentStartError: If the environment cannot be started.
            FileNotFoundError: If the environment has no policy.
        """
        owns_pool = pool is None
        if pool is None:
            pool = EnvironmentPool(output_dir)
        elif Path(output_dir).resolve() != pool.output_dir.resolve():
            raise ValueError(f"the pool serves {pool.output_dir}, not {output_dir}")
        served: ServedEnvironment | None = None
        try:
            query, task = pool.lookup(query_id)
            served = pool.acquire(task)
            return cls(
                pool,
                served,
                query,
                task,
                episode_id=episode_id or f"ep-{secrets.token_hex(16)}",
                trial=trial,
                models=models,
                owns_pool=owns_pool,
            )
        except BaseException:
            if served is not None:
                pool.release(served)
            if owns_pool:
                pool.close()
            raise

    @property
    def environment(self) -> str:
        return self.task.environment

    @property
    def served(self) -> ServedEnvironment:
        """The process serving this episode.

        Raises:
            RuntimeError: If the episode is closed.
        """
        if self._served is None:
            raise RuntimeError(f"episode {self.episode_id} is closed")
        return self._served

    def openai_messages(self, *, system: bool = True) -> list[dict[str, Any]]:
        """The conversation in OpenAI chat format, the policy first."""
        head = [{"role": "system", "content": self.system_prompt}] if system else []
        return head + [m.openai() for m in self.messages]

    @property
    def messages(self) -> list[ChatMessage]:
        """The conversation so far (no system message)."""
        return self.transcript.messages

    @property
    def format_errors(self) -> int:
        """Tool calls whose arguments were not a JSON object."""
        return self.transcript.format_errors

    @property
    def stopped(self) -> bool:
        """The simulated user ended the conversation with a control token."""
        return self.transcript.stopped

    def add(self, message: MessageLike) -> ChatMessage | None:
        """Append an assistant, user or tool message to the conversation.

        A user message is read as a simulated user's reply: its control tokens
        (`###STOP###`, `###TRANSFER###`, `###OUT-OF-SCOPE###`) end the
        conversation and are removed; a reply that was only tokens adds nothing.

        Returns:
            The message appended, or None.
        """
        self._rollout = None
        return self.transcript.add(message)

    def use_transcript(self, messages: Sequence[MessageLike]) -> None:
        """Replace the conversation with one the trainer kept itself (an agent
        that called the tools over MCP directly; `Transcript.replace`)."""
        self._rollout = None
        self.transcript.replace(messages)

    def step(self, tool_call: ToolCallLike) -> ChatMessage:
        """Run one tool call in the episode's session; append and return the
        tool message (add the assistant message that made the call first).

        Raises:
            EnvironmentLost: If the environment's process is gone.
        """
        [message] = self.run_calls([tool_call])
        self._rollout = None
        self.messages.append(message)
        return message

    def run_calls(self, tool_calls: Sequence[ToolCallLike]) -> list[ChatMessage]:
        """Run tool calls in order in the episode's session and return their
        tool messages without appending them (for a loop that keeps the
        transcript itself, such as `tasks.core.conversation.converse`; give
        the result to `record`).

        Raises:
            EnvironmentLost: If the environment's process is gone.
        """
        messages = []
        for index, tool_call in enumerate(tool_calls):
            call = as_tool_call(tool_call, index)
            content = self.pool.portal.call(self._run, call)
            messages.append(
                ChatMessage(role="tool", content=content, tool_call_id=call.id)
            )
        return messages

    def record(self, conversation: Conversation) -> None:
        """Take a conversation run with `run_calls` as the episode's transcript,
        with how it ended."""
        self._rollout = None
        self.transcript.record(conversation)

    def act(self, message: MessageLike) -> list[ChatMessage]:
        """Append an assistant message and run its tool calls in order.

        Returns:
            The tool messages, in `tool_calls` order (none: the assistant
            answered the user).

        Raises:
            EnvironmentLost: If the environment's process is gone.
        """
        typed = self.add(message)
        calls = typed.tool_calls if typed is not None else None
        return [self.step(call) for call in calls or ()]

    def state(self) -> tuple[str, DatabaseDiff]:
        """The session's state hash and diff against the base data now.

        Raises:
            EnvironmentLost: If the environment's process is gone.
        """
        if self.lost is not None:
            raise self.lost
        try:
            return self.pool.portal.call(self.served.state, self.episode_id)
        except EnvironmentLost as lost:
            self.lost = lost
            raise

    def rollout(self, *, max_turns_reached: bool = False) -> Rollout:
        """The episode's rollout record with its final state (read once; later
        calls return the same record)."""
        if self._rollout is None:
            self._rollout = self._build_rollout(max_turns_reached)
        return self._rollout

    def finish(self, *, max_turns_reached: bool = False) -> EvaluationResult:
        """Score the episode: its rollout through every evaluator."""
        from tasks.core.evaluation import evaluate_rollout

        rollout = self.rollout(max_turns_reached=max_turns_reached)
        return evaluate_rollout(self.task, rollout)

    def reward(self) -> float:
        """The composite score of `finish`."""
        return self.finish().total_score

    def close(self) -> None:
        """Give the session's process back to the pool (a private pool stops)."""
        served, self._served = self._served, None
        if served is not None:
            self.pool.release(served)
        if self._owns_pool:
            self.pool.close()

    def __enter__(self) -> Episode:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @classmethod
    async def astart(cls, output_dir: Path, query_id: str, **options: Any) -> Episode:
        """`start` from async code."""
        start = functools.partial(cls.start, output_dir, query_id, **options)
        return await anyio.to_thread.run_sync(start)

    async def astep(self, tool_call: ToolCallLike) -> ChatMessage:
        """`step` from async code."""
        return await anyio.to_thread.run_sync(self.step, tool_call)

    async def aact(self, message: MessageLike) -> list[ChatMessage]:
        """`act` from async code."""
        return await anyio.to_thread.run_sync(self.act, message)

    async def afinish(self, *, max_turns_reached: bool = False) -> EvaluationResult:
        """`finish` from async code."""
        finish = functools.partial(self.finish, max_turns_reached=max_turns_reached)
        return await anyio.to_thread.run_sync(finish)

    async def _run(self, call: ToolCall) -> str:
        """The tool message's content for one call (runs in the pool's loop)."""
        name = call.function.name
        arguments = parse_arguments(call.function.arguments)
        if arguments is None:
            self.transcript.format_errors += 1
            return error_content(arguments_error(name, call.function.arguments))
        if self.lost is not None:
            raise self.lost
        try:
            result = await self.served.call_tool(self.episode_id, name, arguments)
        except EnvironmentLost as lost:
            self.lost = lost
            raise
        except MCPError as exc:
            return error_content(exc.message)
        return result_content(result)

    def _build_rollout(self, max_turns_reached: bool) -> Rollout:
        final: tuple[str, DatabaseDiff] | None = None
        if self.lost is None:
            try:
                final = self.state()
            except EnvironmentLost:
                final = None
        return Rollout(
            id=self.query.id,
            trial=self.trial,
            environment=self.environment,
            messages=tuple(self.messages),
            success=self.lost is None,
            error=None if self.lost is None else str(self.lost),
            error_kind=None if self.lost is None else "environment",
            total_turns=self.transcript.total_turns,
            has_reasoning=any(m.reasoning_content for m in self.messages),
            models=self.models,
            tool_names=tool_routes(
                self.pool.output_dir,
                self.environment,
                [t["function"]["name"] for t in self.tools],
            ),
            system_prompt=self.system_prompt,
            tools=tuple(self.tools),
            format_errors=self.format_errors,
            final_state_hash=None if final is None else final[0],
            final_diff=None if final is None else final[1],
            **self.transcript.stop_fields(max_turns_reached=max_turns_reached),
        )
