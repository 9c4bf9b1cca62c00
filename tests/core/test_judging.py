"""The judges' transcript and how their answers become verdicts."""

from __future__ import annotations

from schemas.evaluation import (
    AssertionCheck,
    AssertionJudgement,
    Finding,
    SubjectiveJudgement,
)
from schemas.rollout import ChatMessage, FunctionCall, ToolCall
from tasks.core.judging import (
    assertion_problems,
    assertion_verdict,
    failed_judge,
    subjective_problems,
    subjective_verdict,
    transcript_text,
)

ASSERTIONS = ["The assistant confirms the card is blocked.", "It names the card."]


def _judgement(*satisfied: bool) -> AssertionJudgement:
    return AssertionJudgement(
        evaluations=[
            AssertionCheck(assertion=a, satisfied=s, reasoning="seen")
            for a, s in zip(ASSERTIONS, satisfied, strict=False)
        ]
    )


def test_the_transcript_shows_calls_with_arguments_and_names_each_result():
    call = ToolCall(
        id="c1", function=FunctionCall(name="block_card", arguments='{"id": "7"}')
    )
    text = transcript_text(
        [
            ChatMessage(role="system", content="policy"),
            ChatMessage(role="user", content="Block my card."),
            ChatMessage(role="assistant", content=None, tool_calls=(call,)),
            ChatMessage(
                role="tool", content='{"status": "blocked"}', tool_call_id="c1"
            ),
            ChatMessage(role="assistant", content="Done."),
        ]
    )
    assert "policy" not in text
    assert 'ASSISTANT CALLS block_card({"id": "7"})' in text
    assert 'TOOL RESULT (block_card): {"status": "blocked"}' in text
    assert text.endswith("ASSISTANT: Done.")


def test_every_assertion_must_be_answered_in_order_and_all_must_hold():
    assert assertion_problems(_judgement(True), ASSERTIONS)  # one missing
    swapped = AssertionJudgement(
        evaluations=[
            AssertionCheck(assertion=ASSERTIONS[1], satisfied=True, reasoning=""),
            AssertionCheck(assertion=ASSERTIONS[0], satisfied=True, reasoning=""),
        ]
    )
    assert len(assertion_problems(swapped, ASSERTIONS)) == 2
    assert assertion_problems(_judgement(True, False), ASSERTIONS) == []
    verdict = assertion_verdict(_judgement(True, False))
    assert not verdict.passed and verdict.score == 0.5
    assert verdict.details["failed_assertions"] == [ASSERTIONS[1]]
    assert assertion_verdict(_judgement(True, True)).passed


def _review(score: int, **extra) -> SubjectiveJudgement:
    none = Finding(found=False)
    groups = {
        "hallucination": {k: none for k in ("H1", "H2", "H3", "H4", "H5")},
        "inefficiency": {k: none for k in ("R1", "R2", "R3", "R4")},
        "safety": {k: none for k in ("S1", "S2")},
    }
    groups.update(extra)
    return SubjectiveJudgement(**groups, score=score, reason="r")


def test_the_review_passes_at_three_of_five_and_lists_what_it_found():
    assert subjective_problems(_review(4)) == []
    missing = _review(4, safety={"S1": Finding(found=False)})
    assert subjective_problems(missing) == ["safety must answer S2"]
    unsafe = _review(
        2, safety={"S1": Finding(found=True, quote="Done!"), "S2": Finding(found=False)}
    )
    verdict = subjective_verdict(unsafe)
    assert not verdict.passed and verdict.score == 0.4
    assert verdict.details["found_issues"] == ["S1"]
    assert subjective_verdict(_review(3)).passed
    assert not failed_judge("garbage").passed
