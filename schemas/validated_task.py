"""Payloads of s15-s17: instance combinations, validated agent tasks, user queries.

An `InstanceCombination` (s15) says under which entity instances, and with which
declaratively bound arguments, a template's trajectory should succeed in its
environment (a server, or a fused combination with the records created for it in
`overlay`). An `AgentTask` (s16) is a combination whose golden trajectory really
ran over MCP: it records the concrete golden calls, the expected final state hash
and the expected diff against the untouched base. A `UserQuery` (s17) is one line
of `queries/<Environment>.jsonl`: the reference record plus the environment, the
expected state hash and where the task came from. Data only, no side effects.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from schemas.base import CheckedDraft, Frozen
from schemas.environment import DatabaseDiff
from schemas.golden import GoldenCall, PlannedCall

Scope = Literal["single", "cross_domain"]


class InstanceCombination(Frozen):
    """s15's output unit: one candidate instance combination of one template."""

    combo_id: str = Field(description="Unique across the whole output.")
    environment: str = Field(description="The server or fused environment name.")
    scope: Scope
    template_id: str = Field(description="The s14 template artifact's id.")
    trajectory: tuple[str, ...] = Field(min_length=1, description="Agent tool names.")
    trajectory_hash: str
    instruction: str = Field(description="The template's instruction.")
    reason_for_call: str
    instances: dict[str, dict[str, Any]] = Field(
        description="Instance key (`Patient`, `Appointment_2`) -> its record."
    )
    calls: tuple[PlannedCall, ...] = Field(min_length=1)
    overlay: dict[str, tuple[dict[str, Any], ...]] = Field(
        default_factory=dict,
        description="Cross-domain: rows created for this combination, by table; "
        "applied to a fresh session only, never to the shared tables.",
    )
    sample_index: int = Field(default=0, ge=0)


class AgentTask(Frozen):
    """s16's output unit: a combination whose golden trajectory was executed
    against the real environment and passed."""

    combo_id: str
    environment: str
    scope: Scope
    domains: tuple[str, ...] = Field(
        default=(), description="Member servers of a fused environment."
    )
    template_id: str
    trajectory: tuple[str, ...]
    trajectory_hash: str
    instruction: str
    reason_for_call: str
    instances: dict[str, dict[str, Any]]
    overlay: dict[str, tuple[dict[str, Any], ...]] = Field(default_factory=dict)
    calls: tuple[PlannedCall, ...] = Field(
        min_length=1, description="The declarative plan the golden calls bound."
    )
    golden_calls: tuple[GoldenCall, ...] = Field(min_length=1)
    expected_state_hash: str
    expected_diff: DatabaseDiff
    simulation_time: str = Field(description="The environment's clock.")
    seed: int = Field(description="The environment's id seed.")


class QueryMessage(Frozen):
    role: Literal["user"] = "user"
    content: str


class QueryTaskInfo(Frozen):
    """The reference's `task_info` block."""

    trajectory: tuple[str, ...]
    instruction: str
    reason_for_call: str
    known_info: str
    trajectory_hash: str
    combo_id: str


class QueryLineage(Frozen):
    """Where a query came from: its s16 task artifact (follow it with
    `agentskiller lineage`)."""

    kind: Literal["agent_task"] = "agent_task"
    id: str
    content_hash: str


class UserQuery(Frozen):
    """One line of `queries/<Environment>.jsonl`."""

    id: str = Field(description="Unique across the whole output.")
    messages: tuple[QueryMessage, ...] = Field(min_length=1)
    user_system_prompt: str
    task_info: QueryTaskInfo
    environment: str
    expected_state_hash: str
    lineage: QueryLineage


class QueryDraft(CheckedDraft):
    """The model's query for one validated task; every concrete value it states
    is wrapped in [[ ]]."""

    start_up_query: str = Field(
        min_length=1,
        description="The user's first message: one natural pain point, no tool "
        "names or technical terms",
    )
    instruction: str = Field(
        min_length=1,
        description="What the user wants, with every value the tools need "
        "wrapped in [[ ]]",
    )
    reason_for_call: str = Field(min_length=1)


class QuerySet(Frozen):
    """The queries of one environment, as `queries/<Environment>.jsonl`."""

    environment: str
    queries: tuple[UserQuery, ...]


FilterFailure = Literal["binding", "tool_error", "no_write", "environment", "overlay"]


class CombinationResult(Frozen):
    """What executing one combination's golden trajectory gave."""

    combo_id: str
    trajectory_hash: str
    passed: bool
    failure: FilterFailure | None = None
    message: str | None = None
    calls: int = Field(ge=0, description="Calls made before it passed or stopped.")


class TaskFilterReport(Frozen):
    """s16's result for one environment: every combination it executed, passed
    or filtered out with its typed reason (exported with the validated tasks)."""

    environment: str
    results: tuple[CombinationResult, ...]

    @property
    def passed(self) -> int:
        return sum(r.passed for r in self.results)
