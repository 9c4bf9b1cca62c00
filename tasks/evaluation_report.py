"""Writing the evaluation report: Markdown and its PNG plots.

Input: an output layout, the run's `EvaluationSummary` and its `EvaluationResult`s.
Output: the paths written: `evaluation/plots/<name>.png` for each plot
(`tasks.core.plots`) and `evaluation/report.md` (`tasks.core.report`), which links
to them relative to itself. Side effects: those files, each written atomically.
"""

from __future__ import annotations

from collections.abc import Sequence

from schemas.evaluation import EvaluationResult, EvaluationSummary
from tasks.core.plots import render_plots
from tasks.core.report import render_report
from tasks.store.atomic import write_bytes_atomic, write_text_atomic
from tasks.store.location import StorePath
from tasks.store.paths import (
    EVALUATION_REPORT_RELPATH,
    OutputLayout,
    evaluation_plot_link,
    evaluation_plot_relpath,
)


def write_evaluation_report(
    layout: OutputLayout,
    summary: EvaluationSummary,
    results: Sequence[EvaluationResult],
) -> tuple[StorePath, ...]:
    """Draw the plots and write them and the report that shows them.

    Returns:
        The plot files, then the report.
    """
    plots = render_plots(summary)
    written = [
        write_bytes_atomic(layout.export_path(evaluation_plot_relpath(name)), png)
        for name, png in plots.items()
    ]
    links = {name: evaluation_plot_link(name) for name in plots}
    report = render_report(summary, results, plots=links)
    written.append(
        write_text_atomic(layout.export_path(EVALUATION_REPORT_RELPATH), report)
    )
    return tuple(written)
