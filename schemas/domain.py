"""s01 payloads: domains, expansion batches with their de-duplication record, and the
final domain topic list (exported as `domain_topics.json`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.base import CheckedDraft, Draft, Frozen, Slug

ExpansionStrategy = Literal[
    "horizontal", "diagonal", "lifecycle", "specialisation", "role_based"
]


class DomainCandidateDraft(Draft):
    name: str = Field(description="snake_case, 1-3 words, e.g. dental_clinic")
    strategy: ExpansionStrategy = Field(
        description="Which of the five expansion strategies produced it."
    )


class DomainProposalDraft(CheckedDraft):
    """What the model returns for one expansion call."""

    domains: list[DomainCandidateDraft] = Field(min_length=1)
    reasoning: str = ""


class Domain(Frozen):
    name: Slug
    origin: Literal["seed", "expansion"]
    strategy: ExpansionStrategy | None = None
    iteration: int | None = Field(default=None, ge=0)


class SeedDomains(Frozen):
    domains: tuple[Slug, ...]


RejectionKind = Literal[
    "invalid",  # the name does not normalise to a 1-3 word slug
    "prompt_vocabulary",  # the prompt's own words (a strategy tag, an answer field)
    "not_a_domain",  # only generic words or numerals ("misc", "other", "example_2")
    "exact",  # equal to an accepted domain or an earlier candidate
    "semantic",  # too similar to an accepted domain
]


class DedupRejection(Frozen):
    candidate: str
    kind: RejectionKind
    nearest: str | None = None
    similarity: float | None = Field(
        default=None, description="Cosine similarity, rounded to 4 places."
    )
    reason: str | None = Field(
        default=None, description="Why the candidate is not a domain, in words."
    )


class DomainBatch(Frozen):
    """One expansion call: what was proposed, accepted and rejected (and why)."""

    iteration: int = Field(ge=0)
    requested: int = Field(ge=1)
    proposed: tuple[str, ...]
    accepted: tuple[Domain, ...]
    rejected: tuple[DedupRejection, ...]


StopReason = Literal["target_reached", "iteration_cap", "no_new_domains"]


class DomainTopics(Frozen):
    domains: tuple[Slug, ...]
    stop_reason: StopReason
    iterations: int = Field(ge=0)
    target: int = Field(ge=1)
    rejected: tuple[DedupRejection, ...] = Field(
        default=(), description="Every rejected candidate of every expansion call."
    )
