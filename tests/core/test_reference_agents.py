"""The built-in agents: the oracle replays the golden calls, do-nothing answers,
the wrong-argument agent changes one argument of the first write to another
valid-looking value, the scripted user stops."""

from __future__ import annotations

import json

from schemas.rollout import STOP_TOKEN, ChatMessage
from tasks.core.reference_agents import (
    DECLINE,
    DONE,
    changed_arguments,
    do_nothing,
    oracle,
    scripted_user,
    wrong_argument,
)
from tests.core.test_evaluation import AUTH, BOOK, READ, make_task

ID = "bfd73dcc-da57-4756-b67b-b5e2e2159587"
OPENING = [ChatMessage(role="user", content="I need a cleaning.")]


def _made(messages: list[ChatMessage]) -> list[tuple[str, dict]]:
    return [
        (c.function.name, json.loads(c.function.arguments))
        for m in messages
        for c in m.tool_calls or ()
    ]


def _run(assistant, results: list[str]) -> list[ChatMessage]:
    """Drive an assistant with canned tool results until it answers."""
    messages = list(OPENING)
    for result in [*results, None]:
        reply = assistant(messages)
        messages.append(reply)
        if not reply.tool_calls:
            break
        call_id = reply.tool_calls[0].id
        messages.append(ChatMessage(role="tool", content=result, tool_call_id=call_id))
    return messages


def test_the_oracle_makes_each_golden_call_once_in_order_then_is_done():
    """One call per message, ids `call_<n>`, then its closing text."""
    messages = _run(oracle(make_task(AUTH, BOOK)), ["{}", "{}"])
    assert _made(messages) == [(AUTH.tool, AUTH.arguments), (BOOK.tool, BOOK.arguments)]
    assert [c.id for m in messages for c in m.tool_calls or ()] == ["call_0", "call_1"]
    assert messages[-1].content == DONE
    assert do_nothing(make_task(AUTH))(OPENING).content == DECLINE


def test_the_wrong_argument_agent_changes_the_first_write_to_a_value_it_saw():
    """Another clinic the earlier results listed, `confirm` untouched; the
    other calls are the golden ones."""
    listed = json.dumps({"clinics": [{"clinic_id": "c-1"}, {"clinic_id": "c-2"}]})
    agent = wrong_argument(make_task(AUTH, READ, BOOK), {BOOK.tool})
    made = _made(_run(agent, ["{}", listed, "{}"]))
    assert made[:2] == [(AUTH.tool, AUTH.arguments), (READ.tool, READ.arguments)]
    assert made[2] == (BOOK.tool, {**BOOK.arguments, "clinic_id": "c-2"})


def test_a_read_only_tasks_wrong_argument_is_in_its_first_call():
    """Nothing writes: the first call's argument changes (its id keeps its
    shape), so the action check fails."""
    made = _made(_run(wrong_argument(make_task(AUTH, READ), set()), ["{}", "{}"]))
    assert made[0] == (AUTH.tool, {"patient_id": "p-2"})


def test_a_changed_argument_is_otherwise_an_id_enum_number_or_date():
    """Seen values first; then an id with its last character changed, an enum's
    other value, a number plus one, a date a day later; `confirm` last."""
    arguments = {"card_id": ID, "confirm": True, "reason": "lost"}
    seen = {"card_id": {ID, "other-card"}}
    assert changed_arguments(arguments, {}, seen)["card_id"] == "other-card"
    assert changed_arguments({"card_id": ID}, {}, {}) == {"card_id": ID[:-1] + "8"}
    assert changed_arguments({"card_id": "ab-f"}, {}, {}) == {"card_id": "ab-a"}
    enum = {"reason": {"type": "string", "enum": ["lost", "stolen"]}}
    assert changed_arguments({"reason": "lost"}, enum, {}) == {"reason": "stolen"}
    assert changed_arguments({"limit": 500}, {}, {}) == {"limit": 501}
    assert changed_arguments({"at": "2025-01-29T14:30:00"}, {}, {}) == {
        "at": "2025-01-30T14:30:00"
    }
    assert changed_arguments({"confirm": True}, {}, {}) == {"confirm": False}


def test_the_scripted_user_stops_after_the_assistants_turn():
    """Its reply carries the stop token."""
    assert STOP_TOKEN in scripted_user(OPENING)
