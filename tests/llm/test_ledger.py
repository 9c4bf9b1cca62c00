"""The usage ledger: counts, per-step sums, JSONL output, thread safety."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from schemas.llm import CallRecord
from tasks.llm.ledger import UsageLedger


def _record(step: str, outcome: str = "ok", tokens: int = 10) -> CallRecord:
    return CallRecord(
        call_key=f"{step}/item",
        step=step,
        role="textual",
        model="m",
        attempt=0,
        transport_try=0,
        source="replay",
        outcome=outcome,
        status_code=200 if outcome == "ok" else 503,
        prompt_tokens=tokens,
        completion_tokens=tokens // 2,
        latency_s=0.25,
    )


def test_calls_counts_answered_requests_by_outcome() -> None:
    """`calls()` counts answers; other outcomes are counted separately."""
    ledger = UsageLedger()
    for record in (_record("s01"), _record("s01", "http_error"), _record("s02")):
        ledger.add(record)
    assert ledger.calls() == 2
    assert ledger.calls("http_error") == 1
    assert ledger.calls("cassette_miss") == 0


def test_by_step_sums_tokens_latency_and_splits_failures() -> None:
    """Per-step totals add every try's tokens and latency."""
    ledger = UsageLedger()
    ledger.add(_record("s01", tokens=10))
    ledger.add(_record("s01", "http_error", tokens=0))
    ledger.add(_record("s02", tokens=8))
    assert ledger.by_step() == {
        "s01": {
            "calls": 1,
            "failed": 1,
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "latency_s": 0.5,
        },
        "s02": {
            "calls": 1,
            "failed": 0,
            "prompt_tokens": 8,
            "completion_tokens": 4,
            "latency_s": 0.25,
        },
    }


def test_write_jsonl_appends_one_line_per_record(tmp_path: Path) -> None:
    """Each write appends all records as JSON lines that validate back."""
    ledger = UsageLedger()
    ledger.add(_record("s01"))
    ledger.add(_record("s03"))
    path = tmp_path / "run" / "usage.jsonl"
    ledger.write_jsonl(path)
    ledger.write_jsonl(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4
    assert [json.loads(line)["step"] for line in lines] == ["s01", "s03"] * 2
    assert CallRecord.model_validate_json(lines[1]) == _record("s03")


def test_concurrent_adds_lose_no_record() -> None:
    """Adds from many threads all arrive."""
    ledger = UsageLedger()

    def add_many() -> None:
        for _ in range(200):
            ledger.add(_record("s05"))

    threads = [threading.Thread(target=add_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert ledger.calls() == 1600
