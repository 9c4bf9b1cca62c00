"""The usage ledger: counts, per-step sums, JSONL appends, thread safety."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from schemas.llm import CallRecord
from tasks.llm.ledger import UsageLedger, read_ledger


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
            "cost_usd": 0.0,
        },
        "s02": {
            "calls": 1,
            "failed": 0,
            "prompt_tokens": 8,
            "completion_tokens": 4,
            "latency_s": 0.25,
            "cost_usd": 0.0,
        },
    }


def test_attached_ledger_appends_each_record_as_it_is_added(tmp_path: Path) -> None:
    """Attaching creates the file; records before and after it all reach it."""
    ledger = UsageLedger()
    empty = tmp_path / "ledger" / "run-0.jsonl"
    ledger.attach(empty)
    assert empty.read_bytes() == b""
    ledger = UsageLedger()
    ledger.add(_record("s01"))
    path = tmp_path / "ledger" / "run-1.jsonl"
    ledger.attach(path)
    assert len(path.read_text(encoding="utf-8").splitlines()) == 1
    ledger.add(_record("s03"))
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["step"] for line in lines] == ["s01", "s03"]
    assert read_ledger(path).entries == [_record("s01"), _record("s03")]


def test_read_ledger_skips_a_torn_last_line_and_counts_it(tmp_path: Path) -> None:
    """A line cut short by a killed writer is skipped, counted and explained."""
    path = tmp_path / "run.jsonl"
    ledger = UsageLedger()
    ledger.attach(path)
    ledger.add(_record("s01"))
    ledger.add(_record("s02", tokens=4))
    whole = _record("s04").model_dump_json()
    with path.open("a", encoding="utf-8") as handle:
        handle.write(whole[: len(whole) // 2])
    result = read_ledger(path)
    assert result.entries == [_record("s01"), _record("s02", tokens=4)]
    assert result.skipped == 1
    assert result.problems == ["line 3: torn (no line end)"]
    assert UsageLedger(result.entries).by_step()["s02"]["prompt_tokens"] == 4


def test_read_ledger_skips_lines_that_are_not_call_records(tmp_path: Path) -> None:
    """A garbled middle line is skipped; the records around it are kept."""
    path = tmp_path / "run.jsonl"
    path.write_text(
        _record("s01").model_dump_json()
        + "\n{not json\n"
        + _record("s02").model_dump_json()
        + "\n",
        encoding="utf-8",
    )
    result = read_ledger(path)
    assert [r.step for r in result.entries] == ["s01", "s02"]
    assert result.skipped == 1
    assert result.problems[0].startswith("line 2: ValidationError")


def test_concurrent_attached_adds_write_whole_lines(tmp_path: Path) -> None:
    """Threads appending at once never interleave bytes within a line."""
    path = tmp_path / "run.jsonl"
    ledger = UsageLedger()
    ledger.attach(path)

    def add_many() -> None:
        for _ in range(100):
            ledger.add(_record("s05", tokens=123456))

    threads = [threading.Thread(target=add_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = read_ledger(path)
    assert result.skipped == 0
    assert len(result.entries) == 800 == ledger.calls()


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
