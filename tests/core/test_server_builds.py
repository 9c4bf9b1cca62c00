"""Decisions of the s09 build loop as pure functions: completing a run's gates,
scoring versions, routing a repair, judging an edit, and checking the live tool
listing against the blueprint's tool list."""

from __future__ import annotations

import pytest

from schemas.blueprint import OpenAITool, ToolList
from schemas.server import GateResult, ListedTool, ServerBuild
from tasks.core.server_builds import (
    FAILURE_CHARS,
    all_passed,
    allowed_locations,
    build_status,
    complete_gates,
    edited_file,
    failure_text,
    first_failure,
    gate_score,
    judge_edit,
    listing_export,
    listing_problems,
)

PASSED = {
    gate: GateResult(gate=gate, status="passed", passed=1)
    for gate in ("syntax", "import", "conformance", "policy_tests")
}


def _failed(gate: str, passed: int = 0, failing: tuple[str, ...] = ()) -> GateResult:
    return GateResult(
        gate=gate,
        status="failed",
        passed=passed,
        failed=1,
        failure="boom",
        failing=failing,
    )


def _gates(*results: GateResult) -> tuple[GateResult, ...]:
    return complete_gates(results, running=None, ended_ok=True)


def test_gates_after_the_first_failure_are_not_run():
    """A normal run that stopped at conformance lists the tests as not run."""
    gates = _gates(PASSED["syntax"], PASSED["import"], _failed("conformance", 5))
    assert [g.status for g in gates] == ["passed", "passed", "failed", "not_run"]
    assert first_failure(gates) == gates[2]
    assert not all_passed(gates)


def test_a_run_stopped_by_the_sandbox_fails_the_gate_that_was_running():
    """The timeout message and the unfinished test become the failure."""
    gates = complete_gates(
        [PASSED["syntax"], PASSED["import"], PASSED["conformance"]],
        running="policy_tests",
        running_test="unit_tests/test_X.py::test_slow",
        ended_ok=False,
        sandbox_message="The program ran longer than 5 s.",
    )
    assert gates[-1] == GateResult(
        gate="policy_tests",
        status="failed",
        failed=1,
        failure="The run was stopped: The program ran longer than 5 s. The test "
        "unit_tests/test_X.py::test_slow did not finish.",
        failing=("unit_tests/test_X.py::test_slow",),
    )


def test_a_run_without_a_report_fails_its_first_gate_with_stderr():
    """A harness that died before writing anything still gives a typed failure."""
    gates = complete_gates(
        [],
        running=None,
        ended_ok=False,
        sandbox_message="The program exited with code 1.",
        stderr="Traceback ...\nImportError: x",
    )
    assert gates[0].status == "failed"
    assert gates[0].failure == (
        "The run was stopped: The program exited with code 1.\n"
        "Traceback ...\nImportError: x"
    )
    assert [g.status for g in gates[1:]] == ["not_run"] * 3


def test_score_counts_gates_in_order_then_progress_in_the_failing_gate():
    """More gates beat more checks; within a gate more passing checks win."""
    conformance_5 = _gates(
        PASSED["syntax"], PASSED["import"], _failed("conformance", 5)
    )
    conformance_9 = _gates(
        PASSED["syntax"], PASSED["import"], _failed("conformance", 9)
    )
    import_failed = _gates(PASSED["syntax"], _failed("import"))
    everything = tuple(PASSED.values())
    assert gate_score(import_failed) == (1, 0)
    assert gate_score(conformance_5) == (2, 5)
    assert (
        gate_score(conformance_5) < gate_score(conformance_9) < gate_score(everything)
    )
    assert all_passed(everything)


@pytest.mark.parametrize(
    ("gate", "location", "locations", "edited"),
    [
        ("conformance", "server", ("server",), "module"),
        ("import", "server", ("server",), "module"),
        ("policy_tests", "server", ("server", "test", "test_data"), "module"),
        ("policy_tests", "test", ("server", "test", "test_data"), "tests"),
        ("policy_tests", "test_data", ("server", "test", "test_data"), "tests"),
    ],
)
def test_module_gates_always_route_to_the_module(gate, location, locations, edited):
    """Only a policy-test failure may be blamed on the tests."""
    assert allowed_locations(gate) == locations
    assert edited_file(gate, location) == edited


def test_an_edit_that_passes_fewer_gates_is_rolled_back():
    """The best version so far wins over a worse edit."""
    best = _gates(PASSED["syntax"], PASSED["import"], _failed("conformance", 5))
    worse = _gates(PASSED["syntax"], _failed("import"))
    decision = judge_edit(
        edited="module", asserts_before=3, asserts_after=3, result=worse, best=best
    )
    assert decision == "rolled_back"
    same = judge_edit(
        edited="module", asserts_before=3, asserts_after=3, result=best, best=best
    )
    assert same == "kept"


def test_a_test_edit_that_removes_assertions_needs_a_passing_conformance_suite():
    """Weakened tests are rejected unless the suite we generate still passes."""
    conformance_failed = _gates(
        PASSED["syntax"], PASSED["import"], _failed("conformance", 5)
    )
    everything = tuple(PASSED.values())
    rejected = judge_edit(
        edited="tests",
        asserts_before=4,
        asserts_after=3,
        result=conformance_failed,
        best=conformance_failed,
    )
    kept = judge_edit(
        edited="tests",
        asserts_before=4,
        asserts_after=3,
        result=everything,
        best=conformance_failed,
    )
    assert (rejected, kept) == ("rejected_weakened_tests", "kept")


def test_failure_text_names_the_gate_and_is_capped():
    """The model sees which checks failed, then the text, never unbounded."""
    gate = GateResult(
        gate="conformance",
        status="failed",
        failed=2,
        failure="x" * (FAILURE_CHARS * 2),
        failing=("valid_calls/a", "read_only/b"),
    )
    text = failure_text(gate)
    assert text.startswith("Gate 'conformance' failed (valid_calls/a, read_only/b):\n")
    assert text.endswith("\n... (truncated)")
    assert len(text) < FAILURE_CHARS + 100


def _tool_list() -> ToolList:
    def function(name: str, properties: dict) -> OpenAITool:
        return OpenAITool(
            function={
                "name": name,
                "description": f"{name} things",
                "parameters": {
                    "type": "object",
                    "properties": properties,
                    "required": list(properties),
                    "additionalProperties": False,
                },
            }
        )

    return ToolList(
        server_name="Shop",
        tools=(
            function("list_orders", {}),
            function("cancel_order", {"order_id": {"type": "string"}}),
        ),
    )


def _listed(confirm: bool = True) -> list[ListedTool]:
    cancel_properties = {"order_id": {"type": "string"}}
    if confirm:
        cancel_properties["confirm"] = {"type": "boolean", "default": False}
    return [
        ListedTool(
            name="list_orders",
            description="list_orders things",
            input_schema={
                "type": "object",
                "properties": {},
                "required": [],
                "additionalProperties": False,
            },
            read_only=True,
        ),
        ListedTool(
            name="cancel_order",
            description="cancel_order things",
            input_schema={
                "type": "object",
                "properties": cancel_properties,
                "required": ["order_id"],
                "additionalProperties": False,
            },
            read_only=False,
        ),
    ]


EFFECTS = {"list_orders": "read", "cancel_order": "write"}


def test_live_listing_agrees_with_the_blueprint_up_to_confirm():
    """The runtime's `confirm` parameter is the only allowed addition."""
    problems = listing_problems(
        _listed(), _tool_list(), confirm_tools=["cancel_order"], effects=EFFECTS
    )
    assert problems == []
    export = listing_export(_listed())
    assert export[1]["type"] == "function"
    assert export[1]["function"]["parameters"]["properties"]["confirm"] == {
        "type": "boolean",
        "default": False,
    }


def test_live_listing_disagreements_are_named():
    """Wrong order, schema, description and read-only hint are each reported."""
    listed = _listed()
    assert listing_problems(
        list(reversed(listed)), _tool_list(), confirm_tools=[], effects=EFFECTS
    ) == [
        "the live server lists ['cancel_order', 'list_orders'], the blueprint "
        "['list_orders', 'cancel_order']"
    ]
    listed[0] = listed[0].model_copy(
        update={"description": "other", "read_only": False}
    )
    assert listing_problems(
        listed, _tool_list(), confirm_tools=[], effects=EFFECTS
    ) == [
        "list_orders: the live description differs from the blueprint's",
        "list_orders: read_only_hint does not match its effect",
        "cancel_order: the live input schema differs from the blueprint's",
    ]
    assert listing_problems(None, _tool_list(), confirm_tools=[], effects=EFFECTS) == [
        "the live server did not list its tools"
    ]


def test_build_status_is_the_global_record_line():
    """Passing builds read "All passed"; failing ones name the gate and error."""
    gates = _gates(PASSED["syntax"], _failed("import"))
    failed = ServerBuild(
        server_name="Shop",
        status="failed",
        attempts=3,
        gates=gates,
        last_error="import failed",
    )
    line = build_status(failed)
    assert (line.status, line.attempts, line.failed_gate, line.last_error) == (
        "FAILED",
        3,
        "import",
        "import failed",
    )
    passed = failed.model_copy(
        update={"status": "passed", "gates": tuple(PASSED.values()), "last_error": None}
    )
    assert build_status(passed).status == "All passed"
    assert build_status(passed).failed_gate is None
