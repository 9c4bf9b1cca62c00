"""Tests for the reference export shapes gathered in tasks.core.exports."""

from schemas.domain import DedupRejection, DomainTopics
from tasks.core.exports import domain_topics_export


def test_domain_topics_export_lists_sorted_domains_and_stop_reason():
    """domain_topics.json holds the sorted domains plus why expansion stopped."""
    topics = DomainTopics(
        domains=("travel", "airline", "finance"),
        stop_reason="iteration_cap",
        iterations=40,
        target=300,
    )
    assert domain_topics_export(topics) == {
        "domains": ["airline", "finance", "travel"],
        "stop_reason": "iteration_cap",
        "rejected": [],
    }


def test_domain_topics_export_lists_rejections_with_their_reasons():
    """Rejected candidates keep kind, nearest domain, similarity and reason."""
    vocabulary = DedupRejection(
        candidate="lifecycle", kind="prompt_vocabulary", reason="a strategy tag"
    )
    exact = DedupRejection(
        candidate="Finance", kind="exact", nearest="finance", similarity=1.0
    )
    topics = DomainTopics(
        domains=("finance",),
        stop_reason="no_new_domains",
        iterations=3,
        target=6,
        rejected=(vocabulary, exact),
    )
    assert domain_topics_export(topics)["rejected"] == [
        {
            "candidate": "lifecycle",
            "kind": "prompt_vocabulary",
            "reason": "a strategy tag",
        },
        {
            "candidate": "Finance",
            "kind": "exact",
            "nearest": "finance",
            "similarity": 1.0,
        },
    ]
