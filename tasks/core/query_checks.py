"""Checks of a generated user query against its validated combination (s17).

A query marks every concrete value it states as `[[value]]`. Input: the query's
texts, the combination's entity instances and its planned golden calls. Output:
the values a query states that its combination does not hold (hallucinated), the
values the user must give that it does not state (missing), and the texts with
the markers removed. Values compare after normalising case, blanks and number
and boolean spelling; a marked value must equal a known value, never merely be
a substring of one (so "1" or "a" does not pass by accident). Pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from schemas.environment import CONFIRM_PARAMETER
from schemas.golden import EntityFieldArg, LiteralArg, PlannedCall

MARKED = re.compile(r"\[\[(.+?)\]\]", re.DOTALL)


def marked_values(*texts: str) -> list[str]:
    """The `[[...]]` values of the texts, in order."""
    return [m.strip() for text in texts for m in MARKED.findall(text)]


def unmark(text: str) -> str:
    """The text as a user reads it: `[[value]]` becomes `value`."""
    return MARKED.sub(lambda m: m.group(1), text)


def normalise(value: Any) -> str:
    """The comparable form of a value: booleans and numbers spelled one way,
    case folded, runs of blanks collapsed."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = " ".join(str(value).split()).casefold()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else repr(number)


def _flatten(value: Any) -> Iterator[Any]:
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _flatten(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _flatten(item)
    elif value is not None:
        yield value


def known_values(
    instances: Mapping[str, Mapping[str, Any]], calls: Sequence[PlannedCall]
) -> set[str]:
    """Every value the combination holds: instance fields and literal arguments."""
    found = {normalise(v) for v in _flatten(instances)}
    for call in calls:
        for binding in call.arguments.values():
            if isinstance(binding, LiteralArg):
                found |= {normalise(v) for v in _flatten(binding.value)}
    return found


def required_values(
    instances: Mapping[str, Mapping[str, Any]], calls: Sequence[PlannedCall]
) -> list[str]:
    """The values the user must give for the golden calls to be made: arguments
    bound to a literal or an entity field (each list element on its own), in call
    order, once each. Values an earlier call returns (ids it creates) and the
    confirmation flag are the agent's business, not the user's."""
    wanted: dict[str, None] = {}
    for call in calls:
        for name, binding in sorted(call.arguments.items()):
            if name == CONFIRM_PARAMETER:
                continue
            if isinstance(binding, LiteralArg):
                values: Iterable[Any] = _flatten(binding.value)
            elif isinstance(binding, EntityFieldArg):
                record = instances.get(binding.instance, {})
                values = _flatten(record.get(binding.field))
            else:
                continue
            wanted |= {normalise(v): None for v in values}
    return list(wanted)


def hallucinated(
    texts: Sequence[str],
    instances: Mapping[str, Mapping[str, Any]],
    calls: Sequence[PlannedCall],
) -> list[str]:
    """Marked values (as written) that the combination does not hold."""
    known = known_values(instances, calls)
    return [v for v in marked_values(*texts) if normalise(v) not in known]


def missing(
    instruction: str,
    instances: Mapping[str, Mapping[str, Any]],
    calls: Sequence[PlannedCall],
) -> list[str]:
    """Required values (normalised) the instruction does not state as marked."""
    stated = {normalise(v) for v in marked_values(instruction)}
    return [v for v in required_values(instances, calls) if v not in stated]


def query_problems(
    draft: Any,
    instances: Mapping[str, Mapping[str, Any]],
    calls: Sequence[PlannedCall],
) -> list[str]:
    """What is wrong with a query draft (start_up_query, instruction,
    reason_for_call), one sentence each, for the re-ask."""
    problems: list[str] = []
    texts = [draft.start_up_query, draft.instruction, draft.reason_for_call]
    invented = hallucinated(texts, instances, calls)
    if invented:
        shown = ", ".join(f"[[{v}]]" for v in dict.fromkeys(invented))
        problems.append(
            f"these marked values are not in the task's data: {shown}; state only "
            "values given to you, copied exactly"
        )
    absent = missing(draft.instruction, instances, calls)
    if absent:
        problems.append(
            "the instruction must state, each wrapped in [[ ]], these values the "
            f"user gives: {', '.join(absent)}"
        )
    tools = sorted({c.tool for c in calls if c.tool in draft.start_up_query})
    if tools:
        problems.append(
            f"start_up_query names tools ({', '.join(tools)}); a user describes "
            "the problem, not the tools"
        )
    return problems
