"""Built-in assistants played in episodes check the checkers: on every
demo-world query the oracle passes, do-nothing fails every task that needs a
write (and passes the state check of read-only ones), and the wrong-argument
assistant fails the state check (the action check of a read-only task); each
run is a full rollout with the scripted user's stop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas.rollout import ChatMessage
from tasks.core.reference_agents import do_nothing
from tasks.runtime.environment_pool import EnvironmentPool
from tasks.runtime.episode import Episode
from tasks.runtime.episode_play import REFERENCE_ASSISTANTS, play, play_reference
from tasks.runtime.served_task import all_queries

pytestmark = pytest.mark.slow


def test_on_the_demo_world_only_the_oracle_passes_and_each_failure_has_its_reason(
    demo_world: Path, episode_pool: EnvironmentPool
):
    """Every query, every built-in assistant, against the scripted user."""
    outcomes = {}
    for query in all_queries(demo_world):
        for name in REFERENCE_ASSISTANTS:
            with Episode.start(demo_world, query.id, pool=episode_pool) as episode:
                rollout, result = play_reference(episode, name)
                writes = not episode.task.expected_diff.empty
            assert rollout.success and rollout.stopped, (query.id, name)
            assert rollout.stop_reason == "user_token" and rollout.total_turns == 1
            assert rollout.messages[0].role == "user"
            assert rollout.messages[-1] == ChatMessage(
                role="user", content="Thank you."
            )
            json.dumps(rollout.record())  # the reference JSONL shape
            verdicts = {k: v.passed for k, v in result.evaluators.items()}
            outcomes[query.id, name] = (writes, result.passed, verdicts)
    assert len(outcomes) == 3 * len(all_queries(demo_world)) > 0
    for (query_id, name), (writes, passed, verdicts) in outcomes.items():
        if name == "oracle":
            assert passed and verdicts == {"action": True, "state": True}, query_id
        elif name == "do_nothing":
            assert not passed and not verdicts["action"], query_id
            assert verdicts["state"] is not writes, query_id
        elif writes:
            assert not passed and not verdicts["state"], query_id
        else:  # read-only: the changed first call fails the action check
            assert not passed and not verdicts["action"], query_id
    assert any(not writes for writes, _, _ in outcomes.values())


def test_a_user_who_never_stops_ends_the_conversation_at_the_turn_limit(
    demo_world: Path, episode_pool: EnvironmentPool
):
    """Two turns of assistant answer and user reply, then the limit; the rollout
    says so in the reference's max-turns form."""
    query = all_queries(demo_world)[0]
    with Episode.start(demo_world, query.id, pool=episode_pool) as episode:
        rollout, result = play(
            episode, do_nothing(episode.task), lambda m: "Please go on.", max_turns=2
        )
    assert rollout.reached_max_turns and rollout.stop_reason == "max_turns"
    assert rollout.total_turns == 2 and not rollout.stopped
    assert [m.role for m in rollout.messages] == ["user"] + ["assistant", "user"] * 2
    assert rollout.record()["reached_max_turns"] is True
    assert result.turns == 2
