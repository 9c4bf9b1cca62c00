"""InstructorLLM end to end over the real openai + instructor path (no sockets)."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml
from pydantic import BaseModel, field_validator

from schemas.base import CheckedDraft
from schemas.config import LLMConfig, ModelRole
from schemas.llm import CassetteAnswer
from tasks.llm.cassette import (
    CALL_KEY_HEADER,
    ROLE_HEADER,
    Cassette,
    ReplayResponder,
    ReplayTransport,
)
from tasks.llm.client import (
    InstructorLLM,
    RoleEndpoint,
    build_llm_client,
    check_endpoint_config,
)
from tasks.llm.errors import (
    CassetteMiss,
    InvalidModelOutput,
    LLMHTTPError,
    LLMUnavailable,
)
from tasks.llm.ledger import UsageLedger
from tasks.llm.transport import build_transport_stack

KEY = "s04/detail/Patient-0"
PROMPT = [{"role": "user", "content": "Describe a dog."}]
ENV = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": "http://endpoint.test/v1"}


class Dog(BaseModel):
    name: str
    legs: int

    @field_validator("legs")
    @classmethod
    def _four_legs(cls, legs: int) -> int:
        if legs != 4:
            raise ValueError(f"a dog has exactly 4 legs, not {legs}")
        return legs


def _config(mode: str = "replay", **overrides: Any) -> LLMConfig:
    values: dict[str, Any] = {
        "mode": mode,
        "cassette": "cassette.yaml" if mode != "live" else None,
        "retry_backoff_s": 0.5,
        "transport_retries": 2,
        "roles": {
            "textual": ModelRole(model="text-model"),
            "coding": ModelRole(model="code-model"),
        },
    }
    return LLMConfig.model_validate({**values, **overrides})


def _cassette(tmp_path: Path, calls: dict[str, list[dict]]) -> Path:
    path = tmp_path / "cassette.yaml"
    document = {"version": 1, "scripted": True, "description": "test", "calls": calls}
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def _replay_client(
    tmp_path: Path, calls: dict[str, list[dict]], sleeps: list[float], **config: Any
) -> InstructorLLM:
    _cassette(tmp_path, calls)
    return build_llm_client(
        _config("replay", **config),
        config_dir=tmp_path,
        env={},
        ledger=UsageLedger(),
        sleep=sleeps.append,
    )


class Spy(httpx2.BaseTransport):
    """Keeps every request (headers and JSON body) before passing it on."""

    def __init__(self, inner: httpx2.BaseTransport) -> None:
        self.inner = inner
        self.requests: list[tuple[httpx2.Headers, dict]] = []

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append((request.headers, json.loads(request.read())))
        return self.inner.handle_request(request)


def _spied_client(
    llm: LLMConfig, answers: dict[tuple[str, int], dict]
) -> tuple[InstructorLLM, Spy]:
    cassette = Cassette(
        {key: CassetteAnswer.model_validate(a) for key, a in answers.items()}
    )
    spy = Spy(ReplayTransport(ReplayResponder(cassette)))
    ledger = UsageLedger()
    stack = build_transport_stack(
        spy, ledger=ledger, source="replay", retries=0, backoff_s=0, backoff_max_s=0
    )
    endpoint = RoleEndpoint(
        base_url="http://replay.invalid/v1",
        api_key="replay",
        api_key_env="OPENAI_API_KEY",
        transport=stack,
        label="memory cassette",
    )
    endpoints = {"textual": endpoint, "coding": endpoint}
    return InstructorLLM(llm, endpoints, ledger=ledger), spy


def test_reask_sends_the_validation_error_and_returns_the_second_answer() -> None:
    """Attempt 0 fails the validator; the re-ask carries the error; attempt 1 wins."""
    llm, spy = _spied_client(
        _config(),
        {
            (KEY, 0): {"tool_arguments": {"name": "Rex", "legs": 3}},
            (KEY, 1): {"tool_arguments": {"name": "Rex", "legs": 4}},
        },
    )
    dog = llm.create(Dog, PROMPT, call_key=KEY, role="textual")
    assert dog.model_dump() == {"name": "Rex", "legs": 4}
    assert len(spy.requests) == 2
    reask = spy.requests[1][1]["messages"]
    assert [m["role"] for m in reask] == ["user", "assistant", "tool"]
    assert "a dog has exactly 4 legs, not 3" in reask[2]["content"]
    assert [(r.attempt, r.outcome) for r in llm.ledger.records()] == [
        (0, "ok"),
        (1, "ok"),
    ]


def test_request_carries_call_key_role_model_override_and_sampling() -> None:
    """Headers name the call and role; the body has the model and role sampling."""
    roles = {
        "textual": ModelRole(model="text-model", temperature=0.2, max_tokens=300),
        "coding": ModelRole(model="code-model"),
    }
    llm, spy = _spied_client(
        _config(roles=roles),
        {("s01/café", 0): {"tool_arguments": {"name": "Rex", "legs": 4}}},
    )
    llm.create(Dog, PROMPT, call_key="s01/café", role="textual", model="big-model")
    headers, body = spy.requests[0]
    assert headers[CALL_KEY_HEADER] == "s01/caf%C3%A9"
    assert headers[ROLE_HEADER] == "textual"
    assert (body["model"], body["temperature"], body["max_tokens"]) == (
        "big-model",
        0.2,
        300,
    )
    assert body["tool_choice"]["function"]["name"] == "Dog"
    assert llm.model_for("coding") == "code-model"
    assert llm.ledger.records()[0].call_key == "s01/café"


def test_assistant_turns_in_the_prompt_are_not_counted_as_reasks() -> None:
    """A multi-turn prompt still asks for attempt 0."""
    llm, _ = _spied_client(
        _config(), {(KEY, 0): {"tool_arguments": {"name": "Rex", "legs": 4}}}
    )
    prompt = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello, which animal?"},
        {"role": "user", "content": "A dog."},
    ]
    assert llm.create(Dog, prompt, call_key=KEY, role="coding").name == "Rex"


def test_rate_limit_is_retried_after_the_advised_delay(tmp_path: Path) -> None:
    """A 429 with Retry-After sleeps that long, then the answer arrives."""
    sleeps: list[float] = []
    error = {"status": 429, "retry_after": 7}
    answer = {"tool_arguments": {"name": "Rex", "legs": 4}, "errors_before": [error]}
    llm = _replay_client(tmp_path, {KEY: [answer]}, sleeps)
    assert llm.create(Dog, PROMPT, call_key=KEY, role="textual").legs == 4
    assert sleeps == [7.0]
    records = llm.ledger.records()
    assert [(r.outcome, r.status_code, r.transport_try) for r in records] == [
        ("http_error", 429, 0),
        ("ok", 200, 1),
    ]
    assert llm.ledger.calls() == 1
    assert records[1].source == "replay"


def test_cassette_miss_raises_naming_the_call_key(tmp_path: Path) -> None:
    """Replay of an unrecorded call fails loudly with the key; it is not retried."""
    sleeps: list[float] = []
    llm = _replay_client(tmp_path, {KEY: [{"content": "unused"}]}, sleeps)
    with pytest.raises(CassetteMiss) as info:
        llm.create(Dog, PROMPT, call_key="s02/entities/batch-9", role="textual")
    assert info.value.call_key == "s02/entities/batch-9"
    assert info.value.attempt == 0
    assert "'s02/entities/batch-9'" in str(info.value)
    assert str(tmp_path / "cassette.yaml") in str(info.value)
    assert sleeps == []
    assert llm.ledger.calls("cassette_miss") == 1


def test_invalid_output_after_all_attempts_raises_invalid_model_output(
    tmp_path: Path,
) -> None:
    """Every attempt invalid: a typed error with the attempt count and last error."""
    bad = {"tool_arguments": {"name": "Rex", "legs": 3}}
    llm = _replay_client(tmp_path, {KEY: [bad, bad, bad]}, [])
    with pytest.raises(InvalidModelOutput) as info:
        llm.create(Dog, PROMPT, call_key=KEY, role="textual")
    assert info.value.attempts == 3
    assert "a dog has exactly 4 legs, not 3" in info.value.last_error
    assert llm.ledger.calls() == 3


class Litter(CheckedDraft):
    names: list[str]


def test_context_check_problems_are_sent_back_as_the_reask() -> None:
    """The `check` in the validation context drives the re-ask, as steps use it."""
    llm, spy = _spied_client(
        _config(),
        {
            (KEY, 0): {"tool_arguments": {"names": ["Rex", "Rex"]}},
            (KEY, 1): {"tool_arguments": {"names": ["Rex", "Max"]}},
        },
    )

    def no_duplicates(litter: Litter) -> list[str]:
        repeated = sorted({n for n in litter.names if litter.names.count(n) > 1})
        return [f"name {n!r} is used twice" for n in repeated]

    litter = llm.create(
        Litter, PROMPT, call_key=KEY, role="textual", context={"check": no_duplicates}
    )
    assert litter.names == ["Rex", "Max"]
    assert "name 'Rex' is used twice" in spy.requests[1][1]["messages"][2]["content"]


def test_a_checked_prompt_quoting_template_syntax_is_sent_unchanged() -> None:
    """A prompt that quotes code or JSON with `{{`, `{%` or `{#` (a repair prompt
    showing the model its own code, say) reaches the model byte for byte while the
    check still drives the re-ask; nothing renders it as a template."""
    quoted = (
        "Fix this code:\n    greeting = f'{{name}}'\n    {% raw %} {#x} {{ check }}\n"
        "  indented line"
    )
    prompt = [{"role": "user", "content": quoted}]
    llm, spy = _spied_client(
        _config(),
        {
            (KEY, 0): {"tool_arguments": {"names": ["Rex", "Rex"]}},
            (KEY, 1): {"tool_arguments": {"names": ["Rex", "Max"]}},
        },
    )

    def no_duplicates(litter: Litter) -> list[str]:
        return ["names repeat"] if len(set(litter.names)) < len(litter.names) else []

    litter = llm.create(
        Litter, prompt, call_key=KEY, role="textual", context={"check": no_duplicates}
    )
    assert litter.names == ["Rex", "Max"]
    assert [r[1]["messages"][0]["content"] for r in spy.requests] == [quoted] * 2
    # the check applies only inside the call
    assert Litter.model_validate({"names": ["a", "a"]}).names == ["a", "a"]


def test_a_check_that_builds_drafts_of_its_own_does_not_check_them() -> None:
    """A check may normalise the answer into a new draft of the same type (s04
    does); that draft is not checked again (no endless recursion)."""
    llm, _ = _spied_client(
        _config(), {(KEY, 0): {"tool_arguments": {"names": ["rex", "max"]}}}
    )
    seen: list[list[str]] = []

    def normalised_is_unique(litter: Litter) -> list[str]:
        seen.append(litter.names)
        titled = Litter(names=[n.title() for n in litter.names])
        return [] if len(set(titled.names)) == len(titled.names) else ["repeats"]

    litter = llm.create(
        Litter,
        PROMPT,
        call_key=KEY,
        role="textual",
        context={"check": normalised_is_unique},
    )
    assert litter.names == ["rex", "max"] and seen == [["rex", "max"]]


class Cat(BaseModel):
    name: str

    @field_validator("name")
    @classmethod
    def _broken(cls, name: str) -> str:
        raise TypeError("bug in our validator")


def test_a_bug_in_a_validator_surfaces_unchanged_and_is_not_reasked(
    tmp_path: Path,
) -> None:
    """Only ValueErrors are the model's fault; a TypeError propagates as is."""
    answer = {"tool_arguments": {"name": "Tom"}}
    llm = _replay_client(tmp_path, {KEY: [answer, answer]}, [])
    with pytest.raises(TypeError, match="bug in our validator"):
        llm.create(Cat, PROMPT, call_key=KEY, role="textual")
    assert llm.ledger.calls() == 1


def test_max_retries_counts_total_attempts(tmp_path: Path) -> None:
    """max_retries=1 makes exactly one request, with no re-ask."""
    bad = {"tool_arguments": {"name": "Rex", "legs": 3}}
    llm = _replay_client(tmp_path, {KEY: [bad, bad, bad]}, [])
    with pytest.raises(InvalidModelOutput) as info:
        llm.create(Dog, PROMPT, call_key=KEY, role="textual", max_retries=1)
    assert info.value.attempts == 1
    assert llm.ledger.calls() == 1


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_unreachable_endpoint_raises_llm_unavailable_after_retry_budget() -> None:
    """Connection refused on every try: backoff sleeps, then LLMUnavailable."""
    base_url = f"http://127.0.0.1:{_closed_port()}/v1"
    sleeps: list[float] = []
    llm = build_llm_client(
        _config("live"),
        config_dir=Path("."),
        env={"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": base_url},
        ledger=UsageLedger(),
        sleep=sleeps.append,
    )
    with llm, pytest.raises(LLMUnavailable) as info:
        llm.create(Dog, PROMPT, call_key=KEY, role="textual")
    assert info.value.endpoint == base_url
    assert base_url in str(info.value)
    assert "3 tries" in str(info.value)
    assert sleeps == [0.5, 1.0]
    assert llm.ledger.calls("transport_error") == 3


def _mock_endpoint(status: int, body: dict) -> httpx2.MockTransport:
    return httpx2.MockTransport(lambda _request: httpx2.Response(status, json=body))


@pytest.mark.parametrize(
    ("status", "expected", "retried"),
    [
        (401, "OPENAI_API_KEY", False),
        (503, "HTTP 503 after 3 tries: context too long", True),
        (400, "HTTP 400: context too long", False),
    ],
)
def test_http_errors_map_to_llm_http_error_with_status_and_message(
    status: int, expected: str, retried: bool
) -> None:
    """Auth errors hint at the key variable; server errors are retried first."""
    sleeps: list[float] = []
    body = {"error": {"message": "context too long", "type": "x"}}
    llm = build_llm_client(
        _config("live"),
        config_dir=Path("."),
        env=ENV,
        ledger=UsageLedger(),
        sleep=sleeps.append,
        http_transport=lambda: _mock_endpoint(status, body),
    )
    with pytest.raises(LLMHTTPError) as info:
        llm.create(Dog, PROMPT, call_key=KEY, role="coding")
    assert expected in str(info.value)
    assert info.value.endpoint == "http://endpoint.test/v1"
    assert info.value.status == status
    assert info.value.retryable is (status >= 500)
    assert len(sleeps) == (2 if retried else 0)


def _recordable_endpoint() -> httpx2.MockTransport:
    """A fake real endpoint: broken JSON first, a valid dog on the re-ask."""

    def answer(request: httpx2.Request) -> httpx2.Response:
        reasks = sum(
            m["role"] == "assistant" for m in json.loads(request.read())["messages"]
        )
        arguments = '{"name": "Rex", "legs": ' + ("4}" if reasks else "")
        function = {"name": "Dog", "arguments": arguments}
        call = {"id": "c1", "type": "function", "function": function}
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
        completion = {
            "id": "live-1",
            "object": "chat.completion",
            "created": 1700000000,
            "model": "text-model",
            "choices": [
                {"index": 0, "message": message, "finish_reason": "tool_calls"}
            ],
            "usage": {"prompt_tokens": 40, "completion_tokens": 9, "total_tokens": 49},
        }
        return httpx2.Response(200, json=completion)

    return httpx2.MockTransport(answer)


def test_record_mode_writes_a_cassette_that_replays_the_same_answer(
    tmp_path: Path,
) -> None:
    """Recording keeps every attempt, so replay reproduces the re-ask and result."""
    recorder = build_llm_client(
        _config("record", cassette="rec/run.jsonl"),
        config_dir=tmp_path,
        env=ENV,
        ledger=UsageLedger(),
        http_transport=_recordable_endpoint,
    )
    recorded = recorder.create(Dog, PROMPT, call_key=KEY, role="textual")
    assert [r.prompt_tokens for r in recorder.ledger.records()] == [40, 40]

    replayer = build_llm_client(
        _config("replay", cassette="rec/run.jsonl"),
        config_dir=tmp_path,
        env={},
        ledger=UsageLedger(),
    )
    replayed = replayer.create(Dog, PROMPT, call_key=KEY, role="textual")
    assert replayed.model_dump() == recorded.model_dump() == {"name": "Rex", "legs": 4}
    assert [(r.attempt, r.source) for r in replayer.ledger.records()] == [
        (0, "replay"),
        (1, "replay"),
    ]


class Gate(httpx2.BaseTransport):
    """Counts requests in flight; pairs of requests must meet at a barrier."""

    def __init__(self, inner: httpx2.BaseTransport) -> None:
        self.inner = inner
        self.lock = threading.Lock()
        self.in_flight = 0
        self.peak = 0
        self.barrier = threading.Barrier(2, timeout=5)

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        with self.lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            self.barrier.wait()
            return self.inner.handle_request(request)
        finally:
            with self.lock:
                self.in_flight -= 1


def test_concurrent_calls_are_capped_at_max_concurrency() -> None:
    """Six threads, max_concurrency 2: never more than two requests in flight."""
    answers = {
        (f"s01/x/{i}", 0): {"tool_arguments": {"name": f"D{i}", "legs": 4}}
        for i in range(6)
    }
    llm, spy = _spied_client(_config(max_concurrency=2), answers)
    gate = Gate(spy.inner)
    spy.inner = gate
    results: dict[int, str] = {}

    def call(i: int) -> None:
        dog = llm.create(Dog, PROMPT, call_key=f"s01/x/{i}", role="textual")
        results[i] = dog.name

    threads = [threading.Thread(target=call, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {i: f"D{i}" for i in range(6)}
    assert gate.peak == 2


def test_check_endpoint_config_reports_missing_api_key_with_demo_hint() -> None:
    """Live mode without the key variable says so once, naming every role using it."""
    problems = check_endpoint_config(_config("live"), {})
    assert problems == [
        "llm.roles.coding and llm.roles.textual: environment variable OPENAI_API_KEY "
        "is not set; export it (local servers accept any value), or run the offline "
        "demo: agentskiller run --config configs/demo.yaml"
    ]
    assert check_endpoint_config(_config("live"), ENV) == []


def test_check_endpoint_config_reports_each_missing_key_variable_once() -> None:
    """Roles naming different key variables get one sentence per variable."""
    roles = {
        "textual": ModelRole(model="text-model", api_key_env="TEXT_KEY"),
        "coding": ModelRole(model="code-model", api_key_env="CODE_KEY"),
    }
    problems = check_endpoint_config(_config("live", roles=roles), {"TEXT_KEY": "k"})
    assert [p.split(" is not set")[0] for p in problems] == [
        "llm.roles.coding: environment variable CODE_KEY"
    ]
    both = check_endpoint_config(_config("live", roles=roles), {})
    assert [p.split(":")[0] for p in both] == ["llm.roles.coding", "llm.roles.textual"]


def test_check_endpoint_config_reports_missing_or_misnamed_cassettes(
    tmp_path: Path,
) -> None:
    """Replay needs an existing cassette; record needs a .jsonl path."""
    [missing] = check_endpoint_config(_config("replay"), {}, config_dir=tmp_path)
    assert str(tmp_path / "cassette.yaml") in missing
    _cassette(tmp_path, {KEY: [{"content": "x"}]})
    assert check_endpoint_config(_config("replay"), {}, config_dir=tmp_path) == []
    [wrong] = check_endpoint_config(_config("record"), ENV, config_dir=tmp_path)
    assert "record mode writes a .jsonl cassette" in wrong
