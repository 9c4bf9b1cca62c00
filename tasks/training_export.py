"""Training-data export files: takes the JSONL texts `tasks.core.training_export`
made and writes `exports/<format>.jsonl` (`openai`, `trl`, `sharegpt`) under the
output root, each atomically through the store. A format with no records is
written empty, so no stale file from an earlier export survives."""

from __future__ import annotations

from tasks.core.training_export import ExportFormat, TrainingExports
from tasks.store import ArtifactStore
from tasks.store.location import StorePath
from tasks.store.paths import training_export_relpath


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
