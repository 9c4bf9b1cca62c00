"""Episodes on the demo world: what an agent is offered, tool calls in
`tool_calls` order with errors and format errors as JSON error objects, isolated
sessions on a shared process, the final state and reward, and an environment
process that dies mid-episode."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import anyio
import pytest

from schemas.rollout import ChatMessage
from schemas.validated_task import UserQuery
from tasks.core.evaluation import is_error_result
from tasks.runtime.environment_pool import EnvironmentPool
from tasks.runtime.episode import Episode
from tasks.runtime.served_environment import EnvironmentLost, EnvironmentStartError
from tasks.runtime.served_task import QueryNotFound, all_queries
from tests.processes import descendants
from tests.runtime.processes import await_gone

pytestmark = pytest.mark.slow


def _query(out: Path, environment: str) -> UserQuery:
    return next(q for q in all_queries(out) if q.environment == environment)


def _call(index: int, tool: str, arguments: object) -> dict:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {
        "id": f"call_{index}",
        "type": "function",
        "function": {"name": tool, "arguments": text},
    }


def _golden_message(episode: Episode) -> dict:
    """One assistant message making every golden call of the episode's task."""
    calls = [
        _call(i, c.tool, c.arguments) for i, c in enumerate(episode.task.golden_calls)
    ]
    return {"role": "assistant", "content": None, "tool_calls": calls}


def test_an_episode_offers_the_live_tools_the_policy_and_the_opening_message(
    demo_world: Path, episode_pool: EnvironmentPool
):
    """Tools in OpenAI format as the server lists them, the fused policy as
    system prompt, the query's user message first."""
    query = _query(demo_world, "AccountServicing_CardServices")
    with Episode.start(demo_world, query.id, pool=episode_pool) as episode:
        names = {t["function"]["name"] for t in episode.tools}
        assert {c.tool for c in episode.task.golden_calls} <= names
        assert all(t["type"] == "function" for t in episode.tools)
        assert "CardServices__block_card" in episode.write_tools
        policy = demo_world / "policies" / "AccountServicing_CardServices.md"
        assert episode.system_prompt == policy.read_text(encoding="utf-8")
        assert episode.messages == [
            ChatMessage(role="user", content=query.messages[0].content)
        ]
        assert episode.openai_messages()[0]["role"] == "system"


def test_tool_results_follow_tool_calls_order_and_errors_are_json_objects(
    demo_world: Path, episode_pool: EnvironmentPool
):
    """A good call, an unknown tool and malformed arguments in one assistant
    message: three tool messages in call order, the last two error objects, one
    format error, no exception."""
    query = _query(demo_world, "CardServices")
    with Episode.start(demo_world, query.id, pool=episode_pool) as episode:
        first = episode.task.golden_calls[0]
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                _call(0, first.tool, first.arguments),
                _call(1, "no_such_tool", {}),
                _call(2, "list_my_cards", "[1, 2]"),
            ],
        }
        results = episode.act(message)
        assert [r.tool_call_id for r in results] == ["call_0", "call_1", "call_2"]
        assert [is_error_result(r.content) for r in results] == [False, True, True]
        assert "no_such_tool" in json.loads(results[1].content)["error"]
        assert "not a JSON object" in json.loads(results[2].content)["error"]
        assert episode.format_errors == 1
        assert episode.messages[-3:] == results
        assert episode.rollout().format_errors == 1


def test_the_golden_calls_reach_the_expected_state_and_the_full_reward(
    demo_world: Path, episode_pool: EnvironmentPool
):
    """Through the async twins too: the final state is the task's, the action
    and state evaluators pass, and the user's stop token is recorded."""
    query = _query(demo_world, "DentalAppointments")

    async def run() -> Episode:
        episode = await Episode.astart(demo_world, query.id, pool=episode_pool)
        await episode.aact(_golden_message(episode))
        episode.add({"role": "assistant", "content": "Booked."})
        episode.add({"role": "user", "content": "Great, thanks. ###STOP###"})
        return episode

    episode = anyio.run(run)
    with episode:
        result = episode.finish()
        rollout = episode.rollout()
    assert rollout.final_state_hash == episode.task.expected_state_hash
    assert rollout.stopped and rollout.stop_reason == "user_token"
    assert rollout.messages[-1].content == "Great, thanks."
    assert result.passed and episode.reward() == 1.0
    assert {k: v.passed for k, v in result.evaluators.items()} == {
        "action": True,
        "state": True,
    }


def test_two_episodes_of_one_query_share_a_process_but_not_their_writes(
    demo_world: Path, episode_pool: EnvironmentPool
):
    """The second episode starts from the base data although the first one
    wrote, and both run on the same served process."""
    query = _query(demo_world, "TreatmentBilling")
    with (
        Episode.start(demo_world, query.id, pool=episode_pool) as writer,
        Episode.start(demo_world, query.id, pool=episode_pool) as other,
    ):
        assert writer.served is other.served
        untouched, _ = other.state()
        writer.act(_golden_message(writer))
        written, diff = writer.state()
        assert written == writer.task.expected_state_hash != untouched
        assert not diff.empty
        still, nothing = other.state()
        assert still == untouched and nothing.empty


def test_an_unknown_query_id_is_named_in_the_error(
    demo_world: Path, episode_pool: EnvironmentPool
):
    """No process is started for it."""
    with pytest.raises(QueryNotFound, match="q-does-not-exist"):
        Episode.start(demo_world, "q-does-not-exist", pool=episode_pool)


def test_an_environment_that_cannot_start_is_reported_with_its_log(
    demo_world: Path, tmp_path: Path
):
    """The server's own last words (here: missing data) are in the error."""
    broken = tmp_path / "out"
    shutil.copytree(demo_world, broken)
    (broken / "entities.json").unlink()
    query = _query(broken, "CardServices")
    with pytest.raises(EnvironmentStartError, match=r"entities\.json does not exist"):
        Episode.start(broken, query.id)


def test_an_environment_killed_mid_episode_is_environment_lost_and_never_passes(
    demo_world: Path,
):
    """The served process dies: the next call raises `EnvironmentLost`, the
    rollout records the error without a final state and fails, and the pool's
    next episode gets a new process."""
    query = _query(demo_world, "CardServices")
    before = _serve_processes()
    with EnvironmentPool(demo_world) as pool:
        episode = Episode.start(demo_world, query.id, pool=pool)
        first = episode.task.golden_calls[0]
        episode.step(_call(0, first.tool, first.arguments))
        [server] = _serve_processes() - before
        os.kill(server, signal.SIGKILL)
        await_gone(server)
        with pytest.raises(EnvironmentLost, match="CardServices"):
            episode.step(_call(1, first.tool, first.arguments))
        result = episode.finish()
        rollout = episode.rollout()
        assert rollout.final_state_hash is None and rollout.final_diff is None
        assert not rollout.success and rollout.error_kind == "environment"
        assert not result.passed and result.total_score == 0.0
        dead = episode.served
        episode.close()
        with Episode.start(demo_world, query.id, pool=pool) as again:
            assert again.served is not dead and dead.lost
            assert again.step(_call(0, first.tool, first.arguments)).content


def _serve_processes() -> set[int]:
    """Our descendants running an environment server."""
    found = set()
    for pid in descendants(os.getpid()):
        try:
            if b"tasks.runtime.serve" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.add(pid)
        except OSError:
            continue
    return found
