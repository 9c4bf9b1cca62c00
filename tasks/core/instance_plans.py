"""s15 plans: the checks that talk to the planning model, and the checked plan.

Input: an `InstancePlanDraft`, the template's trajectory, the parameters of the
server's tools (from its s09 live tool listing) and the columns of the server's own
tables. Output: the problems of the draft as sentences a model can act on (a
step that is not the trajectory's, a parameter the tool does not have, a required
parameter left unbound, an instance of an unknown table, a field the table does
not have, a result of a step that is not earlier, an empty value domain), and the
canonical `InstancePlan` of a draft without problems. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from schemas.instance_plan import (
    ArgumentPlanDraft,
    InstancePlan,
    InstancePlanDraft,
    PlannedArgument,
    PlannedInstance,
    PlannedStep,
)

_SUFFIX = re.compile(r"^_([2-9]|[1-9][0-9]+)$")


@dataclass(frozen=True)
class ToolParameters:
    """The parameters of one tool as the agent sees them."""

    names: frozenset[str]
    required: frozenset[str]
    enums: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    """(parameter, allowed values) of the parameters that have an enum."""


def tool_parameters(tools: Sequence[Mapping[str, Any]]) -> dict[str, ToolParameters]:
    """Parameters of every tool of a listing in the OpenAI tool-list shape (an
    s09 server's live listing, which has the `confirm` parameters the runtime
    adds), by tool name."""
    found = {}
    for tool in tools:
        function: Mapping[str, Any] = tool["function"]
        schema: Mapping[str, Any] = function.get("parameters") or {}
        properties: Mapping[str, Any] = schema.get("properties") or {}
        found[function["name"]] = ToolParameters(
            names=frozenset(properties),
            required=frozenset(schema.get("required") or ()),
            enums=tuple(
                (name, tuple(spec["enum"]))
                for name, spec in sorted(properties.items())
                if spec.get("enum")
            ),
        )
    return found


def table_columns(rows_by_table: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict:
    """The columns of each table: every key any of its rows has."""
    return {
        table: frozenset(key for row in rows for key in row)
        for table, rows in rows_by_table.items()
    }


def instance_key_problem(key: str, table: str) -> str | None:
    """Why `key` cannot name an instance of `table` (None when it can)."""
    if key == table or (
        key.startswith(table) and _SUFFIX.match(key[len(table) :]) is not None
    ):
        return None
    return (
        f"instance key {key!r} must be the table name {table!r} or {table!r} "
        "followed by _2, _3, ... for a further record of the same table"
    )


def plan_problems(
    draft: InstancePlanDraft,
    trajectory: Sequence[str],
    tools: Mapping[str, ToolParameters],
    columns: Mapping[str, frozenset[str]],
) -> list[str]:
    """Every reason the plan cannot drive the selection (empty when it can)."""
    problems: list[str] = []
    instances: dict[str, str] = {}
    for inst in draft.instances:
        if inst.key in instances:
            problems.append(f"instance {inst.key!r} is declared twice")
        if inst.table not in columns:
            problems.append(
                f"instance {inst.key!r} names table {inst.table!r}, which this server "
                f"does not have; tables: {', '.join(sorted(columns))}"
            )
        elif (why := instance_key_problem(inst.key, inst.table)) is not None:
            problems.append(why)
        instances[inst.key] = inst.table
    if [s.tool for s in draft.steps] != list(trajectory):
        problems.append(
            "`steps` must list the trajectory's tools in order, one step each: "
            + ", ".join(trajectory)
        )
        return problems
    for index, step in enumerate(draft.steps):
        problems += _step_problems(index, step.tool, step.arguments, tools, columns)
        problems += [
            p
            for arg in step.arguments
            if (p := _source_problem(index, step.tool, arg, instances, columns))
        ]
    return problems


def _step_problems(
    index: int,
    tool: str,
    arguments: Sequence[ArgumentPlanDraft],
    tools: Mapping[str, ToolParameters],
    columns: Mapping[str, frozenset[str]],
) -> list[str]:
    params = tools.get(tool)
    if params is None:
        return [f"step {index}: the server has no tool {tool!r}"]
    problems = []
    named = [a.parameter for a in arguments]
    for name in sorted({n for n in named if named.count(n) > 1}):
        problems.append(f"step {index} ({tool}): parameter {name!r} is bound twice")
    for name in sorted(set(named) - params.names):
        known = ", ".join(sorted(params.names)) or "none"
        problems.append(
            f"step {index} ({tool}): the tool has no parameter {name!r}; "
            f"its parameters: {known}"
        )
    for name in sorted(params.required - set(named)):
        problems.append(
            f"step {index} ({tool}): required parameter {name!r} has no source"
        )
    return problems


def _source_problem(
    index: int,
    tool: str,
    arg: ArgumentPlanDraft,
    instances: Mapping[str, str],
    columns: Mapping[str, frozenset[str]],
) -> str | None:
    where = f"step {index} ({tool}) parameter {arg.parameter!r}"
    if arg.source == "entity":
        if not arg.instance or not arg.field:
            return f"{where}: an entity source needs `instance` and `field`"
        table = instances.get(arg.instance)
        if table is None:
            return f"{where}: instance {arg.instance!r} is not in `instances`"
        if table in columns and arg.field not in columns[table]:
            return (
                f"{where}: table {table} has no column {arg.field!r}; its columns: "
                + ", ".join(sorted(columns[table]))
            )
        return None
    if arg.source == "value":
        if not arg.domain:
            return f"{where}: a value source needs a non-empty `domain`"
        return None
    if arg.step is None or not 0 <= arg.step < index:
        return (
            f"{where}: a step_result source must name an earlier step (0..{index - 1})"
        )
    if not arg.path:
        return f"{where}: a step_result source needs a non-empty `path`"
    return None


def canonical_plan(draft: InstancePlanDraft) -> InstancePlan:
    """The checked draft as the plan the script reads and the calls follow."""
    return InstancePlan(
        instances={
            i.key: PlannedInstance(
                table=i.table, constraints=tuple(c.strip() for c in i.constraints)
            )
            for i in draft.instances
        },
        steps=tuple(
            PlannedStep(
                tool=step.tool,
                arguments={
                    a.parameter: PlannedArgument(
                        source=a.source,
                        instance=a.instance if a.source == "entity" else None,
                        field=a.field if a.source == "entity" else None,
                        domain=tuple(a.domain)
                        if a.source == "value" and a.domain
                        else None,
                        step=a.step if a.source == "step_result" else None,
                        path=tuple(a.path)
                        if a.source == "step_result" and a.path
                        else None,
                        notes=a.notes.strip(),
                    )
                    for a in step.arguments
                },
            )
            for step in draft.steps
        ),
        sequential_constraints=tuple(c.strip() for c in draft.sequential_constraints),
    )


def value_key(step: int, parameter: str) -> str:
    """The key under which the selection code gives a `value` argument's pick."""
    return f"{step}.{parameter}"


def value_keys(plan: InstancePlan) -> dict[str, tuple[Any, ...]]:
    """Every value the selection code must pick, with its domain."""
    return {
        value_key(i, name): arg.domain or ()
        for i, step in enumerate(plan.steps)
        for name, arg in step.arguments.items()
        if arg.source == "value"
    }
