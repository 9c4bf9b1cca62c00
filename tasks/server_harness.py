"""s09: one sandboxed harness run of a server version.

Input: the server's spec, conformance suite and base rows, the tool module and the
policy tests of one version, the timeout and the project root (the child imports
`tasks.runtime` from it). Output: a `HarnessRun` with every gate's result (a run
that hit its timeout or a limit fails the gate it was in, naming the test that
did not finish), the test outcomes and the live tool listing. Side effects: one
sandboxed child process (`python -m tasks.runtime.harness`) in a fresh scratch
directory holding the data files in the reference layout, the two code files and
the harness config; nothing outside it is written.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from schemas.environment import EnvironmentSpec
from schemas.sandbox import SandboxRequest, SandboxResult
from schemas.server import (
    ConformanceSuite,
    GateResult,
    HarnessConfig,
    HarnessReport,
    ListedTool,
    TestOutcome,
)
from tasks.core.server_builds import complete_gates
from tasks.runtime.database import data_paths
from tasks.runtime.harness import STARTED
from tasks.runtime.sandbox import run_sandboxed
from tasks.store.paths import mcp_server_relpath, unit_test_relpath

CONFIG_FILE = "harness.json"
REPORT_FILE = "harness_report.json"
PYTEST_INI_FILE = "pytest.ini"
PYTEST_INI = "[pytest]\n"
HARNESS_MODULE = "tasks.runtime.harness"
MEMORY_MB = 2048
STDERR_CHARS = 2000


@dataclass(frozen=True)
class HarnessRun:
    """The outcome of one harness run."""

    gates: tuple[GateResult, ...]
    tests: tuple[TestOutcome, ...]
    listed_tools: tuple[ListedTool, ...] | None
    sandbox_status: str
    machinery_error: str | None = None


def project_root() -> str:
    """The directory holding the `tasks` package (put on the child's path)."""
    return str(Path(__file__).resolve().parent.parent)


def harness_files(
    spec: EnvironmentSpec,
    suite: ConformanceSuite,
    rows: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    module: str,
    tests: str,
) -> dict[str, str]:
    """The scratch files of one run: data, module, tests and config.

    Args:
        spec: The environment spec.
        suite: The conformance suite.
        rows: Table name -> base rows.
        module: The tool module source.
        tests: The policy-test source.

    Returns:
        Relative path -> text.
    """
    module_path = mcp_server_relpath(spec.name)
    tests_path = unit_test_relpath(spec.name)
    config = HarnessConfig(
        spec=spec,
        suite=suite,
        module_path=module_path,
        tests_path=tests_path,
        report_path=REPORT_FILE,
        pytest_ini_path=PYTEST_INI_FILE,
    )
    files = {
        path.as_posix(): json.dumps(list(rows.get(name, ())), ensure_ascii=False)
        for name, path in data_paths(Path(), spec).items()
    }
    files[module_path] = module
    files[tests_path] = tests
    files[CONFIG_FILE] = config.model_dump_json()
    files[PYTEST_INI_FILE] = PYTEST_INI
    return files


def run_harness(
    spec: EnvironmentSpec,
    suite: ConformanceSuite,
    rows: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    module: str,
    tests: str,
    timeout_s: float,
    python_path: str,
) -> HarnessRun:
    """Run the gates of one version in the sandbox.

    Args:
        spec: The environment spec.
        suite: The conformance suite.
        rows: Table name -> base rows.
        module: The tool module source.
        tests: The policy-test source.
        timeout_s: Wall-clock limit of the whole run.
        python_path: The project root, importable in the child.

    Returns:
        The gates (always all of them), test outcomes and the tool listing.
    """
    request = SandboxRequest(
        argv=("python", "-m", HARNESS_MODULE, CONFIG_FILE),
        files=harness_files(spec, suite, rows, module=module, tests=tests),
        python_path=(python_path,),
        timeout_s=timeout_s,
        cpu_s=max(1, math.ceil(timeout_s)),
        memory_mb=MEMORY_MB,
        collect=(REPORT_FILE,),
    )
    result = run_sandboxed(request)
    report, problem = _report(result.files.get(REPORT_FILE))
    message = result.message if not result.ok else problem
    gates = complete_gates(
        report.gates,
        running=report.running,
        running_test=report.running_test,
        ended_ok=result.ok and not problem,
        sandbox_message=message,
        stderr=result.stderr[-STDERR_CHARS:],
    )
    return HarnessRun(
        gates=gates,
        tests=report.tests,
        listed_tools=report.listed_tools,
        sandbox_status=result.status,
        machinery_error=_machinery_error(result, report),
    )


def _machinery_error(result: SandboxResult, report: HarnessReport) -> str | None:
    """Why the harness itself could not work, or None when the gates ran."""
    if report.machinery_error:
        return report.machinery_error
    if result.status == "sandbox_error":
        return result.message
    if not result.stdout.startswith(STARTED):
        tail = result.stderr.strip().splitlines()[-1:] or [result.message]
        return f"the s09 harness did not start in the sandbox ({tail[0]})"
    return None


def _report(text: str | None) -> tuple[HarnessReport, str]:
    if text is None:
        return HarnessReport(), "The harness wrote no report."
    try:
        return HarnessReport.model_validate_json(text), ""
    except ValidationError as exc:
        return HarnessReport(), f"The harness report is unreadable: {exc}"
