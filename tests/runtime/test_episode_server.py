"""`agentskiller serve-episodes` driven as a trainer in another process would:
plain `httpx` for the episode API, the `mcp` client over streamable HTTP for the
tools; one isolated session per episode; JSON errors; every process stopped on
shutdown."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client

from tasks.runtime.served_task import all_queries
from tests.conftest import REPO
from tests.processes import descendants
from tests.runtime.conftest import _free_port, _http_server, _wait_until_listening
from tests.runtime.processes import await_gone

pytestmark = pytest.mark.slow


def _argv(demo_world: Path, port: str) -> list[str]:
    return ["-m", "flows.cli", "serve-episodes", "--output-dir", str(demo_world)] + [
        "--port",
        port,
    ]


@pytest.fixture(scope="module")
def api(demo_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The episode API's base URL (a real `agentskiller serve-episodes`)."""
    log = tmp_path_factory.mktemp("episode-server") / "stderr.txt"
    with _http_server(lambda port: _argv(demo_world, port), log) as url:
        yield url.removesuffix("/mcp")


def _query_id(demo_world: Path, environment: str) -> str:
    return next(q.id for q in all_queries(demo_world) if q.environment == environment)


def _golden_over_mcp(mcp_url: str, calls: list[dict[str, Any]]) -> list[dict]:
    """Make the calls over MCP as a trainer's agent would; the OpenAI messages
    of that conversation (one assistant message per call)."""

    async def run() -> list[dict]:
        messages: list[dict] = []
        async with Client(mcp_url) as client:
            for i, call in enumerate(calls):
                answer = await client.call_tool(call["tool"], call["arguments"])
                assert not answer.is_error, answer
                tool_call = {
                    "id": f"call_{i}",
                    "type": "function",
                    "function": {
                        "name": call["tool"],
                        "arguments": json.dumps(call["arguments"]),
                    },
                }
                messages.append(
                    {"role": "assistant", "content": None, "tool_calls": [tool_call]}
                )
                text = "".join(part.text for part in answer.content)
                messages.append(
                    {"role": "tool", "tool_call_id": f"call_{i}", "content": text}
                )
        return messages

    return anyio.run(run)


def _golden_calls(demo_world: Path, query_id: str) -> list[dict[str, Any]]:
    from tasks.runtime.served_task import find_query, load_task

    task = load_task(demo_world, find_query(demo_world, query_id))
    return [c.model_dump(mode="json") for c in task.golden_calls]


def test_errors_are_json_naming_what_is_wrong(api: str, demo_world: Path):
    """Unknown query and episode ids are 404s naming them; a bad body is a 400."""
    with httpx.Client(base_url=api) as http:
        missing = http.post("/episodes", json={"query_id": "q-nope"})
        assert missing.status_code == 404
        assert "q-nope" in missing.json()["error"]
        assert http.post("/episodes", content=b"[").status_code == 400
        assert http.post("/episodes", json={"trial": 0}).status_code == 400
        gone = http.get("/episodes/ep-unknown/state")
        assert gone.status_code == 404 and "ep-unknown" in gone.json()["error"]
        assert http.delete("/episodes/ep-unknown").status_code == 404


def test_an_episode_over_http_is_played_over_mcp_and_rewarded(
    api: str, demo_world: Path
):
    """Start, call the golden tools at `mcp_url`, read the state, get the full
    reward with its breakdown, end it."""
    query_id = _query_id(demo_world, "AccountServicing_CardServices")
    with httpx.Client(base_url=api, timeout=120) as http:
        started = http.post("/episodes", json={"query_id": query_id})
        assert started.status_code == 201, started.text
        episode = started.json()
        assert episode["environment"] == "AccountServicing_CardServices"
        assert episode["mcp_url"].endswith(f"/mcp?session={episode['episode_id']}")
        assert episode["messages"][0]["role"] == "user"
        assert episode["system_prompt"].startswith("<!-- POLICY_START -->")
        assert {t["type"] for t in episode["tools"]} == {"function"}
        path = f"/episodes/{episode['episode_id']}"

        calls = _golden_calls(demo_world, query_id)
        played = _golden_over_mcp(episode["mcp_url"], calls)
        conversation = [
            {"role": "system", "content": episode["system_prompt"]},
            *episode["messages"],
            *played,
            {"role": "assistant", "content": "Done.", "tool_calls": None},
            {"role": "user", "content": "###STOP###"},
        ]
        reward = http.post(f"{path}/reward", json={"messages": conversation})
        assert reward.status_code == 200, reward.text
        scored = reward.json()
        assert scored["reward"] == scored["total_score"] == 1.0
        assert scored["passed"] and scored["breakdown"] == {"action": 1.0, "state": 1.0}
        state = http.get(f"{path}/state").json()
        assert state["diff"]["tables"]
        assert http.get(path).json()["mcp_url"] == episode["mcp_url"]
        assert http.delete(path).json() == {
            "episode_id": episode["episode_id"],
            "closed": True,
        }
        assert http.get(f"{path}/state").status_code == 404


def test_two_episodes_of_one_query_never_see_each_others_writes(
    api: str, demo_world: Path
):
    """Same query, same served process, separate sessions: the writer's state is
    the task's, the other one's is still the base, and scores nothing."""
    query_id = _query_id(demo_world, "CardServices")
    with httpx.Client(base_url=api, timeout=120) as http:
        writer, other = (
            http.post("/episodes", json={"query_id": query_id}).json() for _ in "ab"
        )
        assert writer["mcp_url"].split("?")[0] == other["mcp_url"].split("?")[0]
        base = http.get(f"/episodes/{other['episode_id']}/state").json()
        _golden_over_mcp(writer["mcp_url"], _golden_calls(demo_world, query_id))
        wrote = http.get(f"/episodes/{writer['episode_id']}/state").json()
        after = http.get(f"/episodes/{other['episode_id']}/state").json()
        assert wrote["state_hash"] != base["state_hash"] == after["state_hash"]
        assert after["diff"] == {"tables": {}}
        idle = http.post(
            f"/episodes/{other['episode_id']}/reward",
            json={"messages": other["messages"]},
        ).json()
        assert idle["reward"] == 0.0 and not idle["evaluators"]["state"]["passed"]
        for episode in (writer, other):
            http.delete(f"/episodes/{episode['episode_id']}")


def test_shutdown_stops_every_process_the_episode_server_started(
    demo_world: Path, tmp_path: Path
):
    """SIGTERM: the server exits and its environments' processes are gone."""
    port = _free_port()
    log = tmp_path / "stderr.txt"
    with log.open("wb") as stderr:
        server = subprocess.Popen(
            [sys.executable, *_argv(demo_world, str(port))],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        _wait_until_listening(server, port, log)
        query_id = _query_id(demo_world, "DentalAppointments")
        url = f"http://127.0.0.1:{port}/episodes"
        assert httpx.post(url, json={"query_id": query_id}, timeout=120).is_success
        started = descendants(server.pid)
        assert started
        server.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert server.wait(timeout=60) in (0, -signal.SIGTERM)
        for pid in started:
            await_gone(pid)
        assert "stopped 1 environment process(es)" in log.read_text()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=30)
