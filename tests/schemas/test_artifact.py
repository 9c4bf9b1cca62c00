"""An artifact's content hash is checked once per artifact made, and always on data."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from schemas.artifact import Artifact, ItemOutcome
from schemas.domain import Domain
from tests.store.test_artifacts import _domain


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the artifacts whose content hash is computed, in order."""
    computed: list[str] = []
    compute = Artifact.compute_hash

    def counting(kind, id, schema_version, payload, parents):  # noqa: A002
        computed.append(id)
        return compute(kind, id, schema_version, payload, parents)

    monkeypatch.setattr(Artifact, "compute_hash", staticmethod(counting))
    return computed


def test_an_artifact_handed_on_is_not_hashed_again(hashes: list[str]) -> None:
    """Building hashes once; putting the artifact in an outcome or validating the
    instance again keeps it as it is, without hashing it again."""
    domain = _domain("dental_clinic")
    outcome = ItemOutcome(item_key="batch-000", artifacts=(domain,))
    again = Artifact.model_validate(domain)
    assert outcome.artifacts[0] is domain and again is domain
    assert hashes == ["dental_clinic"]
    # made into another class, it is a new artifact, and checked as one
    typed = Artifact[Domain].model_validate(domain)
    assert typed is not domain and typed.content_hash == domain.content_hash
    assert hashes == ["dental_clinic"] * 2


def test_an_artifact_read_from_data_is_hashed_and_a_mismatch_refused(
    hashes: list[str],
) -> None:
    """Data (a stored object, a result record) is hashed on every validation."""
    data = _domain("dental_clinic").model_dump(mode="json")
    assert Artifact[Domain].model_validate(data).content_hash == data["content_hash"]
    data["payload"]["name"] = "evil_clinic"
    with pytest.raises(ValidationError, match="does not match its content"):
        Artifact[Domain].model_validate(data)
    assert hashes == ["dental_clinic"] * 3
