"""s01 domain expansion: seed domains grow by batch expansion with de-duplication.

Inputs: the configured seed domains; each expansion call sees (a window of) the
accepted domains. Outputs: `seed_domains`, one `domain_batch` per expansion call
(with every rejection and its nearest neighbour), one `domain` per accepted domain,
and `domain_topics` (exported as `domain_topics.json`). Side effects: the flow keeps a
LanceDB table of accepted domain embeddings for the semantic check.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from schemas.artifact import Artifact, ArtifactRef, ItemOutcome, WorkItem
from schemas.config import DomainExpansionConfig, PipelineConfig
from schemas.domain import (
    Domain,
    DomainBatch,
    DomainProposalDraft,
    DomainTopics,
    SeedDomains,
    StopReason,
)
from tasks.core import domains as core
from tasks.items import invalid_output, producer
from tasks.llm.errors import InvalidModelOutput
from tasks.resources import ItemEnv
from tasks.store.vectors import Embedder, VectorIndex

STEP = "s01"
PROMPT = "s01/expand_domains"


def expansion_params(config: PipelineConfig) -> dict:
    """What every expansion item reads besides its own iteration: the step config,
    the run seed (context window, producer) and the embedder that screens
    semantic duplicates (the last only as identity: it is in the cache key)."""
    embeddings = config.embeddings
    return {
        "cfg": config.steps.s01_domain_expansion,
        "seed": config.run.seed,
        "embeddings": {"provider": embeddings.provider, "model": embeddings.model},
    }


def _text(name: str) -> str:
    return name.replace("_", " ")


class DomainIndex:
    """Accepted domains and their embeddings, in LanceDB, for the semantic check."""

    def __init__(self, vectors: VectorIndex, embedder: Embedder) -> None:
        self.vectors = vectors
        self.embedder = embedder
        self.vectors.reset()

    def add(self, names: Sequence[str]) -> None:
        if names:
            self.vectors.add(list(names), [_text(n) for n in names])

    def nearest(self, name: str) -> tuple[str | None, float | None]:
        hits = self.vectors.nearest(self.embedder.embed([_text(name)])[0], k=1)
        return (hits[0][0], hits[0][1]) if hits else (None, None)

    def similarity(self, a: str, b: str) -> float:
        va, vb = self.embedder.embed([_text(a), _text(b)])
        return round(float(np.dot(va, vb)), 4)


def record_seeds(
    work: WorkItem, env: ItemEnv, *, seeds: tuple[str, ...]
) -> ItemOutcome:
    """Seed domains become the roots of every lineage chain."""
    made = producer(work)
    seed_set = Artifact[SeedDomains].build(
        kind="seed_domains",
        id="seeds",
        payload=SeedDomains(domains=seeds),
        producer=made,
    )
    domains = [
        Artifact[Domain].build(
            kind="domain",
            id=name,
            payload=Domain(name=name, origin="seed"),
            parents=[seed_set.ref],
            producer=made,
        )
        for name in seeds
    ]
    return ItemOutcome(item_key=work.item_key, artifacts=(seed_set, *domains))


def expand_domain_batch(
    work: WorkItem,
    env: ItemEnv,
    *,
    cfg: DomainExpansionConfig,
    seed: int,
    iteration: int,
    accepted: tuple[str, ...],
    parent: ArtifactRef,
) -> ItemOutcome:
    """One expansion call, screened for invalid, exact and semantic duplicates
    (against a LanceDB table of the accepted domains)."""
    llm = env.llm
    index = DomainIndex(env.vectors("domains"), env.embedder)
    index.add(accepted)
    n = cfg.expansion_batch_size
    shown = core.context_window(
        accepted,
        cfg.context_limit,
        seed + iteration,
        seeds=cfg.seed_domains,
    )
    try:
        answer = llm.ask(
            PROMPT,
            DomainProposalDraft,
            item_key=work.item_key,
            check=lambda d: core.check_proposal(d, requested=n),
            shown=shown,
            total=len(accepted),
            n=n,
            strategies=core.STRATEGIES,
        )
    except InvalidModelOutput as exc:
        return invalid_output(work, exc)
    kept, rejections = core.screen_candidates(
        answer.value,
        accepted=accepted,
        iteration=iteration,
        similar=index.nearest,
        threshold=cfg.similarity_threshold,
        in_batch_similarity=index.similarity,
    )
    made = producer(work, prompt=answer.prompt, model_id=answer.model_id, seed=seed)
    batch = Artifact[DomainBatch].build(
        kind="domain_batch",
        id=work.item_key,
        payload=DomainBatch(
            iteration=iteration,
            requested=n,
            proposed=tuple(c.name for c in answer.value.domains),
            accepted=tuple(kept),
            rejected=tuple(rejections),
        ),
        parents=[parent],
        producer=made,
    )
    domains = [
        Artifact[Domain].build(
            kind="domain", id=d.name, payload=d, parents=[batch.ref], producer=made
        )
        for d in kept
    ]
    return ItemOutcome(item_key=work.item_key, artifacts=(batch, *domains))


def finalize_topics(
    work: WorkItem,
    env: ItemEnv,
    *,
    domains: tuple[Artifact[Domain], ...],
    batches: tuple[Artifact[DomainBatch], ...],
    stop_reason: StopReason,
    iterations: int,
    target: int,
) -> ItemOutcome:
    """The final domain list, parented by every accepted domain, with every
    rejected candidate and why."""
    ordered = sorted(domains, key=lambda a: a.payload.name)
    topics = Artifact[DomainTopics].build(
        kind="domain_topics",
        id="domain_topics",
        payload=DomainTopics(
            domains=tuple(a.payload.name for a in ordered),
            stop_reason=stop_reason,
            iterations=iterations,
            target=target,
            rejected=core.all_rejections(b.payload.rejected for b in batches),
        ),
        parents=[a.ref for a in ordered],
        producer=producer(work),
    )
    return ItemOutcome(item_key=work.item_key, artifacts=(topics,))
