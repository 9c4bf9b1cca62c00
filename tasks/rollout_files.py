"""Where the rollouts of an output location are, and reading them.

Input: the store, and extra rollout files a user names (their own harness's,
in the rollout record format). Output: r01's files as its manifest lists them
(so files of an earlier run with other settings are not mixed in) plus the
extra ones; the rollouts they hold; and what was skipped (lines that are not
records) or missing (a named file that does not exist), each with a message
naming the file. No side effects.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from schemas.rollout import Rollout
from tasks.core.rollout_records import Skipped, read_rollouts
from tasks.store.artifacts import ArtifactStore
from tasks.store.location import StorePath
from tasks.store.paths import ROLLOUTS_DIR

ROLLOUT_STEP = "r01_rollouts"


def rollout_files(
    store: ArtifactStore, extra: Sequence[str] = ()
) -> tuple[list[tuple[str, StorePath]], list[str]]:
    """(name, path) of every rollout file to read, and the missing extra ones."""
    layout = store.layout
    manifest = store.read_manifest(ROLLOUT_STEP)
    found = [
        (relpath, layout.export_path(relpath))
        for relpath in sorted(manifest.exports if manifest else {})
        if relpath.startswith(ROLLOUTS_DIR + "/")
    ]
    missing: list[str] = []
    for name in extra:
        path = Path(name) if Path(name).is_absolute() else layout.export_path(name)
        if path.exists():
            found.append((name, path))
        else:
            missing.append(f"{name} does not exist (looked at {path})")
    return found, missing


def read_all(files: Sequence[tuple[str, StorePath]]) -> tuple[list[Rollout], Skipped]:
    """Every rollout the files hold, in file order, and the lines skipped."""
    rollouts: list[Rollout] = []
    skipped = Skipped()
    for source, path in files:
        found = read_rollouts(path.read_text(), source=source)
        rollouts.extend(found.rollouts)
        skipped.extend(found.skipped)
    return rollouts, skipped
