"""The built-in assistants check the checkers: on every demo-world query the
oracle passes, do-nothing fails every task that needs a write (and passes the
state check of read-only ones), and the wrong-argument assistant fails the
state check; each run is a full rollout with the scripted user's stop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas.rollout import STOP_TOKEN, ChatMessage
from tasks.runtime.environment_pool import EnvironmentPool
from tasks.runtime.episode import Episode
from tasks.runtime.reference_agents import (
    REFERENCE_ASSISTANTS,
    changed_arguments,
    run_reference,
    scripted_user,
)
from tasks.runtime.served_task import iter_queries

ID = "bfd73dcc-da57-4756-b67b-b5e2e2159587"


def test_a_wrong_argument_is_first_another_value_the_results_showed():
    """Another card the earlier results listed beats a changed id; `confirm`
    stays as it was."""
    arguments = {"card_id": ID, "confirm": True, "reason": "lost"}
    seen = {"card_id": {ID, "other-card"}}
    assert changed_arguments(arguments, {}, seen) == {
        "card_id": "other-card",
        "confirm": True,
        "reason": "lost",
    }


def test_a_wrong_argument_is_otherwise_a_changed_id_enum_number_or_date():
    """The id keeps its shape; then an enum's other value, a number plus one, a
    date a day later; with nothing else, `confirm` is flipped."""
    assert changed_arguments({"card_id": ID}, {}, {}) == {"card_id": ID[:-1] + "8"}
    enum = {"reason": {"type": "string", "enum": ["lost", "stolen"]}}
    assert changed_arguments({"reason": "lost"}, enum, {}) == {"reason": "stolen"}
    assert changed_arguments({"limit": 500}, {}, {}) == {"limit": 501}
    assert changed_arguments({"at": "2025-01-29T14:30:00"}, {}, {}) == {
        "at": "2025-01-30T14:30:00"
    }
    assert changed_arguments({"confirm": True}, {}, {}) == {"confirm": False}


def test_the_scripted_user_says_its_replies_then_stops():
    """One reply per turn after the opening message, then the stop token."""
    user = scripted_user(["yes, go ahead"])
    opening = [ChatMessage(role="user", content="hi")]
    assert user(opening) == "yes, go ahead"
    later = [*opening, ChatMessage(role="assistant", content="ok?")]
    later += [ChatMessage(role="user", content="yes, go ahead")]
    assert user(later) == STOP_TOKEN


@pytest.mark.slow
def test_on_the_demo_world_only_the_oracle_passes_and_each_failure_has_its_reason(
    demo_world: Path, episode_pool: EnvironmentPool
):
    """Every query, every built-in assistant, against the scripted user."""
    outcomes = {}
    for query in iter_queries(demo_world):
        for name in REFERENCE_ASSISTANTS:
            with Episode.start(demo_world, query.id, pool=episode_pool) as episode:
                rollout, result = run_reference(episode, name)
                writes = not episode.task.expected_diff.empty
            assert rollout.success and rollout.stopped, (query.id, name)
            assert rollout.stop_reason == "user_token" and rollout.total_turns == 1
            assert rollout.messages[0].role == "user"
            assert rollout.messages[-1].role == "assistant"  # the stop said nothing
            json.dumps(rollout.record())  # the reference JSONL shape
            verdicts = {k: v.passed for k, v in result.evaluators.items()}
            outcomes[query.id, name] = (writes, result.passed, verdicts)
    assert len(outcomes) == 3 * sum(1 for _ in iter_queries(demo_world)) > 0
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
