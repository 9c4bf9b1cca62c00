"""Tests of embeddings and the LanceDB vector index (real WordLlama weights)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tasks.store.vectors import VectorIndex, WordLlamaEmbedder, cosine_matrix

DOMAINS = {
    "dental_clinic": "dental clinic",
    "bank_account": "bank account",
    "veterinary_hospital": "veterinary hospital",
}


@pytest.fixture
def index(tmp_path: Path) -> VectorIndex:
    index = VectorIndex(tmp_path / "lancedb", "domains", WordLlamaEmbedder())
    index.reset()
    index.add(list(DOMAINS), list(DOMAINS.values()))
    return index


def test_wordllama_vectors_are_unit_length_float32() -> None:
    """Embeddings have the declared dimension and unit L2 norm."""
    vectors = WordLlamaEmbedder().embed(["dental clinic", "bank account"])
    assert vectors.dtype == np.float32
    assert vectors.shape == (2, 256)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert WordLlamaEmbedder().embed([]).shape == (0, 256)


def test_threshold_separates_near_duplicate_from_related_domain() -> None:
    """Plural forms score above 0.9; a merely related domain scores below."""
    vectors = WordLlamaEmbedder().embed(
        ["dental clinic", "dental clinics", "dental care"]
    )
    similarity = cosine_matrix(vectors, vectors)
    assert similarity[0, 1] > 0.9 > similarity[0, 2]
    np.testing.assert_allclose(np.diag(similarity), 1.0, atol=1e-5)


def test_index_finds_the_near_duplicate_with_its_similarity(
    index: VectorIndex,
) -> None:
    """The nearest row to 'dental clinics' is 'dental clinic', matching numpy."""
    embedder = index.embedder
    query = embedder.embed(["dental clinics"])[0]
    hits = index.nearest(query, k=2)
    assert hits[0][0] == "dental_clinic"
    expected = float(cosine_matrix(query, embedder.embed(["dental clinic"]))[0, 0])
    assert hits[0][1] == pytest.approx(round(expected, 4), abs=1e-4)
    assert hits[0][1] > 0.9
    assert hits[0][1] > hits[1][1]
    assert index.nearest_text("dental care")[0][0] == "dental_clinic"
    assert index.nearest_text("dental care")[0][1] < 0.9


def test_count_ids_and_reset(index: VectorIndex) -> None:
    """count and all_ids reflect additions; reset empties; empty nearest is []."""
    assert index.count() == 3
    assert index.all_ids() == list(DOMAINS)
    index.add(["pet_grooming"], ["pet grooming"])
    assert index.all_ids()[-1] == "pet_grooming"
    index.reset()
    assert index.count() == 0
    assert index.nearest_text("dental clinic") == []


def test_precomputed_vectors_are_used_and_checked(tmp_path: Path) -> None:
    """Given vectors are stored as is; a wrong shape is refused."""
    index = VectorIndex(tmp_path / "db", "t", WordLlamaEmbedder())
    unit = np.zeros((1, 256), dtype=np.float32)
    unit[0, 0] = 1.0
    index.add(["axis"], ["not embedded"], vectors=unit)
    assert index.nearest(unit[0]) == [("axis", 1.0)]
    with pytest.raises(ValueError, match="shape"):
        index.add(["bad"], ["bad"], vectors=np.zeros((1, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="ids"):
        index.add(["a", "b"], ["only one"])


def test_reopened_index_sees_rows_written_earlier(tmp_path: Path) -> None:
    """A second VectorIndex on the same directory reads the same table."""
    first = VectorIndex(tmp_path / "db", "domains", WordLlamaEmbedder())
    first.add(["dental_clinic"], ["dental clinic"])
    second = VectorIndex(tmp_path / "db", "domains", WordLlamaEmbedder())
    assert second.all_ids() == ["dental_clinic"]
