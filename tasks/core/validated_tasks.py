"""Choosing which s15 combinations s16 executes, and the reference shape of
`validated_tasks/<Environment>/validated_combos.json`. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from schemas.validated_task import AgentTask, InstanceCombination


def first_per_trajectory(
    combos: Sequence[InstanceCombination], limit: int
) -> list[InstanceCombination]:
    """At most `limit` combinations per (environment, trajectory), lowest
    sample index first; the input order is kept otherwise."""
    ranked = sorted(
        combos, key=lambda c: (c.environment, c.trajectory_hash, c.sample_index)
    )
    kept: set[str] = set()
    counts: dict[tuple[str, str], int] = {}
    for combo in ranked:
        key = (combo.environment, combo.trajectory_hash)
        if counts.get(key, 0) < limit:
            counts[key] = counts.get(key, 0) + 1
            kept.add(combo.combo_id)
    return [c for c in combos if c.combo_id in kept]


def validated_combos_export(tasks: Sequence[AgentTask]) -> list[dict[str, Any]]:
    """The reference entries (sample_idx, combo_id, entity_instances,
    value_domain_samples, validated, task_template, trajectory, trajectory_hash)
    plus what this pipeline adds: the golden calls, the expected state hash and
    diff. `value_domain_samples` holds each call's literal arguments as
    `tool.param` (the original's key form)."""
    entries = []
    for i, task in enumerate(tasks):
        samples = {
            f"{call.tool}.{name}": binding.value
            for call in task.calls
            for name, binding in sorted(call.arguments.items())
            if binding.source == "literal"
        }
        entries.append(
            {
                "sample_idx": i,
                "combo_id": task.combo_id,
                "entity_instances": task.instances,
                "value_domain_samples": samples,
                "validated": True,
                "task_template": {
                    "instruction": task.instruction,
                    "reason_for_call": task.reason_for_call,
                },
                "trajectory": list(task.trajectory),
                "trajectory_hash": task.trajectory_hash,
                "golden_calls": [c.model_dump(mode="json") for c in task.golden_calls],
                "expected_state_hash": task.expected_state_hash,
                "expected_diff": task.expected_diff.model_dump(mode="json"),
            }
        )
    return entries
