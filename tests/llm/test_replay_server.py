"""The replay HTTP server, driven by the real client over 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import httpx2
import pytest
import yaml
from pydantic import BaseModel, field_validator

from schemas.config import LLMConfig, ModelRole
from tasks.llm import replay_server
from tasks.llm.cassette import CALL_KEY_HEADER
from tasks.llm.client import build_llm_client
from tasks.llm.errors import CassetteMiss
from tasks.llm.ledger import UsageLedger
from tasks.llm.replay_server import ReplayServer, serve_cassette

KEY = "s04/detail/Patient-0"
PROMPT = [{"role": "user", "content": "Describe a dog."}]


class Dog(BaseModel):
    name: str
    legs: int

    @field_validator("legs")
    @classmethod
    def _four_legs(cls, legs: int) -> int:
        if legs != 4:
            raise ValueError(f"a dog has exactly 4 legs, not {legs}")
        return legs


@pytest.fixture
def cassette_path(tmp_path: Path) -> Path:
    path = tmp_path / "demo.yaml"
    calls = {
        KEY: [
            {"tool_arguments": {"name": "Rex", "legs": 3}},
            {
                "tool_arguments": {"name": "Rex", "legs": 4},
                "errors_before": [{"status": 503, "retry_after": 1}],
            },
        ]
    }
    document = {"version": 1, "scripted": True, "description": "t", "calls": calls}
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def _live_client(url: str, sleeps: list[float]):
    llm = LLMConfig(
        mode="live",
        roles={
            "textual": ModelRole(model="text-model"),
            "coding": ModelRole(model="code-model"),
        },
    )
    env = {"OPENAI_BASE_URL": url, "OPENAI_API_KEY": "dummy"}
    return build_llm_client(
        llm, config_dir=Path("."), env=env, ledger=UsageLedger(), sleep=sleeps.append
    )


def test_live_client_over_http_reasks_and_retries_like_in_process(
    cassette_path: Path,
) -> None:
    """Re-ask, scripted 503 and answer all travel over real keep-alive HTTP."""
    sleeps: list[float] = []
    with (
        serve_cassette(cassette_path) as server,
        _live_client(server.url, sleeps) as llm,
    ):
        dog = llm.create(Dog, PROMPT, call_key=KEY, role="textual")
        with pytest.raises(CassetteMiss) as info:
            llm.create(Dog, PROMPT, call_key="s04/detail/none", role="textual")
    assert dog.model_dump() == {"name": "Rex", "legs": 4}
    assert sleeps == [1.0]
    records = llm.ledger.records()
    assert [(r.attempt, r.status_code, r.source) for r in records] == [
        (0, 200, "live"),
        (1, 503, "live"),
        (1, 200, "live"),
        (0, 404, "live"),
    ]
    assert info.value.cassette == str(cassette_path)


def test_server_lists_models_and_refuses_requests_without_call_key(
    cassette_path: Path,
) -> None:
    """`GET /v1/models` works; a chat request without the key header gets 400."""
    with serve_cassette(cassette_path) as server, httpx2.Client() as http:
        models = http.get(f"{server.url}/models").json()
        refused = http.post(f"{server.url}/chat/completions", json={"messages": []})
        missed = http.post(
            f"{server.url}/chat/completions",
            json={"messages": []},
            headers={CALL_KEY_HEADER: "nope"},
        )
    assert [m["id"] for m in models["data"]] == ["replay"]
    assert refused.status_code == 400
    assert missed.status_code == 404
    assert missed.json()["error"]["type"] == "cassette_miss"


def test_server_url_has_the_bound_port_and_close_is_idempotent(
    cassette_path: Path,
) -> None:
    """Port 0 binds a free port shown in the URL; closing twice is harmless."""
    server = serve_cassette(cassette_path).start()
    port = int(server.url.rsplit(":", 1)[1].split("/")[0])
    assert port > 0
    assert server.url == f"http://127.0.0.1:{port}/v1"
    server.close()
    server.close()


def test_main_prints_the_url_and_stops_on_ctrl_c(
    cassette_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """The command line announces a scripted cassette and exits 0 on Ctrl-C."""

    def interrupted(self: ReplayServer) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(ReplayServer, "serve_forever", interrupted)
    argv = ["--cassette", str(cassette_path), "--port", "0", "--latency", "0.2"]
    assert replay_server.main(argv) == 0
    out = capsys.readouterr().out
    assert "hand-scripted cassette" in out
    assert "(2 answers) at http://127.0.0.1:" in out
