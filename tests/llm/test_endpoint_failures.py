"""Endpoint failures are told apart, and answers cut off at max_tokens are not re-asked.

The endpoint tests talk to real HTTP servers on 127.0.0.1 (one that hangs, a closed
port, one that answers 500, one that answers 429) through the real openai +
instructor + transport path, with small timeouts and retry budgets.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2
import pytest
from pydantic import BaseModel

from schemas.artifact import WorkItem
from schemas.config import LLMConfig, ModelRole
from tasks.fanout import failure_from_exception
from tasks.items import invalid_output
from tasks.llm.cassette import Cassette
from tasks.llm.client import InstructorLLM, build_llm_client
from tasks.llm.errors import (
    LLMHTTPError,
    LLMRateLimited,
    LLMTimeout,
    LLMUnavailable,
    LLMUnreachable,
    ModelOutputTruncated,
)
from tasks.llm.ledger import UsageLedger

KEY = "s02/batch-000"
PROMPT = [{"role": "user", "content": "Name a dog."}]


class Dog(BaseModel):
    name: str
    legs: int


def _config(mode: str = "live", **overrides: Any) -> LLMConfig:
    values: dict[str, Any] = {
        "mode": mode,
        "cassette": "cassette.jsonl" if mode != "live" else None,
        "timeout_s": 0.3,
        "transport_retries": 1,
        "retry_backoff_s": 0.5,
        "roles": {
            "textual": ModelRole(model="tiny", max_tokens=32),
            "coding": ModelRole(model="tiny"),
        },
    }
    return LLMConfig.model_validate({**values, **overrides})


def _client(
    base_url: str,
    sleeps: list[float],
    *,
    transport: Callable[[], httpx2.BaseTransport] | None = None,
    mode: str = "live",
    config_dir: Path = Path("."),
) -> InstructorLLM:
    return build_llm_client(
        _config(mode),
        config_dir=config_dir,
        env={"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": base_url},
        ledger=UsageLedger(),
        sleep=sleeps.append,
        http_transport=transport,
    )


@pytest.fixture
def hanging_url() -> Iterator[str]:
    """A server that reads each request and never answers until the test ends."""
    release = threading.Event()

    class Hang(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.recv(65536)
            release.wait()

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Hang)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        release.set()
        server.shutdown()
        server.server_close()
        thread.join()


def _status_server(status: int, body: dict, headers: dict[str, str]):
    class Answer(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 (http.server naming)
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            payload = json.dumps(body).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    server.daemon_threads = True
    return server


@pytest.fixture
def status_url() -> Iterator[Callable[..., str]]:
    servers: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def start(status: int, body: dict, headers: dict[str, str] | None = None) -> str:
        server = _status_server(status, body, headers or {})
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}/v1"

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _failed(exc: Exception):
    return failure_from_exception("s02", "batch-000", exc)


def test_a_server_that_never_answers_is_a_timeout_naming_the_setting(hanging_url):
    """A hang is `llm_timeout`: it names llm.timeout_s, not the base URL."""
    sleeps: list[float] = []
    llm = _client(hanging_url, sleeps)
    with llm, pytest.raises(LLMTimeout) as info:
        llm.create(Dog, PROMPT, call_key=KEY, role="textual")
    message = str(info.value)
    assert "llm.timeout_s = 0.3 s" in message
    assert "on any of 2 tries" in message
    assert "base URL" not in message
    assert sleeps == [0.5]
    assert llm.ledger.calls("transport_error") == 2
    failure = _failed(info.value)
    assert (failure.reason, failure.retryable, failure.blocking) == (
        "llm_timeout",
        True,
        True,
    )


def test_a_refused_connection_is_unreachable_and_points_at_the_base_url():
    """A closed port is `llm_unreachable`, with the base-URL advice."""
    base_url = f"http://127.0.0.1:{_closed_port()}/v1"
    sleeps: list[float] = []
    llm = _client(base_url, sleeps)
    with llm, pytest.raises(LLMUnreachable) as info:
        llm.create(Dog, PROMPT, call_key=KEY, role="textual")
    message = str(info.value)
    assert base_url in message
    assert "no connection after 2 tries (ConnectError" in message
    assert "Check that the base URL is right" in message
    assert "timeout" not in message
    assert _failed(info.value).reason == "llm_unreachable"
    assert _failed(info.value).retryable


def test_a_server_error_reports_its_status_and_body_after_retries(status_url):
    """HTTP 500 is retried, then `llm_http_error` quotes the status and body."""
    url = status_url(500, {"error": {"message": "model crashed: out of memory"}})
    sleeps: list[float] = []
    llm = _client(url, sleeps)
    with llm, pytest.raises(LLMHTTPError) as info:
        llm.create(Dog, PROMPT, call_key=KEY, role="textual")
    assert info.value.status == 500
    assert "HTTP 500 after 2 tries: model crashed: out of memory" in str(info.value)
    assert "base URL" not in str(info.value)
    assert sleeps == [0.5]
    failure = _failed(info.value)
    assert (failure.reason, failure.retryable) == ("llm_http_error", True)


def test_a_refused_request_is_an_http_error_a_rerun_alone_will_not_fix(status_url):
    """HTTP 400 is not retried; its failure blocks the step but is not retryable."""
    url = status_url(400, {"detail": "tools are not supported by this server"})
    sleeps: list[float] = []
    llm = _client(url, sleeps)
    with llm, pytest.raises(LLMHTTPError) as info:
        llm.create(Dog, PROMPT, call_key=KEY, role="textual")
    assert "HTTP 400: " in str(info.value)
    assert "tools are not supported by this server" in str(info.value)
    assert sleeps == []
    failure = _failed(info.value)
    assert (failure.reason, failure.retryable, failure.blocking) == (
        "llm_http_error",
        False,
        True,
    )


def test_a_rate_limit_outlasting_the_retries_is_reported_as_rate_limited(status_url):
    """HTTP 429 on every try is `llm_rate_limited`, advising less concurrency."""
    url = status_url(
        429, {"error": {"message": "slow down"}}, headers={"Retry-After": "7"}
    )
    sleeps: list[float] = []
    llm = _client(url, sleeps)
    with llm, pytest.raises(LLMRateLimited) as info:
        llm.create(Dog, PROMPT, call_key=KEY, role="textual")
    message = str(info.value)
    assert "rate limited (HTTP 429) on all 2 tries: slow down" in message
    assert "llm.max_concurrency" in message
    assert sleeps == [7.0]
    assert isinstance(info.value, LLMUnavailable)
    assert _failed(info.value).reason == "llm_rate_limited"


def _completion(arguments: str, *, finish: str, used: int) -> dict:
    call = {"id": "c1", "type": "function"}
    call["function"] = {"name": "Dog", "arguments": arguments}
    message = {"role": "assistant", "content": None, "tool_calls": [call]}
    return {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "tiny",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": 10,
            "completion_tokens": used,
            "total_tokens": 10 + used,
        },
    }


class Endpoint(httpx2.BaseTransport):
    """Answers every chat request with one completion and keeps the bodies."""

    def __init__(self, completion: dict) -> None:
        self.completion = completion
        self.bodies: list[dict] = []

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        self.bodies.append(json.loads(request.read()))
        return httpx2.Response(200, json=self.completion, request=request)


@pytest.mark.parametrize(
    ("finish", "used"),
    [("tool_calls", 32), ("length", 20)],
    ids=["usage-at-max-tokens", "finish-reason-length"],
)
def test_an_answer_cut_off_at_max_tokens_is_truncated_and_not_reasked(
    finish: str, used: int
):
    """Usage at the limit (llama.cpp) or finish_reason length: one call, `truncated`."""
    endpoint = Endpoint(_completion('{"name": "Rex", "le', finish=finish, used=used))
    llm = _client("http://endpoint.test/v1", [], transport=lambda: endpoint)
    with llm, pytest.raises(ModelOutputTruncated) as info:
        llm.create(Dog, PROMPT, call_key=KEY, role="textual")
    assert len(endpoint.bodies) == 1
    assert endpoint.bodies[0]["max_tokens"] == 32
    assert "max_tokens = 32" in str(info.value)
    assert "llm.roles.textual.max_tokens" in str(info.value)
    assert "EOF while parsing" not in str(info.value)
    work = WorkItem(step="s02", item_key="batch-000", task="m:f", code_version="c")
    failure = invalid_output(work, info.value).failure
    assert failure is not None
    assert failure.reason == "truncated"
    assert "llm.roles.textual.max_tokens" in failure.message
    assert not failure.blocking


def test_an_answer_under_the_limit_with_broken_json_is_still_reasked():
    """Below max_tokens, broken arguments are a model mistake and get re-asked."""
    endpoint = Endpoint(_completion('{"name": "Rex", "le', finish="tool_calls", used=9))
    llm = _client("http://endpoint.test/v1", [], transport=lambda: endpoint)
    with llm, pytest.raises(Exception) as info:
        llm.create(Dog, PROMPT, call_key=KEY, role="textual")
    assert not isinstance(info.value, ModelOutputTruncated)
    assert len(endpoint.bodies) == 3


def test_a_complete_answer_that_ends_exactly_at_the_limit_is_accepted():
    """Usage at max_tokens with whole JSON arguments is an answer, not a cut-off."""
    whole = _completion('{"name": "Rex", "legs": 4}', finish="tool_calls", used=32)
    endpoint = Endpoint(whole)
    llm = _client("http://endpoint.test/v1", [], transport=lambda: endpoint)
    with llm:
        dog = llm.create(Dog, PROMPT, call_key=KEY, role="textual")
    assert dog.model_dump() == {"name": "Rex", "legs": 4}


def test_a_recorded_truncation_replays_as_a_truncation(tmp_path: Path):
    """Record mode keeps the cut-off fact, so replay fails the same way in one call."""
    endpoint = Endpoint(_completion('{"name": "Re', finish="tool_calls", used=32))
    recorder = _client(
        "http://endpoint.test/v1",
        [],
        transport=lambda: endpoint,
        mode="record",
        config_dir=tmp_path,
    )
    with recorder, pytest.raises(ModelOutputTruncated) as recorded:
        recorder.create(Dog, PROMPT, call_key=KEY, role="textual")
    answer = Cassette.load(tmp_path / "cassette.jsonl").answer(KEY, 0)
    assert answer.truncated and answer.raw_arguments == '{"name": "Re'
    replayer = _client("http://unused.test/v1", [], mode="replay", config_dir=tmp_path)
    with replayer, pytest.raises(ModelOutputTruncated) as replayed:
        replayer.create(Dog, PROMPT, call_key=KEY, role="textual")
    assert replayer.ledger.calls() == 1
    assert str(replayed.value) == str(recorded.value)
    assert "(32 tokens)" in str(replayed.value)
