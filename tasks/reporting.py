"""Closing a step: exports, the step manifest and the step report.

Input: a step's tally, its output artifacts, the export files built from them and
its input and output counts. Output: a `StepReport` (status "starved" when it
produced nothing usable), the stop line of a step that failed (`StepFailed`), and
the starvation message the run reports. Side effects: writes the export files (the
reference layout) and `.agentskiller/steps/<step>.json`, which downstream steps and
`status` read. A step with blocking failures writes nothing here, so its last good
manifest stays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from schemas.artifact import Artifact, FailedItem, StepManifest
from schemas.report import StepReport
from tasks.fanout import StepTally
from tasks.resources import RunResources
from tasks.steps import StepInfo


class StepFailed(RuntimeError):
    """A step ended with blocking failures; later steps must not run.

    The message counts as fixable by a re-run only the retryable failures and
    names one of them first; blocking failures a re-run alone will not fix (a bug,
    a refused request) and dropped items (invalid or cut-off model output) are
    counted separately.
    """

    def __init__(self, report: StepReport) -> None:
        super().__init__(stop_message(report))
        self.report = report


def stop_message(report: StepReport) -> str:
    """The one-paragraph reason a step stopped, for the CLI's "stopped:" line."""
    retryable = [f for f in report.failures if f.retryable]
    stuck = [f for f in report.failures if f.blocking and not f.retryable]
    dropped = [f for f in report.failures if not f.blocking]
    parts = [f"step {report.step} stopped:"]
    if retryable:
        parts.append(
            f"{len(retryable)} item(s) failed in a way a re-run can fix (finished "
            "items are kept and will not be redone). First: "
            f"{_one_line(retryable[0])}"
        )
    if stuck:
        bugs = sum(f.reason == "error" for f in stuck)
        kind = (
            "an internal error (a bug; the report keeps its traceback)"
            if bugs == len(stuck)
            else "errors"
        )
        parts.append(
            f"{'Also ' if retryable else ''}{len(stuck)} item(s) failed with {kind} "
            "that a re-run alone will not fix"
            f"{'' if bugs == len(stuck) else ' (change the configuration first)'}: "
            f"{_one_line(stuck[0])}"
        )
    if dropped:
        parts.append(
            f"{len(dropped)} other item(s) were dropped (invalid or cut-off model "
            "output, failed checks); `agentskiller run --retry-failed` tries them "
            "again."
        )
    return " ".join(parts)


def _one_line(failure: FailedItem) -> str:
    first = failure.message.splitlines()[0] if failure.message else ""
    return f"[{failure.reason}] {failure.item_key}: {first}"


def starvation_message(info: StepInfo, report: StepReport) -> str | None:
    """Why the run cannot go on after this step, or None when it produced something.

    A step starves the rest when it produced no usable output: from one or more
    inputs (then its failed items say why), or because it had no input at all (an
    earlier run's step produced nothing).
    """
    if report.status != "starved":
        return None
    if not report.inputs:
        return (
            f"step {report.step} had nothing to work on: the steps before it "
            "produced nothing usable (see `agentskiller status`), so the steps "
            "after it were skipped."
        )
    text = (
        f"step {report.step} produced nothing usable from {report.inputs} "
        f"input(s) ({report.note or 'no outputs'}), so the steps after it were "
        "skipped."
    )
    if report.failures:
        shown = "; ".join(_one_line(f) for f in report.failures[:3])
        more = len(report.failures) - 3
        text += f" Its {len(report.failures)} failed item(s): {shown}"
        text += f" (and {more} more)." if more > 0 else "."
        if any(not f.blocking for f in report.failures):
            text += (
                " A better model, a larger llm.roles.<role>.max_tokens or more "
                "llm.validation_retries may help; `agentskiller run --retry-failed` "
                "asks again."
            )
    else:
        text += f" No item failed: {info.id} found nothing to build on."
    return text


def skipped_report(info: StepInfo, starved_by: str) -> StepReport:
    """The report of a step not run because `starved_by` produced nothing."""
    return StepReport(
        step=info.name, status="skipped", note=f"skipped: starved by {starved_by}"
    )


def step_report(
    res: RunResources,
    info: StepInfo,
    tally: StepTally,
    *,
    seconds: float,
    note: str = "",
    inputs: int | None = None,
    produced: int | None = None,
) -> StepReport:
    usage = res.usage().by_step(res.config.llm.roles).get(info.id, {})
    starved = produced == 0 and inputs is not None
    return StepReport(
        step=info.name,
        status="starved" if starved else "done",
        inputs=inputs,
        outputs=produced,
        ok=tally.ok,
        failed=tally.failed,
        cached=tally.cached,
        items=tally.items,
        llm_calls=int(usage.get("calls", 0)),
        prompt_tokens=int(usage.get("prompt_tokens", 0)),
        completion_tokens=int(usage.get("completion_tokens", 0)),
        cost_usd=round(float(usage.get("cost_usd", 0.0)), 6),
        seconds=round(seconds, 3),
        note=note,
        failures=tuple(tally.failures),
    )


def finish_step(
    res: RunResources,
    info: StepInfo,
    tally: StepTally,
    *,
    outputs: Sequence[Artifact],
    exports: Mapping[str, tuple[Artifact, Any]],
    seconds: float,
    note: str = "",
    inputs: int | None = None,
    produced: int | None = None,
) -> StepReport:
    """Write exports and the manifest, or raise `StepFailed` on blocking failures.

    Args:
        inputs: How many input units the step had (domains, entities, ...).
        produced: How many usable units it produced; 0 marks the step starved.

    Raises:
        StepFailed: some item failed in a way that blocks the step (see
            `FailedItem.blocking`).
    """
    report = step_report(
        res, info, tally, seconds=seconds, note=note, inputs=inputs, produced=produced
    )
    if tally.blocking:
        raise StepFailed(report)
    for relpath, (_, data) in exports.items():
        if isinstance(data, str):  # markdown and code exports
            res.store.write_export_text(relpath, data)
        else:
            res.store.write_export(relpath, data)
    res.store.write_manifest(
        StepManifest(
            step=info.name,
            config_hash=res.loaded.config_hash,
            outputs=tuple(a.ref for a in outputs),
            failed=tuple(tally.failures),
            exports={rel: artifact.ref for rel, (artifact, _) in exports.items()},
            stats={
                "ok": tally.ok,
                "failed": tally.failed,
                "note": note,
                "inputs": inputs,
                "outputs": produced,
            },
        )
    )
    return report
