"""The pipeline flow: runs the selected steps in order on one configuration.

Input: a config file path (and optional output directory and step selection), so the
flow can be deployed and triggered with small, serialisable parameters. Output: a
`RunReport` (also written to `.agentskiller/reports/` and published to the Prefect UI
as a step summary table and a markdown report). A failed step, or one that produced
nothing usable (status "starved": the steps after it are skipped), raises
`PipelineFailed` after the report is published, so the run is marked failed.
"""

from __future__ import annotations

import importlib
import uuid
from pathlib import Path

from prefect import Flow, flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.context import get_run_context
from prefect.task_runners import ThreadPoolTaskRunner

from flows.blueprint_tools import design_blueprints, formulate_tool_lists
from flows.domain_entity import expand_domains, extract_entities, relate_entities
from schemas.report import RunReport, StepReport
from tasks.context import register, release
from tasks.reporting import StepFailed, skipped_report, starvation_message
from tasks.settings import environment
from tasks.setup import build_context, preflight
from tasks.steps import select_steps
from tasks.store.artifacts import MissingStepOutput
from tasks.store.atomic import write_json_atomic
from tasks.store.config_loader import (
    ConfigError,
    load_config,
    resolve_output_dir,
    with_overrides,
)

STEP_FLOWS: dict[str, Flow | str] = {
    "s01": expand_domains,
    "s02": extract_entities,
    "s03": relate_entities,
    "s04": design_blueprints,
    "s05": formulate_tool_lists,
    # later steps are imported when they run ("module:flow")
    "s06": "flows.databases:generate_databases",
    "s07": "flows.policies:write_policies",
    "s08": "flows.tool_graphs:build_tool_graphs",
    "s09": "flows.servers:implement_servers",
}


def step_flow(step_id: str) -> Flow:
    """The flow of one step."""
    target = STEP_FLOWS[step_id]
    if isinstance(target, str):
        module, name = target.split(":")
        target = getattr(importlib.import_module(module), name)
    return target


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


@flow(name="agentskiller-pipeline", log_prints=True)
def run_pipeline(
    config_path: str,
    output_dir: str | None = None,
    step: str | None = None,
    start: str | None = None,
    until: str | None = None,
    seed_domains: list[str] | None = None,
    retry_failed: bool = False,
) -> RunReport:
    """Run the selected steps (default: all) on one configuration.

    `seed_domains` replaces the configured seeds, for one run per domain (give each
    such run its own `output_dir`). `retry_failed` runs again the items whose
    cached outcome is a failure (other items stay cached).

    Raises:
        ConfigError: the configuration or the environment is unusable.
        PipelineFailed: a step stopped with failures a re-run may fix.
    """
    overrides = (
        {"steps.s01_domain_expansion.seed_domains": seed_domains}
        if seed_domains
        else None
    )
    loaded = with_overrides(
        load_config(Path(config_path)), output_dir, overrides=overrides
    )
    env = environment()
    problems = preflight(loaded, env)
    if problems:
        raise ConfigError("; ".join(problems), path=loaded.path)
    steps = select_steps(step=step, start=start, until=until)
    out = resolve_output_dir(loaded, Path.cwd())
    ctx = build_context(loaded, output_dir=out, env=env, retry_failed=retry_failed)
    flow_run = getattr(get_run_context(), "flow_run", None)
    run_id = str(flow_run.id) if flow_run is not None else uuid.uuid4().hex
    token = register(run_id, ctx)
    reports: dict[str, StepReport] = {}
    error: str | None = None
    starved_by: str | None = None
    runner = ThreadPoolTaskRunner(max_workers=loaded.config.run.max_concurrency)
    try:
        for i, info in enumerate(steps):
            try:
                reports[info.name] = step_flow(info.id).with_options(
                    task_runner=runner
                )(token)
            except StepFailed as exc:
                reports[info.name], error = exc.report, str(exc)
                break
            except MissingStepOutput as exc:
                error = str(exc)
                break
            error = starvation_message(info, reports[info.name])
            if error:
                starved_by = info.id
                reports |= {s.name: skipped_report(s, info.id) for s in steps[i + 1 :]}
                break
    finally:
        release(token)
        ctx.ledger.write_jsonl(ctx.layout.ledger_dir / f"{run_id}.jsonl")
    report = RunReport(
        run_name=loaded.config.run.name,
        config_path=str(loaded.path),
        config_hash=loaded.config_hash,
        output_dir=str(out),
        status="starved" if starved_by else "failed" if error else "ok",
        error=error,
        starved_by=starved_by,
        llm_calls=ctx.ledger.calls(),
        steps=reports,
        flow_run_id=run_id,
    )
    write_json_atomic(
        ctx.layout.reports_dir / f"{run_id}.json", report.model_dump(mode="json")
    )
    _publish(report)
    if error:
        raise PipelineFailed(report)
    return report
