"""s09 payloads: what the coding model drafts (a tool module, policy tests, a
failure triage, SEARCH/REPLACE edits), the conformance suite we generate and its
check outcomes, the sandboxed harness's configuration and JSON report, and the
results of a server build: `ServerBuild` (every server, passed or failed, with its
gates, attempts and repairs), `McpServer` (passing servers only, with the tool
listing read from the live MCP server) and `BuildRecord` (exported as
`mcp_global_record.json`). Data only, no side effects."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from schemas.base import CheckedDraft, Frozen, PascalName, ToolName
from schemas.environment import EnvironmentSpec

GateName = Literal["syntax", "import", "conformance", "policy_tests"]
GATES: tuple[GateName, ...] = ("syntax", "import", "conformance", "policy_tests")
"""The gates of a build, in the order they run; a gate runs only after the
previous one passed."""
MODULE_GATES: frozenset[str] = frozenset({"syntax", "import", "conformance"})
"""Gates that exercise only the tool module (their failures are server bugs)."""

GateStatus = Literal["passed", "failed", "not_run"]
FixLocation = Literal["server", "test", "test_data"]
CheckKind = Literal[
    "signatures",
    "authorization",
    "valid_calls",
    "read_only",
    "confirmation",
    "unauthorized",
    "isolation",
    "determinism",
]
TestStatus = Literal["passed", "failed", "error", "skipped", "unfinished"]
RepairDecision = Literal[
    "kept", "rolled_back", "rejected_weakened_tests", "edit_failed"
]


class ToolModuleDraft(CheckedDraft):
    """The coding model's tool module for one server."""

    code: str = Field(
        description="The complete Python module: one function per tool, "
        "`def tool(env: Env, <parameters>) -> dict`, plus CONFIRM_TOOLS."
    )


class PolicyTestsDraft(CheckedDraft):
    """The coding model's pytest file checking the server's policy."""

    code: str = Field(
        description="The complete pytest module using the fixtures env, call, "
        "data and spec."
    )


class TriageDraft(CheckedDraft):
    """Where the model thinks a failure comes from."""

    location: FixLocation = Field(
        description="server: the tool module is wrong; test: a test asserts "
        "something the policy does not say; test_data: a test picks rows or "
        "builds a scenario that does not fit what it checks"
    )
    explanation: str = Field(
        min_length=1, description="What is wrong and how to fix it, concretely."
    )
    failing_test: str = Field(
        min_length=1, description="The failing test or conformance check id."
    )


class EditAnswerDraft(CheckedDraft):
    """SEARCH/REPLACE blocks that fix one file."""

    edits: str = Field(
        description="One or more blocks: a line `<<<<<<< SEARCH`, the exact lines "
        "to replace, a line `=======`, the new lines, a line `>>>>>>> REPLACE`."
    )


class ConformanceCheck(Frozen):
    """One check of the generated conformance suite."""

    id: str = Field(description="Stable id such as `read_only/list_clinics`.")
    kind: CheckKind
    tool: ToolName | None = None
    description: str


class ConformanceSuite(Frozen):
    """The conformance suite of one server, generated from blueprint and data."""

    server: PascalName
    seed: int
    samples: int = Field(ge=1, description="Valid calls per tool.")
    auth_required: tuple[ToolName, ...] = Field(
        description="Tools that must reject calls before authorization."
    )
    confirm_tools: tuple[ToolName, ...] = ()
    checks: tuple[ConformanceCheck, ...]


class CheckOutcome(Frozen):
    """What one conformance check found."""

    id: str
    kind: CheckKind
    tool: ToolName | None = None
    passed: bool
    message: str = Field(default="", description="Why it failed (model-readable).")


class TestOutcome(Frozen):
    """One policy test as pytest reported it (collection errors included)."""

    nodeid: str
    status: TestStatus
    message: str = ""


class GateResult(Frozen):
    """The outcome of one gate of one harness run."""

    gate: GateName
    status: GateStatus
    passed: int = Field(default=0, ge=0, description="Checks or tests that passed.")
    failed: int = Field(default=0, ge=0)
    failure: str = Field(default="", description="The failure text (model-readable).")
    failing: tuple[str, ...] = Field(
        default=(), description="Ids of the failing checks or tests."
    )


class HarnessConfig(Frozen):
    """What the sandboxed harness runs (written as a file into its scratch dir)."""

    spec: EnvironmentSpec
    suite: ConformanceSuite
    module_path: str
    tests_path: str
    report_path: str
    pytest_ini_path: str = Field(
        description="An empty pytest config in the scratch dir, so that no config "
        "outside it is picked up and collection stays inside it."
    )
    list_tools: bool = Field(
        default=True, description="List the tools over MCP when every gate passed."
    )


class ListedTool(Frozen):
    """One tool as the live MCP server lists it."""

    name: str
    description: str
    input_schema: dict[str, Any]
    read_only: bool | None = None


class HarnessReport(Frozen):
    """The JSON report the harness rewrites after each stage and test."""

    gates: tuple[GateResult, ...] = ()
    running: GateName | None = Field(
        default=None, description="The gate that started and has not finished."
    )
    running_test: str | None = None
    checks: tuple[CheckOutcome, ...] = ()
    tests: tuple[TestOutcome, ...] = ()
    listed_tools: tuple[ListedTool, ...] | None = None
    machinery_error: str | None = Field(
        default=None,
        description="The harness itself could not work (e.g. a module it needs "
        "does not import); no gate ran.",
    )


class RepairAttempt(Frozen):
    """One round of the repair loop: triage, fix, and what became of the edit."""

    round: int = Field(ge=1)
    gate: GateName
    failing_test: str
    location: FixLocation
    explanation: str
    edited: Literal["module", "tests"]
    decision: RepairDecision
    note: str = ""
    asserts_before: int = Field(ge=0)
    asserts_after: int = Field(ge=0)


class ServerBuild(Frozen):
    """The build report of one server (passing or not)."""

    server_name: PascalName
    status: Literal["passed", "failed"]
    attempts: int = Field(ge=0, description="Sandboxed harness runs.")
    gates: tuple[GateResult, ...] = Field(
        description="The gates of the kept version (the best one when failed)."
    )
    last_error: str | None = None
    repairs: tuple[RepairAttempt, ...] = ()
    module_code: str = ""
    tests_code: str = ""
    confirm_tools: tuple[ToolName, ...] = ()
    auth_required: tuple[ToolName, ...] = ()
    assertion_count: int = Field(default=0, ge=0)
    assertion_drops: tuple[str, ...] = Field(
        default=(), description="Accepted test edits that removed assertions."
    )
    tool_list_problems: tuple[str, ...] = ()
    listed_tools: tuple[ListedTool, ...] = Field(
        default=(), description="The live MCP listing of the kept version."
    )


class McpServer(Frozen):
    """A server that passed every gate: its code, tests and live tool listing."""

    server_name: PascalName
    module_code: str
    tests_code: str
    confirm_tools: tuple[ToolName, ...] = ()
    auth_required: tuple[ToolName, ...] = ()
    tools: tuple[dict[str, Any], ...] = Field(
        description="The live MCP listing in the OpenAI tool-list shape."
    )


class BuildStatus(Frozen):
    """One server's line in `mcp_global_record.json`."""

    status: Literal["All passed", "FAILED"]
    attempts: int = Field(ge=0)
    failed_gate: GateName | None = None
    last_error: str | None = None


class BuildRecord(Frozen):
    """Every server's build status (the global record)."""

    builds: dict[str, BuildStatus]
