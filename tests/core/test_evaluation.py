"""Deterministic evaluation of rollouts: action matching, state check, legacy
scoring and the composite."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.environment import DatabaseDiff, TableDiff
from schemas.evaluation import EvaluationResult, Verdict
from schemas.golden import GoldenCall, LiteralArg, PlannedCall
from schemas.rollout import (
    ChatMessage,
    FunctionCall,
    Rollout,
    TokenUsage,
    ToolCall,
    ToolRoute,
)
from schemas.validated_task import AgentTask
from tasks.core.agent_calls import agent_calls, is_error_result, value_key
from tasks.core.evaluation import evaluate_rollout

BASE_HASH = "0" * 64
BOOKED_HASH = "b" * 64
WRONG_HASH = "c" * 64
BOOKED_DIFF = DatabaseDiff(
    tables={
        "Appointment": TableDiff(inserted=("apt-1",)),
        "Patient": TableDiff(updated={"p-1": {"visits": (1, 2)}}),
    }
)
AUTH = GoldenCall(tool="authorize_patient", arguments={"patient_id": "p-1"})
BOOK = GoldenCall(
    tool="book_appointment",
    arguments={
        "clinic_id": "c-1",
        "scheduled_at": "2025-01-28T10:00:00",
        "confirm": True,
    },
)
READ = GoldenCall(tool="list_my_appointments", arguments={"status": "scheduled"})


def make_task(
    *golden: GoldenCall,
    state_hash: str = BOOKED_HASH,
    diff: DatabaseDiff = BOOKED_DIFF,
    domains: tuple[str, ...] = (),
) -> AgentTask:
    return AgentTask(
        combo_id="combo-1",
        environment="DentalAppointments",
        scope="cross_domain" if domains else "single",
        domains=domains,
        template_id="tpl-1",
        trajectory=tuple(g.tool for g in golden),
        trajectory_hash="h" * 12,
        instruction="Book a cleaning at the downtown clinic. " * 10,
        reason_for_call="a toothache",
        instances={"Patient": {"patient_id": "p-1"}},
        calls=tuple(
            PlannedCall(
                tool=g.tool,
                arguments={k: LiteralArg(value=v) for k, v in g.arguments.items()},
            )
            for g in golden
        ),
        golden_calls=golden,
        expected_state_hash=state_hash,
        expected_diff=diff,
        simulation_time="2025-01-23T15:00:00",
        seed=7,
    )


def call(tool: str, result: Any = None, **arguments: Any) -> tuple[str, str, Any]:
    return tool, json.dumps(arguments), {"ok": True} if result is None else result


def make_rollout(
    *calls: tuple[str, str, Any],
    state_hash: str | None = BOOKED_HASH,
    diff: DatabaseDiff | None = BOOKED_DIFF,
    **fields: Any,
) -> Rollout:
    messages = [ChatMessage(role="user", content="I need a cleaning")]
    for i, (tool, arguments, result) in enumerate(calls):
        messages.append(
            ChatMessage(
                role="assistant",
                tool_calls=(
                    ToolCall(
                        id=f"call_{i}",
                        function=FunctionCall(name=tool, arguments=arguments),
                    ),
                ),
            )
        )
        messages.append(
            ChatMessage(
                role="tool", tool_call_id=f"call_{i}", content=json.dumps(result)
            )
        )
    messages.append(ChatMessage(role="assistant", content="Done."))
    defaults: dict[str, Any] = {
        "id": "q-1",
        "trial": 0,
        "environment": "DentalAppointments",
        "success": True,
        "stop_reason": "user_token",
        "stopped": True,
        "total_turns": 3,
        "final_state_hash": state_hash,
        "final_diff": diff,
    }
    return Rollout(messages=tuple(messages), **(defaults | fields))


def golden_calls(*golden: GoldenCall) -> list[tuple[str, str, Any]]:
    return [call(g.tool, **g.arguments) for g in golden]


def test_the_golden_calls_with_the_golden_state_pass_everything():
    """The oracle: same calls, same arguments, same final state."""
    result = evaluate_rollout(
        make_task(AUTH, BOOK), make_rollout(*golden_calls(AUTH, BOOK))
    )
    assert result.passed and result.total_score == 1.0
    assert result.evaluators["action"].details["pairs"] == [[0, 0], [1, 1]]
    assert result.evaluators["state"].passed
    assert result.legacy_passed and result.error is None


def test_a_wrong_argument_fails_action_and_state_and_the_diff_names_the_column():
    """One wrong value: the action details show the closest call and its
    mismatch, the state details the differing update."""
    wrong_diff = DatabaseDiff(
        tables={
            "Appointment": TableDiff(inserted=("apt-1",)),
            "Patient": TableDiff(updated={"p-1": {"visits": (1, 3)}}),
        }
    )
    wrong = call(
        "book_appointment",
        clinic_id="c-2",
        scheduled_at="2025-01-28T10:00:00",
        confirm=True,
    )
    result = evaluate_rollout(
        make_task(AUTH, BOOK),
        make_rollout(
            call(AUTH.tool, **AUTH.arguments),
            wrong,
            state_hash=WRONG_HASH,
            diff=wrong_diff,
        ),
    )
    action, state = result.evaluators["action"], result.evaluators["state"]
    assert not result.passed and result.total_score == 0.0
    assert not action.passed
    [missing] = action.details["missing"]
    assert missing["step"] == 1
    assert missing["closest"]["call"] == 1
    assert missing["closest"]["mismatches"] == {
        "clinic_id": {"expected": "c-1", "actual": "c-2"}
    }
    assert not state.passed
    assert state.details["tables"] == {
        "Patient": {
            "different_updates": {"p-1": {"visits": {"expected": 2, "actual": 3}}}
        }
    }


def test_the_legacy_name_set_criterion_passes_the_wrong_argument_agent():
    """Why both are reported: the original checked tool names only."""
    wrong = call(
        "book_appointment",
        clinic_id="c-2",
        scheduled_at="2025-01-28T10:00:00",
        confirm=True,
    )
    result = evaluate_rollout(
        make_task(AUTH, BOOK),
        make_rollout(call(AUTH.tool, **AUTH.arguments), wrong, state_hash=WRONG_HASH),
    )
    assert not result.evaluators["action"].passed
    assert result.legacy["action"].passed
    assert (
        result.legacy["action"].details["param_match_stats"]["full_match_rate"] == 0.5
    )


def test_a_missing_write_fails_action_state_and_the_legacy_environment_check():
    result = evaluate_rollout(
        make_task(AUTH, BOOK),
        make_rollout(
            call(AUTH.tool, **AUTH.arguments), state_hash=BASE_HASH, diff=DatabaseDiff()
        ),
    )
    assert not result.evaluators["action"].passed
    [missing] = result.evaluators["action"].details["missing"]
    assert missing["tool"] == "book_appointment" and missing["closest"] is None
    assert result.evaluators["state"].details["tables"] == {
        "Appointment": {"missing_inserts": ["apt-1"]},
        "Patient": {"missing_updates": {"p-1": {"visits": 2}}},
    }
    assert not result.legacy["environment"].passed
    assert not result.legacy_passed


def test_doing_nothing_fails_a_write_task():
    result = evaluate_rollout(
        make_task(AUTH, BOOK), make_rollout(state_hash=BASE_HASH, diff=DatabaseDiff())
    )
    assert not result.evaluators["action"].passed
    assert not result.evaluators["state"].passed
    assert result.task_info["agent_tool_calls"] == 0
    assert (
        result.legacy["action"].reasoning == "No tool calls found in agent trajectory"
    )


def test_doing_nothing_passes_a_read_only_tasks_state_but_not_its_action_check():
    """The golden reads are what the task asks for, so action fails; nothing
    changed, as in the golden run, so state passes (the legacy check auto-passes)."""
    task = make_task(AUTH, READ, state_hash=BASE_HASH, diff=DatabaseDiff())
    result = evaluate_rollout(
        task, make_rollout(state_hash=BASE_HASH, diff=DatabaseDiff())
    )
    assert result.evaluators["state"].passed
    assert not result.evaluators["action"].passed
    assert not result.passed
    assert result.legacy["environment"].details["note"].endswith("auto-pass")


def test_a_golden_call_made_twice_needs_two_agent_calls():
    """Multiset matching: one agent call cannot stand for two golden ones (the
    legacy name set is satisfied by one)."""
    task = make_task(AUTH, READ, READ, state_hash=BASE_HASH, diff=DatabaseDiff())
    once = make_rollout(*golden_calls(AUTH, READ), state_hash=BASE_HASH)
    twice = make_rollout(*golden_calls(AUTH, READ, READ), state_hash=BASE_HASH)
    verdict = evaluate_rollout(task, once).evaluators["action"]
    assert not verdict.passed
    [missing] = verdict.details["missing"]
    assert missing["closest"]["mismatches"] == {}
    assert missing["closest"]["matched_step"] == 1
    assert evaluate_rollout(task, once).legacy["action"].passed
    assert evaluate_rollout(task, twice).evaluators["action"].passed


def test_matching_finds_a_pairing_a_greedy_pass_would_miss():
    """An agent call with an extra argument agrees with both golden calls; the
    maximum matching pairs each golden call with a distinct agent call."""
    narrow = GoldenCall(tool="list_my_appointments", arguments={"status": "scheduled"})
    wide = GoldenCall(
        tool="list_my_appointments", arguments={"status": "scheduled", "limit": 5}
    )
    task = make_task(narrow, wide, state_hash=BASE_HASH, diff=DatabaseDiff())
    rollout = make_rollout(*golden_calls(wide, narrow), state_hash=BASE_HASH)
    verdict = evaluate_rollout(task, rollout).evaluators["action"]
    assert verdict.passed
    assert verdict.details["pairs"] == [[0, 1], [1, 0]]


def test_extra_agent_arguments_the_golden_call_does_not_set_are_allowed_and_listed():
    rollout = make_rollout(
        call(AUTH.tool, **AUTH.arguments),
        call(BOOK.tool, note="window seat", **BOOK.arguments),
    )
    verdict = evaluate_rollout(make_task(AUTH, BOOK), rollout).evaluators["action"]
    assert verdict.passed
    assert verdict.details["extra_arguments"] == {"1": ["note"]}


def test_a_golden_argument_the_agent_leaves_out_fails_even_confirm():
    without_confirm = {k: v for k, v in BOOK.arguments.items() if k != "confirm"}
    rollout = make_rollout(
        call(AUTH.tool, **AUTH.arguments), call(BOOK.tool, **without_confirm)
    )
    verdict = evaluate_rollout(make_task(AUTH, BOOK), rollout).evaluators["action"]
    assert not verdict.passed
    assert verdict.details["missing"][0]["closest"]["mismatches"] == {
        "confirm": {"expected": True, "actual": None}
    }


def test_values_compare_as_json_numbers_bools_and_strings_stay_distinct():
    assert value_key(50.0) == value_key(50)
    assert value_key({"b": [1.0, 2], "a": None}) == value_key({"a": None, "b": (1, 2)})
    assert value_key(True) != value_key(1)
    assert value_key("5") != value_key(5)
    assert value_key("Scheduled") != value_key("scheduled")


def test_a_golden_null_matches_an_absent_argument():
    golden = GoldenCall(tool="list_my_appointments", arguments={"status": None})
    task = make_task(golden, state_hash=BASE_HASH, diff=DatabaseDiff())
    rollout = make_rollout(call("list_my_appointments"), state_hash=BASE_HASH)
    assert evaluate_rollout(task, rollout).evaluators["action"].passed


def test_the_order_option_requires_the_golden_order():
    task = make_task(AUTH, BOOK)
    reversed_rollout = make_rollout(*golden_calls(BOOK, AUTH))
    assert evaluate_rollout(task, reversed_rollout).evaluators["action"].passed
    ordered = evaluate_rollout(task, reversed_rollout, ordered_actions=True)
    assert not ordered.evaluators["action"].passed
    assert ordered.evaluators["action"].details["out_of_order"] is True
    in_order = make_rollout(
        call("list_clinics"),
        *golden_calls(AUTH),
        call("list_clinics"),
        *golden_calls(BOOK),
    )
    assert (
        evaluate_rollout(task, in_order, ordered_actions=True)
        .evaluators["action"]
        .passed
    )


def test_failed_calls_do_not_count_as_done():
    """A tool error, and arguments that are not a JSON object, are not the call."""
    errored = call(BOOK.tool, {"error": "clinic closed"}, **BOOK.arguments)
    rollout = make_rollout(call(AUTH.tool, **AUTH.arguments), errored)
    verdict = evaluate_rollout(make_task(AUTH, BOOK), rollout).evaluators["action"]
    assert not verdict.passed
    closest = verdict.details["missing"][0]["closest"]
    assert closest["ok"] is False and closest["mismatches"] == {}
    malformed = make_rollout(
        call(AUTH.tool, **AUTH.arguments),
        (BOOK.tool, '{"clinic_id": "c-1",', {"error": "bad"}),
    )
    calls = agent_calls(malformed.messages)
    assert calls[1].arguments is None and not calls[1].ok
    assert verdict.details["failed_agent_calls"] == 1


def test_a_call_nobody_answered_is_not_done():
    rollout = make_rollout(*golden_calls(AUTH, BOOK))
    cut = rollout.model_copy(update={"messages": rollout.messages[:-2]})
    assert not agent_calls(cut.messages)[1].ok


def test_the_error_rule_is_a_json_object_with_an_error_key():
    assert is_error_result('{"error": "unknown patient p-9"}')
    assert is_error_result('  {"error": null, "detail": 1}')
    assert not is_error_result('{"status": "error"}')
    assert not is_error_result('["error"]')
    assert not is_error_result('{"error": ')
    assert not is_error_result("error: something")
    assert not is_error_result(None)


def test_no_final_state_never_passes():
    """The original skipped the check as a pass when the environment broke."""
    rollout = make_rollout(*golden_calls(AUTH, BOOK), state_hash=None, diff=None)
    result = evaluate_rollout(make_task(AUTH, BOOK), rollout)
    assert not result.evaluators["state"].passed
    assert not result.passed


def test_a_failed_rollout_fails_with_its_error_and_scores_zero():
    rollout = make_rollout(
        *golden_calls(AUTH, BOOK),
        success=False,
        error="environment process exited with code -9",
        error_kind="environment",
        state_hash=None,
        diff=None,
    )
    result = evaluate_rollout(make_task(AUTH, BOOK), rollout)
    assert not result.passed and result.total_score == 0.0
    assert result.error == "environment process exited with code -9"
    assert result.error_kind == "environment"
    assert result.evaluators["action"].passed


def test_judged_verdicts_join_the_composite_and_skipped_ones_do_not_count():
    task, rollout = make_task(AUTH, BOOK), make_rollout(*golden_calls(AUTH, BOOK))
    judged = {
        "subjective": Verdict(passed=True, score=0.8),
        "nl_assertions": Verdict(passed=True, score=1.0, skipped=True),
    }
    result = evaluate_rollout(task, rollout, judged=judged)
    assert result.passed and result.total_score == pytest.approx(0.8)
    assert set(result.evaluators) == {"action", "state", "subjective", "nl_assertions"}
    low = {"subjective": Verdict(passed=False, score=0.4)}
    failed = evaluate_rollout(task, rollout, judged=low)
    assert not failed.passed and not failed.legacy_passed
    assert failed.total_score == pytest.approx(0.4)
    with pytest.raises(ValueError, match="action"):
        evaluate_rollout(
            task, rollout, judged={"action": Verdict(passed=True, score=1)}
        )


def test_task_info_usage_and_domains_are_reported():
    task = make_task(AUTH, BOOK, domains=("DentalAppointments", "TreatmentBilling"))
    rollout = make_rollout(
        *golden_calls(AUTH, BOOK),
        usage={
            "assistant": TokenUsage(
                calls=2, prompt_tokens=100, completion_tokens=20, cost_usd=0.01
            ),
            "user": TokenUsage(
                calls=2, prompt_tokens=50, completion_tokens=10, cost_usd=0.002
            ),
        },
    )
    result = evaluate_rollout(task, rollout)
    assert result.task_info == {
        "instruction": task.instruction[:200],
        "domains": ["DentalAppointments", "TreatmentBilling"],
        "trajectory_length": 2,
        "agent_tool_calls": 2,
    }
    assert (result.turns, result.tokens) == (3, 180)
    assert result.cost_usd == pytest.approx(0.012)
    assert result.domains == ("DentalAppointments", "TreatmentBilling")
    assert EvaluationResult.model_validate_json(result.model_dump_json()) == result


def test_legacy_names_are_compared_without_the_server_prefix():
    """The original cut names at the last `.`; fused names are `Server__tool`."""
    golden = GoldenCall(
        tool="DentalAppointments__authorize_patient", arguments={"patient_id": "p-1"}
    )
    task = make_task(
        golden,
        state_hash=BASE_HASH,
        diff=DatabaseDiff(),
        domains=("DentalAppointments", "TreatmentBilling"),
    )
    dotted = make_rollout(
        call("dap.authorize_patient", patient_id="p-9"), state_hash=BASE_HASH
    )
    routed = make_rollout(
        call("auth_p", patient_id="p-1"),
        state_hash=BASE_HASH,
        tool_names={
            "auth_p": ToolRoute(server="DentalAppointments", tool="authorize_patient")
        },
    )
    assert evaluate_rollout(task, dotted).legacy["action"].passed
    assert evaluate_rollout(task, routed).legacy["action"].passed
    assert not evaluate_rollout(task, routed).evaluators["action"].passed


def test_the_legacy_environment_check_ignores_deletions_and_extra_changes():
    gold = DatabaseDiff(
        tables={"Appointment": TableDiff(inserted=("apt-1",), deleted=("apt-0",))}
    )
    agent = DatabaseDiff(
        tables={
            "Appointment": TableDiff(inserted=("apt-1", "apt-2")),
            "Patient": TableDiff(updated={"p-1": {"name": ("Ann", "Bob")}}),
        }
    )
    task = make_task(AUTH, BOOK, diff=gold)
    result = evaluate_rollout(
        task, make_rollout(*golden_calls(AUTH, BOOK), state_hash=WRONG_HASH, diff=agent)
    )
    assert result.legacy["environment"].passed
    assert result.evaluators["state"].details["tables"] == {
        "Appointment": {
            "unexpected_inserts": ["apt-2"],
            "missing_deletions": ["apt-0"],
        },
        "Patient": {"extra_updates": {"p-1": {"name": "Bob"}}},
    }


def test_the_legacy_environment_check_normalises_case_and_float_precision():
    gold = DatabaseDiff(
        tables={
            "Bill": TableDiff(
                updated={
                    "b-1": {
                        "status": ("open", "Paid"),
                        "amount": (10.0, 5.004),
                        "updated_at": (1, 2),
                    }
                }
            )
        }
    )
    agent = DatabaseDiff(
        tables={
            "Bill": TableDiff(
                updated={"b-1": {"status": ("open", "paid"), "amount": (10.0, 5.0)}}
            )
        }
    )
    task = make_task(AUTH, BOOK, diff=gold)
    result = evaluate_rollout(
        task, make_rollout(*golden_calls(AUTH, BOOK), state_hash=WRONG_HASH, diff=agent)
    )
    assert result.legacy["environment"].passed
    assert not result.evaluators["state"].passed


def test_equal_diffs_with_different_hashes_say_the_row_contents_differ():
    rollout = make_rollout(*golden_calls(AUTH, BOOK), state_hash=WRONG_HASH)
    state = evaluate_rollout(make_task(AUTH, BOOK), rollout).evaluators["state"]
    assert not state.passed
    assert state.details["tables"] == {}
    assert "row contents" in state.details["note"]
