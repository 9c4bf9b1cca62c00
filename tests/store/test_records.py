"""Reading rollouts, results and queries from JSONL: bad lines are reported per
line with a reason, and everything else is kept."""

from __future__ import annotations

import json
from pathlib import Path

from tasks.store.paths import EVALUATION_RESULTS_RELPATH, OutputLayout
from tasks.store.records import (
    SkippedLine,
    read_queries,
    read_results,
    read_rollouts,
)
from tests import rollout_fixtures as fx


def test_records_written_by_the_pipeline_read_back_equal(tmp_path: Path):
    """`Rollout.record()` lines, result dumps and query lines round-trip."""
    layout = fx.write_run(tmp_path)
    rollouts = read_rollouts(layout)
    assert rollouts.skipped == ()
    by_env = sorted(fx.rollouts(), key=lambda r: r.environment)
    assert list(rollouts.items) == by_env
    assert list(read_results(layout).items) == fx.results()
    assert [q.id for q in read_queries(layout).items] == ["q-cancel", "q-book"]


def test_a_cut_last_line_and_bad_lines_are_skipped_with_their_reasons(tmp_path):
    """A torn last line is `truncated_line`, a broken line elsewhere
    `invalid_json`, a line of the wrong shape `invalid_record`; the good lines in
    between are kept."""
    layout = fx.write_run(tmp_path)
    path = layout.export_path(EVALUATION_RESULTS_RELPATH)
    good = path.read_text(encoding="utf-8").splitlines()
    lines = [good[0], "{not json", json.dumps({"id": "x"}), "", good[1], '{"id": "q-']
    path.write_text("\n".join(lines), encoding="utf-8")
    read = read_results(layout)
    assert [r.trial for r in read.items] == [0, 1]
    assert [(s.path, s.line, s.reason) for s in read.skipped] == [
        ("evaluation/results.jsonl", 2, "invalid_json"),
        ("evaluation/results.jsonl", 3, "invalid_record"),
        ("evaluation/results.jsonl", 6, "truncated_line"),
    ]
    assert read.skipped_counts() == {
        "invalid_json": 1,
        "invalid_record": 1,
        "truncated_line": 1,
    }
    assert read.skipped[1].message.startswith("trial: Field required")


def test_a_broken_last_line_with_its_newline_is_not_called_truncated(tmp_path):
    """Only a last line without its newline was cut off by a writer."""
    layout = OutputLayout(tmp_path)
    path = layout.export_path("rollouts/Bank.jsonl")
    path.parent.mkdir(parents=True)
    path.write_text("[1, 2\n", encoding="utf-8")
    [skipped] = read_rollouts(layout).skipped
    assert skipped == SkippedLine(
        "rollouts/Bank.jsonl", 1, "invalid_json", skipped.message
    )


def test_missing_files_read_as_no_records(tmp_path: Path):
    """No rollouts folder, results file or queries folder: empty, no error."""
    layout = OutputLayout(tmp_path)
    assert read_rollouts(layout).items == ()
    assert read_results(layout).items == ()
    assert read_queries(layout).items == ()
