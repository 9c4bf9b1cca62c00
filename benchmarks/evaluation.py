"""Benchmark: deterministic evaluation throughput (rollouts evaluated per second).

It generates a synthetic run, seeded: `--tasks` validated tasks (an authorization
call, reads and confirmed writes with concrete arguments, an expected diff with
inserts, updates and deletions) and `--rollouts` rollouts spread evenly over them
as trials. Each rollout is a multi-turn conversation with tool calls and tool
results, drawn from a mix of agents: the oracle, a wrong argument in a write, a
missing write, reordered calls, extra reads, a tool error, and a dead environment
(no final state). Then it times, in this process:

- `read_rollouts` over the JSONL text of all rollouts (parsing and validation);
- `evaluate_rollout` over every (task, rollout) pair;
- `summarize` over the results (pass@1, pass^k, pass@k, per domain).

and prints rollouts per second for evaluate + summarize (the goal is at least
1,000) and for the read alone.

    python -m benchmarks.evaluation --rollouts 2000 --tasks 50 [--json out.json]

Not part of the test run.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

from schemas.environment import DatabaseDiff, TableDiff
from schemas.golden import GoldenCall, LiteralArg, PlannedCall
from schemas.rollout import ChatMessage, FunctionCall, Rollout, TokenUsage, ToolCall
from schemas.validated_task import AgentTask
from tasks.core.evaluation import evaluate_rollout
from tasks.core.metrics import summarize
from tasks.core.rollout_records import read_rollouts

SERVERS = ("DentalAppointments", "TreatmentBilling", "CardServices")
AGENTS = (
    ("oracle", 5),
    ("wrong_argument", 2),
    ("wrong_read_argument", 1),
    ("missing_write", 1),
    ("reordered", 1),
    ("extra_reads", 2),
    ("tool_error", 1),
    ("dead_environment", 1),
)


def _hash(rng: random.Random) -> str:
    return f"{rng.getrandbits(256):064x}"


def make_task(index: int, rng: random.Random) -> AgentTask:
    """One synthetic task: authorize, 1-3 reads, 1-2 confirmed writes."""
    fused = index % 3 == 0
    members = SERVERS[:2] if fused else (SERVERS[index % len(SERVERS)],)
    environment = "_".join(members)

    def tool(name: str) -> str:
        return f"{members[0]}__{name}" if fused else name

    golden = [
        GoldenCall(tool=tool("authorize_user"), arguments={"user_id": f"u-{index}"})
    ]
    for r in range(rng.randint(1, 3)):
        golden.append(
            GoldenCall(
                tool=tool(f"list_records_{r}"),
                arguments={"status": rng.choice(["open", "closed"]), "limit": 10},
            )
        )
    tables: dict[str, TableDiff] = {}
    for w in range(rng.randint(1, 2)):
        golden.append(
            GoldenCall(
                tool=tool(f"update_record_{w}"),
                arguments={
                    "record_id": f"r-{index}-{w}",
                    "amount": round(rng.uniform(10, 500), 2),
                    "note": f"requested by u-{index}",
                    "tags": ["urgent", "billing"],
                    "confirm": True,
                },
            )
        )
        tables[f"Record{w}"] = TableDiff(
            inserted=(f"log-{index}-{w}",),
            updated={
                f"r-{index}-{w}": {"amount": (1.0, 2.5), "status": ("open", "done")}
            },
            deleted=(f"hold-{index}-{w}",) if w == 0 else (),
        )
    return AgentTask(
        combo_id=f"combo-{index}",
        environment=environment,
        scope="cross_domain" if fused else "single",
        domains=members if fused else (),
        template_id=f"tpl-{index}",
        trajectory=tuple(g.tool for g in golden),
        trajectory_hash=f"{index:012x}",
        instruction=f"Please update my records for case {index}. " * 8,
        reason_for_call="billing correction",
        instances={"User": {"user_id": f"u-{index}"}},
        calls=tuple(
            PlannedCall(
                tool=g.tool,
                arguments={k: LiteralArg(value=v) for k, v in g.arguments.items()},
            )
            for g in golden
        ),
        golden_calls=tuple(golden),
        expected_state_hash=_hash(rng),
        expected_diff=DatabaseDiff(tables=tables),
        simulation_time="2025-01-23T15:00:00",
        seed=index,
    )


def _agent_calls(
    task: AgentTask, agent: str, rng: random.Random
) -> tuple[list[tuple[str, dict[str, Any], Any]], bool]:
    """The agent's (tool, arguments, result) calls, and whether it wrote as the
    golden run did."""
    calls = [
        (g.tool, dict(g.arguments), {"ok": True, "rows": [1, 2]})
        for g in task.golden_calls
    ]
    writes = [i for i, g in enumerate(task.golden_calls) if "update" in g.tool]
    faithful = True
    if agent == "wrong_argument":
        tool, args, result = calls[writes[0]]
        calls[writes[0]] = (tool, args | {"amount": args["amount"] + 1}, result)
        faithful = False
    elif agent == "wrong_read_argument":
        # Same writes, so the same final state: only the action check (and not
        # the original's name-set criterion) sees the wrong filter.
        tool, args, result = calls[1]
        calls[1] = (tool, args | {"status": "archived"}, result)
    elif agent == "missing_write":
        del calls[writes[-1]]
        faithful = False
    elif agent == "reordered":
        rng.shuffle(calls)
    elif agent == "extra_reads":
        reads = [c for i, c in enumerate(calls) if i not in writes]
        for _ in range(rng.randint(1, 4)):
            calls.insert(rng.randrange(len(calls) + 1), rng.choice(reads))
    elif agent == "tool_error":
        tool, args, _ = calls[writes[0]]
        calls[writes[0]] = (tool, args, {"error": "record is locked"})
        faithful = False
    return calls, faithful


def make_rollout(
    task: AgentTask, query_id: str, trial: int, rng: random.Random
) -> Rollout:
    """One trial of a task by an agent drawn from `AGENTS`."""
    agent = rng.choices([a for a, _ in AGENTS], weights=[w for _, w in AGENTS])[0]
    calls, faithful = _agent_calls(task, agent, rng)
    messages = [
        ChatMessage(role="user", content="Hi, I need to fix my billing records.")
    ]
    for i, (tool, args, result) in enumerate(calls):
        call_id = f"call_{trial}_{i}"
        messages.append(
            ChatMessage(
                role="assistant",
                content=None,
                tool_calls=(
                    ToolCall(
                        id=call_id,
                        function=FunctionCall(name=tool, arguments=json.dumps(args)),
                    ),
                ),
            )
        )
        messages.append(
            ChatMessage(role="tool", tool_call_id=call_id, content=json.dumps(result))
        )
        if i % 2:
            messages.append(
                ChatMessage(role="assistant", content="Done. Anything else?")
            )
            messages.append(ChatMessage(role="user", content="Yes, please continue."))
    messages.append(ChatMessage(role="user", content="Thanks! ###STOP###"))
    dead = agent == "dead_environment"
    if faithful and not dead:
        final_hash, final_diff = task.expected_state_hash, task.expected_diff
    else:
        final_hash = None if dead else _hash(rng)
        final_diff = (
            None
            if dead
            else DatabaseDiff(
                tables={
                    name: TableDiff(inserted=t.inserted, updated={})
                    for name, t in task.expected_diff.tables.items()
                }
            )
        )
    return Rollout(
        id=query_id,
        trial=trial,
        environment=task.environment,
        messages=tuple(messages),
        success=not dead,
        error="environment process exited" if dead else None,
        error_kind="environment" if dead else None,
        stopped=True,
        stop_reason="user_token",
        total_turns=len(calls) // 2 + 1,
        models={"assistant": "bench-assistant", "user": "bench-user"},
        usage={
            "assistant": TokenUsage(
                calls=len(calls),
                prompt_tokens=900 * len(calls),
                completion_tokens=60 * len(calls),
                cost_usd=0.001 * len(calls),
            ),
            "user": TokenUsage(
                calls=3, prompt_tokens=1200, completion_tokens=90, cost_usd=0.0005
            ),
        },
        final_state_hash=final_hash,
        final_diff=final_diff,
    )


def generate(
    n_rollouts: int, n_tasks: int, seed: int
) -> tuple[dict[str, AgentTask], list[Rollout]]:
    """The synthetic run: tasks by query id, and the rollouts as trials of them."""
    rng = random.Random(seed)
    tasks = {f"q-{i:05d}": make_task(i, rng) for i in range(n_tasks)}
    ids = list(tasks)
    rollouts = [
        make_rollout(tasks[ids[i % n_tasks]], ids[i % n_tasks], i // n_tasks, rng)
        for i in range(n_rollouts)
    ]
    return tasks, rollouts


def run(n_rollouts: int, n_tasks: int, seed: int) -> dict[str, Any]:
    """Generate, then time reading, evaluating and summarising."""
    tasks, rollouts = generate(n_rollouts, n_tasks, seed)
    text = "".join(json.dumps(r.record()) + "\n" for r in rollouts)

    started = time.perf_counter()
    read = read_rollouts(text, source="bench.jsonl")
    read_s = time.perf_counter() - started
    assert len(read.rollouts) == n_rollouts, read.skipped.problems[:3]

    started = time.perf_counter()
    results = [evaluate_rollout(tasks[r.id], r) for r in rollouts]
    evaluate_s = time.perf_counter() - started
    started = time.perf_counter()
    summary = summarize(results)
    summarize_s = time.perf_counter() - started
    total_s = evaluate_s + summarize_s
    return {
        "rollouts": n_rollouts,
        "tasks": n_tasks,
        "tool_calls": sum(r.task_info["agent_tool_calls"] for r in results),
        "read_s": read_s,
        "evaluate_s": evaluate_s,
        "summarize_s": summarize_s,
        "rollouts_per_s": n_rollouts / total_s,
        "read_rollouts_per_s": n_rollouts / read_s,
        "pass_at_1": summary.overall.pass_at_1,
        "pass_hat_k": {
            k: round(summary.overall.pass_hat_k[k], 3)
            for k in sorted(summary.overall.pass_hat_k)[:3]
        },
        "legacy_pass_rate": summary.overall.legacy_pass_rate,
        "failure_reasons": summary.failure_reasons,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=2000)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--json", type=Path, default=None, help="write the numbers here"
    )
    args = parser.parse_args(argv)
    out = run(args.rollouts, args.tasks, args.seed)
    print(
        f"{out['rollouts']} rollouts over {out['tasks']} tasks, "
        f"{out['tool_calls']} tool calls\n"
        f"evaluate_rollout: {out['evaluate_s']:.3f} s, "
        f"summarize: {out['summarize_s'] * 1000:.1f} ms"
        f" -> {out['rollouts_per_s']:,.0f} rollouts/s (goal 1,000)\n"
        f"read_rollouts (JSONL parse + validation): {out['read_s']:.3f} s"
        f" -> {out['read_rollouts_per_s']:,.0f} rollouts/s\n"
        f"pass@1 {out['pass_at_1']:.3f}, pass^k {out['pass_hat_k']}, legacy pass rate"
        f" {out['legacy_pass_rate']:.3f}, failures {out['failure_reasons']}"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
