"""The stop line says which failures a re-run can fix, and names one of them first."""

from __future__ import annotations

from schemas.artifact import FailedItem
from schemas.report import StepReport
from tasks.reporting import StepFailed


def _failure(key: str, reason: str, *, retryable: bool = False) -> FailedItem:
    return FailedItem(
        step="s02",
        item_key=key,
        reason=reason,  # type: ignore[arg-type]
        message=f"{reason} happened\nsecond line",
        retryable=retryable,
    )


def _stop_line(*failures: FailedItem) -> str:
    report = StepReport(
        step="s02_entity_extraction", failed=len(failures), failures=failures
    )
    return str(StepFailed(report))


def test_stop_line_counts_only_retryable_failures_as_fixable_by_a_rerun():
    """Dropped and buggy items are not counted as re-run-fixable nor named first."""
    line = _stop_line(
        _failure("batch-000", "invalid_output"),
        _failure("merge", "error"),
        _failure("batch-002", "llm_timeout", retryable=True),
        _failure("batch-003", "truncated"),
    )
    assert line.startswith(
        "step s02_entity_extraction stopped: 1 item(s) failed in a way a re-run can "
        "fix (finished items are kept and will not be redone). First: "
        "[llm_timeout] batch-002: llm_timeout happened Also 1 item(s) failed with an "
        "internal error (a bug; the report keeps its traceback) that a re-run alone "
        "will not fix: [error] merge: error happened "
    )
    assert line.endswith(
        "2 other item(s) were dropped (invalid or cut-off model output, failed "
        "checks); `agentskiller run --retry-failed` tries them again."
    )
    assert "second line" not in line


def test_a_step_stopped_by_a_bug_does_not_claim_a_rerun_fixes_it():
    """Only an `error` (not retryable): no 're-run can fix' claim at all."""
    line = _stop_line(_failure("merge", "error"))
    assert "re-run can fix" not in line
    assert line == (
        "step s02_entity_extraction stopped: 1 item(s) failed with an internal error "
        "(a bug; the report keeps its traceback) that a re-run alone will not fix: "
        "[error] merge: error happened"
    )


def test_a_refused_request_asks_for_a_configuration_change():
    """A 4xx HTTP error blocks the step and says to change the configuration."""
    line = _stop_line(_failure("batch-000", "llm_http_error"))
    assert "re-run can fix" not in line
    assert "(change the configuration first): [llm_http_error] batch-000" in line
