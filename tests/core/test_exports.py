"""Tests for the reference export shapes gathered in tasks.core.exports."""

from schemas.domain import DomainTopics
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
    }
