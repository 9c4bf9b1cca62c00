"""Retrying, ledger and recording transports."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import httpx2
import pytest

from tasks.llm.cassette import (
    CALL_KEY_HEADER,
    ROLE_HEADER,
    Cassette,
    CassetteWriter,
)
from tasks.llm.ledger import UsageLedger
from tasks.llm.transport import (
    TRY_EXTENSION,
    LedgerTransport,
    RecordingTransport,
    RetryingTransport,
)

URL = "http://endpoint.test/v1/chat/completions"


class Scripted(httpx2.BaseTransport):
    """Returns the scripted responses (or raises the scripted errors) in order."""

    def __init__(self, *steps: int | dict | Exception, headers: dict | None = None):
        self.steps = list(steps)
        self.headers = headers or {}
        self.tries: list[int] = []

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        self.tries.append(request.extensions.get(TRY_EXTENSION, -1))
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        if isinstance(step, dict):
            return httpx2.Response(200, json=step, request=request)
        return httpx2.Response(step, headers=self.headers, json={}, request=request)


def _send(transport: httpx2.BaseTransport, **body) -> httpx2.Response:
    request = httpx2.Request(
        "POST",
        URL,
        json={"model": "m1", "messages": [{"role": "user", "content": "x"}], **body},
        headers={CALL_KEY_HEADER: "s02/entities/batch-0", ROLE_HEADER: "textual"},
    )
    return transport.handle_request(request)


def _retrying(
    inner: httpx2.BaseTransport, sleeps: list[float], **kwargs
) -> RetryingTransport:
    options = {"retries": 3, "backoff_s": 1.0, "backoff_max_s": 60.0}
    return RetryingTransport(inner, sleep=sleeps.append, **{**options, **kwargs})


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_retrying_transport_retries_transient_statuses_with_backoff(status: int):
    """Transient statuses are retried with doubling delays until a 200."""
    sleeps: list[float] = []
    inner = Scripted(status, status, {"ok": True})
    response = _send(_retrying(inner, sleeps), model="m")
    assert response.status_code == 200
    assert sleeps == [1.0, 2.0]
    assert inner.tries == [0, 1, 2]


@pytest.mark.parametrize("status", [400, 401, 404])
def test_retrying_transport_does_not_retry_client_errors(status: int) -> None:
    """A client error is returned at once."""
    sleeps: list[float] = []
    response = _send(_retrying(Scripted(status), sleeps))
    assert response.status_code == status
    assert sleeps == []


def test_retrying_transport_returns_last_response_when_budget_is_spent() -> None:
    """After the last try the error response itself is returned."""
    sleeps: list[float] = []
    inner = Scripted(503, 503, 503)
    response = _send(_retrying(inner, sleeps, retries=2, backoff_max_s=1.5))
    assert response.status_code == 503
    assert sleeps == [1.0, 1.5]


def test_retrying_transport_honours_retry_after_seconds_capped() -> None:
    """Retry-After in seconds is used as the delay, capped by backoff_max_s."""
    sleeps: list[float] = []
    inner = Scripted(429, 429, {}, headers={"Retry-After": "90"})
    _send(_retrying(inner, sleeps, backoff_max_s=30.0))
    assert sleeps == [30.0, 30.0]


def test_retrying_transport_honours_retry_after_http_date_and_ms() -> None:
    """An HTTP-date Retry-After is measured against the injected clock."""
    now = datetime(2025, 1, 23, 20, 0, 0, tzinfo=UTC)
    later = format_datetime(datetime(2025, 1, 23, 20, 0, 12, tzinfo=UTC), usegmt=True)
    sleeps: list[float] = []
    inner = Scripted(503, {}, headers={"Retry-After": later})
    _send(_retrying(inner, sleeps, clock=now.timestamp))
    assert sleeps == [12.0]
    sleeps.clear()
    _send(_retrying(Scripted(429, {}, headers={"retry-after-ms": "250"}), sleeps))
    assert sleeps == [0.25]


def test_retrying_transport_reraises_connection_errors_after_budget() -> None:
    """Connection errors are retried, then the last one propagates."""
    sleeps: list[float] = []
    attempts: list[tuple[int, float, str]] = []

    def refused() -> httpx2.ConnectError:
        return httpx2.ConnectError("connection refused")

    inner = Scripted(refused(), refused(), refused())
    transport = _retrying(
        inner,
        sleeps,
        retries=2,
        on_attempt=lambda n, delay, why: attempts.append((n, delay, why)),
    )
    with pytest.raises(httpx2.ConnectError):
        _send(transport)
    assert sleeps == [1.0, 2.0]
    assert attempts == [
        (1, 1.0, "ConnectError: connection refused"),
        (2, 2.0, "ConnectError: connection refused"),
    ]


COMPLETION = {
    "id": "x",
    "object": "chat.completion",
    "created": 0,
    "model": "m1",
    "choices": [
        {
            "index": 0,
            "finish_reason": "tool_calls",
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c",
                        "type": "function",
                        "function": {"name": "Pet", "arguments": '{"legs": 4}'},
                    }
                ],
            },
        }
    ],
    "usage": {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16},
}


def _ticking_clock(step: float) -> Callable[[], float]:
    ticks = iter(range(1000))
    return lambda: next(ticks) * step


def test_ledger_transport_records_each_try_with_usage_and_identity() -> None:
    """One record per try: key, step, role, model, attempt, try, usage, outcome."""
    ledger = UsageLedger()
    inner = Scripted(503, COMPLETION)
    stack = RetryingTransport(
        LedgerTransport(inner, ledger, source="live", clock=_ticking_clock(0.5)),
        retries=1,
        backoff_s=0.0,
        backoff_max_s=0.0,
        sleep=lambda _s: None,
    )
    _send(stack, messages=[{"role": "assistant", "content": ""}])
    failed, ok = ledger.records()
    assert (failed.outcome, failed.status_code, failed.transport_try) == (
        "http_error",
        503,
        0,
    )
    assert ok.model_dump() == {
        "call_key": "s02/entities/batch-0",
        "step": "s02",
        "role": "textual",
        "model": "m1",
        "attempt": 1,
        "transport_try": 1,
        "source": "live",
        "outcome": "ok",
        "status_code": 200,
        "prompt_tokens": 11,
        "completion_tokens": 5,
        "latency_s": 0.5,
    }


def test_ledger_transport_records_transport_errors_and_skips_other_routes() -> None:
    """A raised connection error is recorded; non-chat routes are not."""
    ledger = UsageLedger()
    transport = LedgerTransport(
        Scripted(httpx2.ReadTimeout("slow"), 200), ledger, source="replay"
    )
    with pytest.raises(httpx2.ReadTimeout):
        _send(transport)
    transport.handle_request(httpx2.Request("GET", "http://endpoint.test/v1/models"))
    [record] = ledger.records()
    assert (record.outcome, record.status_code, record.source) == (
        "transport_error",
        None,
        "replay",
    )


def _completion_with(message: dict) -> dict:
    return {**COMPLETION, "choices": [{**COMPLETION["choices"][0], "message": message}]}


def test_recording_transport_saves_answers_by_call_key_and_attempt(
    tmp_path: Path,
) -> None:
    """Parsed tool arguments, raw arguments and content are recorded; errors not."""
    writer = CassetteWriter(tmp_path / "rec.jsonl")
    function = {"name": "Pet", "arguments": "{"}
    raw_call = {"id": "c", "type": "function", "function": function}
    inner = Scripted(
        COMPLETION,
        _completion_with({"role": "assistant", "tool_calls": [raw_call]}),
        _completion_with({"role": "assistant", "content": "words"}),
        500,
    )
    recording = RecordingTransport(inner, writer)
    one_reask = [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": ""},
    ]
    _send(recording)
    _send(recording, messages=one_reask)
    _send(recording, messages=one_reask * 2)
    _send(recording, messages=one_reask * 3)
    cassette = Cassette.load(writer.path)
    key = "s02/entities/batch-0"
    assert len(cassette) == 3
    assert cassette.answer(key, 0).tool_arguments == {"legs": 4}
    assert cassette.answer(key, 1).raw_arguments == "{"
    assert cassette.answer(key, 2).content == "words"
    first_line = json.loads(writer.path.read_text().splitlines()[0])
    assert first_line == {
        "answer": {"tool_arguments": {"legs": 4}},
        "attempt": 0,
        "call_key": key,
    }
