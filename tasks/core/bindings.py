"""Binding a golden trajectory's declared arguments to concrete values.

Input: a `PlannedCall`, its index in the trajectory, the combination's entity
instances (instance key -> record) and the structured results of the calls before
it. Output: the `GoldenCall` with concrete arguments, or the typed
`BindingProblem`s that stop it (all of them, not the first). Pure: nothing is
executed, no model-written code is involved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from schemas.golden import (
    BindingProblem,
    EntityFieldArg,
    GoldenCall,
    LiteralArg,
    PlannedCall,
    StepResultArg,
)

_MISSING = object()


def bind_call(
    call: PlannedCall,
    index: int,
    instances: Mapping[str, Mapping[str, Any]],
    results: Sequence[Any],
) -> GoldenCall | list[BindingProblem]:
    """The concrete call, or every reason an argument cannot be bound.

    Args:
        call: the planned call.
        index: its position in the trajectory (results holds the calls before).
        instances: the combination's entity instances, by instance key.
        results: the structured results of calls 0..index-1, in order.
    """
    bound: dict[str, Any] = {}
    problems: list[BindingProblem] = []
    for name, binding in sorted(call.arguments.items()):
        value, why = _value(binding, index, instances, results)
        if why is None:
            bound[name] = value
        else:
            kind, message = why
            problems.append(
                BindingProblem(
                    call=index,
                    tool=call.tool,
                    argument=name,
                    kind=kind,
                    message=message,
                )
            )
    return problems if problems else GoldenCall(tool=call.tool, arguments=bound)


def _value(
    binding: LiteralArg | EntityFieldArg | StepResultArg,
    index: int,
    instances: Mapping[str, Mapping[str, Any]],
    results: Sequence[Any],
) -> tuple[Any, tuple[str, str] | None]:
    if isinstance(binding, LiteralArg):
        return binding.value, None
    if isinstance(binding, EntityFieldArg):
        record = instances.get(binding.instance)
        if record is None:
            known = ", ".join(sorted(instances)) or "none"
            return None, (
                "missing_instance",
                f"no entity instance {binding.instance!r} (instances: {known})",
            )
        if binding.field not in record:
            return None, (
                "missing_field",
                f"instance {binding.instance!r} has no field {binding.field!r}",
            )
        return record[binding.field], None
    if binding.step >= index or binding.step >= len(results):
        return None, (
            "not_an_earlier_step",
            f"call {index} cannot use the result of call {binding.step}",
        )
    found = _walk(results[binding.step], binding.path)
    if found is _MISSING:
        shown = "/".join(str(p) for p in binding.path)
        return None, (
            "missing_in_result",
            f"the result of call {binding.step} has nothing at {shown}",
        )
    return found, None


def _walk(value: Any, path: Sequence[str | int]) -> Any:
    """The value at `path` (keys into objects, indexes into lists), or _MISSING."""
    for part in path:
        if isinstance(part, int) and isinstance(value, list):
            if not -len(value) <= part < len(value):
                return _MISSING
            value = value[part]
        elif isinstance(part, str) and isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return _MISSING
    return value
