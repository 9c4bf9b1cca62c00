"""What the command line prints: error paragraphs and the run summary.

Input: messages and run reports (as JSON data). Output: text on stdout and stderr.
No other side effects.
"""

from __future__ import annotations

import sys

from tasks.core.text_table import render_table


def fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def gist(message: str, limit: int = 160) -> str:
    """The first line of a message, cut at `limit` characters with a visible mark."""
    first = next(iter(message.splitlines()), "")
    return first if len(first) <= limit else first[: limit - 3] + "..."


def print_report(report: dict) -> None:
    print(
        f"\nrun {report['status']}: {report['llm_calls']} model call(s); "
        f"output in {report['output_dir']}"
    )
    steps = list(report["steps"].values())
    header, *lines = render_table(
        ["step", "ok", "failed", "cached", "calls", "note"],
        [
            [s["step"], s["ok"], s["failed"], s["cached"], s["llm_calls"], s["note"]]
            for s in steps
        ],
        align=["left", "right", "right", "right", "right", "left"],
    )
    print(header)
    for line, s in zip(lines, steps, strict=True):
        print(line)
        for f in s["failures"]:
            print(f"    - [{f['reason']}] {f['item_key']}: {gist(f['message'])}")
    if report.get("error"):
        print(f"\nstopped: {report['error']}", file=sys.stderr)
