"""s10 payloads: every candidate server combination with its score parts and
status, and the selection made from them (exported as
`cross_domain_combinations/_candidates.json`). Data only, no side effects."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.base import Frozen, PascalName
from schemas.config import CombinationConfig

CandidateStatus = Literal[
    "chosen",
    "not_selected",
    "near_duplicate",
    "too_few_shared",
    "no_shared_person",
]
"""What became of a candidate: chosen; eligible but outranked (`not_selected`);
or rejected: two members too similar, too few shared entities, or no person
entity that every member uses and one of them serves."""


class CombinationCandidate(Frozen):
    """One group of passing servers considered for a combination."""

    servers: tuple[PascalName, ...] = Field(min_length=2)
    fused_name: str
    core_entity: PascalName | None = Field(
        default=None, description="The shared person entity (None: there is none)."
    )
    shared_entities: tuple[PascalName, ...] = Field(
        default=(),
        description="What counts as shared: the core entity, then the entities "
        "every member uses that the entity graph links to it.",
    )
    unlinked_entities: tuple[PascalName, ...] = Field(
        default=(),
        description="Entities every member uses that the entity graph does not "
        "link to the core entity (not counted).",
    )
    similarity: float = Field(
        description="Mean pairwise cosine similarity of the members' embeddings."
    )
    max_pair_similarity: float
    shared_score: float = Field(description="shared_entity_weight x shared count.")
    similarity_score: float = Field(description="similarity_weight x similarity.")
    score: float = Field(description="shared_score + similarity_score.")
    status: CandidateStatus
    reason: str
    rank: int | None = Field(
        default=None,
        ge=1,
        description="Place in the selection order among eligible candidates.",
    )


class CombinationSelection(Frozen):
    """Every candidate of a run and which ones were chosen, for a seed."""

    seed: int
    embedder: str = Field(description="The embedding model the similarity used.")
    settings: CombinationConfig
    servers: tuple[PascalName, ...] = Field(description="The passing servers.")
    candidates: tuple[CombinationCandidate, ...] = Field(
        description="Eligible candidates in selection order, then rejected ones."
    )

    @property
    def chosen(self) -> tuple[CombinationCandidate, ...]:
        return tuple(c for c in self.candidates if c.status == "chosen")
