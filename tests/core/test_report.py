"""The evaluation report: Markdown over a summary and its results."""

from __future__ import annotations

from pathlib import Path

from schemas.evaluation import EvaluationSummary, Metrics, Verdict
from tasks.core.plots import DOMAIN_PLOT, FAILURE_PLOT, PASS_HAT_K_PLOT
from tasks.core.report import FAILED_ROLLOUTS_SHOWN, render_report
from tasks.store.paths import evaluation_plot_link
from tests import rollout_fixtures as fx
from tests.llm.snapshots import check_golden

GOLDEN = Path(__file__).parent / "golden"
LINKS = {
    name: evaluation_plot_link(name)
    for name in (PASS_HAT_K_PLOT, DOMAIN_PLOT, FAILURE_PLOT)
}


def _section(report: str, heading: str) -> str:
    """The text under one `## heading`, up to the next one."""
    start = report.index(f"## {heading}\n")
    end = report.find("\n## ", start + 1)
    return report[start : end if end >= 0 else None]


def test_report_of_the_fixture_run_matches_its_reviewed_snapshot(update_golden):
    """The whole report of the fixture run is the reviewed text (--update-golden
    rewrites tests/core/golden/evaluation_report.md)."""
    report = render_report(fx.summary(), fx.results(), plots=LINKS)
    check_golden("evaluation_report", report, update=update_golden, folder=GOLDEN)


def test_report_states_pass_at_1_and_a_pass_hat_k_and_pass_at_k_row_per_k():
    """The headline has pass@1 with the original scoring next to it; the k table
    has one row per k with pass^k and pass@k."""
    report = render_report(fx.summary(), fx.results())
    assert "pass@1: **25.0%** (the original tool's scoring: 50.0%)." in report
    table = _section(report, "Pass rates over k trials")
    assert "| 1 | 25.0% | 25.0% |" in table
    assert "| 2 | 0.0% | 50.0% |" in table


def test_report_has_a_row_per_domain_with_its_pass_hat_k_columns():
    """Domains are sorted, with tasks, rollouts, pass@1, pass^k for k > 1 and the
    original scoring where a domain has it."""
    table = _section(render_report(fx.summary(), fx.results()), "By domain")
    assert "| domain | tasks | rollouts | pass@1 | pass^2 | original |" in table
    assert "| DentalAppointments | 2 | 4 | 25.0% | 0.0% | 50.0% |" in table
    assert "| TreatmentBilling | 1 | 2 | 0.0% | 0.0% | - |" in table


def test_report_counts_verdicts_per_evaluator_and_compares_the_original_scoring():
    """Evaluator counts come from the summary; the original tool's verdicts are
    counted next to ours, with the rollouts where they disagree."""
    section = _section(render_report(fx.summary(), fx.results()), "By evaluator")
    assert "| action | 1 | 2 | 0 |" in section
    assert "| nl_assertions | 0 | 0 | 3 |" in section
    assert "| action | 2 | 1 | 2 | 1 |" in section


def test_report_omits_the_original_scoring_when_no_result_has_it():
    """Without legacy verdicts there is no comparison table and no 'original'
    column."""
    results = [r.model_copy(update={"legacy": {}}) for r in fx.results()]
    overall = fx.summary().overall.model_copy(update={"legacy_pass_rate": None})
    summary = fx.summary().model_copy(
        update={
            "overall": overall,
            "by_domain": {"DentalAppointments": overall},
        }
    )
    report = render_report(summary, results)
    assert "original" not in report
    assert "pass@1: **25.0%**." in report


def test_report_lists_failure_reasons_by_count_failed_rollouts_and_skipped_items():
    """Reasons are sorted by count, then name; each failed rollout names its
    failing evaluators or its error; skipped input items are counted by reason."""
    report = render_report(fx.summary(), fx.results())
    reasons = _section(report, "Failure reasons")
    assert reasons.index("| action | 2 |") < reasons.index("| state | 2 |")
    assert reasons.index("| state | 2 |") < reasons.index("| transport | 1 |")
    failed = _section(report, "Failed rollouts")
    assert "| q-cancel#1 | DentalAppointments | action, state | - |" in failed
    assert "| q-book#1 | DentalAppointments_TreatmentBilling | - | rollout" in failed
    assert "q-cancel#0" not in failed
    assert "| truncated_line | 1 |" in _section(report, "Skipped input items")


def test_report_shows_average_turns_tokens_and_cost_overall_and_per_domain():
    """One averages row for the whole run and one per domain."""
    table = _section(render_report(fx.summary(), fx.results()), "Averages per rollout")
    assert "| all | 2.0 | 2,070 | 0.0024 |" in table
    assert "| TreatmentBilling | 1.0 | 600 | 0.0008 |" in table


def test_report_links_each_plot_relative_to_itself_and_only_when_given():
    """Plot links point at evaluation/plots/ from evaluation/report.md; without
    links no image is shown."""
    report = render_report(fx.summary(), fx.results(), plots=LINKS)
    assert "![pass^k over k](plots/pass_hat_k.png)" in report
    assert "![pass@1 per domain](plots/domain_pass_at_1.png)" in report
    assert "![rollouts per failure reason](plots/failure_reasons.png)" in report
    assert "![" not in render_report(fx.summary(), fx.results())


def test_report_cells_keep_model_text_on_one_line_without_pipes_or_html():
    """An error quoting model output cannot break the table or inject HTML."""
    [*rest, last] = fx.results()
    hostile = last.model_copy(update={"error": "bad | row\n<script>x()</script>"})
    report = render_report(fx.summary(), [*rest, hostile])
    assert "| bad \\| row &lt;script&gt;x()&lt;/script&gt; |" in report
    assert "<script>" not in report


def test_report_caps_the_failed_rollouts_table_and_says_how_many_more():
    """Past the cap the table stops with a line counting the rest."""
    failed = fx.results()[1]
    many = [
        failed.model_copy(update={"trial": i}) for i in range(FAILED_ROLLOUTS_SHOWN + 3)
    ]
    section = _section(render_report(fx.summary(), many), "Failed rollouts")
    assert section.count("| q-cancel#") == FAILED_ROLLOUTS_SHOWN
    assert "... and 3 more" in section


def test_report_of_an_empty_run_says_so_instead_of_empty_tables():
    """No domain, evaluator, failure or skipped item: sentences, not headers."""
    nothing = Metrics(tasks=0, rollouts=0, pass_at_1=0.0, pass_hat_k={}, pass_at_k={})
    summary = EvaluationSummary(overall=nothing, by_domain={}, by_evaluator={})
    report = render_report(summary, [])
    assert "No domain was evaluated." in report
    assert "No evaluator ran." in report
    assert "No rollout failed." in report
    assert "None: every input item was evaluated." in report
    assert "Failed rollouts" not in report


def test_skipped_verdicts_are_not_listed_as_failing_evaluators():
    """A skipped verdict is not a failure, even when it is marked not passed."""
    result = fx.results()[1]
    skipped = Verdict(passed=False, score=0.0, skipped=True)
    odd = result.model_copy(
        update={"evaluators": {**result.evaluators, "subjective": skipped}}
    )
    section = _section(render_report(fx.summary(), [odd]), "Failed rollouts")
    assert "| action, state |" in section
