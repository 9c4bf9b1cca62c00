"""Reference output shapes: takes canonical payloads and returns the plain JSON
documents users of the original tool read (`domain_topics.json`, `entities.json`,
`entity_graph.json`, `blueprints.json`, `tool_lists/<Server>.json`), gathered in
one module; no side effects (the store writes them)."""

from __future__ import annotations

from schemas.domain import DomainTopics
from tasks.core.blueprints import blueprints_export
from tasks.core.entities import entities_export
from tasks.core.entity_graph import graph_export
from tasks.core.tool_lists import tool_list_export

__all__ = [
    "blueprints_export",
    "domain_topics_export",
    "entities_export",
    "graph_export",
    "tool_list_export",
]


def domain_topics_export(topics: DomainTopics) -> dict[str, object]:
    """The domain list in the reference `domain_topics.json` shape.

    Args:
        topics: The final domain topics.

    Returns:
        `{"domains": [sorted unique slugs], "stop_reason": ..., "rejected": [...]}`
        where each rejected record has the candidate, its kind ("invalid",
        "prompt_vocabulary", "not_a_domain", "exact", "semantic") and, where
        known, the nearest domain, the similarity and the reason; readers of the
        reference need only "domains".
    """
    return {
        "domains": sorted(set(topics.domains)),
        "stop_reason": topics.stop_reason,
        "rejected": [
            r.model_dump(mode="json", exclude_none=True) for r in topics.rejected
        ],
    }
