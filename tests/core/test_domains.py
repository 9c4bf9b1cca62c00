"""Tests for s01 domain expansion logic."""

import pydantic
import pytest

from schemas.domain import DedupRejection, Domain, DomainProposalDraft
from tasks.core.domains import (
    STRATEGIES,
    check_proposal,
    context_window,
    non_domain_reason,
    normalize_domain,
    prompt_vocabulary,
    proposal_checker,
    screen_candidates,
    stop_reason,
)


def _proposal(*names: str) -> DomainProposalDraft:
    return DomainProposalDraft(
        domains=[{"name": name, "strategy": "horizontal"} for name in names]
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("dental_clinic", "dental_clinic"),
        ("Dental Clinic", "dental_clinic"),
        ("e-commerce", "e_commerce"),
        ("CarRental", "car_rental"),
        ("airline", "airline"),
        ("pet_grooming_salon_chain", None),
        ("3d_printing", None),
        ("health & fitness", None),
        ("", None),
        ("   ", None),
    ],
)
def test_normalize_domain_returns_slug_or_none(raw, expected):
    """Valid names become 1-3 word snake_case slugs; others are rejected."""
    assert normalize_domain(raw) == expected


def test_check_proposal_accepts_valid_proposal():
    """A proposal within the requested size with valid names has no problems."""
    assert check_proposal(_proposal("airline", "car rental"), requested=2) == []


def test_check_proposal_rejects_too_many_and_names_the_invalid_domain():
    """Extra candidates and unusable names are both reported."""
    problems = check_proposal(
        _proposal("airline", "health & fitness", "car_rental"), requested=2
    )
    assert problems == [
        "The answer lists 3 domains but at most 2 were requested; return at most 2.",
        "Domain 'health & fitness' may only contain letters, digits, spaces, hyphens "
        "and underscores; write it in snake_case with 1 to 3 words, e.g. "
        "dental_clinic.",
    ]


def test_proposal_checker_makes_validation_raise_with_the_problem():
    """The checker in the validation context turns problems into a re-ask."""
    data = {"domains": [{"name": "a_b_c_d", "strategy": "lifecycle"}]}
    with pytest.raises(pydantic.ValidationError, match="'a_b_c_d' has 4 words"):
        DomainProposalDraft.model_validate(
            data, context={"check": proposal_checker(requested=5)}
        )


def test_screen_candidates_rejects_invalid_exact_and_semantic_duplicates():
    """Each candidate is classified in proposal order with its nearest domain."""
    scores = {"medical_care": ("healthcare", 0.93219), "airline": ("travel", 0.5)}

    def similar(slug):
        return scores.get(slug, ("travel", 0.1))

    def in_batch(first, second):
        return 0.95 if {first, second} == {"airline", "airlines"} else 0.2

    proposal = _proposal(
        "Health & Care",
        "Finance",
        "airline",
        "Airline",
        "medical care",
        "airlines",
        "pet_store",
    )
    accepted, rejected = screen_candidates(
        proposal,
        accepted=["finance", "healthcare", "travel"],
        iteration=4,
        similar=similar,
        threshold=0.9,
        in_batch_similarity=in_batch,
    )
    assert accepted == [
        Domain(name="airline", origin="expansion", strategy="horizontal", iteration=4),
        Domain(
            name="pet_store", origin="expansion", strategy="horizontal", iteration=4
        ),
    ]
    assert rejected == [
        DedupRejection(candidate="Health & Care", kind="invalid"),
        DedupRejection(
            candidate="Finance", kind="exact", nearest="finance", similarity=1.0
        ),
        DedupRejection(
            candidate="Airline", kind="exact", nearest="airline", similarity=1.0
        ),
        DedupRejection(
            candidate="medical care",
            kind="semantic",
            nearest="healthcare",
            similarity=0.9322,
        ),
        DedupRejection(
            candidate="airlines", kind="semantic", nearest="airline", similarity=0.95
        ),
    ]


def test_prompt_vocabulary_is_the_strategy_tags_and_answer_fields():
    """Derived from the schema the prompt renders: strategies, parts, field names."""
    assert STRATEGIES == (
        "horizontal",
        "diagonal",
        "lifecycle",
        "specialisation",
        "role_based",
    )
    assert prompt_vocabulary() == {
        *STRATEGIES,
        "role",
        "based",
        "domains",
        "name",
        "strategy",
        "reasoning",
    }


@pytest.mark.parametrize(
    ("slug", "expected"),
    [
        (
            "lifecycle",
            (
                "prompt_vocabulary",
                "'lifecycle' is an expansion strategy tag of the s01 prompt, "
                "not a domain",
            ),
        ),
        (
            "horizontal_domain",
            (
                "prompt_vocabulary",
                "'horizontal' is an expansion strategy tag of the s01 prompt, "
                "not a domain",
            ),
        ),
        (
            "reasoning",
            (
                "prompt_vocabulary",
                "'reasoning' is a field name of the s01 answer format, not a domain",
            ),
        ),
        (
            "misc",
            (
                "not_a_domain",
                "'misc' has only generic words or numerals; it names no service area",
            ),
        ),
        (
            "new_domain_2",
            (
                "not_a_domain",
                "'new_domain_2' has only generic words "
                "or numerals; it names no service area",
            ),
        ),
        ("dental_clinic", None),
        ("lifecycle_management", None),
        ("travel_2", None),
    ],
)
def test_non_domain_reason_names_prompt_words_and_generic_words(slug, expected):
    """Prompt vocabulary and generic-only names are not domains; real ones are."""
    assert non_domain_reason(slug) == expected


def test_screen_candidates_rejects_prompt_vocabulary_with_its_reason():
    """A weak model's strategy tags and filler names are rejected, never accepted."""
    accepted, rejected = screen_candidates(
        _proposal("Horizontal", "diagonal", "Lifecycle", "other", "pet_store"),
        accepted=["finance"],
        iteration=2,
        similar=lambda slug: ("finance", 0.1),
        threshold=0.9,
        in_batch_similarity=lambda first, second: 0.1,
    )
    assert [d.name for d in accepted] == ["pet_store"]
    assert [(r.candidate, r.kind) for r in rejected] == [
        ("Horizontal", "prompt_vocabulary"),
        ("diagonal", "prompt_vocabulary"),
        ("Lifecycle", "prompt_vocabulary"),
        ("other", "not_a_domain"),
    ]
    assert rejected[0].reason == (
        "'horizontal' is an expansion strategy tag of the s01 prompt, not a domain"
    )


def test_screen_candidates_reports_the_closer_of_accepted_and_batch_domains():
    """When both lists hold a near-duplicate, the more similar one is named."""
    accepted, rejected = screen_candidates(
        _proposal("bus_travel", "coach_travel"),
        accepted=["travel"],
        iteration=1,
        similar=lambda slug: ("travel", 0.91),
        threshold=0.95,
        in_batch_similarity=lambda first, second: 0.97,
    )
    assert [domain.name for domain in accepted] == ["bus_travel"]
    assert rejected == [
        DedupRejection(
            candidate="coach_travel",
            kind="semantic",
            nearest="bus_travel",
            similarity=0.97,
        )
    ]


def test_screen_candidates_accepts_first_domain_when_nothing_is_accepted():
    """With no accepted domains the nearest lookup may return nothing."""
    accepted, rejected = screen_candidates(
        _proposal("airline"),
        accepted=[],
        iteration=0,
        similar=lambda slug: (None, None),
        threshold=0.9,
        in_batch_similarity=lambda first, second: 0.0,
    )
    assert [domain.name for domain in accepted] == ["airline"]
    assert rejected == []


@pytest.mark.parametrize(
    ("count", "iteration", "history", "expected"),
    [
        (300, 40, [0, 0, 0], "target_reached"),
        (120, 40, [5, 0, 0], "iteration_cap"),
        (120, 7, [4, 0, 0, 0], "no_new_domains"),
        (120, 7, [0, 0, 3], None),
        (120, 2, [0, 0], None),
        (15, 0, [], None),
    ],
)
def test_stop_reason_checks_target_then_cap_then_stagnation(
    count, iteration, history, expected
):
    """Expansion stops on target, on the iteration cap, or after 3 empty rounds."""
    assert stop_reason(count, 300, iteration, 40, history) == expected


def test_context_window_lists_everything_when_it_fits():
    """Up to the limit, the window is all accepted domains, sorted."""
    assert context_window(["b", "a", "c", "a"], 3, 7) == ["a", "b", "c"]


def test_context_window_keeps_seeds_and_samples_the_rest_deterministically():
    """Over the limit, seeds are kept and the rest is a seeded sample."""
    accepted = [f"domain_{index:02d}" for index in range(40)] + ["finance", "legal"]
    window = context_window(accepted, 10, 7, seeds=["legal", "finance", "absent"])
    again = context_window(list(reversed(accepted)), 10, 7, seeds=["finance", "legal"])
    assert window == again
    assert len(window) == 10
    assert window == sorted(window)
    assert {"finance", "legal"} <= set(window) <= set(accepted)


def test_context_window_rejects_a_limit_below_one():
    """A zero limit is a configuration error."""
    with pytest.raises(ValueError, match="limit"):
        context_window(["a"], 0, 1)
