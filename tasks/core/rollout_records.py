"""Reading rollout records and joining them to their queries, item by item.

Input: the text of one rollout JSONL file (`Rollout.record()` per line) and the
tasks keyed by query id. Output: the rollouts that parsed, each paired with its
task, and for every item left out a reason (`truncated_line`, `invalid_json`,
`invalid_record`, `unknown_query`) counted for the summary and a message naming the
file and line or the rollout. One bad line never costs the others. Pure; the
caller reads the file.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from schemas.rollout import Rollout

TRUNCATED_LINE = "truncated_line"
"""The last line is not valid JSON and has no newline: the write was cut off."""
INVALID_JSON = "invalid_json"
INVALID_RECORD = "invalid_record"
"""Valid JSON, but not an object or not a rollout record."""
DUPLICATE_ROLLOUT = "duplicate_rollout"
"""A second record of the same (query id, trial)."""
UNKNOWN_QUERY = "unknown_query"
"""The rollout's id matches no query."""

T = TypeVar("T")


@dataclass(frozen=True)
class Skipped:
    """Items left out: reason -> count, and one message per item."""

    counts: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def add(self, reason: str, message: str) -> None:
        self.counts[reason] += 1
        self.problems.append(message)

    def extend(self, other: Skipped) -> None:
        """Add another step's skipped items to these."""
        self.counts.update(other.counts)
        self.problems.extend(other.problems)


@dataclass(frozen=True)
class RolloutFile:
    """What one rollout file held.

    Attributes:
        rollouts: The records that parsed, in file order.
        skipped: The lines left out, with their reasons.
    """

    rollouts: list[Rollout]
    skipped: Skipped


@dataclass(frozen=True)
class JoinedRollouts(Generic[T]):
    """Rollouts paired with their tasks.

    Attributes:
        pairs: (task, rollout) in the rollouts' order.
        skipped: The rollouts left out, with their reasons.
    """

    pairs: list[tuple[T, Rollout]]
    skipped: Skipped


def _summary(exc: Exception, lines: int = 3) -> str:
    return " ".join(part.strip() for part in str(exc).splitlines()[:lines])


def read_records(
    text: str, *, source: str, parse: Callable[[dict[str, Any]], T], what: str
) -> tuple[list[T], Skipped]:
    """Parse JSONL records, skipping (and reporting) lines that are not records.

    Blank lines are ignored. A last line that does not parse and has no
    newline after it is a `truncated_line` (the writer was killed mid-line);
    any other line that does not parse is `invalid_json`; valid JSON that
    `parse` refuses is `invalid_record`.

    Args:
        text: The file's text.
        source: The file's name, for the messages.
        parse: One record's JSON object -> the item (raises ValueError).
        what: The record kind, for the messages ("rollout record").

    Returns:
        The items in file order and the skipped lines as `<source>:<line>: <why>`.
    """
    items: list[T] = []
    skipped = Skipped()
    lines = text.split("\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{source}:{number}"
        try:
            record = json.loads(line)
        except ValueError as exc:
            if number == len(lines):
                skipped.add(
                    TRUNCATED_LINE, f"{where}: truncated last line ({_summary(exc)})"
                )
            else:
                skipped.add(INVALID_JSON, f"{where}: not JSON ({_summary(exc)})")
            continue
        if not isinstance(record, dict):
            skipped.add(INVALID_RECORD, f"{where}: not a JSON object")
            continue
        try:
            items.append(parse(record))
        except ValueError as exc:
            skipped.add(INVALID_RECORD, f"{where}: not a {what} ({_summary(exc)})")
    return items, skipped


def read_rollouts(text: str, *, source: str) -> RolloutFile:
    """Parse rollout JSONL (see `read_records`)."""
    rollouts, skipped = read_records(
        text, source=source, parse=Rollout.from_record, what="rollout record"
    )
    return RolloutFile(rollouts=rollouts, skipped=skipped)


def join_queries(
    rollouts: Iterable[Rollout], tasks_by_query_id: Mapping[str, T]
) -> JoinedRollouts[T]:
    """Pair each rollout with the task of its query id.

    Args:
        rollouts: The rollouts to evaluate.
        tasks_by_query_id: Query id -> its task.

    Returns:
        The pairs, and the rollouts whose id matches no query (`unknown_query`).
    """
    pairs: list[tuple[T, Rollout]] = []
    skipped = Skipped()
    for rollout in rollouts:
        task = tasks_by_query_id.get(rollout.id)
        if task is None:
            skipped.add(
                UNKNOWN_QUERY,
                f"rollout {rollout.rollout_id} ({rollout.environment}): "
                f"no query with id {rollout.id!r}",
            )
            continue
        pairs.append((task, rollout))
    return JoinedRollouts(pairs=pairs, skipped=skipped)


def unique_rollouts(rollouts: Iterable[Rollout], skipped: Skipped) -> list[Rollout]:
    """The first rollout of each (query id, trial); later ones are recorded in
    `skipped` as `duplicate_rollout` (two files holding the same trial)."""
    seen: set[tuple[str, int]] = set()
    kept: list[Rollout] = []
    for rollout in rollouts:
        key = (rollout.id, rollout.trial)
        if key in seen:
            skipped.add(
                DUPLICATE_ROLLOUT,
                f"rollout {rollout.rollout_id}: a second record of this query and "
                "trial (the first is evaluated)",
            )
            continue
        seen.add(key)
        kept.append(rollout)
    return kept
