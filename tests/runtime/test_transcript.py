"""An episode's transcript: user replies read as a simulated user's, a trainer's
own conversation taken whole, the rollout loop's conversation recorded, and the
stop metadata of the rollout record."""

from __future__ import annotations

from schemas.rollout import ChatMessage
from tasks.core.conversation import Conversation, UserReply
from tasks.runtime.transcript import Transcript

OPENING = [ChatMessage(role="user", content="My card is gone.")]


def test_control_tokens_end_the_conversation_and_a_bare_token_adds_nothing():
    """The reply's text stays without its token; a reply of only a token is a
    turn but no message."""
    transcript = Transcript(OPENING)
    transcript.add({"role": "assistant", "content": "Blocked.", "tool_calls": None})
    assert transcript.add({"role": "user", "content": "###STOP###"}) is None
    assert transcript.stopped and transcript.total_turns == 1
    assert [m.role for m in transcript.messages] == ["user", "assistant"]
    assert transcript.stop_fields() == {
        "stopped": True,
        "transferred": False,
        "out_of_scope": False,
        "stop_reason": "user_token",
    }


def test_a_trainers_conversation_replaces_the_transcript_whole():
    """System messages dropped, the opening kept, format errors counted, the
    user's transfer token read."""
    transcript = Transcript(OPENING)
    call = {
        "id": "c0",
        "type": "function",
        "function": {"name": "f", "arguments": "[]"},
    }
    transcript.replace(
        [
            {"role": "system", "content": "policy"},
            {"role": "user", "content": "My card is gone."},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c0", "content": '{"error": "x"}'},
            {"role": "user", "content": "Let me talk to a human ###TRANSFER###"},
        ]
    )
    assert [m.role for m in transcript.messages] == [
        "user",
        "assistant",
        "tool",
        "user",
    ]
    assert transcript.messages[-1].content == "Let me talk to a human"
    assert transcript.format_errors == 1 and transcript.total_turns == 1
    assert transcript.stop_fields()["transferred"] is True


def test_the_rollout_loops_conversation_is_recorded_with_its_turn_limit():
    """No user token and the limit reached: the max-turns form."""
    transcript = Transcript(OPENING)
    answer = ChatMessage(role="assistant", content="Anything else?")
    transcript.record(
        Conversation(
            messages=(*OPENING, answer),
            reply=None,
            total_turns=3,
            reached_max_turns=True,
        )
    )
    assert transcript.messages == [*OPENING, answer] and transcript.total_turns == 3
    assert transcript.stop_fields() == {
        "reached_max_turns": True,
        "stop_reason": "max_turns",
    }
    stopped = Conversation(tuple(OPENING), UserReply("", stopped=True), 1, False)
    transcript.record(stopped)
    assert transcript.stop_fields()["stopped"] is True
    assert Transcript(OPENING).stop_fields() == {}
