"""The s09 build harness: runs INSIDE the sandboxed child, never in the orchestrator.

Input: `python -m tasks.runtime.harness <config.json>`, where the config (a
`HarnessConfig`) names the tool module, the policy-test file and the report file
in the scratch directory, carries the `EnvironmentSpec` and the conformance suite;
the generated data lies in the scratch dir in the reference layout
(`database/outputs/...`). Output: the JSON `HarnessReport`, rewritten after every
gate and every test so that a run killed by its timeout still tells how far it
got. Gates, in order, each only after the previous passed: syntax (compile the
module), import (import it), conformance (signatures, then the generated suite
against a fresh `Environment`), policy tests (pytest in this process, with the
fixtures `env`, `call`, `data` and `spec`; collection errors and skips are
failures). When every gate passed, the tools are listed from the live MCP server
built in-process. Side effects: imports and runs the generated code, reads the
data files, writes only the report (all inside the sandbox's scratch dir).
"""

from __future__ import annotations

import hashlib
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from schemas.environment import ToolCrash, ToolResult
from schemas.server import (
    CheckOutcome,
    GateName,
    GateResult,
    HarnessConfig,
    HarnessReport,
    ListedTool,
    TestOutcome,
)
from tasks.core.conformance import outcomes_not_run
from tasks.core.conformance_run import run_suite
from tasks.runtime.database import Database, data_paths
from tasks.runtime.environment import DEFAULT_SESSION, Environment
from tasks.runtime.implementations import (
    ImplementationError,
    implementations_from,
    load_tool_module,
    module_confirm_tools,
    signature_problems,
)

MESSAGE_CHARS = 3000
TRACEBACK_LINES = 15
PROJECT_ROOT = Path(__file__).resolve().parents[2]
STARTED = "agentskiller-harness: started"
"""Printed first on stdout, before any generated code runs: without it, the harness
itself never started (the sandbox or the installation is broken)."""
HARNESS_IMPORTS = ("pytest", "anyio", "mcp", "tasks.runtime.mcp_exposure")
"""What the gates import lazily; checked before any generated code runs."""
FIXTURES = ("env", "call", "data", "spec")
"""The pytest fixtures policy tests may use."""


class EnvironmentTarget:
    """An `Environment` seen through the conformance suite's `SuiteTarget`."""

    def __init__(self, environment: Environment, files: Sequence[Path]) -> None:
        self.environment = environment
        self._files = tuple(files)

    def call(self, session: str, tool: str, arguments: Mapping[str, Any]) -> ToolResult:
        return self.environment.call(session, tool, arguments)

    def state_hash(self, session: str) -> str:
        return self.environment.state_hash(session)

    def base_hash(self) -> str:
        return self.environment.base.state_hash()

    def files_hash(self) -> str:
        return files_digest(self._files)

    def crashes(self) -> Sequence[ToolCrash]:
        return self.environment.crashes

    def authorized_id(self, session: str) -> Any:
        return self.environment.session(session).authorized_id


def files_digest(paths: Sequence[Path]) -> str:
    """sha256 over the names and bytes of files (a missing file counts too)."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(str(path).encode())
        digest.update(path.read_bytes() if path.is_file() else b"<missing>")
    return digest.hexdigest()


class _Run:
    """One harness run: the config, the report so far, and what the gates built."""

    def __init__(self, config: HarnessConfig, root: Path) -> None:
        self.config = config
        self.root = root
        self.report = HarnessReport()
        self.module: ModuleType | None = None
        self.bodies: dict[str, Callable[..., Any]] = {}
        self.base: Database | None = None
        self.files = list(data_paths(root, config.spec).values())

    def save(self, **changes: Any) -> None:
        self.report = self.report.model_copy(update=changes)
        path = self.root / self.config.report_path
        text = self.report.model_dump_json()
        # Paths of the scratch dir and the checkout differ between runs and
        # machines; reports (and so build artifacts) must not.
        for prefix in (self.root, PROJECT_ROOT):
            text = text.replace(f"{prefix}{os.sep}", "")
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)

    def gate(self, name: GateName, body: Callable[[], GateResult]) -> bool:
        self.save(running=name)
        try:
            result = body()
        except Exception as exc:  # the harness boundary: record, never crash
            result = GateResult(
                gate=name, status="failed", failed=1, failure=_exception_text(exc)
            )
        self.save(running=None, gates=(*self.report.gates, result))
        return result.status == "passed"

    def environment(self) -> Environment:
        assert self.base is not None
        return Environment(self.config.spec, self.base, self.bodies)


def run(config: HarnessConfig, root: Path) -> HarnessReport:
    """Run the gates in order and return the final report (also on disk)."""
    state = _Run(config, root)
    state.save()
    broken = machinery_problem()
    if broken:
        state.save(machinery_error=broken)
        return state.report
    passed = (
        state.gate("syntax", lambda: _syntax(state))
        and state.gate("import", lambda: _import(state))
        and state.gate("conformance", lambda: _conformance(state))
        and state.gate("policy_tests", lambda: _policy_tests(state))
    )
    if passed and config.list_tools:
        state.save(listed_tools=tuple(list_tools(state.environment())))
    return state.report


def machinery_problem(modules: Sequence[str] = HARNESS_IMPORTS) -> str | None:
    """Why the harness cannot run its gates here, or None when it can."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            return (
                f"the s09 harness cannot import {name} in the sandbox "
                f"({type(exc).__name__}: {exc}; interpreter {sys.executable})"
            )
    return None


def _syntax(state: _Run) -> GateResult:
    path = state.root / state.config.module_path
    try:
        compile(path.read_text(encoding="utf-8"), path.name, "exec")
    except SyntaxError as exc:
        line = (exc.text or "").rstrip()
        caret = " " * max((exc.offset or 1) - 1, 0) + "^"
        text = f"SyntaxError: {exc.msg} ({path.name}, line {exc.lineno})"
        return GateResult(
            gate="syntax", status="failed", failed=1, failure=f"{text}\n{line}\n{caret}"
        )
    return GateResult(gate="syntax", status="passed", passed=1)


def _import(state: _Run) -> GateResult:
    try:
        state.module = load_tool_module(state.root / state.config.module_path)
    except ImplementationError as exc:
        cause = exc.__cause__
        text = str(exc) if cause is None else f"{exc}\n{_exception_text(cause)}"
        return GateResult(gate="import", status="failed", failed=1, failure=text)
    return GateResult(gate="import", status="passed", passed=1)


def _conformance(state: _Run) -> GateResult:
    suite, spec = state.config.suite, state.config.spec
    problems = _signature_problems(state)
    signatures = CheckOutcome(
        id="signatures",
        kind="signatures",
        passed=not problems,
        message="\n".join(problems),
    )
    if problems:
        outcomes = (signatures, *outcomes_not_run(suite, "the signatures check failed"))
    else:
        state.base = Database.load(spec, state.root)
        environment = state.environment()
        rows = {name: table.all() for name, table in state.base.tables.items()}
        target = EnvironmentTarget(environment, state.files)
        outcomes = (signatures, *run_suite(target, suite, spec, rows))
    state.save(checks=outcomes)
    failed = [o for o in outcomes if not o.passed]
    text = "\n\n".join(f"[{o.id}] {o.message}" for o in failed)
    return GateResult(
        gate="conformance",
        status="failed" if failed else "passed",
        passed=len(outcomes) - len(failed),
        failed=len(failed),
        failure=text,
        failing=tuple(o.id for o in failed),
    )


def _signature_problems(state: _Run) -> list[str]:
    spec, module = state.config.spec, state.module
    assert module is not None
    try:
        state.bodies = implementations_from(module, [t.name for t in spec.tools])
        declared = module_confirm_tools(module)
    except ImplementationError as exc:
        return list(exc.problems)
    wanted = {t.name for t in spec.tools if t.needs_confirmation}
    problems = []
    if declared != wanted:
        problems.append(
            f"CONFIRM_TOOLS is {sorted(declared)} but the policy requires "
            f"confirmation for {sorted(wanted)}; declare exactly those"
        )
    for tool in spec.tools:
        problems += signature_problems(state.bodies[tool.name], tool)
    return problems


def _policy_tests(state: _Run) -> GateResult:
    import pytest

    before = files_digest(state.files)
    recorder = _Recorder(state)
    argv = [
        state.config.tests_path,
        "-q",
        "--tb=short",
        "-p",
        "no:cacheprovider",
        "--rootdir",
        str(state.root),
        "-c",
        state.config.pytest_ini_path,
    ]
    code = pytest.main(argv, plugins=[_fixtures(state), recorder])
    tests = tuple(recorder.outcomes.values())
    state.save(tests=tests, running_test=None)
    bad = [t for t in tests if t.status != "passed"]
    notes = []
    if files_digest(state.files) != before:
        notes.append("the data files changed during the tests; never write files")
    if not tests:
        notes.append(f"pytest collected no tests (exit code {int(code)})")
    text = "\n\n".join(
        [*(f"{t.status.upper()} {t.nodeid}\n{t.message}" for t in bad), *notes]
    )
    return GateResult(
        gate="policy_tests",
        status="failed" if bad or notes else "passed",
        passed=len(tests) - len(bad),
        failed=len(bad) + len(notes),
        failure=text,
        failing=tuple(t.nodeid for t in bad),
    )


class _Recorder:
    """pytest plugin: records each test's outcome and the test that is running."""

    def __init__(self, state: _Run) -> None:
        self.state = state
        self.outcomes: dict[str, TestOutcome] = {}

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        self.state.save(running_test=nodeid, tests=tuple(self.outcomes.values()))

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self._record(report.nodeid or "<collection>", "error", report)

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.failed:
            status = "failed" if report.when == "call" else "error"
            self._record(report.nodeid, status, report)
        elif report.skipped:
            self._record(report.nodeid, "skipped", report, "skipped tests do not count")
        elif report.when == "call" and report.nodeid not in self.outcomes:
            self.outcomes[report.nodeid] = TestOutcome(
                nodeid=report.nodeid, status="passed"
            )

    def _record(self, nodeid: str, status: Any, report: Any, note: str = "") -> None:
        if nodeid in self.outcomes and self.outcomes[nodeid].status != "passed":
            return
        text = note or _tail(str(report.longreprtext))
        self.outcomes[nodeid] = TestOutcome(nodeid=nodeid, status=status, message=text)


def _fixtures(state: _Run) -> object:
    import pytest

    class Fixtures:
        """The fixtures policy tests use (see the s09 test prompt)."""

        @pytest.fixture
        def env(self) -> Environment:
            """A fresh environment: its own sessions over the base data."""
            return state.environment()

        @pytest.fixture
        def call(self, env: Environment) -> Callable[..., ToolResult]:
            """`call(tool, **arguments)` in the default session."""

            def _call(tool: str, /, **arguments: Any) -> ToolResult:
                return env.call(DEFAULT_SESSION, tool, arguments)

            return _call

        @pytest.fixture
        def data(self) -> dict[str, list[dict[str, Any]]]:
            """Table name -> copies of the base rows."""
            assert state.base is not None
            return {name: t.all() for name, t in state.base.tables.items()}

        @pytest.fixture
        def spec(self) -> Any:
            """The environment spec (tables, tools, core entity, simulation time)."""
            return state.config.spec

    return Fixtures()


def list_tools(environment: Environment) -> Iterator[ListedTool]:
    """The tools as the live MCP server lists them (built in this process)."""
    import anyio
    from mcp import Client

    from tasks.runtime.mcp_exposure import build_mcp_server

    async def listing() -> list[Any]:
        async with Client(build_mcp_server(environment)) as client:
            return list((await client.list_tools()).tools)

    for tool in anyio.run(listing):
        hints = tool.annotations
        yield ListedTool(
            name=tool.name,
            description=tool.description or "",
            input_schema=dict(tool.input_schema),
            read_only=hints.read_only_hint if hints is not None else None,
        )


def _exception_text(exc: BaseException) -> str:
    lines = "".join(traceback.format_exception(exc)).rstrip().splitlines()
    return "\n".join(lines[-TRACEBACK_LINES:])


def _tail(text: str) -> str:
    return text if len(text) <= MESSAGE_CHARS else "..." + text[-MESSAGE_CHARS:]


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: run the gates; 0 unless the config is unusable."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m tasks.runtime.harness CONFIG.json", file=sys.stderr)
        return 2
    print(STARTED, flush=True)
    path = Path(args[0]).resolve()
    config = HarnessConfig.model_validate_json(path.read_text(encoding="utf-8"))
    run(config, Path.cwd())
    return 0


if __name__ == "__main__":
    sys.exit(main())
