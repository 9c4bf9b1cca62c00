"""Cassette files, the cassette writer and the replay responder."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from pydantic import ValidationError

from schemas.llm import CassetteAnswer, ScriptedHttpError
from tasks.llm.cassette import (
    CALL_KEY_HEADER,
    PROMPT_TURNS_HEADER,
    Cassette,
    CassetteWriter,
    ReplayResponder,
    encode_header_value,
    request_attempt,
)
from tasks.llm.errors import CassetteFormatError, CassetteMiss

CHAT = "/v1/chat/completions"


def _request(*, assistants: int = 0, tool: str | None = "Pet") -> bytes:
    messages = [{"role": "user", "content": "name a dog"}]
    for _ in range(assistants):
        messages += [
            {"role": "assistant", "content": ""},
            {"role": "tool", "content": "Validation Error found"},
        ]
    body: dict = {"model": "m", "messages": messages}
    if tool is not None:
        body["tools"] = [{"type": "function", "function": {"name": "Other"}}]
        body["tool_choice"] = {"type": "function", "function": {"name": tool}}
    return json.dumps(body).encode()


def _headers(call_key: str) -> dict[str, str]:
    return {CALL_KEY_HEADER: encode_header_value(call_key)}


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


SCRIPTED = """\
version: 1
scripted: true
description: hand-written answers
calls:
  s01/expand/0:
    - tool_arguments: {name: Rex, legs: 3}
    - tool_arguments: {name: Rex, legs: 4}
  s02/prose/x:
    - content: hello
"""


def test_cassette_answer_requires_exactly_one_kind_of_answer() -> None:
    """An answer with no content, or with two kinds, is rejected."""
    with pytest.raises(ValidationError, match="exactly one"):
        CassetteAnswer()
    with pytest.raises(ValidationError, match="tool_arguments, content"):
        CassetteAnswer(tool_arguments={"a": 1}, content="x")


def test_cassette_answer_round_trips_through_json() -> None:
    """A serialised answer validates back to an equal answer."""
    answer = CassetteAnswer(
        tool_arguments={"a": [1, 2]},
        errors_before=(ScriptedHttpError(status=429, retry_after=1.5),),
    )
    assert CassetteAnswer.model_validate_json(answer.model_dump_json()) == answer


def test_yaml_cassette_answers_by_call_key_and_attempt(tmp_path: Path) -> None:
    """Answers are listed per attempt; the scripted flag and keys are read."""
    cassette = Cassette.load(_write(tmp_path / "c.yaml", SCRIPTED))
    assert cassette.scripted is True
    assert cassette.description == "hand-written answers"
    assert cassette.keys() == ["s01/expand/0", "s02/prose/x"]
    second = cassette.answer("s01/expand/0", 1)
    assert second.tool_arguments == {"name": "Rex", "legs": 4}
    assert cassette.answer("s02/prose/x", 0).content == "hello"


def test_cassette_miss_message_names_cassette_key_and_attempt(tmp_path: Path) -> None:
    """A miss says which file, key and attempt, and how to fix it."""
    path = _write(tmp_path / "c.yaml", SCRIPTED)
    with pytest.raises(CassetteMiss) as info:
        Cassette.load(path).answer("s01/expand/0", 2)
    assert str(info.value) == (
        f"cassette {path} has no answer for call key 's01/expand/0' attempt 2 "
        "(replay mode answers only recorded calls; re-record with llm.mode: record)"
    )
    assert (info.value.call_key, info.value.attempt) == ("s01/expand/0", 2)


def test_yaml_cassette_with_invalid_answer_names_file_and_call_key(
    tmp_path: Path,
) -> None:
    """A malformed answer is reported with its file, key and attempt."""
    path = _write(
        tmp_path / "bad.yaml",
        "version: 1\ncalls:\n  s03/rel/a:\n    - content: ok\n    - {}\n",
    )
    with pytest.raises(CassetteFormatError) as info:
        Cassette.load(path)
    message = str(info.value)
    assert str(path) in message
    assert "call key 's03/rel/a' attempt 1" in message


def test_yaml_cassette_with_wrong_version_or_empty_call_is_rejected(
    tmp_path: Path,
) -> None:
    """Only version 1 is understood; a call key needs at least one answer."""
    path = _write(tmp_path / "v.yaml", "version: 2\ncalls: {}\n")
    with pytest.raises(CassetteFormatError, match=r"version\s+Input should be 1"):
        Cassette.load(path)
    path = _write(tmp_path / "e.yaml", "version: 1\ncalls:\n  s01/a: []\n")
    with pytest.raises(CassetteFormatError, match=r"calls\.s01/a\s+List should"):
        Cassette.load(path)


def test_jsonl_cassette_later_lines_override_earlier_ones(tmp_path: Path) -> None:
    """Re-recording a call appends a line that wins over the old one."""
    lines = [
        {"call_key": "k/1", "attempt": 0, "answer": {"content": "old"}},
        {"call_key": "k/1", "attempt": 1, "answer": {"content": "second"}},
        {"call_key": "k/1", "attempt": 0, "answer": {"content": "new"}},
    ]
    path = _write(
        tmp_path / "r.jsonl", "".join(json.dumps(line) + "\n" for line in lines)
    )
    cassette = Cassette.load(path)
    assert cassette.scripted is False
    assert cassette.answer("k/1", 0).content == "new"
    assert cassette.answer("k/1", 1).content == "second"
    assert len(cassette) == 2


def test_jsonl_cassette_with_invalid_answer_names_line_and_call_key(
    tmp_path: Path,
) -> None:
    """The error points at the line and key of the bad answer."""
    good = json.dumps({"call_key": "a", "attempt": 0, "answer": {"content": "x"}})
    bad = json.dumps({"call_key": "s04/b", "attempt": 0, "answer": {"nope": 1}})
    path = _write(tmp_path / "r.jsonl", f"{good}\n\n{bad}\n")
    with pytest.raises(CassetteFormatError) as info:
        Cassette.load(path)
    assert f"cassette {path}: line 3, call key 's04/b' attempt 0" in str(info.value)


def test_cassette_with_unknown_suffix_is_rejected(tmp_path: Path) -> None:
    """The format is chosen by suffix; anything else is an error naming the file."""
    path = _write(tmp_path / "c.json", "{}")
    with pytest.raises(CassetteFormatError, match="unknown format .json"):
        Cassette.load(path)


def test_writer_appends_lines_from_many_threads_that_load_back(tmp_path: Path) -> None:
    """Concurrent appends each land as one whole line."""
    writer = CassetteWriter(tmp_path / "sub" / "rec.jsonl")
    threads = [
        threading.Thread(
            target=writer.append,
            args=(f"s01/item/{i}", 0, CassetteAnswer(tool_arguments={"i": i})),
        )
        for i in range(20)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cassette = Cassette.load(writer.path)
    assert len(cassette) == 20
    assert cassette.answer("s01/item/7", 0).tool_arguments == {"i": 7}


def test_writer_refuses_a_non_jsonl_path(tmp_path: Path) -> None:
    """Recorded cassettes are JSONL only."""
    with pytest.raises(ValueError, match="JSONL"):
        CassetteWriter(tmp_path / "c.yaml")


def test_request_attempt_ignores_assistant_turns_of_the_prompt() -> None:
    """Assistant messages announced as part of the prompt are not re-asks."""
    body = json.loads(_request(assistants=3))
    assert request_attempt(body, {}) == 3
    assert request_attempt(body, {PROMPT_TURNS_HEADER: "1"}) == 2


def _responder(answers: dict, **kwargs) -> ReplayResponder:
    return ReplayResponder(Cassette(answers, path="mem.yaml"), **kwargs)


def test_responder_answers_tool_call_to_the_requested_function() -> None:
    """The tool call targets the function named in tool_choice."""
    responder = _responder({("k", 1): CassetteAnswer(tool_arguments={"legs": 4})})
    status, headers, body = responder.respond(
        "POST", CHAT, _headers("k"), _request(assistants=1)
    )
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    completion = json.loads(body)
    assert completion["created"] == 0
    assert completion["id"].startswith("replay-")
    call = completion["choices"][0]["message"]["tool_calls"][0]
    assert call["function"] == {"name": "Pet", "arguments": '{"legs": 4}'}
    assert completion["choices"][0]["finish_reason"] == "tool_calls"
    assert completion["usage"]["prompt_tokens"] == len(_request(assistants=1)) // 4


def test_responder_is_byte_for_byte_deterministic() -> None:
    """The same request gets the same bytes from a fresh responder."""
    answers = {("k", 0): CassetteAnswer(tool_arguments={"name": "Rex"})}
    first = _responder(answers).respond("POST", CHAT, _headers("k"), _request())
    second = _responder(answers).respond("POST", CHAT, _headers("k"), _request())
    assert first == second


def test_responder_serves_content_and_raw_arguments_verbatim() -> None:
    """Plain content becomes a message; raw arguments are passed through unparsed."""
    responder = _responder(
        {
            ("c", 0): CassetteAnswer(content="plain words"),
            ("r", 0): CassetteAnswer(raw_arguments='{"name": '),
        }
    )
    _, _, body = responder.respond("POST", CHAT, _headers("c"), _request(tool=None))
    message = json.loads(body)["choices"][0]["message"]
    assert message == {"role": "assistant", "content": "plain words"}
    _, _, body = responder.respond("POST", CHAT, _headers("r"), _request())
    call = json.loads(body)["choices"][0]["message"]["tool_calls"][0]
    assert call["function"]["arguments"] == '{"name": '


def test_responder_without_call_key_header_answers_400() -> None:
    """Requests not made through our client are refused with a clear message."""
    status, _, body = _responder({}).respond("POST", CHAT, {}, _request())
    assert status == 400
    assert CALL_KEY_HEADER in json.loads(body)["error"]["message"]


def test_responder_miss_answers_404_with_cassette_miss_details() -> None:
    """A miss is a 404 whose JSON error carries the key, attempt and message."""
    status, _, body = _responder({}).respond(
        "POST", CHAT, _headers("s09/x"), _request(assistants=2)
    )
    error = json.loads(body)["error"]
    assert status == 404
    assert error["type"] == "cassette_miss"
    assert (error["call_key"], error["attempt"]) == ("s09/x", 2)
    assert error["message"] == str(CassetteMiss("s09/x", 2, "mem.yaml"))


def test_responder_serves_scripted_errors_once_each_before_the_answer() -> None:
    """Scripted errors come first, one per request, with Retry-After when set."""
    answer = CassetteAnswer(
        content="finally",
        errors_before=(
            ScriptedHttpError(status=429, retry_after=2),
            ScriptedHttpError(status=503, retry_after=0.5, message="busy"),
            ScriptedHttpError(status=500),
        ),
    )
    responder = _responder({("k", 0): answer})
    replies = [
        responder.respond("POST", CHAT, _headers("k"), _request()) for _ in range(5)
    ]
    assert [status for status, _, _ in replies] == [429, 503, 500, 200, 200]
    assert replies[0][1]["Retry-After"] == "2"
    assert replies[1][1]["Retry-After"] == "0.5"
    assert "Retry-After" not in replies[2][1]
    assert json.loads(replies[1][2])["error"]["message"] == "busy"


def test_responder_sleeps_the_injected_latency_before_chat_answers() -> None:
    """Latency goes through the injected sleep, only for chat completions."""
    sleeps: list[float] = []
    responder = _responder(
        {("k", 0): CassetteAnswer(content="x")}, latency_s=0.2, sleep=sleeps.append
    )
    responder.respond("GET", "/v1/models", {}, b"")
    responder.respond("POST", CHAT, _headers("k"), _request())
    assert sleeps == [0.2]


def test_responder_lists_one_model_and_404s_unknown_routes() -> None:
    """`GET /models` lists the replay model; other routes are not found."""
    status, _, body = _responder({}).respond("GET", "/v1/models?x=1", {}, b"")
    assert status == 200
    assert [m["id"] for m in json.loads(body)["data"]] == ["replay"]
    status, _, _ = _responder({}).respond("POST", "/v1/embeddings", {}, b"{}")
    assert status == 404


def test_cassette_folder_merges_parts_and_refuses_a_key_answered_twice(tmp_path):
    """A folder of parts reads as one cassette; a duplicated call key is an error."""
    folder = tmp_path / "cassette"
    folder.mkdir()
    (folder / "a.yaml").write_text(
        "version: 1\nscripted: true\ncalls:\n  s01/x:\n    - {n: 1}\n"
    )
    (folder / "b.yaml").write_text(
        "version: 1\nscripted: true\ncalls:\n  s02/y:\n    - {n: 2}\n"
    )
    merged = Cassette.load(folder)
    assert merged.keys() == ["s01/x", "s02/y"]
    assert merged.scripted
    assert merged.answer("s02/y", 0).tool_arguments == {"n": 2}
    (folder / "c.yaml").write_text(
        "version: 1\nscripted: true\ncalls:\n  s01/x:\n    - {n: 3}\n"
    )
    with pytest.raises(CassetteFormatError, match="a.yaml and c.yaml"):
        Cassette.load(folder)
