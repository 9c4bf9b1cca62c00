"""s15 exports in the reference shapes: `combinations/<Server>/<hash>.json` and
`combinations/_skipped_trajectories.json`.

Input: an `InstanceSelection` with its kept `InstanceCombination`s, or the
failed items of templates. Output: JSON-ready dicts. The reference's
`value_domain_samples` keys are `tool.param`; a tool the trajectory calls more
than once is keyed `tool#<step>.param` from its second call on (the reference
could give such a tool only one value). No `generated_at`: outputs carry no wall
clock. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, get_args

from schemas.artifact import FailedItem
from schemas.golden import LiteralArg, PlannedCall
from schemas.instance_plan import (
    CombinationFailure,
    InstanceSelection,
    SkippedTrajectory,
)
from schemas.validated_task import InstanceCombination

_KINDS = frozenset(get_args(CombinationFailure))


def value_domain_samples(calls: Sequence[PlannedCall]) -> dict[str, Any]:
    """The literal arguments of the calls, keyed as the reference keys them."""
    samples: dict[str, Any] = {}
    seen: set[str] = set()
    for index, call in enumerate(calls):
        prefix = call.tool if call.tool not in seen else f"{call.tool}#{index}"
        seen.add(call.tool)
        for name, binding in sorted(call.arguments.items()):
            if isinstance(binding, LiteralArg):
                samples[f"{prefix}.{name}"] = binding.value
    return samples


def combinations_export(
    selection: InstanceSelection,
    instruction: str,
    reason_for_call: str,
    combos: Iterable[InstanceCombination],
) -> dict[str, Any]:
    """One template's file, `combinations/<Server>/<trajectory_hash>.json`."""
    kept = sorted(combos, key=lambda c: c.sample_index)
    analysis = selection.plan.model_dump(mode="json")
    return {
        "trajectory": list(selection.trajectory),
        "trajectory_hash": selection.trajectory_hash,
        "task_template": {
            "instruction": instruction,
            "reason_for_call": reason_for_call,
        },
        "combos": [
            {
                "sample_idx": c.sample_index,
                "combo_id": c.combo_id,
                "entity_instances": c.instances,
                "value_domain_samples": value_domain_samples(c.calls),
                "calls": [call.model_dump(mode="json") for call in c.calls],
                "constraint_analysis": analysis,
                **({"overlay": c.overlay} if c.overlay else {}),
            }
            for c in kept
        ],
        "metadata": {
            "server_name": selection.environment,
            "samples_count": len(kept),
            "combinations_found": selection.found,
            "combinations_rejected": selection.rejected,
            "script_runs": selection.runs,
        },
    }


def failure_kind(failure: FailedItem) -> CombinationFailure | str:
    """The typed s15 reason of a failed item, else its generic reason."""
    if failure.details and failure.details[0] in _KINDS:
        return failure.details[0]
    return failure.reason


def skipped_entry(
    trajectory: Sequence[str], trajectory_hash: str, failure: FailedItem
) -> SkippedTrajectory:
    """The skipped-trajectory record of one template's final failure."""
    kind = failure_kind(failure)
    return SkippedTrajectory(
        trajectory=tuple(trajectory),
        trajectory_hash=trajectory_hash,
        kind=kind if kind in _KINDS or kind == "dependency_failed" else "other",
        reason=failure.message,
    )


def skipped_export(
    entries: Iterable[tuple[str, SkippedTrajectory]],
) -> dict[str, list[dict[str, Any]]]:
    """`_skipped_trajectories.json`: server -> its skipped trajectories, each
    once (by hash), sorted."""
    found: dict[str, dict[str, SkippedTrajectory]] = {}
    for server, entry in entries:
        found.setdefault(server, {}).setdefault(entry.trajectory_hash, entry)
    return {
        server: [entry.model_dump(mode="json") for _, entry in sorted(by_hash.items())]
        for server, by_hash in sorted(found.items())
    }
