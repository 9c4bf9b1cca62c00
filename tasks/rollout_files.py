"""Reading the JSON-lines records of an output location: rollouts, evaluation
results and queries.

Input: the store, and extra rollout files a user names (their own harness's,
in the rollout record format). Output: r01's rollout files as its manifest
lists them (so files of an earlier run with other settings are not mixed in)
plus the extra ones; the rollouts, results and queries the files hold; and
what was skipped (lines that are not records, by reason, with a message naming
file and line) or missing (a named file that does not exist). A missing
results file or queries folder reads as no records. No side effects.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from schemas.evaluation import EvaluationResult
from schemas.rollout import Rollout
from schemas.validated_task import UserQuery
from tasks.core.rollout_records import Skipped, read_records, read_rollouts
from tasks.runtime.served_task import read_queries as read_query_files
from tasks.store.artifacts import ArtifactStore
from tasks.store.location import StorePath
from tasks.store.paths import (
    EVALUATION_RESULTS_RELPATH,
    ROLLOUTS_DIR,
    ROLLOUTS_GLOB,
)

ROLLOUT_STEP = "r01_rollouts"


def rollout_files(
    store: ArtifactStore, extra: Sequence[str] = ()
) -> tuple[list[tuple[str, StorePath]], list[str]]:
    """(name, path) of every rollout file to read, and the missing extra ones:
    r01's files as its manifest lists them, else (no r01 in this location)
    every `rollouts/*.jsonl`, then the extra ones."""
    layout = store.layout
    manifest = store.read_manifest(ROLLOUT_STEP)
    if manifest is not None:
        found = [
            (relpath, layout.export_path(relpath))
            for relpath in sorted(manifest.exports)
            if relpath.startswith(ROLLOUTS_DIR + "/")
        ]
    else:  # no r01 here: rollouts someone else put in rollouts/
        folder = layout.export_path(ROLLOUTS_DIR)
        paths = sorted(folder.glob(ROLLOUTS_GLOB), key=str) if folder.is_dir() else []
        found = [(layout.relpath(p), p) for p in paths]
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


def read_results(store: ArtifactStore) -> tuple[list[EvaluationResult], Skipped]:
    """The evaluation results of `evaluation/results.jsonl` (none if absent)."""
    path = store.layout.export_path(EVALUATION_RESULTS_RELPATH)
    if not path.is_file():
        return [], Skipped()
    return read_records(
        path.read_text(),
        source=EVALUATION_RESULTS_RELPATH,
        parse=EvaluationResult.model_validate,
        what="evaluation result",
    )


def read_queries(store: ArtifactStore) -> tuple[list[UserQuery], Skipped]:
    """The user queries of `queries/*.jsonl`, files in name order (the one
    reader, `tasks.runtime.served_task.read_queries`)."""
    return read_query_files(store.layout)
