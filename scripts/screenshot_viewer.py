"""Screenshot of the rollout viewer for the README, taken with headless chromium.

Input: the hand-built rollouts, results and golden tasks of
`tests/rollout_fixtures.py` (a passing and a failing run of one task, with a state
diff that has missing and unexpected changes). Output: `docs/viewer.png` (or the
path given), showing the failing rollout. Side effects: a temporary HTML file and
chromium profile, removed afterwards.

Run from the repository root: `python -m scripts.screenshot_viewer [PNG]`.
Needs Debian's chromium (`apt-get install chromium`).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from urllib.parse import quote

from schemas.rollout import rollout_key
from tasks.core.viewer import render_viewer
from tests import rollout_fixtures as fx
from tests.browser import page_url, screenshot

DEFAULT_PNG = Path(__file__).resolve().parent.parent / "docs" / "viewer.png"
SHOWN = rollout_key("q-cancel", 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("png", nargs="?", type=Path, default=DEFAULT_PNG)
    args = parser.parse_args(argv)
    page = render_viewer(
        fx.rollouts(),
        fx.results(),
        fx.golden_tasks(),
        skipped={"truncated_line": 1},
        title="Rollouts of demo-output",
    )
    with tempfile.TemporaryDirectory(prefix="agentskiller-viewer-") as scratch:
        html = Path(scratch) / "viewer.html"
        html.write_text(page, encoding="utf-8")
        screenshot(page_url(html, f"rollout={quote(SHOWN)}"), args.png)
    print(f"wrote {args.png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
