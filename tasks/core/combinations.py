"""s10 combination logic: takes the passing servers' blueprints and tool
listings, the entity graph, an injected pairwise similarity and the step config;
returns the text each server is embedded by, every candidate group of 2 up to
`max_domains_per_combo` servers with its score parts and status, and the
deterministic selection for a seed. No side effects (embeddings are computed by
the caller).

A candidate is a group of servers that share a person entity: one that every
member uses and at least one member serves as its core entity. Its shared
entities are that person and the entities every member uses that the entity
graph links to it; score = shared_entity_weight x (shared count) +
similarity_weight x (mean pairwise cosine of the members' embeddings). Members
more similar than `max_similarity` are near-duplicates, not a combination.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from schemas.base import sha256_hex
from schemas.blueprint import ServerBlueprint
from schemas.combination import (
    CandidateStatus,
    CombinationCandidate,
    CombinationSelection,
)
from schemas.config import CombinationConfig
from schemas.entity import EntityGraph
from schemas.fusion import ServerCombination, fused_name
from tasks.core.entity_graph import neighbours
from tasks.core.naming import to_snake

PairSimilarity = Callable[[str, str], float]
"""Cosine similarity of two servers' embeddings, by server name."""

ROUND = 4
"""Places every similarity and score is rounded to, so equal scores are equal
on every machine and ties are decided by the seeded order alone."""

_UNRANKED = ("near_duplicate", "too_few_shared", "no_shared_person")


def _words(name: str) -> str:
    return to_snake(name).replace("_", " ")


def server_text(blueprint: ServerBlueprint, tools: Sequence[Mapping[str, Any]]) -> str:
    """The text a server is embedded by: its description, entities and tools.

    Args:
        blueprint: The server's blueprint.
        tools: Its live tool listing, in the OpenAI tool-list shape.

    Returns:
        One paragraph; names are spelled as words ("bank account").
    """
    entities = (blueprint.core_entity, *blueprint.peripheral_entities)
    lines = [
        blueprint.description.strip(),
        "Entities: " + ", ".join(_words(e) for e in entities) + ".",
    ]
    for tool in tools:
        function = tool.get("function", tool)
        name = str(function.get("name", "")).replace("_", " ")
        about = str(function.get("description", "")).strip()
        lines.append(f"{name}: {about}" if about else name)
    return "\n".join(lines)


def _uses(blueprint: ServerBlueprint) -> set[str]:
    return {blueprint.core_entity, *blueprint.peripheral_entities}


def candidate_groups(
    blueprints: Sequence[ServerBlueprint], max_size: int
) -> list[tuple[str, ...]]:
    """Every group of 2..`max_size` servers that use one person entity some
    server serves (its core entity): sorted member names, each group once.

    Args:
        blueprints: The passing servers' blueprints.
        max_size: `max_domains_per_combo`.

    Returns:
        The groups, sorted.
    """
    cores = {b.core_entity for b in blueprints}
    groups: set[tuple[str, ...]] = set()
    for person in sorted(cores):
        users = sorted(b.server_name for b in blueprints if person in _uses(b))
        for size in range(2, min(max_size, len(users)) + 1):
            groups.update(itertools.combinations(users, size))
    return sorted(groups)


def _core_person(members: Sequence[ServerBlueprint]) -> str | None:
    """The person every member uses that most members serve (then by name)."""
    common = set.intersection(*(_uses(m) for m in members))
    served = [m.core_entity for m in members if m.core_entity in common]
    if not served:
        return None
    return min(set(served), key=lambda p: (-served.count(p), p))


def person_links(
    graph: EntityGraph, blueprints: Sequence[ServerBlueprint]
) -> dict[str, frozenset[str]]:
    """The entities the entity graph links to each server's core person."""
    return {
        person: frozenset(neighbours(graph, person))
        for person in sorted({b.core_entity for b in blueprints})
    }


def evaluate_group(
    members: Sequence[ServerBlueprint],
    links: Mapping[str, frozenset[str]],
    similarity: PairSimilarity,
    cfg: CombinationConfig,
) -> CombinationCandidate:
    """Score one group and say whether it may be chosen.

    Args:
        members: The group's blueprints (2 or more).
        links: The entities linked to each core person (`person_links`).
        similarity: Cosine similarity of two members' embeddings.
        cfg: The step config (weights, thresholds).

    Returns:
        The candidate; status `not_selected` when eligible (selection decides),
        else `no_shared_person`, `too_few_shared` or `near_duplicate`.
    """
    names = tuple(sorted(m.server_name for m in members))
    pairs = [(a, b, round(similarity(a, b), ROUND)) for a, b in _pairs(names)]
    mean = round(sum(s for _, _, s in pairs) / len(pairs), ROUND)
    top = max(pairs, key=lambda p: (p[2], p[0], p[1]))
    core = _core_person(members)
    common = set.intersection(*(_uses(m) for m in members))
    linked = links.get(core, frozenset()) if core else frozenset()
    others = sorted(common - {core})
    shared = (core, *(e for e in others if e in linked)) if core else ()
    shared_score = round(cfg.shared_entity_weight * len(shared), ROUND)
    similarity_score = round(cfg.similarity_weight * mean, ROUND)
    status, reason = _verdict(core, shared, top, cfg)
    return CombinationCandidate(
        servers=names,
        fused_name=fused_name(names),
        core_entity=core,
        shared_entities=shared,
        unlinked_entities=tuple(e for e in others if e not in linked) if core else (),
        similarity=mean,
        max_pair_similarity=top[2],
        shared_score=shared_score,
        similarity_score=similarity_score,
        score=round(shared_score + similarity_score, ROUND),
        status=status,
        reason=reason,
    )


def _pairs(names: Sequence[str]) -> list[tuple[str, str]]:
    return list(itertools.combinations(names, 2))


def _verdict(
    core: str | None,
    shared: tuple[str, ...],
    top: tuple[str, str, float],
    cfg: CombinationConfig,
) -> tuple[CandidateStatus, str]:
    if core is None:
        return (
            "no_shared_person",
            "no person entity is used by every member and served by one of them",
        )
    if len(shared) < cfg.min_shared_entities:
        return (
            "too_few_shared",
            f"shares {len(shared)} entit{'y' if len(shared) == 1 else 'ies'} "
            f"({', '.join(shared)}); min_shared_entities is {cfg.min_shared_entities}",
        )
    a, b, value = top
    if value > cfg.max_similarity:
        return (
            "near_duplicate",
            f"{a} and {b} have similarity {value:.4f} > max_similarity "
            f"{cfg.max_similarity}: near-duplicates, not a combination",
        )
    return "not_selected", ""


def tie_order(seed: int, name: str) -> str:
    """The seeded, stable key that orders candidates with equal scores."""
    return sha256_hex(f"{seed}:{name}")


def select_candidates(
    candidates: Sequence[CombinationCandidate], *, count: int, seed: int
) -> tuple[CombinationCandidate, ...]:
    """Choose the `count` best eligible candidates, deterministically for `seed`.

    Eligible candidates are ranked by score, highest first; equal scores are
    ordered by `tie_order(seed, fused name)`. The first `count` are chosen, the
    rest are `not_selected` with the score that fell short.

    Args:
        candidates: Every evaluated candidate (any order, each member set once).
        count: How many to choose (`combinations`).
        seed: The run seed.

    Returns:
        Every candidate: the eligible ones in rank order (with `rank`), then the
        rejected ones by status, score (highest first) and name.

    Raises:
        ValueError: a member set occurs twice.
    """
    names = [c.fused_name for c in candidates]
    if len(set(names)) != len(names):
        raise ValueError("a combination of the same servers is listed twice")
    eligible = sorted(
        (c for c in candidates if c.status not in _UNRANKED),
        key=lambda c: (-c.score, tie_order(seed, c.fused_name)),
    )
    cutoff = eligible[count - 1].score if 0 < count <= len(eligible) else None
    ranked = [
        c.model_copy(
            update={
                "rank": i,
                "status": "chosen" if i <= count else "not_selected",
                "reason": _rank_reason(i, count, c.score, cutoff),
            }
        )
        for i, c in enumerate(eligible, start=1)
    ]
    rejected = sorted(
        (c for c in candidates if c.status in _UNRANKED),
        key=lambda c: (_UNRANKED.index(c.status), -c.score, c.fused_name),
    )
    return (*ranked, *rejected)


def _rank_reason(rank: int, count: int, score: float, cutoff: float | None) -> str:
    if rank <= count:
        return f"rank {rank} of the {count} to choose (score {score:.4f})"
    tie = " (tied; the seeded order put it later)" if score == cutoff else ""
    return (
        f"rank {rank}: score {score:.4f} below the {count} chosen "
        f"(last chosen: {cutoff:.4f}){tie}"
    )


def choose_combinations(
    blueprints: Sequence[ServerBlueprint],
    graph: EntityGraph,
    similarity: PairSimilarity,
    cfg: CombinationConfig,
    *,
    seed: int,
) -> tuple[CombinationCandidate, ...]:
    """Every candidate of the passing servers, scored, with the chosen ones.

    Args:
        blueprints: The passing servers' blueprints.
        graph: The s03 entity graph.
        similarity: Cosine similarity of two servers' embeddings.
        cfg: The step config.
        seed: The run seed (orders ties).

    Returns:
        See `select_candidates`.
    """
    by_name = {b.server_name: b for b in blueprints}
    links = person_links(graph, blueprints)
    evaluated = [
        evaluate_group([by_name[n] for n in group], links, similarity, cfg)
        for group in candidate_groups(blueprints, cfg.max_domains_per_combo)
    ]
    return select_candidates(evaluated, count=cfg.combinations, seed=seed)


def as_combination(candidate: CombinationCandidate) -> ServerCombination:
    """The `ServerCombination` of a chosen candidate.

    Raises:
        ValueError: the candidate has no core entity (it cannot be chosen).
    """
    if candidate.core_entity is None:
        raise ValueError(f"{candidate.fused_name} has no shared person entity")
    return ServerCombination(
        servers=candidate.servers,
        core_entity=candidate.core_entity,
        shared_entities=candidate.shared_entities,
    )


def combinations_export(
    chosen: Sequence[CombinationCandidate],
    blueprints: Mapping[str, ServerBlueprint],
) -> dict[str, object]:
    """The reference `cross_domain_combinations/_combinations.json` document.

    Args:
        chosen: The chosen candidates, in rank order.
        blueprints: The members' blueprints by server name.

    Returns:
        `{"combinations": [...]}`, each with the reference keys (`domains` are the
        members' descriptions, `constraint_mappings` is always empty) and `score`.
    """
    return {
        "combinations": [
            {
                "domains": [blueprints[s].description for s in c.servers],
                "core_entities": [blueprints[s].core_entity for s in c.servers],
                "servers": list(c.servers),
                "fused_name": c.fused_name,
                "shared_entities": list(c.shared_entities),
                "constraint_mappings": {},
                "score": c.score,
            }
            for c in chosen
        ]
    }


def candidates_export(selection: CombinationSelection) -> dict[str, object]:
    """`cross_domain_combinations/_candidates.json`: the seed, embedder and
    settings, the passing servers, and every candidate's score parts, status and
    reason, in selection order."""
    return selection.model_dump(mode="json")
