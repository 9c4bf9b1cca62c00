"""Thread-safe usage ledger: one `CallRecord` per HTTP try of a chat completion.

Inputs: records appended by `LedgerTransport` from any thread. Output: the records,
counts of answered calls, per-step token and latency sums; `read_ledger` reads a
ledger file back. Side effect: once `attach`ed to a file (the pipeline attaches
`.agentskiller/ledger/<run>.jsonl`), each record is appended to it as one JSON line
the moment it is added, so a killed run still accounts for every call it finished.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from schemas.config import ModelRole
from schemas.llm import CallOutcome, CallRecord
from tasks.store.journal import JournalRead, append_line, create_journal, read_lines

_LOG = logging.getLogger(__name__)


class UsageLedger:
    """Collects call records; safe to share between threads and roles."""

    def __init__(self, records: Iterable[CallRecord] = ()) -> None:
        self._lock = threading.Lock()
        self._records: list[CallRecord] = list(records)
        self._path: Path | None = None

    @property
    def path(self) -> Path | None:
        """The file records are appended to, if attached."""
        return self._path

    def attach(self, path: Path) -> None:
        """Append every record added from now on to `path` (JSON lines).

        The file is created at once (a run without model calls leaves an empty
        one); records added before are written first, so it is complete.
        """
        create_journal(path)
        with self._lock:
            self._path = path
            earlier = list(self._records)
        for record in earlier:
            self._append(path, record)

    def add(self, record: CallRecord) -> None:
        """Keep one record, and append it to the attached file if any."""
        with self._lock:
            self._records.append(record)
            path = self._path
        if path is not None:
            self._append(path, record)

    @staticmethod
    def _append(path: Path, record: CallRecord) -> None:
        # A full disk must not turn a paid, answered call into a failed item: the
        # record stays in memory (and in the run report) and the loss is logged.
        try:
            append_line(path, record.model_dump_json())
        except OSError as exc:
            _LOG.warning(
                "usage ledger %s: record %s not written: %s", path, record.call_key, exc
            )

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

    def by_step(
        self, prices: Mapping[str, ModelRole] | None = None
    ) -> dict[str, dict[str, Any]]:
        """Sum usage per step.

        Args:
            prices: Role -> its configuration, whose token prices give each
                record's cost (unpriced or unknown roles cost 0).

        Returns:
            `{step: {"calls", "failed", "prompt_tokens", "completion_tokens",
            "latency_s", "cost_usd"}}`, where `calls` counts answered tries and
            `failed` the others; tokens, latency and cost are summed over all
            tries (the assistant, the simulated user and every judge alike).
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
                    "cost_usd": 0.0,
                },
            )
            role = (prices or {}).get(record.role)
            if role is not None:
                row["cost_usd"] += role.cost_usd(
                    record.prompt_tokens, record.completion_tokens
                )
            row["calls" if record.outcome == "ok" else "failed"] += 1
            row["prompt_tokens"] += record.prompt_tokens
            row["completion_tokens"] += record.completion_tokens
            row["latency_s"] += record.latency_s
        return totals


def read_ledger(path: Path) -> JournalRead[CallRecord]:
    """Read a ledger file written by an attached `UsageLedger`.

    A torn last line (the writer was killed mid-write) or any line that is not a
    `CallRecord` is skipped and counted in `.skipped`, with the reason in
    `.problems`. `UsageLedger(result.entries)` gives counts and per-step sums.
    """
    return read_lines(path, CallRecord.model_validate_json)
