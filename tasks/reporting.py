"""Closing a step: exports, the step manifest and the step report.

Input: a step's tally, its output artifacts and the export files built from them.
Output: a `StepReport`. Side effects: writes the export files (the reference layout)
and `.agentskiller/steps/<step>.json`, which downstream steps and `status` read. A
step with blocking failures writes nothing here, so its last good manifest stays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from schemas.artifact import Artifact, StepManifest
from schemas.report import StepReport
from tasks.context import StepContext
from tasks.fanout import StepTally
from tasks.steps import StepInfo


class StepFailed(RuntimeError):
    """A step ended with failures a re-run may fix; later steps must not run."""

    def __init__(self, report: StepReport) -> None:
        first = report.failures[0] if report.failures else None
        detail = (
            f" First: [{first.reason}] {first.item_key}: {first.message}"
            if first
            else ""
        )
        super().__init__(
            f"step {report.step} stopped: {report.failed} item(s) failed in a way a "
            f"re-run can fix (finished items are kept and will not be redone).{detail}"
        )
        self.report = report


def step_report(
    ctx: StepContext,
    info: StepInfo,
    tally: StepTally,
    *,
    seconds: float,
    note: str = "",
) -> StepReport:
    usage = ctx.ledger.by_step().get(info.id, {})
    return StepReport(
        step=info.name,
        ok=tally.ok,
        failed=tally.failed,
        cached=tally.cached,
        llm_calls=int(usage.get("calls", 0)),
        prompt_tokens=int(usage.get("prompt_tokens", 0)),
        completion_tokens=int(usage.get("completion_tokens", 0)),
        seconds=round(seconds, 3),
        note=note,
        failures=tuple(tally.failures),
    )


def finish_step(
    ctx: StepContext,
    info: StepInfo,
    tally: StepTally,
    *,
    outputs: Sequence[Artifact],
    exports: Mapping[str, tuple[Artifact, Any]],
    seconds: float,
    note: str = "",
) -> StepReport:
    """Write exports and the manifest, or raise `StepFailed` on blocking failures.

    Raises:
        StepFailed: some item failed for a reason a re-run may fix.
    """
    report = step_report(ctx, info, tally, seconds=seconds, note=note)
    if tally.blocking:
        raise StepFailed(report)
    for relpath, (_, data) in exports.items():
        if isinstance(data, str):  # markdown and code exports
            ctx.store.write_export_text(relpath, data)
        else:
            ctx.store.write_export(relpath, data)
    ctx.store.write_manifest(
        StepManifest(
            step=info.name,
            config_hash=ctx.config_hash,
            outputs=tuple(a.ref for a in outputs),
            failed=tuple(tally.failures),
            exports={rel: artifact.ref for rel, (artifact, _) in exports.items()},
            stats={"ok": tally.ok, "failed": tally.failed, "note": note},
        )
    )
    return report
