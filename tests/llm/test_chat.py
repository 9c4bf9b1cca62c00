"""Free-form chat turns (rollouts) over the real openai path: replayed from a
scripted cassette, and recorded from a live endpoint so that replay gives the
same message, tool calls in order, malformed arguments kept verbatim."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml

from schemas.config import LLMConfig, ModelRole
from tasks.llm.client import build_llm_client
from tasks.llm.errors import CassetteMiss, LLMError
from tasks.llm.ledger import UsageLedger

KEY = "rollout/q1/0/assistant/0"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "find_patient",
            "description": "Look a patient up.",
            "parameters": {
                "type": "object",
                "properties": {"name": {"type": "string"}},
            },
        },
    }
]
HISTORY = [{"role": "user", "content": "I need to book a visit."}]
ENV = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": "http://endpoint.test/v1"}


def _config(mode: str, cassette: str) -> LLMConfig:
    return LLMConfig.model_validate(
        {
            "mode": mode,
            "cassette": cassette,
            "roles": {
                "textual": ModelRole(model="text-model"),
                "coding": ModelRole(model="code-model"),
                "assistant": ModelRole(
                    model="agent-model",
                    input_cost_per_mtok=2.0,
                    output_cost_per_mtok=8.0,
                ),
            },
        }
    )


def _replay(tmp_path: Path, calls: dict[str, list[Any]]):
    document = {"version": 1, "scripted": True, "description": "t", "calls": calls}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    return build_llm_client(
        _config("replay", "c.yaml"), config_dir=tmp_path, env={}, ledger=UsageLedger()
    )


def test_a_scripted_turn_replays_text_and_every_tool_call_in_order(tmp_path) -> None:
    llm = _replay(
        tmp_path,
        {
            KEY: [
                {
                    "content": "Let me look that up.",
                    "tool_calls": [
                        {"name": "find_patient", "arguments": {"name": "Ana"}},
                        {"name": "find_patient", "raw_arguments": '{"name": "Bo'},
                    ],
                }
            ]
        },
    )
    reply = llm.chat(HISTORY, call_key=KEY, role="assistant", tools=TOOLS)
    message = reply.message
    assert message.content == "Let me look that up."
    assert [c.function.name for c in message.tool_calls] == ["find_patient"] * 2
    assert json.loads(message.tool_calls[0].function.arguments) == {"name": "Ana"}
    assert message.tool_calls[1].function.arguments == '{"name": "Bo'
    assert len({c.id for c in message.tool_calls}) == 2
    assert reply.prompt_tokens > 0 and reply.completion_tokens > 0
    assert [r.call_key for r in llm.ledger.records()] == [KEY]


def test_a_turn_the_cassette_lacks_names_its_key(tmp_path) -> None:
    llm = _replay(tmp_path, {"other": [{"content": "hi"}]})
    with pytest.raises(CassetteMiss, match="rollout/q1/0/assistant/0"):
        llm.chat(HISTORY, call_key=KEY, role="assistant", tools=TOOLS)


def test_a_role_the_configuration_lacks_is_a_clear_error(tmp_path) -> None:
    llm = _replay(tmp_path, {KEY: [{"content": "hi"}]})
    with pytest.raises(LLMError, match="llm.roles.user_simulator"):
        llm.chat(HISTORY, call_key=KEY, role="user_simulator")


def test_a_recorded_turn_replays_the_same_message(tmp_path) -> None:
    """A live answer with text and two calls (one malformed) is kept whole."""

    def endpoint(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.read())
        assert body["tools"] == TOOLS
        calls = [
            {
                "id": "call_a",
                "type": "function",
                "function": {"name": "find_patient", "arguments": '{"name":"Ana"}'},
            },
            {
                "id": "call_b",
                "type": "function",
                "function": {"name": "find_patient", "arguments": "not json"},
            },
        ]
        message = {"role": "assistant", "content": "Checking.", "tool_calls": calls}
        return httpx2.Response(
            200,
            json={
                "id": "x",
                "object": "chat.completion",
                "created": 1,
                "model": "agent-model",
                "choices": [
                    {"index": 0, "message": message, "finish_reason": "tool_calls"}
                ],
                "usage": {"prompt_tokens": 120, "completion_tokens": 30},
            },
        )

    recorder = build_llm_client(
        _config("record", "rec/turns.jsonl"),
        config_dir=tmp_path,
        env=ENV,
        ledger=UsageLedger(),
        http_transport=lambda: httpx2.MockTransport(endpoint),
    )
    live = recorder.chat(HISTORY, call_key=KEY, role="assistant", tools=TOOLS)
    assert (live.prompt_tokens, live.completion_tokens) == (120, 30)
    assert recorder.cost_usd("assistant", 120, 30) == pytest.approx(0.00048)

    replayer = build_llm_client(
        _config("replay", "rec/turns.jsonl"),
        config_dir=tmp_path,
        env={},
        ledger=UsageLedger(),
    )
    again = replayer.chat(HISTORY, call_key=KEY, role="assistant", tools=TOOLS)
    assert again.message.content == "Checking."
    assert [
        (c.function.name, c.function.arguments) for c in again.message.tool_calls
    ] == [("find_patient", '{"name": "Ana"}'), ("find_patient", "not json")]
