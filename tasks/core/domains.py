"""s01 domain expansion logic: takes `DomainProposalDraft`s, accepted domain names
and injected similarity functions; returns problem sentences for re-asks, accepted
`Domain`s and `DedupRejection`s (invalid, prompt vocabulary, not a domain, exact,
semantic), the domains a prompt lists, and the `StopReason`; no side effects
(embeddings are computed by the caller)."""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import get_args

from schemas.domain import (
    DedupRejection,
    Domain,
    DomainProposalDraft,
    ExpansionStrategy,
    RejectionKind,
    StopReason,
)
from tasks.core.naming import to_snake

MAX_DOMAIN_WORDS = 3
MAX_DOMAIN_LENGTH = 80
NO_PROGRESS_PATIENCE = 3
"""Consecutive iterations without a new domain after which expansion stops."""

_RAW_DOMAIN = re.compile(r"^[A-Za-z0-9 _-]+$")

STRATEGIES: tuple[str, ...] = get_args(ExpansionStrategy)
"""The expansion strategies, in prompt order; the s01 prompt lists exactly these."""

GENERIC_WORDS = frozenset(
    {
        "area", "category", "domain", "domains", "example", "examples", "field",
        "general", "generic", "item", "items", "misc", "miscellaneous", "new",
        "none", "null", "other", "others", "placeholder", "sample", "sector",
        "service", "services", "setting", "something", "stuff", "thing", "things",
        "topic", "topics", "unknown", "various",
    }
)  # fmt: skip
"""Words that name no service area on their own ("misc", "other", "new_domain")."""

NUMBER_WORDS = frozenset(
    {
        "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
        "ten", "first", "second", "third", "fourth", "fifth", "last", "next",
    }
)  # fmt: skip

NearestFn = Callable[[str], tuple[str | None, float | None]]
PairSimilarityFn = Callable[[str, str], float]


def domain_name_problem(raw: str) -> str | None:
    """Say why a proposed domain name is unusable.

    Args:
        raw: The name as proposed, e.g. "Dental Clinic".

    Returns:
        A phrase completing "Domain '<raw>' ...", or None when the name is valid.
    """
    text = raw.strip()
    if not text:
        return "is empty"
    if not _RAW_DOMAIN.match(text):
        return "may only contain letters, digits, spaces, hyphens and underscores"
    slug = to_snake(text)
    if not slug:
        return "has no letters"
    if not slug[0].isalpha():
        return "must start with a letter"
    words = slug.split("_")
    if len(words) > MAX_DOMAIN_WORDS:
        return f"has {len(words)} words; use 1 to {MAX_DOMAIN_WORDS}"
    if len(slug) > MAX_DOMAIN_LENGTH:
        return f"is longer than {MAX_DOMAIN_LENGTH} characters"
    return None


def normalize_domain(raw: str) -> str | None:
    """Normalise a proposed domain name to a snake_case slug.

    Args:
        raw: The name as proposed, e.g. "Dental Clinic" or "e-commerce".

    Returns:
        The slug ("dental_clinic", "e_commerce"): 1-3 words of [a-z0-9] starting
        with a letter; None when the name cannot be normalised.
    """
    if domain_name_problem(raw) is not None:
        return None
    return to_snake(raw)


@functools.cache
def prompt_vocabulary() -> frozenset[str]:
    """Words the s01 prompt and its answer schema show the model, which a weak
    model tends to hand back as domain names.

    Derived, not listed: the expansion strategies (the prompt's tags and the
    answer's `strategy` enum) with their parts ("role_based", "role", "based"),
    and the field names of the answer schema ("domains", "name", "strategy").
    """
    words = set(STRATEGIES)
    words.update(part for s in STRATEGIES for part in s.split("_"))
    schema = DomainProposalDraft.model_json_schema()
    words.update(schema.get("properties", {}))
    for definition in schema.get("$defs", {}).values():
        words.update(definition.get("properties", {}))
    return frozenset(to_snake(w) for w in words)


def non_domain_reason(slug: str) -> tuple[RejectionKind, str] | None:
    """Say why a normalised candidate is no domain at all.

    A candidate whose every word is prompt vocabulary, a generic word or a
    numeral ("lifecycle", "horizontal_domain", "misc", "new_domain_2") names no
    service area.

    Args:
        slug: The normalised candidate, e.g. "role_based".

    Returns:
        `(kind, reason)` with kind "prompt_vocabulary" (some word is the prompt's
        own) or "not_a_domain" (generic words and numerals only); None for a
        plausible domain.
    """
    words = slug.split("_")
    if not all(_filler(w) for w in words):
        return None
    vocabulary = prompt_vocabulary()
    own = [w for w in (slug, *words) if w in vocabulary]
    if not own:
        return (
            "not_a_domain",
            f"'{slug}' has only generic words or numerals; it names no service area",
        )
    tags = {part for s in STRATEGIES for part in (s, *s.split("_"))}
    what = (
        "an expansion strategy tag of the s01 prompt"
        if own[0] in tags
        else "a field name of the s01 answer format"
    )
    return "prompt_vocabulary", f"'{own[0]}' is {what}, not a domain"


def _filler(word: str) -> bool:
    return (
        word in prompt_vocabulary()
        or word in GENERIC_WORDS
        or word in NUMBER_WORDS
        or word.isdigit()
    )


def check_proposal(draft: DomainProposalDraft, *, requested: int) -> list[str]:
    """Problems with one expansion answer, as re-ask sentences.

    Args:
        draft: The model's proposal.
        requested: How many new domains the prompt asked for.

    Returns:
        Problem sentences; empty when the proposal is usable.
    """
    problems: list[str] = []
    count = len(draft.domains)
    if count == 0:
        problems.append(
            f"The answer lists no domains; propose {requested} new domain names."
        )
    elif count > requested:
        problems.append(
            f"The answer lists {count} domains but at most {requested} were "
            f"requested; return at most {requested}."
        )
    for candidate in draft.domains:
        reason = domain_name_problem(candidate.name)
        if reason is not None:
            problems.append(
                f"Domain '{candidate.name}' {reason}; write it in snake_case with "
                f"1 to {MAX_DOMAIN_WORDS} words, e.g. dental_clinic."
            )
    return problems


def proposal_checker(*, requested: int) -> Callable[[DomainProposalDraft], list[str]]:
    """The `check` function for `DomainProposalDraft` validation context."""
    return partial(check_proposal, requested=requested)


def screen_candidates(
    proposal: DomainProposalDraft,
    *,
    accepted: Sequence[str],
    iteration: int,
    similar: NearestFn,
    threshold: float,
    in_batch_similarity: PairSimilarityFn,
) -> tuple[list[Domain], list[DedupRejection]]:
    """Accept or reject each proposed domain, in proposal order.

    A candidate is rejected as "invalid" when its name does not normalise, as
    "prompt_vocabulary" or "not_a_domain" when it names no service area (see
    `non_domain_reason`), as "exact" when it equals an accepted domain or an
    earlier candidate of this batch, and as "semantic" when its cosine similarity
    to an accepted domain or to a candidate accepted earlier in this batch is at
    least `threshold` (the closer of the two is reported).

    Args:
        proposal: The validated model answer.
        accepted: Domain names accepted before this batch.
        iteration: The expansion iteration that produced the proposal.
        similar: Nearest accepted domain of a slug and its cosine similarity, or
            (None, None) when nothing is accepted yet.
        threshold: Similarity at or above which a candidate is a near-duplicate.
        in_batch_similarity: Cosine similarity of two slugs.

    Returns:
        The accepted domains and the rejections, each in proposal order.
    """
    accepted_set = set(accepted)
    seen: set[str] = set()
    taken: list[str] = []
    domains: list[Domain] = []
    rejections: list[DedupRejection] = []
    for candidate in proposal.domains:
        slug = normalize_domain(candidate.name)
        if slug is None:
            rejections.append(DedupRejection(candidate=candidate.name, kind="invalid"))
            continue
        not_domain = non_domain_reason(slug)
        if not_domain is not None:
            kind, why = not_domain
            rejections.append(
                DedupRejection(candidate=candidate.name, kind=kind, reason=why)
            )
            continue
        if slug in accepted_set or slug in seen:
            rejections.append(
                DedupRejection(
                    candidate=candidate.name, kind="exact", nearest=slug, similarity=1.0
                )
            )
            continue
        seen.add(slug)
        nearest, score = _closest(slug, similar, taken, in_batch_similarity)
        if nearest is not None and score is not None and score >= threshold:
            rejections.append(
                DedupRejection(
                    candidate=candidate.name,
                    kind="semantic",
                    nearest=nearest,
                    similarity=round(score, 4),
                )
            )
            continue
        taken.append(slug)
        domains.append(
            Domain(
                name=slug,
                origin="expansion",
                strategy=candidate.strategy,
                iteration=iteration,
            )
        )
    return domains, rejections


def _closest(
    slug: str,
    similar: NearestFn,
    taken: Sequence[str],
    in_batch_similarity: PairSimilarityFn,
) -> tuple[str | None, float | None]:
    """Nearest of the accepted domains and this batch's accepted candidates."""
    nearest, score = similar(slug)
    for other in taken:
        other_score = in_batch_similarity(slug, other)
        if score is None or other_score > score:
            nearest, score = other, other_score
    return nearest, score


def stop_reason(
    count: int,
    target: int,
    iteration: int,
    max_iterations: int,
    accepted_history: Sequence[int],
) -> StopReason | None:
    """Decide whether domain expansion stops before the next iteration.

    Args:
        count: Domains accepted so far, seeds included.
        target: The wanted number of domains.
        iteration: Expansion iterations completed.
        max_iterations: The hard cap on expansion iterations.
        accepted_history: New domains accepted by each completed iteration, oldest
            first.

    Returns:
        "target_reached", "iteration_cap" or "no_new_domains" (the last
        `NO_PROGRESS_PATIENCE` iterations accepted nothing), checked in that order;
        None to continue.
    """
    if count >= target:
        return "target_reached"
    if iteration >= max_iterations:
        return "iteration_cap"
    recent = list(accepted_history)[-NO_PROGRESS_PATIENCE:]
    if len(recent) == NO_PROGRESS_PATIENCE and not any(recent):
        return "no_new_domains"
    return None


def all_rejections(
    batches: Iterable[Sequence[DedupRejection]],
) -> tuple[DedupRejection, ...]:
    """Every batch's rejections in order, for `domain_topics.json`."""
    return tuple(r for batch in batches for r in batch)


def context_window(
    accepted: Sequence[str],
    limit: int,
    rng_seed: int,
    *,
    seeds: Sequence[str] = (),
) -> list[str]:
    """Choose which accepted domains a prompt lists, deterministically.

    Args:
        accepted: All accepted domain names (any order).
        limit: At most this many names are returned.
        rng_seed: Seed of the sample; the same seed and set give the same window.
        seeds: Seed domains, listed first when there is room for them.

    Returns:
        All accepted names sorted when they fit; otherwise the accepted seeds
        (at most `limit`) plus a seeded sample of the rest, sorted.

    Raises:
        ValueError: If `limit` is below 1.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    pool = sorted(set(accepted))
    if len(pool) <= limit:
        return pool
    kept = sorted(set(seeds) & set(pool))[:limit]
    rest = sorted(set(pool) - set(kept))
    sample = random.Random(rng_seed).sample(rest, limit - len(kept))
    return sorted(kept + sample)
