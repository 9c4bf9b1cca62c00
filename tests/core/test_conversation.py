"""The rollout message loop: turns, steps, control tokens, and the user's view."""

from __future__ import annotations

import json

from schemas.rollout import ChatMessage, FunctionCall, ToolCall
from tasks.core.conversation import converse, read_user_reply, user_view

OPENING = (ChatMessage(role="user", content="My card is lost."),)


def _call(name: str, index: int) -> ChatMessage:
    call = ToolCall(id=f"c{index}", function=FunctionCall(name=name, arguments="{}"))
    return ChatMessage(role="assistant", content=None, tool_calls=(call,))


def _executor(log: list[str]):
    def execute(calls):
        log.extend(c.function.name for c in calls)
        return [
            ChatMessage(
                role="tool", content=json.dumps({"ok": True}), tool_call_id=c.id
            )
            for c in calls
        ]

    return execute


def test_control_tokens_are_found_anywhere_and_stripped_with_private_thoughts():
    reply = read_user_reply("<think>they did it</think>Thanks, that is all. ###STOP###")
    assert reply.stopped and reply.ends and not reply.transferred
    assert reply.text == "Thanks, that is all."
    assert read_user_reply("###TRANSFER###").transferred
    assert read_user_reply("###TRANSFER###").text == ""
    assert read_user_reply("no ###OUT-OF-SCOPE### here").out_of_scope
    assert not read_user_reply("Yes please, block it.").ends


def test_the_user_sees_the_exchange_with_roles_flipped_and_tool_traffic_hidden():
    messages = [
        *OPENING,
        _call("find_card", 0),
        ChatMessage(role="tool", content="{}", tool_call_id="c0"),
        ChatMessage(role="assistant", content="Which card?"),
    ]
    view = user_view("persona", messages)
    assert view == [
        {"role": "system", "content": "persona"},
        {"role": "assistant", "content": "My card is lost."},
        {"role": "user", "content": "Which card?"},
    ]


def test_the_assistant_acts_until_it_answers_then_the_user_stops_it():
    script = iter(
        [
            _call("find_card", 0),
            _call("block_card", 1),
            ChatMessage(role="assistant", content="Blocked."),
        ]
    )
    log: list[str] = []
    done = converse(
        OPENING,
        assistant=lambda m: next(script),
        user=lambda m: "Great. ###STOP###",
        execute=_executor(log),
        max_turns=5,
        max_steps_per_turn=10,
    )
    assert log == ["find_card", "block_card"]
    assert [m.role for m in done.messages] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]
    assert done.messages[-1].content == "Great."
    assert done.reply.stopped and done.total_turns == 1 and not done.reached_max_turns


def test_the_step_limit_hands_the_turn_to_the_user_and_the_turn_limit_ends_it():
    calls = iter(range(100))
    replies: list[int] = []

    def user(messages):
        replies.append(len(messages))
        return "Still there?"

    done = converse(
        OPENING,
        assistant=lambda m: _call("find_card", next(calls)),
        user=user,
        execute=_executor([]),
        max_turns=2,
        max_steps_per_turn=3,
    )
    assert len(replies) == 2  # the user is asked after 3 calls in each turn
    assert done.reached_max_turns and done.total_turns == 2 and done.reply is None
    assert sum(1 for m in done.messages if m.role == "tool") == 6
