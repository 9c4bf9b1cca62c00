"""Writing the evaluation report: the Markdown and the PNG plots it links to."""

from __future__ import annotations

import re
from pathlib import Path

from tasks.core.plots import PLOT_TITLES, render_plots
from tasks.evaluation_report import write_evaluation_report
from tasks.store.paths import (
    EVALUATION_REPORT_RELPATH,
    OutputLayout,
    evaluation_plot_relpath,
)
from tests import rollout_fixtures as fx


def test_the_report_and_its_plots_are_written_where_the_layout_says(tmp_path: Path):
    """Three PNGs under evaluation/plots/ and evaluation/report.md; every image
    link in the report resolves to one of them, relative to the report."""
    layout = OutputLayout(tmp_path)
    written = write_evaluation_report(layout, fx.summary(), fx.results())
    plots = [layout.export_path(evaluation_plot_relpath(n)) for n in PLOT_TITLES]
    report = layout.export_path(EVALUATION_REPORT_RELPATH)
    assert list(written) == [*plots, report]
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report.read_text(encoding="utf-8"))
    assert sorted((report.parent / link).resolve() for link in links) == sorted(
        p.resolve() for p in plots
    )
    pngs = render_plots(fx.summary())
    assert {p.stem: p.read_bytes() for p in plots} == pngs
