"""Hand-built rollouts, evaluation results, a summary and golden tasks for tests
of reports, the viewer and exports.

A dental clinic (`DentalAppointments`) and a fused clinic-and-billing environment
(`DentalAppointments_TreatmentBilling`):
- `q-cancel#0` passes: the agent cancels the right appointment;
- `q-cancel#1` fails the action and state checks: it cancels the wrong one (the
  state diff has missing and unexpected changes);
- `q-book#0` fails the state check: it books but never writes the invoice;
- `q-book#1` was cut short by a transport error;
- `q-extra#0` has no evaluation result (and no query).

`write_run` lays them out in an output directory as the pipeline would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from schemas.artifact import RunStamp
from schemas.environment import DatabaseDiff, TableDiff
from schemas.evaluation import (
    EvaluationResult,
    EvaluationSummary,
    EvaluatorCounts,
    Metrics,
    Verdict,
)
from schemas.golden import GoldenCall, LiteralArg, PlannedCall
from schemas.rollout import (
    ChatMessage,
    FunctionCall,
    Rollout,
    TokenUsage,
    ToolCall,
)
from schemas.validated_task import AgentTask
from tasks.store.artifacts import ArtifactStore
from tasks.store.paths import (
    EVALUATION_RESULTS_RELPATH,
    OutputLayout,
    queries_relpath,
    rollouts_relpath,
)
from tests.dental_policy import artifact

CLINIC = "DentalAppointments"
FUSED = "DentalAppointments_TreatmentBilling"
FUSED_DOMAINS = ("DentalAppointments", "TreatmentBilling")
GOOD_HASH = "a1" * 32
BAD_HASH = "b2" * 32
BOOK_HASH = "c3" * 32
HALF_BOOK_HASH = "d4" * 32

CANCEL_DIFF = DatabaseDiff(
    tables={
        "appointments": TableDiff(
            updated={"apt_17": {"status": ("scheduled", "cancelled")}}
        ),
        "slots": TableDiff(updated={"slot_3": {"available": (False, True)}}),
    }
)
WRONG_CANCEL_DIFF = DatabaseDiff(
    tables={
        "appointments": TableDiff(
            updated={"apt_18": {"status": ("scheduled", "cancelled")}}
        ),
        "slots": TableDiff(updated={"slot_4": {"available": (False, True)}}),
    }
)
BOOK_DIFF = DatabaseDiff(
    tables={
        "DentalAppointments__appointments": TableDiff(inserted=("apt_42",)),
        "TreatmentBilling__invoices": TableDiff(inserted=("inv_9",)),
    }
)
HALF_BOOK_DIFF = DatabaseDiff(
    tables={"DentalAppointments__appointments": TableDiff(inserted=("apt_42",))}
)


def call(call_id: str, name: str, arguments: dict[str, Any] | str) -> ToolCall:
    """An assistant tool call; a str is kept as written (malformed JSON too)."""
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return ToolCall(id=call_id, function=FunctionCall(name=name, arguments=text))


def user(text: str) -> ChatMessage:
    return ChatMessage(role="user", content=text)


def assistant(text: str | None = None, *calls: ToolCall) -> ChatMessage:
    return ChatMessage(role="assistant", content=text, tool_calls=calls or None)


def tool(call_id: str, result: Any) -> ChatMessage:
    text = result if isinstance(result, str) else json.dumps(result)
    return ChatMessage(role="tool", content=text, tool_call_id=call_id)


def agent_task(
    combo_id: str,
    environment: str,
    golden: tuple[GoldenCall, ...],
    expected_hash: str,
    diff: DatabaseDiff,
    instruction: str,
    domains: tuple[str, ...] = (),
) -> AgentTask:
    return AgentTask(
        combo_id=combo_id,
        environment=environment,
        scope="cross_domain" if domains else "single",
        domains=domains,
        template_id=f"template-{combo_id}",
        trajectory=tuple(g.tool for g in golden),
        trajectory_hash=f"traj-{combo_id}",
        instruction=instruction,
        reason_for_call="A patient calls the clinic.",
        instances={},
        calls=tuple(
            PlannedCall(
                tool=g.tool,
                arguments={k: LiteralArg(value=v) for k, v in g.arguments.items()},
            )
            for g in golden
        ),
        golden_calls=golden,
        expected_state_hash=expected_hash,
        expected_diff=diff,
        simulation_time="2026-03-02T09:00:00",
        seed=7,
    )


def golden_tasks() -> dict[str, AgentTask]:
    """Query id -> its golden task."""
    cancel = (
        GoldenCall(tool="authorize_patient", arguments={"patient_id": "pat_001"}),
        GoldenCall(
            tool="cancel_appointment",
            arguments={"appointment_id": "apt_17", "confirm": True},
        ),
    )
    book = (
        GoldenCall(
            tool="DentalAppointments__book_appointment",
            arguments={"patient_id": "pat_002", "slot_id": "slot_9"},
        ),
        GoldenCall(
            tool="TreatmentBilling__create_invoice",
            arguments={"appointment_id": "apt_42", "amount": 80},
        ),
    )
    return {
        "q-cancel": agent_task(
            "cancel",
            CLINIC,
            cancel,
            GOOD_HASH,
            CANCEL_DIFF,
            "Patient pat_001 wants to cancel appointment apt_17 (Tuesday 09:00).",
        ),
        "q-book": agent_task(
            "book",
            FUSED,
            book,
            BOOK_HASH,
            BOOK_DIFF,
            "Patient pat_002 books slot_9 and is invoiced 80 for the cleaning.",
            domains=FUSED_DOMAINS,
        ),
    }


def _cancel_rollout(trial: int, appointment: str, final: DatabaseDiff) -> Rollout:
    auth = call(f"c{trial}a", "authorize_patient", {"patient_id": "pat_001"})
    cancel = call(
        f"c{trial}b",
        "cancel_appointment",
        {"appointment_id": appointment, "confirm": True},
    )
    return Rollout(
        id="q-cancel",
        trial=trial,
        environment=CLINIC,
        messages=(
            user("Hi, I need to cancel my cleaning next Tuesday. I'm pat_001."),
            assistant(None, auth),
            tool(auth.id, {"authorized": True, "patient_id": "pat_001"}),
            assistant("Which appointment: apt_17 (Tue 09:00) or apt_18 (Thu)?"),
            user("The Tuesday one, please."),
            assistant(None, cancel),
            tool(cancel.id, {"appointment_id": appointment, "status": "cancelled"}),
            assistant(f"Done: {appointment} is cancelled."),
            user("Thanks!"),
        ),
        success=True,
        stopped=True,
        stop_reason="user_token",
        total_turns=3,
        models={"assistant": "demo-assistant", "user": "demo-user"},
        usage={
            "assistant": TokenUsage(
                calls=4, prompt_tokens=2400, completion_tokens=180, cost_usd=0.0031
            ),
            "user": TokenUsage(
                calls=3, prompt_tokens=900, completion_tokens=60, cost_usd=0.0009
            ),
        },
        final_state_hash=GOOD_HASH if final == CANCEL_DIFF else BAD_HASH,
        final_diff=final,
    )


def rollouts() -> list[Rollout]:
    book = call(
        "b0a",
        "DentalAppointments__book_appointment",
        {"patient_id": "pat_002", "slot_id": "slot_9"},
    )
    broken = call("b0b", "TreatmentBilling__create_invoice", '{"amount": 80,')
    return [
        _cancel_rollout(0, "apt_17", CANCEL_DIFF),
        _cancel_rollout(1, "apt_18", WRONG_CANCEL_DIFF),
        Rollout(
            id="q-book",
            trial=0,
            environment=FUSED,
            messages=(
                user("Book me the 10:30 cleaning and bill my insurance."),
                assistant("Booking it now.", book),
                tool(book.id, {"appointment_id": "apt_42"}),
                assistant(None, broken),
                tool(broken.id, "error: arguments are not a JSON object"),
                assistant("You're booked: apt_42."),
                user("Great."),
            ),
            success=True,
            stopped=True,
            stop_reason="user_token",
            total_turns=2,
            format_errors=1,
            final_state_hash=HALF_BOOK_HASH,
            final_diff=HALF_BOOK_DIFF,
        ),
        Rollout(
            id="q-book",
            trial=1,
            environment=FUSED,
            messages=(user("Book me the 10:30 cleaning and bill my insurance."),),
            success=False,
            error="assistant endpoint unreachable after 3 attempts",
            error_kind="transport",
        ),
        Rollout(
            id="q-extra",
            trial=0,
            environment=CLINIC,
            messages=(user("What time do you open?"), assistant("At 8:00.")),
            success=True,
            reached_max_turns=True,
            stop_reason="max_turns",
            total_turns=1,
        ),
    ]


def _verdicts(action: bool, state: bool, **details: Any) -> dict[str, Verdict]:
    return {
        "action": Verdict(passed=action, score=float(action), details=details),
        "state": Verdict(
            passed=state,
            score=float(state),
            reasoning="" if state else "final state hash differs from the golden",
        ),
        "nl_assertions": Verdict(passed=True, score=1.0, skipped=True),
    }


def results() -> list[EvaluationResult]:
    """Results of every rollout but `q-extra#0`."""
    legacy = {"action": Verdict(passed=True, score=1.0, reasoning="tool names match")}
    return [
        EvaluationResult(
            id="q-cancel",
            trial=0,
            environment=CLINIC,
            domains=(CLINIC,),
            passed=True,
            total_score=1.0,
            evaluators=_verdicts(True, True),
            legacy=legacy,
            turns=3,
            tokens=3540,
            cost_usd=0.004,
        ),
        EvaluationResult(
            id="q-cancel",
            trial=1,
            environment=CLINIC,
            domains=(CLINIC,),
            passed=False,
            total_score=0.0,
            evaluators=_verdicts(
                False, False, mismatched_arguments={"appointment_id": "apt_18"}
            ),
            legacy=legacy,
            turns=3,
            tokens=3540,
            cost_usd=0.004,
        ),
        EvaluationResult(
            id="q-book",
            trial=0,
            environment=FUSED,
            domains=FUSED_DOMAINS,
            passed=False,
            total_score=0.0,
            evaluators=_verdicts(False, False, missing=["create_invoice"]),
            turns=2,
            tokens=1200,
            cost_usd=0.0015,
        ),
        EvaluationResult(
            id="q-book",
            trial=1,
            environment=FUSED,
            domains=FUSED_DOMAINS,
            passed=False,
            total_score=0.0,
            evaluators={},
            error="rollout failed (transport): assistant endpoint unreachable",
        ),
    ]


def _metrics(tasks: int, rollouts: int, p1: float, hat2: float, at2: float, **kw):
    return Metrics(
        tasks=tasks,
        rollouts=rollouts,
        pass_at_1=p1,
        pass_hat_k={1: p1, 2: hat2},
        pass_at_k={1: p1, 2: at2},
        **kw,
    )


def summary() -> EvaluationSummary:
    """What the evaluator would say about `results()` (2 tasks, 2 trials each;
    the fused task counts in both of its domains)."""
    overall = _metrics(
        2,
        4,
        0.25,
        0.0,
        0.5,
        legacy_pass_rate=0.5,
        avg_turns=2.0,
        avg_tokens=2070,
        avg_cost_usd=0.002375,
    )
    billing = _metrics(
        1, 2, 0.0, 0.0, 0.0, avg_turns=1.0, avg_tokens=600, avg_cost_usd=0.00075
    )
    return EvaluationSummary(
        overall=overall,
        by_domain={CLINIC: overall, "TreatmentBilling": billing},
        by_evaluator={
            "action": EvaluatorCounts(passed=1, failed=2),
            "state": EvaluatorCounts(passed=1, failed=2),
            "nl_assertions": EvaluatorCounts(skipped=3),
        },
        failure_reasons={"state": 2, "action": 2, "transport": 1},
        skipped_items={"truncated_line": 1},
    )


def write_run(out: Path, *, evaluated: bool = True) -> OutputLayout:
    """An output directory with these rollouts (`rollouts/<Env>.jsonl`), their
    queries (`queries/<Env>.jsonl`) whose lineage names the golden tasks stored as
    `agent_task` artifacts, and, when `evaluated`, `evaluation/results.jsonl`."""
    # The check-task tests' query builder (imported here: it loads the runtime).
    from tests.tasks.test_check_task import _query as query_for

    layout = OutputLayout(out)
    store = ArtifactStore(layout)
    queries: dict[str, list[str]] = {}
    for query_id, task in golden_tasks().items():
        made = artifact("agent_task", query_id, task)
        store.put(made, RunStamp())
        queries.setdefault(task.environment, []).append(
            query_for(made, query_id).model_dump_json()
        )
    lines: dict[str, list[str]] = {}
    for rollout in rollouts():
        lines.setdefault(rollout.environment, []).append(json.dumps(rollout.record()))
    files = {queries_relpath(env): q for env, q in queries.items()}
    files |= {rollouts_relpath(env): r for env, r in lines.items()}
    if evaluated:
        files[EVALUATION_RESULTS_RELPATH] = [
            json.dumps(r.model_dump(mode="json")) for r in results()
        ]
    for relpath, records in files.items():
        path = layout.export_path(relpath)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(line + "\n" for line in records), encoding="utf-8")
    return layout
