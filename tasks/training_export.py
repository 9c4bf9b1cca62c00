"""Training-data export files: takes the JSONL texts `tasks.core.training_export`
made and writes `exports/<format>.jsonl` (`openai`, `trl`, `sharegpt`) under the
output root, each atomically through the store. A format with no records is
written empty, so no stale file from an earlier export survives. `export_training`
is `agentskiller export`: r01's rollouts filtered by their r02 results."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from schemas.evaluation import EvaluationResult
from tasks.core.training_export import (
    ExportFormat,
    TrainingExports,
    select,
    training_exports,
)
from tasks.rollout_files import read_all, rollout_files
from tasks.store import ArtifactStore
from tasks.store.location import StorePath
from tasks.store.paths import EVALUATION_RESULTS_RELPATH, training_export_relpath


def write_training_exports(
    store: ArtifactStore, exports: TrainingExports
) -> dict[ExportFormat, StorePath]:
    """Write one file per format.

    Args:
        store: The output store.
        exports: The texts to write.

    Returns:
        Format -> the file written.
    """
    return {
        fmt: store.write_export_text(training_export_relpath(fmt), text)
        for fmt, text in exports.files.items()
    }


@dataclass(frozen=True)
class ExportRun:
    """What `agentskiller export` wrote and left out."""

    written: dict[ExportFormat, StorePath]
    records: int
    skipped: dict[str, int]


def export_training(
    store: ArtifactStore, *, only_passed: bool = True, evaluator: str | None = None
) -> ExportRun:
    """Export r01's rollouts, filtered by their r02 results, in every format.

    Raises:
        FileNotFoundError: there are no evaluation results (run r02 first).
    """
    results_path = store.layout.export_path(EVALUATION_RESULTS_RELPATH)
    if not results_path.exists():
        raise FileNotFoundError(
            f"{results_path} does not exist: evaluate the rollouts first "
            "(agentskiller evaluate --config ...)"
        )
    results = [
        EvaluationResult.model_validate_json(line)
        for line in results_path.read_text().splitlines()
        if line.strip()
    ]
    files, _ = rollout_files(store)
    rollouts, unread = read_all(files)
    chosen = select(rollouts, results, only_passed=only_passed, evaluator=evaluator)
    prompts = {
        r.environment: r.system_prompt for r in chosen.rollouts if r.system_prompt
    }
    tools = {r.environment: list(r.tools) for r in chosen.rollouts if r.tools}
    exports = training_exports(chosen.rollouts, system_prompts=prompts, tools=tools)
    skipped = (
        Counter(unread.counts) + Counter(chosen.skipped) + Counter(exports.skipped)
    )
    return ExportRun(
        written=write_training_exports(store, exports),
        records=exports.records,
        skipped=dict(sorted(skipped.items())),
    )
