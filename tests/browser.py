"""Driving Debian's headless chromium: dump a page's DOM after its scripts ran,
or take a screenshot. Used by the `browser` tests and `scripts/screenshot_viewer.py`.

Each call starts a fresh chromium with its own temporary profile and with
background networking, component updates, sync and first-run pages off, so it
touches nothing outside the profile and reaches no network.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser")
TIMEOUT_SECONDS = 120
WINDOW_SIZE = (1400, 1000)


def chromium() -> str | None:
    """The chromium executable on PATH, or None."""
    return next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)


def page_url(path: Path, fragment: str = "") -> str:
    """The file:// URL of a local page, with a `#fragment` when given."""
    url = path.resolve().as_uri()
    return f"{url}#{fragment}" if fragment else url


def dump_dom(url: str) -> str:
    """The page's DOM as serialized after load (its scripts have run)."""
    return _run(["--dump-dom", url]).stdout


def screenshot(url: str, png: Path, size: tuple[int, int] = WINDOW_SIZE) -> Path:
    """Save a PNG screenshot of the page at `size` (width, height)."""
    png.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    _run([f"--screenshot={png.resolve()}", f"--window-size={width},{height}", url])
    if not png.is_file():
        raise RuntimeError(f"chromium wrote no screenshot to {png}")
    return png


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    executable = chromium()
    if executable is None:
        raise RuntimeError("chromium is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="agentskiller-chromium-") as profile:
        command = [
            executable,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            *args,
        ]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS
        )
    if done.returncode != 0:
        raise RuntimeError(
            f"chromium exited with {done.returncode}: {done.stderr.strip()[-2000:]}"
        )
    return done
