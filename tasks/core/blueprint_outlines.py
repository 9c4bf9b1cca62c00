"""s04 stage 1 logic: takes an `OutlineSetDraft`, the core entity, its peripheral
candidates and `BlueprintConfig` limits; returns how many outlines to ask for,
problem sentences for re-asks, and the `OutlineSet` with the core entity first;
no side effects."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial

from schemas.blueprint import BlueprintOutline, OutlineSet, OutlineSetDraft
from schemas.config import BlueprintConfig
from tasks.core.naming import name_fold, to_pascal


def outline_target(candidate_count: int, limits: BlueprintConfig) -> int:
    """How many outlines to ask for: the target, capped by distinct entity sets.

    Args:
        candidate_count: Distinct peripheral candidates of the core entity.
        limits: The blueprint limits.

    Returns:
        min(target_blueprints_per_entity, number of 1..max peripheral subsets).
    """
    largest = min(limits.max_peripheral_entities, candidate_count)
    subsets = sum(math.comb(candidate_count, size) for size in range(1, largest + 1))
    return min(limits.target_blueprints_per_entity, subsets)


def check_outlines(
    draft: OutlineSetDraft,
    *,
    core: str,
    candidates: Sequence[str],
    limits: BlueprintConfig,
) -> list[str]:
    """Problems with a set of outlines, as re-ask sentences.

    The core entity may appear anywhere in an outline (or not at all); it is put
    first when canonicalising. Names match candidates ignoring case and separators.

    Args:
        draft: The model's outlines for one core entity.
        core: The core (person) entity.
        candidates: Entities the core may be combined with.
        limits: The blueprint limits.

    Returns:
        Problem sentences; empty when the outlines are usable.
    """
    spelling = {name_fold(name): name for name in candidates}
    wanted = outline_target(len(spelling), limits)
    most = limits.max_peripheral_entities
    problems: list[str] = []
    if len(draft.outlines) != wanted:
        problems.append(
            f"The answer has {len(draft.outlines)} outlines; return exactly {wanted}."
        )
    seen: dict[frozenset[str], int] = {}
    for number, outline in enumerate(draft.outlines, start=1):
        label = f"Outline {number} ('{outline.server_name}')"
        if not to_pascal(outline.server_name):
            problems.append(
                f"Outline {number} has no usable server_name; give it a PascalCase "
                f"name such as {core}Billing."
            )
        others = _peripheral_folds(outline.entities, core)
        unknown = {name_fold(raw): raw for raw in reversed(outline.entities)}
        for fold in others:
            if fold not in spelling:
                problems.append(
                    f"{label} uses '{unknown[fold]}', which is not a candidate "
                    f"entity; use only: {', '.join(candidates)}."
                )
        if not 1 <= len(others) <= most:
            problems.append(
                f"{label} has {len(others)} peripheral entities; combine {core} "
                f"with 1 to {most} of the candidates."
            )
        key = frozenset(others)
        if key in seen:
            problems.append(
                f"Outlines {seen[key]} and {number} use the same entities; give "
                "each outline a different combination."
            )
        seen.setdefault(key, number)
    return problems


def _peripheral_folds(entities: Sequence[str], core: str) -> list[str]:
    folds = (name_fold(raw) for raw in entities)
    return list(dict.fromkeys(fold for fold in folds if fold != name_fold(core)))


def outlines_checker(
    *, core: str, candidates: Sequence[str], limits: BlueprintConfig
) -> Callable[[OutlineSetDraft], list[str]]:
    """The `check` function for `OutlineSetDraft` validation context."""
    return partial(
        check_outlines, core=core, candidates=tuple(candidates), limits=limits
    )


def canonical_outlines(
    draft: OutlineSetDraft, *, core: str, candidates: Sequence[str] = ()
) -> OutlineSet:
    """Convert valid outlines to an `OutlineSet`.

    Args:
        draft: Outlines that `check_outlines` accepts.
        core: The core entity; it is removed from the entity lists and set as
            `core_entity`.
        candidates: Canonical spellings to map entity names to; names not matched
            are PascalCased.

    Returns:
        The outlines indexed in answer order, peripherals de-duplicated, server
        names PascalCased (`{core}Manager` when nothing usable is left).
    """
    spelling = {name_fold(name): name for name in candidates}
    outlines = []
    for index, outline in enumerate(draft.outlines):
        names = (
            spelling.get(name_fold(raw), to_pascal(raw)) for raw in outline.entities
        )
        peripherals = [name for name in names if name_fold(name) != name_fold(core)]
        outlines.append(
            BlueprintOutline(
                index=index,
                server_name=to_pascal(outline.server_name) or f"{core}Manager",
                description=outline.description,
                core_entity=core,
                peripheral_entities=tuple(dict.fromkeys(peripherals)),
            )
        )
    return OutlineSet(core_entity=core, outlines=tuple(outlines))
