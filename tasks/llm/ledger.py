"""Thread-safe usage ledger: one `CallRecord` per HTTP try of a chat completion.

Inputs: records appended by `LedgerTransport` from any thread. Output: the records,
counts of answered calls, per-step token and latency sums. Side effect:
`write_jsonl` appends the records to a file.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from schemas.llm import CallOutcome, CallRecord


class UsageLedger:
    """Collects call records; safe to share between threads and roles."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[CallRecord] = []

    def add(self, record: CallRecord) -> None:
        """Append one record."""
        with self._lock:
            self._records.append(record)

    def records(self) -> list[CallRecord]:
        """Return a snapshot of all records in arrival order."""
        with self._lock:
            return list(self._records)

    def calls(self, outcome: CallOutcome = "ok") -> int:
        """Count records with this outcome.

        With the default, this is the number of model answers received: live calls
        plus replayed cassette answers.
        """
        return sum(1 for record in self.records() if record.outcome == outcome)

    def by_step(self) -> dict[str, dict[str, Any]]:
        """Sum usage per step.

        Returns:
            `{step: {"calls", "failed", "prompt_tokens", "completion_tokens",
            "latency_s"}}`, where `calls` counts answered tries and `failed` the
            others; tokens and latency are summed over all tries.
        """
        totals: dict[str, dict[str, Any]] = {}
        for record in self.records():
            row = totals.setdefault(
                record.step,
                {
                    "calls": 0,
                    "failed": 0,
                    "prompt_tokens": 0,
                    "completion_tokens": 0,
                    "latency_s": 0.0,
                },
            )
            row["calls" if record.outcome == "ok" else "failed"] += 1
            row["prompt_tokens"] += record.prompt_tokens
            row["completion_tokens"] += record.completion_tokens
            row["latency_s"] += record.latency_s
        return totals

    def write_jsonl(self, path: Path) -> None:
        """Append every record as one JSON line to `path`, creating its folder."""
        lines = "".join(record.model_dump_json() + "\n" for record in self.records())
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(lines)
