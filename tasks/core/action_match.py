"""The action evaluator: did the agent make the golden calls, with their arguments?

Input: a task's golden calls (concrete arguments) and the agent's calls
(`tasks.core.agent_calls`). Output: a `Verdict` for our criterion and one for the
original tool's name-set criterion (reported under `legacy`). Pure functions.

Our rule. Every golden call must be matched by a distinct successful agent call
with the same tool name whose arguments agree with the golden call's: each argument
the golden call sets must be present with an equal value (compared as JSON values,
`tasks.core.agent_calls.value_key`; a golden `null` also matches an absent
argument). Arguments the golden call does not set are free: the golden call
records what the task requires (the plan binds every argument it cares about,
`confirm: true` included), and an agent that also passes an optional argument the
task is silent about is not wrong for it (if that changes what a write does, the
state evaluator catches it). Such extra arguments are listed in the details.
Because one agent call may then agree with several golden calls, the pairing is a
maximum bipartite matching, not a greedy pass. With `ordered`, the matched agent
calls must also follow the golden order (the golden calls are a subsequence of
the agent's). Extra agent calls are allowed; failed calls (`is_error_result`)
never count as done.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from schemas.environment import CONFIRM_PARAMETER
from schemas.evaluation import Verdict
from schemas.fusion import member_tool_name
from schemas.golden import GoldenCall
from schemas.rollout import ToolRoute
from tasks.core.agent_calls import AgentCall, value_key


def _spec(call: GoldenCall) -> dict[str, Hashable]:
    return {name: value_key(value) for name, value in call.arguments.items()}


def _mismatches(spec: Mapping[str, Hashable], call: AgentCall) -> list[str]:
    """The golden arguments the agent call does not match (an absent argument
    has the key of null)."""
    if call.arguments is None:
        return list(spec)
    keys = call.keys
    return [name for name, want in spec.items() if keys.get(name) != want]


def _max_matching(candidates: Sequence[Sequence[int]], n_calls: int) -> list[int]:
    """For each golden call, the agent call it is paired with (-1: none), in a
    maximum matching; earlier agent calls are preferred (Kuhn's algorithm)."""
    owner = [-1] * n_calls
    for golden in range(len(candidates)):
        _augment(golden, candidates, owner, [False] * n_calls)
    pairs = [-1] * len(candidates)
    for call, golden in enumerate(owner):
        if golden >= 0:
            pairs[golden] = call
    return pairs


def _augment(
    golden: int, candidates: Sequence[Sequence[int]], owner: list[int], seen: list[bool]
) -> bool:
    for call in candidates[golden]:
        if seen[call]:
            continue
        seen[call] = True
        if owner[call] < 0 or _augment(owner[call], candidates, owner, seen):
            owner[call] = golden
            return True
    return False


def _ordered_matching(candidates: Sequence[Sequence[int]]) -> list[int]:
    """Golden calls paired, in order, with strictly later agent calls: the
    earliest fitting call each time, which finds the subsequence whenever one
    exists."""
    pairs: list[int] = []
    last = -1
    for options in candidates:
        call = next((c for c in options if c > last), -1)
        pairs.append(call)
        if call >= 0:
            last = call
    return pairs


def _closest(
    spec: Mapping[str, Hashable],
    golden: GoldenCall,
    calls: Sequence[AgentCall],
    paired_with: Mapping[int, int],
) -> dict[str, Any] | None:
    """The agent call nearest to a missing golden call: same tool, fewest
    differing arguments, successful before failed, earliest."""
    best: tuple[tuple[int, bool, int], AgentCall, list[str]] | None = None
    for call in calls:
        if call.tool != golden.tool:
            continue
        wrong = _mismatches(spec, call)
        rank = (len(wrong), not call.ok, call.index)
        if best is None or rank < best[0]:
            best = (rank, call, wrong)
    if best is None:
        return None
    _, call, wrong = best
    args = call.arguments or {}
    return call.describe() | {
        "mismatches": {
            name: {"expected": golden.arguments[name], "actual": args.get(name)}
            for name in wrong
        },
        "matched_step": paired_with.get(call.index),
    }


def evaluate_actions(
    golden: Sequence[GoldenCall], calls: Sequence[AgentCall], *, ordered: bool = False
) -> Verdict:
    """Our action verdict (module docstring): a multiset match of the golden
    calls, arguments included, optionally in order.

    Args:
        golden: The task's golden calls.
        calls: The agent's calls, in order.
        ordered: Whether the matched calls must follow the golden order.

    Returns:
        Passed (score 1) when every golden call is matched; the details list the
        pairs, each missing golden call with the closest agent call, and extra
        arguments of matched calls.
    """
    specs = [_spec(g) for g in golden]
    candidates = [
        [
            c.index
            for c in calls
            if c.ok and c.tool == g.tool and not _mismatches(spec, c)
        ]
        for g, spec in zip(golden, specs, strict=True)
    ]
    pairs = (
        _ordered_matching(candidates)
        if ordered
        else _max_matching(candidates, len(calls))
    )
    paired_with = {call: step for step, call in enumerate(pairs) if call >= 0}
    missing = [
        {
            "step": step,
            "tool": g.tool,
            "arguments": g.arguments,
            "closest": _closest(spec, g, calls, paired_with),
        }
        for step, (g, spec, call) in enumerate(zip(golden, specs, pairs, strict=True))
        if call < 0
    ]
    extra_arguments = {
        str(step): sorted(
            set(calls[call].arguments or {}) - set(golden[step].arguments)
        )
        for step, call in enumerate(pairs)
        if call >= 0 and set(calls[call].arguments or {}) - set(golden[step].arguments)
    }
    matched = len(golden) - len(missing)
    details: dict[str, Any] = {
        "ordered": ordered,
        "expected": len(golden),
        "matched": matched,
        "full_match_rate": matched / len(golden) if golden else 1.0,
        "agent_calls": len(calls),
        "failed_agent_calls": sum(not c.ok for c in calls),
        "pairs": [[step, call] for step, call in enumerate(pairs) if call >= 0],
        "missing": missing,
        "extra_arguments": extra_arguments,
    }
    if not missing:
        return Verdict(
            passed=True,
            score=1.0,
            details=details,
            reasoning=f"all {len(golden)} golden calls matched",
        )
    reasoning = (
        f"{len(missing)} of {len(golden)} golden calls not matched: "
        + ", ".join(f"#{m['step']} {m['tool']}" for m in missing)
    )
    if ordered and all(p >= 0 for p in _max_matching(candidates, len(calls))):
        details["out_of_order"] = True
        reasoning += " (every golden call was made, but not in the golden order)"
    return Verdict(passed=False, score=0.0, details=details, reasoning=reasoning)


def bare_tool_name(name: str, routes: Mapping[str, ToolRoute]) -> str:
    """The member tool a name calls, as the original compared names: the
    rollout's routing table when it knows the name, else the part after the last
    `.` (`sap.get_x`) or after the `__` of a fused `Server__tool` name."""
    route = routes.get(name)
    if route is not None:
        return route.tool
    if "." in name:
        return name.rsplit(".", 1)[1]
    member = member_tool_name(name)
    return member[1] if member is not None else name


def evaluate_actions_legacy(
    golden: Sequence[GoldenCall],
    calls: Sequence[AgentCall],
    routes: Mapping[str, ToolRoute],
) -> Verdict:
    """The original's action criterion (reference §4.6), for comparison.

    It passes when every golden tool name (bare, without the server prefix)
    appears somewhere among the agent's call names: arguments, order,
    multiplicity and the calls' success are ignored; no agent call at all fails.
    The parameter statistics it reports are approximated with our argument
    comparison over the golden arguments minus `confirm` (without the original's
    blueprint-based ignore rules and abbreviation table); no pruning filter is
    applied (our golden calls are already the executed, concrete ones).

    Args:
        golden: The task's golden calls.
        calls: The agent's calls.
        routes: The rollout's agent tool name -> (server, tool) table.

    Returns:
        The legacy verdict, with the original's detail keys.
    """
    if not calls:
        return Verdict(
            passed=False,
            score=0.0,
            reasoning="No tool calls found in agent trajectory",
            details={"tool_name_stats": {"total_expected": len(golden)}},
        )
    expected = [bare_tool_name(g.tool, routes) for g in golden]
    actual = [bare_tool_name(c.tool, routes) for c in calls]
    missing = sorted(set(expected) - set(actual))
    full = 0
    for g, name in zip(golden, expected, strict=True):
        spec = {k: v for k, v in _spec(g).items() if k != CONFIRM_PARAMETER}
        pairs = zip(actual, calls, strict=True)
        full += any(a == name and not _mismatches(spec, c) for a, c in pairs)
    details = {
        "tool_name_stats": {
            "total_expected": len(expected),
            "names_matched": sum(name in set(actual) for name in expected),
            "all_matched": not missing,
            "missing_tools": missing,
        },
        "param_match_stats": {
            "full_matched": full,
            "full_match_rate": full / len(golden) if golden else 1.0,
        },
        "expected_trajectory": expected,
        "actual_trajectory": actual,
    }
    if missing:
        return Verdict(
            passed=False,
            score=0.0,
            details=details,
            reasoning=f"Missing tools: {missing}",
        )
    return Verdict(
        passed=True, score=1.0, details=details, reasoning="All expected tools called"
    )
