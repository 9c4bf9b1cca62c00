"""Decisions of the s09 build loop, as pure functions.

Inputs: the gate results of harness runs (with the sandbox's own status when a run
ended abnormally), triage locations, assertion counts, the live tool listing and
the blueprint's tool list. Output: the completed gate list of a run, its progress
score, which file a repair edits, whether an edit is kept, rolled back or
rejected, the failure text shown to the model, the global-record line of a build,
the disagreements between the live listing and the blueprint, the listing in the
`tool_lists/<Server>.json` shape, and the compact table views the prompts show.
No side effects.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from schemas.blueprint import ToolList
from schemas.environment import CONFIRM_PARAMETER, EnvironmentSpec
from schemas.server import (
    GATES,
    MODULE_GATES,
    BuildStatus,
    FixLocation,
    GateName,
    GateResult,
    ListedTool,
    RepairDecision,
    ServerBuild,
)

FAILURE_CHARS = 6000
EXAMPLE_CHARS = 60
EXAMPLES_PER_COLUMN = 3
EditedFile = Literal["module", "tests"]


def complete_gates(
    reported: Sequence[GateResult],
    *,
    running: GateName | None,
    running_test: str | None = None,
    ended_ok: bool,
    sandbox_message: str = "",
    stderr: str = "",
) -> tuple[GateResult, ...]:
    """Every gate of one run, in order: reported, failed where the run stopped,
    and not run after the first failure.

    Args:
        reported: The gates the harness report holds.
        running: The gate the harness had started and not finished.
        running_test: The test that was running, if any.
        ended_ok: True when the harness process exited normally.
        sandbox_message: The sandbox's sentence about how the run ended.
        stderr: The tail of the child's stderr.

    Returns:
        One result per gate in `GATES`.
    """
    found = {gate.gate: gate for gate in reported}
    results: list[GateResult] = []
    stopped = False
    for name in GATES:
        if stopped:
            results.append(GateResult(gate=name, status="not_run"))
            continue
        gate = found.get(name)
        if gate is None:
            if ended_ok and running is None:
                results.append(GateResult(gate=name, status="not_run"))
                stopped = True
                continue
            text = f"The run was stopped: {sandbox_message}".strip()
            if running_test:
                text += f" The test {running_test} did not finish."
            if stderr.strip():
                text += "\n" + stderr.strip()[-FAILURE_CHARS // 2 :]
            failing = (running_test,) if running_test else ()
            gate = GateResult(
                gate=name, status="failed", failed=1, failure=text, failing=failing
            )
        results.append(gate)
        stopped = gate.status != "passed"
    return tuple(results)


def all_passed(gates: Sequence[GateResult]) -> bool:
    """True when every gate ran and passed."""
    return len(gates) == len(GATES) and all(g.status == "passed" for g in gates)


def first_failure(gates: Sequence[GateResult]) -> GateResult | None:
    """The first gate that failed, if any."""
    return next((g for g in gates if g.status == "failed"), None)


def gate_score(gates: Sequence[GateResult]) -> tuple[int, int]:
    """Progress of a version: gates passed in order, then what passed in the
    first failing gate (checks or tests)."""
    passed = 0
    for gate in gates:
        if gate.status != "passed":
            return passed, gate.passed
        passed += 1
    return passed, 0


def allowed_locations(gate: GateName) -> tuple[FixLocation, ...]:
    """Where a failure of this gate can come from: the module-only gates never
    involve the tests."""
    if gate in MODULE_GATES:
        return ("server",)
    return ("server", "test", "test_data")


def edited_file(gate: GateName, location: FixLocation) -> EditedFile:
    """The file a repair edits."""
    return "module" if gate in MODULE_GATES or location == "server" else "tests"


def judge_edit(
    *,
    edited: EditedFile,
    asserts_before: int,
    asserts_after: int,
    result: Sequence[GateResult],
    best: Sequence[GateResult],
) -> RepairDecision:
    """What to do with an applied edit once its version has run.

    A test edit that removes assertions is kept only if the conformance suite
    (which the model cannot edit) still passes; a version that passes fewer gates
    than the best one so far is rolled back to the best one.

    Args:
        edited: The file the edit changed.
        asserts_before: Meaningful assertions in the tests before the edit.
        asserts_after: And after it.
        result: The gates of the edited version.
        best: The gates of the best version so far.

    Returns:
        "kept", "rolled_back" or "rejected_weakened_tests".
    """
    conformance = next((g for g in result if g.gate == "conformance"), None)
    weakened = edited == "tests" and asserts_after < asserts_before
    if weakened and (conformance is None or conformance.status != "passed"):
        return "rejected_weakened_tests"
    if gate_score(result) < gate_score(best):
        return "rolled_back"
    return "kept"


def failure_text(gate: GateResult) -> str:
    """The failure of a gate as the model sees it (capped)."""
    head = f"Gate '{gate.gate}' failed"
    if gate.failing:
        head += f" ({', '.join(gate.failing[:10])})"
    text = f"{head}:\n{gate.failure}".rstrip()
    if len(text) > FAILURE_CHARS:
        text = text[:FAILURE_CHARS] + "\n... (truncated)"
    return text


def build_status(build: ServerBuild) -> BuildStatus:
    """A build's line in `mcp_global_record.json`."""
    failed = first_failure(build.gates)
    return BuildStatus(
        status="All passed" if build.status == "passed" else "FAILED",
        attempts=build.attempts,
        failed_gate=failed.gate if failed and build.status == "failed" else None,
        last_error=build.last_error,
    )


def listing_problems(
    listed: Sequence[ListedTool] | None,
    expected: ToolList,
    *,
    confirm_tools: Sequence[str],
    effects: Mapping[str, str],
) -> list[str]:
    """How the live server's tool listing disagrees with the blueprint's tool list.

    Args:
        listed: The live listing (None when the server could not list).
        expected: The blueprint's tool list (s05).
        confirm_tools: Tools that carry the runtime's extra `confirm` parameter.
        effects: Tool name -> "read" or "write".

    Returns:
        Problem sentences; empty when they agree.
    """
    if listed is None:
        return ["the live server did not list its tools"]
    wanted = [tool.function for tool in expected.tools]
    names = [tool.name for tool in listed]
    expected_names = [function["name"] for function in wanted]
    if names != expected_names:
        return [f"the live server lists {names}, the blueprint {expected_names}"]
    problems = []
    for tool, function in zip(listed, wanted, strict=True):
        schema = _without_confirm(tool.input_schema, tool.name in confirm_tools)
        if schema != function["parameters"]:
            problems.append(
                f"{tool.name}: the live input schema differs from the blueprint's"
            )
        if tool.description != function["description"]:
            problems.append(
                f"{tool.name}: the live description differs from the blueprint's"
            )
        if tool.read_only is not (effects.get(tool.name) == "read"):
            problems.append(f"{tool.name}: read_only_hint does not match its effect")
    return problems


def _without_confirm(schema: Mapping[str, Any], confirm: bool) -> dict[str, Any]:
    if not confirm:
        return dict(schema)
    properties = dict(schema.get("properties", {}))
    properties.pop(CONFIRM_PARAMETER, None)
    return {**schema, "properties": properties}


def listing_export(listed: Sequence[ListedTool]) -> list[dict[str, Any]]:
    """The live listing in the `tool_lists/<Server>.json` (OpenAI) shape."""
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.input_schema,
            },
        }
        for tool in listed
    ]


@dataclass(frozen=True)
class ColumnView:
    """A column as the prompts show it."""

    name: str
    references: str | None
    examples: tuple[str, ...]


@dataclass(frozen=True)
class TableView:
    """A table as the prompts show it: key, columns, example values, size."""

    name: str
    kind: str
    primary_key: str
    rows: int
    columns: tuple[ColumnView, ...]


def table_views(
    spec: EnvironmentSpec, rows: Mapping[str, Sequence[Mapping[str, Any]]]
) -> list[TableView]:
    """Compact views of the server's tables for the prompts.

    Args:
        spec: The environment spec.
        rows: Table name -> rows.

    Returns:
        One view per table in spec order, with a few distinct example values per
        column (as JSON, shortened).
    """
    views = []
    for name, table in spec.tables.items():
        table_rows = rows.get(name, ())
        columns = []
        for column in table.columns:
            seen: dict[str, None] = {}
            for row in table_rows:
                text = json.dumps(row.get(column), ensure_ascii=False)
                seen.setdefault(text[:EXAMPLE_CHARS], None)
                if len(seen) == EXAMPLES_PER_COLUMN:
                    break
            columns.append(
                ColumnView(
                    name=column,
                    references=table.foreign_keys.get(column),
                    examples=tuple(seen),
                )
            )
        views.append(
            TableView(
                name=name,
                kind=table.kind,
                primary_key=table.primary_key,
                rows=len(table_rows),
                columns=tuple(columns),
            )
        )
    return views
