"""The pipeline flow: runs the selected steps in order on one configuration.

Input: a config file path (and optional output directory and step selection), so the
flow can be deployed and triggered with small, serialisable parameters. Output: a
`RunReport` (also written to `.agentskiller/reports/` and published to the Prefect UI
as a step summary table and a markdown report). A failed step, one that produced
nothing usable (status "starved": the steps after it are skipped), an unexpected
exception in one (status "error") or an interruption (status "interrupted") ends
the flow run failed after the report is written and published: a crash raises
`PipelineFailed` (its traceback is logged), the others return a `Failed` state that
carries the report. The run holds the output location's run lock throughout, and
the usage ledger is appended call by call.
"""

from __future__ import annotations

import importlib
import shlex
import sys
import uuid
from pathlib import Path
from typing import Any

from prefect import Flow, flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.context import get_run_context
from prefect.exceptions import TerminationSignal
from prefect.states import Failed, State

from flows.interrupts import StoppingTaskRunner, signal_name
from schemas.report import RunReport, StepReport
from schemas.run import RunRef
from tasks.reporting import StepFailed, skipped_report, starvation_message
from tasks.resources import RunResources, adopt, forget, process_tag
from tasks.settings import environment
from tasks.setup import preflight, prerequisite_problems
from tasks.steps import StepInfo, select_steps
from tasks.store.artifacts import UnusableStepOutput
from tasks.store.atomic import write_json_atomic
from tasks.store.config_loader import (
    ConfigError,
    LoadedConfig,
    load_config,
    resolve_output_dir,
    resolve_results_storage,
    with_overrides,
)
from tasks.store.last_run import record_last_output_dir
from tasks.store.location import StorePath
from tasks.store.paths import OutputLayout
from tasks.store.run_lock import acquire_run_lock


def step_flow(info: StepInfo) -> Flow:
    """The flow of one step (imported when it runs)."""
    module, name = info.flow.split(":")
    return getattr(importlib.import_module(module), name)


class PipelineFailed(RuntimeError):
    """The run stopped early; `report` says which step and why."""

    def __init__(self, report: RunReport) -> None:
        super().__init__(report.error or "pipeline failed")
        self.report = report


def _markdown(report: RunReport) -> str:
    lines = [
        f"# AgentSkiller run `{report.run_name}`: {report.status}",
        "",
        f"- config: `{report.config_path}` (hash `{report.config_hash[:12]}`)",
        f"- output: `{report.output_dir}`",
        f"- model answers received: {report.llm_calls}",
    ]
    if report.error:
        label = "Starved" if report.status == "starved" else "Stopped"
        lines += ["", f"**{label}:** {report.error}"]
    lines += [
        "",
        "| step | ok | failed | cached | model calls | seconds | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in report.steps.values():
        lines.append(
            f"| {s.step} | {s.ok} | {s.failed} | {s.cached} | {s.llm_calls} "
            f"| {s.seconds} | {s.note} |"
        )
    failures = [f for s in report.steps.values() for f in s.failures]
    if failures:
        lines += ["", "## Failed items", ""]
        lines += [
            f"- `{f.item_key}` ({f.step}, {f.reason}): {f.message.splitlines()[0]}"
            for f in failures
        ]
    return "\n".join(lines) + "\n"


def _publish(report: RunReport) -> None:
    create_table_artifact(
        key="agentskiller-step-summary",
        table=[
            {
                "step": s.step,
                "ok": s.ok,
                "failed": s.failed,
                "cached": s.cached,
                "llm_calls": s.llm_calls,
                "seconds": s.seconds,
            }
            for s in report.steps.values()
        ],
        description="Items per step: ok, failed and cached (Prefect cache hits).",
    )
    create_markdown_artifact(key="agentskiller-run-report", markdown=_markdown(report))


def machinery_failure(reports: dict[str, StepReport]) -> str | None:
    """The run's error when items failed because the pipeline itself is broken."""
    broken = [
        f for r in reports.values() for f in r.failures if f.reason == "machinery_error"
    ]
    if not broken:
        return None
    return (
        f"{len(broken)} item(s) failed because the pipeline's own machinery is "
        f"broken (they were not cached). First: {broken[0].item_key}: "
        f"{broken[0].message}"
    )


@flow(name="agentskiller-pipeline", log_prints=True)
def run_pipeline(
    config_path: str,
    output_dir: str | None = None,
    step: str | None = None,
    start: str | None = None,
    until: str | None = None,
    seed_domains: list[str] | None = None,
    retry_failed: bool = False,
    overrides: dict[str, Any] | None = None,
) -> RunReport | State:
    """Run the selected steps (default: all) on one configuration.

    `seed_domains` replaces the configured seeds, for one run per domain (give each
    such run its own `output_dir`). `retry_failed` runs again the items whose
    cached outcome is a failure (other items stay cached). `overrides` replace
    configured values by dotted key (`steps.r01_rollouts.assistant`), in every
    process of the run.

    Raises:
        ConfigError: the configuration or the environment is unusable.
        RunLocked: another run holds the output location.
        PipelineFailed: a step crashed (an exception no step handles: the report
            is still written).

    Returns:
        The report; when the run did not end ok, a `Failed` state whose data is
        the report.
    """
    loaded, overrides, out = _load(config_path, output_dir, seed_domains, overrides)
    env = environment()
    problems = preflight(loaded, env)
    if problems:
        raise ConfigError("; ".join(problems), path=loaded.path)
    mode = loaded.config.run.task_mode
    steps = select_steps(
        step=step,
        start=start,
        until=until,
        mode=mode,
        optional=loaded.config.steps.r01_rollouts.enabled,
    )
    missing = prerequisite_problems(mode, out, steps)
    if missing:
        raise ConfigError("; ".join(missing), path=loaded.path)
    record_last_output_dir(out)  # `agentskiller status` reads this folder by default
    flow_run = getattr(get_run_context(), "flow_run", None)
    run_id = str(flow_run.id) if flow_run is not None else uuid.uuid4().hex
    run = RunRef(
        run_id=run_id,
        config_path=str(loaded.path.resolve()),
        config_hash=loaded.config_hash,
        overrides=overrides,
        output=str(out),
        results=resolve_results_storage(loaded, Path.cwd()),
        retry_failed=retry_failed,
        origin=process_tag(),
    )
    lock = acquire_run_lock(
        OutputLayout(out), run_id=run_id, command=shlex.join(sys.argv)
    )
    try:
        res = adopt(run, RunResources(run, loaded, env=env))
    except BaseException:
        lock.release()
        raise
    reports: dict[str, StepReport] = {}
    error: str | None = None
    received: str | None = None
    crash: Exception | None = None
    starved_by: str | None = None
    runner = StoppingTaskRunner(max_workers=loaded.config.run.max_concurrency)
    try:
        for i, info in enumerate(steps):
            try:
                reports[info.name] = step_flow(info).with_options(task_runner=runner)(
                    run
                )
            except StepFailed as exc:
                reports[info.name], error = exc.report, str(exc)
                break
            except UnusableStepOutput as exc:
                error = str(exc)
                break
            except (KeyboardInterrupt, TerminationSignal) as exc:
                received = signal_name(exc)
                error = (
                    f"interrupted by {received} during {info.name}; every item that "
                    "finished is kept and will not be redone when you run the same "
                    "command again"
                )
                break
            except Exception as exc:  # a bug or a full disk: still report the run
                crash, error = exc, f"step {info.name} crashed: {_describe(exc)}"
                break
            error = starvation_message(info, reports[info.name])
            if error:
                starved_by = info.id
                reports |= {s.name: skipped_report(s, info.id) for s in steps[i + 1 :]}
                break
    finally:
        forget(run)
        lock.release()
    error = error or machinery_failure(reports)
    report = RunReport(
        run_name=loaded.config.run.name,
        config_path=str(loaded.path),
        config_hash=loaded.config_hash,
        output_dir=str(out),
        status="interrupted"
        if received
        else "error"
        if crash
        else "starved"
        if starved_by
        else "failed"
        if error
        else "ok",
        signal=received,
        starved_by=starved_by,
        error=error,
        llm_calls=res.usage().calls(),
        steps=reports,
        flow_run_id=run_id,
    )
    write_json_atomic(
        res.layout.report_path(f"{run_id}.json"), report.model_dump(mode="json")
    )
    _publish(report)
    if crash is not None:  # a bug: the traceback belongs in the log
        raise PipelineFailed(report) from crash
    if error:
        # A failed state carrying the report: the run is marked failed, and the
        # user reads the stop line instead of a traceback of our own raise.
        return Failed(message=error, data=report)
    return report


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def _load(
    config_path: str,
    output_dir: str | None,
    seed_domains: list[str] | None,
    extra: dict[str, Any] | None = None,
) -> tuple[LoadedConfig, dict[str, Any], StorePath]:
    """The run's configuration with its overrides, the overrides (as every process
    of the run applies them) and the absolute output location (path or URL)."""
    loaded = load_config(Path(config_path))
    out = resolve_output_dir(with_overrides(loaded, output_dir), Path.cwd())
    overrides: dict[str, Any] = {**(extra or {}), "run.output_dir": str(out)}
    if seed_domains:
        overrides["steps.s01_domain_expansion.seed_domains"] = seed_domains
    return with_overrides(loaded, overrides=overrides), overrides, out
