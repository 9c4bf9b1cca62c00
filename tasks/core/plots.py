"""The evaluation report's plots as PNG images.

Input: an `EvaluationSummary`. Output: PNG bytes per plot name: pass^k over k
(overall and one line per domain), pass@1 per domain (bars), and rollouts per
failure reason (bars). Drawn with matplotlib's Agg canvas on a `Figure` of its
own (no pyplot, so no global figure state and no GUI backend), under matplotlib's
default style (a user's matplotlibrc changes nothing), and saved without the
`Software` text chunk, so the same summary gives the same bytes. matplotlib is
imported when a plot is drawn, not when this module is imported. No side effects
beyond matplotlib's own font cache.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from schemas.evaluation import EvaluationSummary

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PASS_HAT_K_PLOT = "pass_hat_k"
DOMAIN_PLOT = "domain_pass_at_1"
FAILURE_PLOT = "failure_reasons"
PLOT_TITLES = {
    PASS_HAT_K_PLOT: "pass^k over k",
    DOMAIN_PLOT: "pass@1 per domain",
    FAILURE_PLOT: "rollouts per failure reason",
}
"""Plot name (the PNG's file stem) -> title."""

_DPI = 100
_WIDTH = 8.0


def render_plots(summary: EvaluationSummary) -> dict[str, bytes]:
    """Draw every plot of the report.

    Args:
        summary: The run's metrics.

    Returns:
        Plot name (`PLOT_TITLES`' keys) -> PNG bytes.
    """
    import matplotlib.style

    with matplotlib.style.context("default"):
        return {
            PASS_HAT_K_PLOT: _png(_pass_hat_k(summary)),
            DOMAIN_PLOT: _png(_domain_bars(summary)),
            FAILURE_PLOT: _png(_failure_bars(summary)),
        }


def _pass_hat_k(summary: EvaluationSummary) -> Figure:
    fig, ax = _figure(4.5)
    overall = summary.overall.pass_hat_k
    if not overall:
        return _empty(fig, ax, PASS_HAT_K_PLOT)
    for name in sorted(summary.by_domain):
        series = summary.by_domain[name].pass_hat_k
        ks = sorted(series)
        ax.plot(ks, [series[k] for k in ks], marker="o", linewidth=1, label=name)
    ks = sorted(overall)
    ax.plot(
        ks,
        [overall[k] for k in ks],
        marker="o",
        linewidth=2.5,
        color="black",
        label="overall",
    )
    ax.set_xticks(ks)
    ax.set_xlabel("k (trials that must all pass)")
    ax.set_ylabel("pass^k")
    ax.set_ylim(-0.03, 1.05)  # a line at 0% stays visible above the axis
    _percent_axis(ax.yaxis)
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small")
    ax.set_title(PLOT_TITLES[PASS_HAT_K_PLOT])
    fig.tight_layout()
    return fig


def _domain_bars(summary: EvaluationSummary) -> Figure:
    names = sorted(summary.by_domain, reverse=True)  # barh draws bottom-up
    fig, ax = _figure(1.5 + 0.4 * max(len(names), 1))
    if not names:
        return _empty(fig, ax, DOMAIN_PLOT)
    values = [summary.by_domain[n].pass_at_1 for n in names]
    bars = ax.barh(names, values, color="tab:blue")
    ax.bar_label(bars, labels=[f"{100 * v:.1f}%" for v in values], padding=3)
    ax.axvline(
        summary.overall.pass_at_1,
        color="black",
        linestyle="--",
        linewidth=1,
        label=f"overall {100 * summary.overall.pass_at_1:.1f}%",
    )
    ax.set_xlim(0, 1.15)
    _percent_axis(ax.xaxis)
    ax.set_xlabel("pass@1")
    ax.legend(loc="lower right", fontsize="small")
    ax.set_title(PLOT_TITLES[DOMAIN_PLOT])
    fig.tight_layout()
    return fig


def _failure_bars(summary: EvaluationSummary) -> Figure:
    ordered = sorted(summary.failure_reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    fig, ax = _figure(1.5 + 0.4 * max(len(ordered), 1))
    if not ordered:
        return _empty(fig, ax, FAILURE_PLOT, "no rollout failed")
    names = [name for name, _ in reversed(ordered)]
    counts = [count for _, count in reversed(ordered)]
    bars = ax.barh(names, counts, color="tab:red")
    ax.bar_label(bars, padding=3)
    ax.set_xlim(0, max(counts) * 1.15)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("rollouts")
    ax.set_title(PLOT_TITLES[FAILURE_PLOT])
    fig.tight_layout()
    return fig


def _figure(height: float) -> tuple[Figure, Axes]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(_WIDTH, height), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _empty(fig: Figure, ax: Axes, name: str, text: str = "no data") -> Figure:
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_title(PLOT_TITLES[name])
    return fig


def _percent_axis(axis) -> None:
    from matplotlib.ticker import PercentFormatter

    axis.set_major_formatter(PercentFormatter(xmax=1.0))


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    # No "Software" chunk (it names the matplotlib version); Agg PNGs carry no date.
    fig.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    return buffer.getvalue()
