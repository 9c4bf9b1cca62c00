"""The evaluation report: one Markdown page over a run's summary and results.

Input: an `EvaluationSummary` (pass@1, pass^k and pass@k overall and per domain,
evaluator counts, failure reasons, skipped input items) and the `EvaluationResult`s
it summarises (for the failed rollouts and the original tool's scoring next to
ours), plus the links to the plots by name (`tasks.core.plots`). Output: the
Markdown text of `evaluation/report.md`. No side effects; the same input gives the
same text.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence

from schemas.evaluation import EvaluationResult, EvaluationSummary, Metrics
from tasks.core.plots import DOMAIN_PLOT, FAILURE_PLOT, PASS_HAT_K_PLOT, PLOT_TITLES

FAILED_ROLLOUTS_SHOWN = 100
"""The failed-rollout table stops here; the viewer has every one."""


def render_report(
    summary: EvaluationSummary,
    results: Sequence[EvaluationResult],
    *,
    plots: Mapping[str, str] | None = None,
) -> str:
    """The Markdown report of one evaluation run.

    Args:
        summary: The run's metrics.
        results: The per-rollout results the summary was computed from.
        plots: Plot name (`tasks.core.plots.PLOT_TITLES`) -> link relative to the
            report; a plot without a link is not shown.

    Returns:
        The report, ending in a newline.
    """
    links = dict(plots or {})
    ks = sorted(summary.overall.pass_hat_k)
    parts = [
        "# Evaluation report",
        _headline(summary.overall),
        "## Pass rates over k trials",
        _pass_table(summary.overall, ks),
        "pass^k: every one of k trials of a task passes (as in τ-bench); "
        "pass@k: at least one of them does. Both are averaged over tasks.",
        *_image(PASS_HAT_K_PLOT, links),
        "## By domain",
        _domain_table(summary, ks),
        "A cross-domain task counts once in each of its member domains.",
        *_image(DOMAIN_PLOT, links),
        "## By evaluator",
        _evaluator_table(summary),
        *_legacy_section(results),
        "## Failure reasons",
        _counts_table(
            ("reason", "rollouts"), summary.failure_reasons, "No rollout failed."
        ),
        *_image(FAILURE_PLOT, links),
        *_failed_section(results),
        "## Averages per rollout",
        _averages_table(summary),
        "## Skipped input items",
        _counts_table(
            ("reason", "items"),
            summary.skipped_items,
            "None: every input item was evaluated.",
        ),
    ]
    return "\n\n".join(parts) + "\n"


def _headline(overall: Metrics) -> str:
    line = (
        f"{overall.tasks} task(s), {overall.rollouts} rollout(s). "
        f"pass@1: **{_pct(overall.pass_at_1)}**"
    )
    if overall.legacy_pass_rate is not None:
        line += f" (the original tool's scoring: {_pct(overall.legacy_pass_rate)})"
    return line + "."


def _pass_table(metrics: Metrics, ks: Sequence[int]) -> str:
    rows = [
        [str(k), _pct(metrics.pass_hat_k.get(k)), _pct(metrics.pass_at_k.get(k))]
        for k in ks
    ]
    return _table(("k", "pass^k", "pass@k"), rows, right=(0, 1, 2))


def _domain_table(summary: EvaluationSummary, ks: Sequence[int]) -> str:
    if not summary.by_domain:
        return "No domain was evaluated."
    shown_ks = [k for k in ks if k > 1]
    legacy = any(m.legacy_pass_rate is not None for m in summary.by_domain.values())
    header = ["domain", "tasks", "rollouts", "pass@1"]
    header += [f"pass^{k}" for k in shown_ks] + (["original"] if legacy else [])
    rows = []
    for name in sorted(summary.by_domain):
        m = summary.by_domain[name]
        row = [name, str(m.tasks), str(m.rollouts), _pct(m.pass_at_1)]
        row += [_pct(m.pass_hat_k.get(k)) for k in shown_ks]
        rows.append(row + ([_pct(m.legacy_pass_rate)] if legacy else []))
    return _table(header, rows, right=range(1, len(header)))


def _evaluator_table(summary: EvaluationSummary) -> str:
    if not summary.by_evaluator:
        return "No evaluator ran."
    rows = [
        [name, str(c.passed), str(c.failed), str(c.skipped)]
        for name, c in sorted(summary.by_evaluator.items())
    ]
    return _table(("evaluator", "passed", "failed", "skipped"), rows, right=(1, 2, 3))


def _legacy_section(results: Sequence[EvaluationResult]) -> list[str]:
    """Ours next to the original's verdicts, for the evaluators scored both ways."""
    names = sorted({name for r in results for name in r.legacy})
    if not names:
        return []
    rows = []
    for name in names:
        both = [r for r in results if name in r.legacy and name in r.evaluators]
        ours = sum(r.evaluators[name].passed for r in both)
        theirs = sum(r.legacy[name].passed for r in both)
        differ = sum(r.evaluators[name].passed != r.legacy[name].passed for r in both)
        rows.append([name, str(len(both)), str(ours), str(theirs), str(differ)])
    header = ("evaluator", "rollouts", "ours passed", "original passed", "disagree")
    return [
        "### The original tool's scoring next to ours",
        "Where our evaluators deliberately differ from the original's (its action "
        "check compares tool names only; its state check ignores deletions), both "
        "verdicts are kept.",
        _table(header, rows, right=(1, 2, 3, 4)),
    ]


def _failed_section(results: Sequence[EvaluationResult]) -> list[str]:
    failed = sorted((r for r in results if not r.passed), key=lambda r: (r.id, r.trial))
    if not failed:
        return []
    rows = [
        [f"{r.id}#{r.trial}", r.environment, ", ".join(_failing(r)) or "-", r.error]
        for r in failed[:FAILED_ROLLOUTS_SHOWN]
    ]
    parts = [
        "## Failed rollouts",
        _table(("rollout", "environment", "failed evaluators", "error"), rows),
    ]
    if len(failed) > FAILED_ROLLOUTS_SHOWN:
        parts.append(
            f"... and {len(failed) - FAILED_ROLLOUTS_SHOWN} more (see "
            "`agentskiller view`)."
        )
    return parts


def _failing(result: EvaluationResult) -> list[str]:
    return sorted(
        name for name, v in result.evaluators.items() if not v.passed and not v.skipped
    )


def _averages_table(summary: EvaluationSummary) -> str:
    named = [("all", summary.overall)]
    named += sorted(summary.by_domain.items())
    rows = [
        [
            name,
            f"{m.avg_turns:.1f}",
            f"{m.avg_tokens:,.0f}",
            f"{m.avg_cost_usd:.4f}",
        ]
        for name, m in named
    ]
    return _table(("scope", "turns", "tokens", "cost (USD)"), rows, right=(1, 2, 3))


def _counts_table(header: Sequence[str], counts: Mapping[str, int], empty: str) -> str:
    if not counts:
        return empty
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return _table(header, [[k, str(v)] for k, v in ordered], right=(1,))


def _image(name: str, links: Mapping[str, str]) -> list[str]:
    link = links.get(name)
    return [] if link is None else [f"![{PLOT_TITLES[name]}]({link})"]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _table(
    header: Sequence[str],
    rows: Iterable[Sequence[str | None]],
    *,
    right: Iterable[int] = (),
) -> str:
    """A GitHub-flavoured Markdown table; `right` lists right-aligned columns."""
    right_set = set(right)
    rule = ["---:" if i in right_set else "---" for i in range(len(header))]
    lines = [_row(header), _row(rule)]
    lines += [_row(["-" if c is None else c for c in row]) for row in rows]
    return "\n".join(lines)


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _cell(text: str) -> str:
    """One line, pipes escaped, and no raw HTML: error text may quote model output,
    and Markdown renderers pass raw HTML through."""
    flat = " ".join(text.split())
    return html.escape(flat, quote=False).replace("|", "\\|")
