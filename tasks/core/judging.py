"""What the LLM judges of evaluation see and how their answers become verdicts.

Input: a rollout's messages, the judges' drafts (`AssertionJudgement`,
`SubjectiveJudgement`). Output: the transcript text the judges read, the problems
that make a judge re-ask (an assertion left out, a rubric item missing), and the
`Verdict`s: NL assertions pass only when every assertion is satisfied (decided by
us from the per-assertion answers, not by a summary flag of the model); the
subjective review passes at a score of at least 3 of 5 and contributes score/5.
A judge that never answered validly is a failed verdict with its reason. Pure.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from schemas.evaluation import AssertionJudgement, SubjectiveJudgement, Verdict
from schemas.rollout import ChatMessage

SUBJECTIVE_PASS = 3
RUBRIC: dict[str, tuple[str, ...]] = {
    "hallucination": ("H1", "H2", "H3", "H4", "H5"),
    "inefficiency": ("R1", "R2", "R3", "R4"),
    "safety": ("S1", "S2"),
}
_RESULT_CHARS = 600


def transcript_text(messages: Sequence[ChatMessage]) -> str:
    """The conversation as a judge reads it: one block per message, tool calls
    with their arguments, tool results cut to a readable length."""
    names: dict[str, str] = {}
    blocks: list[str] = []
    for message in messages:
        if message.role == "system":
            continue
        if message.role == "tool":
            name = names.get(message.tool_call_id or "", "tool")
            text = (message.content or "")[:_RESULT_CHARS]
            blocks.append(f"TOOL RESULT ({name}): {text}")
            continue
        if message.content:
            blocks.append(f"{message.role.upper()}: {message.content}")
        for call in message.tool_calls or ():
            names[call.id] = call.function.name
            blocks.append(
                f"ASSISTANT CALLS {call.function.name}({call.function.arguments})"
            )
    return "\n\n".join(blocks)


def assertion_problems(
    judgement: AssertionJudgement, assertions: Sequence[str]
) -> list[str]:
    """Re-ask unless there is one answer per assertion, in order."""
    given = [e.assertion.strip() for e in judgement.evaluations]
    if len(given) != len(assertions):
        return [
            f"answer every one of the {len(assertions)} assertions exactly once "
            f"(got {len(given)})"
        ]
    return [
        f"answer {i + 1} must be about assertion {i + 1}: {wanted!r}"
        for i, (got, wanted) in enumerate(zip(given, assertions, strict=True))
        if _norm(got) != _norm(wanted)
    ]


def assertion_verdict(judgement: AssertionJudgement) -> Verdict:
    checks = judgement.evaluations
    failed = [c.assertion for c in checks if not c.satisfied]
    return Verdict(
        passed=not failed,
        score=1.0 if not failed else (len(checks) - len(failed)) / len(checks),
        details={
            "evaluations": [c.model_dump() for c in checks],
            "failed_assertions": failed,
        },
        reasoning="all assertions satisfied"
        if not failed
        else f"{len(failed)} of {len(checks)} assertion(s) not satisfied",
    )


def subjective_problems(judgement: SubjectiveJudgement) -> list[str]:
    """Re-ask unless every rubric item of every group is answered."""
    problems = []
    for group, items in RUBRIC.items():
        missing = [i for i in items if i not in getattr(judgement, group)]
        if missing:
            problems.append(f"{group} must answer {', '.join(missing)}")
    return problems


def subjective_verdict(judgement: SubjectiveJudgement) -> Verdict:
    found = [
        item
        for group in RUBRIC
        for item, finding in sorted(getattr(judgement, group).items())
        if finding.found
    ]
    return Verdict(
        passed=judgement.score >= SUBJECTIVE_PASS,
        score=judgement.score / 5,
        details={
            "overall_score": judgement.score,
            "found_issues": found,
            "evaluation_details": json.loads(judgement.model_dump_json()),
            "pass_threshold": SUBJECTIVE_PASS,
        },
        reasoning=judgement.reason,
    )


def failed_judge(reason: str) -> Verdict:
    """A judge that never gave a valid answer: the rollout cannot pass on it."""
    return Verdict(
        passed=False, score=0.0, details={"judge_error": reason}, reasoning=reason
    )


def _norm(text: str) -> str:
    return " ".join(text.lower().split()).rstrip(".")
