"""The state evaluator: did the agent leave the database as the golden run did?

Input: a task's expected state hash and diff (both against the untouched base) and
a rollout's final state hash and diff. Output: a `Verdict` for our criterion (hash
equality, with a structured per-table diff when they differ) and one for the
original tool's lenient criterion (reported under `legacy`). Pure functions.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from schemas.environment import DatabaseDiff, TableDiff
from schemas.evaluation import TableMismatch, ValueMismatch, Verdict
from tasks.core.agent_calls import value_key

LEGACY_IGNORED_COLUMNS = frozenset({"created_at", "updated_at", "timestamp"})
"""Columns the original dropped from every record before comparing."""


def diff_mismatches(
    expected: DatabaseDiff, actual: DatabaseDiff
) -> dict[str, TableMismatch]:
    """Per table, how the agent's changes differ from the golden ones.

    Args:
        expected: The golden run's diff against the base.
        actual: The agent's diff against the same base.

    Returns:
        Table -> mismatch, only for tables that differ. Inserted rows are known by
        id only (the diff does not carry their contents), updated columns by
        their new values (both diffs share the base, so the old values agree).
    """
    out: dict[str, TableMismatch] = {}
    empty = TableDiff()
    for name in sorted(set(expected.tables) | set(actual.tables)):
        mismatch = _table_mismatch(
            expected.tables.get(name, empty), actual.tables.get(name, empty)
        )
        if mismatch != TableMismatch():
            out[name] = mismatch
    return out


def _table_mismatch(expected: TableDiff, actual: TableDiff) -> TableMismatch:
    missing: dict[str, dict[str, Any]] = {}
    extra: dict[str, dict[str, Any]] = {}
    different: dict[str, dict[str, ValueMismatch]] = {}
    for row in sorted(set(expected.updated) | set(actual.updated)):
        want = expected.updated.get(row, {})
        got = actual.updated.get(row, {})
        for column in sorted(set(want) | set(got)):
            if column not in got:
                missing.setdefault(row, {})[column] = want[column][1]
            elif column not in want:
                extra.setdefault(row, {})[column] = got[column][1]
            elif value_key(want[column][1]) != value_key(got[column][1]):
                different.setdefault(row, {})[column] = ValueMismatch(
                    expected=want[column][1], actual=got[column][1]
                )
    return TableMismatch(
        missing_inserts=_minus(expected.inserted, actual.inserted),
        unexpected_inserts=_minus(actual.inserted, expected.inserted),
        missing_updates=missing,
        extra_updates=extra,
        different_updates=different,
        missing_deletions=_minus(expected.deleted, actual.deleted),
        unexpected_deletions=_minus(actual.deleted, expected.deleted),
    )


def _minus(ids: tuple[str, ...], other: tuple[str, ...]) -> tuple[str, ...]:
    drop = set(other)
    return tuple(i for i in ids if i not in drop)


def evaluate_state(
    expected_hash: str,
    expected_diff: DatabaseDiff,
    final_hash: str | None,
    final_diff: DatabaseDiff | None,
) -> Verdict:
    """Our state verdict: the final state hash equals the golden one.

    A rollout without a final state (its environment died, or the rollout
    failed before the state was read) never passes; the original skipped the
    check as a pass (reference bug 16).

    Args:
        expected_hash: The task's expected state hash.
        expected_diff: The task's expected diff against the base.
        final_hash: The rollout's final state hash, if any.
        final_diff: The rollout's final diff against the base, if any.

    Returns:
        Passed (score 1) on equal hashes; otherwise failed, with the per-table
        mismatches (`TableMismatch`, as JSON) when the agent's diff is known.
    """
    if final_hash is None:
        return Verdict(
            passed=False,
            score=0.0,
            details={"expected_hash": expected_hash, "actual_hash": None},
            reasoning="no final state: the environment did not report one",
        )
    if final_hash == expected_hash:
        return Verdict(
            passed=True,
            score=1.0,
            details={"expected_hash": expected_hash, "actual_hash": final_hash},
            reasoning="final state equals the golden state",
        )
    details: dict[str, Any] = {
        "expected_hash": expected_hash,
        "actual_hash": final_hash,
    }
    if final_diff is None:
        details["tables"] = None
        reasoning = "final state differs from the golden state (agent diff unknown)"
    else:
        tables = diff_mismatches(expected_diff, final_diff)
        details["tables"] = {
            name: m.model_dump(mode="json", exclude_defaults=True)
            for name, m in tables.items()
        }
        if tables:
            reasoning = "final state differs from the golden state in " + ", ".join(
                tables
            )
        else:
            # Same ids and updated columns: an inserted row's contents differ
            # (the diff carries inserted rows by id only).
            details["note"] = "the diffs agree on ids and updates; row contents differ"
            reasoning = "final state differs from the golden state in row contents"
    return Verdict(passed=False, score=0.0, details=details, reasoning=reasoning)


def _legacy_value(value: Any) -> Any:
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, float):
        return round(value, 2)
    if isinstance(value, list | tuple):
        return [_legacy_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _legacy_value(v) for k, v in value.items()}
    return value


def _legacy_columns(columns: Mapping[str, tuple[Any, Any]]) -> dict[str, Hashable]:
    return {
        column: value_key(_legacy_value(change[1]))
        for column, change in columns.items()
        if column not in LEGACY_IGNORED_COLUMNS
    }


def evaluate_state_legacy(
    expected_diff: DatabaseDiff, final_diff: DatabaseDiff | None
) -> Verdict:
    """The original's environment criterion (reference §4.8), approximated on
    our diffs, for comparison.

    The original passed when every record the golden run added or changed
    (after normalisation) is also among the agent's added or changed records,
    ignored deletions, allowed extra changes, and auto-passed when the golden run
    changed nothing. On our `DatabaseDiff`: every golden inserted id must be
    among the agent's inserted ids (the diff has no row contents, where the
    original compared contents and ignored ids), and every golden updated row
    must be updated by the agent with the same columns set to the same new values
    (the original compared whole records, so an extra changed column also
    mismatched), after its normalisation (strings lower-cased, floats rounded to
    2 places, `created_at`/`updated_at`/`timestamp` dropped). Its placeholder and
    blueprint-based ignore rules are not reproduced. A rollout without a final
    diff counts as having changed nothing (the original rebuilt the agent's
    state by replaying its calls, so it always had one).

    Args:
        expected_diff: The task's expected diff against the base.
        final_diff: The rollout's final diff, if any.

    Returns:
        The legacy verdict, with `missing_changes` per table when it fails.
    """
    actual = final_diff or DatabaseDiff()
    empty = TableDiff()
    gold_changes = sum(
        len(t.inserted) + len(t.updated) for t in expected_diff.tables.values()
    )
    if gold_changes == 0:
        return Verdict(
            passed=True,
            score=1.0,
            details={"note": "Gold trajectory made no changes, auto-pass"},
            reasoning="Gold trajectory made no changes, auto-pass",
        )
    missing_changes = []
    for name, gold in sorted(expected_diff.tables.items()):
        agent = actual.tables.get(name, empty)
        inserted = _minus(gold.inserted, agent.inserted)
        updated = sorted(
            row
            for row, columns in gold.updated.items()
            if _legacy_columns(columns) != _legacy_columns(agent.updated.get(row, {}))
        )
        if inserted or updated:
            missing_changes.append(
                {
                    "table": name,
                    "missing_count": len(inserted) + len(updated),
                    "missing_inserts": list(inserted),
                    "missing_updates": updated,
                    "gold_diff_count": len(gold.inserted) + len(gold.updated),
                    "agent_diff_count": len(agent.inserted) + len(agent.updated),
                }
            )
    if missing_changes:
        return Verdict(
            passed=False,
            score=0.0,
            details={"missing_changes": missing_changes},
            reasoning=f"Database diff mismatch: {len(missing_changes)} table(s) "
            "missing expected changes",
        )
    return Verdict(
        passed=True,
        score=1.0,
        details={"diff_match": True, "gold_diff_count": gold_changes},
        reasoning="Agent diff contains every golden change",
    )
