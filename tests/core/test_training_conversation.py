"""The normalised conversation every training format is built from."""

from __future__ import annotations

import pytest

from schemas.rollout import ChatMessage
from tasks.core.training_conversation import (
    CallTurn,
    TrainingExportError,
    Turn,
    conversation_turns,
)
from tests.training_rollouts import (
    assistant,
    call,
    fused_rollout,
    result,
    single_rollout,
    user,
)

SINGLE_NAMES = {"get_patient", "book_appointment"}
FUSED_NAMES = {
    "Billing__get_invoice",
    "Billing__pay_invoice",
    "DentalClinic__get_patient",
}


def test_a_rollout_becomes_turns_with_results_inside_their_calls():
    """The closing user message teaches nothing and is cut."""
    turns = conversation_turns(single_rollout(), SINGLE_NAMES)
    assert turns == [
        Turn(role="user", content="I need a cleaning, I'm patient P-7."),
        Turn(
            role="assistant",
            content=None,
            calls=(
                CallTurn(
                    id="call_1",
                    name="get_patient",
                    arguments_text='{"patient_id": "P-7"}',
                    arguments={"patient_id": "P-7"},
                    result='{"patient_id": "P-7", "name": "Zoë Ünal"}',
                ),
            ),
        ),
        Turn(role="assistant", content="You are verified, Zoë. Which slot suits you?"),
    ]


def test_parallel_calls_keep_their_order_text_and_reasoning():
    turns = conversation_turns(fused_rollout(), FUSED_NAMES)
    assert [t.role for t in turns] == ["user", "assistant", "assistant", "assistant"]
    first, second = turns[1], turns[2]
    assert first.content == "Let me look both up."
    assert [c.id for c in first.calls] == ["c1", "c2"]
    assert all(c.result is not None for c in first.calls)
    assert second.reasoning == "80.5 is owed; pay exactly that."
    assert second.calls[0].arguments == {
        "invoice_id": "I-3",
        "amount": 80.5,
        "method": "card",
    }


def test_consecutive_user_messages_merge_and_empty_assistant_turns_drop():
    rollout = single_rollout(
        user("Hello."),
        assistant(""),  # said nothing: OpenAI refuses such a message
        user("I'm P-7."),
        assistant("Hi P-7."),
    )
    turns = conversation_turns(rollout, SINGLE_NAMES)
    assert turns == [
        Turn(role="user", content="Hello.\n\nI'm P-7."),
        Turn(role="assistant", content="Hi P-7."),
    ]


def test_assistant_text_then_a_call_becomes_one_turn():
    rollout = single_rollout(
        user("Book me."),
        assistant("One moment.", reasoning="check first"),
        assistant(None, call("a", "get_patient", patient_id="P-7")),
        result("a", {}),
        assistant("Done."),
    )
    turns = conversation_turns(rollout, SINGLE_NAMES)
    assert [t.role for t in turns] == ["user", "assistant", "assistant"]
    assert turns[1].content == "One moment."
    assert turns[1].reasoning == "check first"
    assert turns[1].calls[0].name == "get_patient"


def test_a_user_message_after_tool_results_ends_the_conversation():
    """The assistant hit its step limit and never answered that turn."""
    rollout = single_rollout(
        user("Book me."),
        assistant("Who are you?"),
        user("P-7."),
        assistant(None, call("a", "get_patient", patient_id="P-7")),
        result("a", {}),
        user("Hello?"),
        assistant("Sorry, booked."),
    )
    turns = conversation_turns(rollout, SINGLE_NAMES)
    assert [t.content for t in turns] == ["Book me.", "Who are you?"]


def test_calls_left_unanswered_by_an_error_are_trimmed():
    rollout = single_rollout(
        user("Book me."),
        assistant("Sure."),
        user("Now."),
        assistant(
            None, call("a", "book_appointment", patient_id="P", slot="s", minutes=30)
        ),
    )
    turns = conversation_turns(rollout, SINGLE_NAMES)
    assert [t.content for t in turns] == ["Book me.", "Sure."]


@pytest.mark.parametrize(
    ("messages", "reason"),
    [
        ((user("Hi"), assistant("Hello"), result("x", {})), "unmatched_tool_result"),
        (
            (
                user("Hi"),
                assistant(None, call("a", "get_patient", patient_id="1")),
                result("b", {}),
            ),
            "unmatched_tool_result",
        ),
        (
            (
                user("Hi"),
                assistant(None, call("a", "get_patient", patient_id="1")),
                assistant("Hello"),
            ),
            "unmatched_tool_result",
        ),
        ((ChatMessage(role="system", content="x"), user("Hi")), "system_message"),
        ((assistant("Welcome"), user("Hi"), assistant("Hello")), "no_user_start"),
        ((user("Hi"),), "no_final_answer"),
        ((user("Hi"), assistant(None, call("a", "get_x", id="1"))), "unknown_tool"),
    ],
)
def test_unusable_rollouts_are_refused_with_a_named_reason(messages, reason):
    with pytest.raises(TrainingExportError) as caught:
        conversation_turns(single_rollout(*messages), SINGLE_NAMES)
    assert caught.value.reason == reason


@pytest.mark.parametrize("arguments", ["[1, 2]", "{not json", '"text"'])
def test_arguments_that_are_not_a_json_object_are_refused(arguments):
    bad = call("a", "get_patient").model_copy(
        update={
            "function": call("a", "get_patient").function.model_copy(
                update={"arguments": arguments}
            )
        }
    )
    rollout = single_rollout(user("Hi"), assistant(None, bad), result("a", {}))
    with pytest.raises(TrainingExportError) as caught:
        conversation_turns(rollout, SINGLE_NAMES)
    assert caught.value.reason == "malformed_arguments"
