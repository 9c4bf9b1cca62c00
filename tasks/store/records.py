"""Reading the JSON-lines records of an output directory: queries, rollouts and
evaluation results.

Input: an `OutputLayout`. Output: `Records`, the items that parsed, in file and
line order, and one `SkippedLine` per line that did not, with its reason:
`truncated_line` (the file's last line is cut off: a writer was interrupted),
`invalid_json` (another line is not JSON) or `invalid_record` (JSON that does not
validate as the record type). Nothing is lost silently and nothing raises for a
bad line; a missing file or folder reads as no records. No side effects.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from pydantic import ValidationError

from schemas.evaluation import EvaluationResult
from schemas.rollout import Rollout
from schemas.validated_task import UserQuery
from tasks.store.location import StorePath
from tasks.store.paths import (
    EVALUATION_RESULTS_RELPATH,
    QUERIES_DIR,
    QUERIES_GLOB,
    ROLLOUTS_DIR,
    ROLLOUTS_GLOB,
    OutputLayout,
)

T = TypeVar("T")
SkipReason = Literal["truncated_line", "invalid_json", "invalid_record"]


@dataclass(frozen=True)
class SkippedLine:
    """One line that could not be read.

    Attributes:
        path: The file, relative to the output root.
        line: The 1-based line number.
        reason: Why it was skipped.
        message: The parser's or validator's first complaint.
    """

    path: str
    line: int
    reason: SkipReason
    message: str


@dataclass(frozen=True)
class Records(Generic[T]):
    items: tuple[T, ...]
    skipped: tuple[SkippedLine, ...] = ()

    def skipped_counts(self) -> dict[str, int]:
        """Reason -> number of lines skipped for it."""
        return dict(sorted(Counter(s.reason for s in self.skipped).items()))


def read_rollouts(layout: OutputLayout) -> Records[Rollout]:
    """Every rollout in `rollouts/*.jsonl` (files in name order)."""
    folder = layout.export_path(ROLLOUTS_DIR)
    return _read_files(layout, _sorted_glob(folder, ROLLOUTS_GLOB), Rollout.from_record)


def read_results(layout: OutputLayout) -> Records[EvaluationResult]:
    """Every evaluation result in `evaluation/results.jsonl`."""
    path = layout.export_path(EVALUATION_RESULTS_RELPATH)
    files = [path] if path.is_file() else []
    return _read_files(layout, files, EvaluationResult.model_validate)


def read_queries(layout: OutputLayout) -> Records[UserQuery]:
    """Every user query in `queries/*.jsonl` (files in name order)."""
    folder = layout.export_path(QUERIES_DIR)
    files = _sorted_glob(folder, QUERIES_GLOB)
    return _read_files(layout, files, UserQuery.model_validate)


def _sorted_glob(folder: StorePath, pattern: str) -> list[StorePath]:
    if not folder.is_dir():
        return []
    return sorted(folder.glob(pattern), key=lambda p: p.name)


def _read_files(
    layout: OutputLayout,
    paths: Iterable[StorePath],
    parse: Callable[[dict[str, Any]], T],
) -> Records[T]:
    items: list[T] = []
    skipped: list[SkippedLine] = []
    for path in paths:
        name = layout.relpath(path)
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            last_cut = number == len(lines) and not text.endswith("\n")
            try:
                data = json.loads(line)
            except ValueError as exc:
                reason: SkipReason = "truncated_line" if last_cut else "invalid_json"
                skipped.append(SkippedLine(name, number, reason, str(exc)))
                continue
            try:
                items.append(parse(data))
            except (ValidationError, TypeError, ValueError) as exc:
                skipped.append(
                    SkippedLine(name, number, "invalid_record", _first_line(exc))
                )
    return Records(tuple(items), tuple(skipped))


def _first_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError) and exc.errors():
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "record"
        return f"{where}: {first['msg']}"
    return next(iter(str(exc).splitlines()), type(exc).__name__)
