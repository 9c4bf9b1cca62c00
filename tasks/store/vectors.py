"""Embeddings and LanceDB vector tables for near-duplicate search.

Inputs: texts (or precomputed vectors) with their ids, and an `Embedder`. Output:
L2-normalised float32 embeddings, nearest-neighbour lists with cosine similarity
rounded to 4 places, and an in-memory `cosine_matrix` for in-batch comparisons.
Side effects: `VectorIndex` reads and writes one table of an embedded LanceDB
database under the given directory or object-store URL; `WordLlamaEmbedder` loads
the model weights shipped inside the `wordllama` wheel on first use (once per
process, never at import, never from the network). `lancedb` itself is imported
on first connection, as it takes about a second to import.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pyarrow as pa

from tasks.store.location import RemotePath, StorePath

if TYPE_CHECKING:
    import lancedb


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts into an array of shape `(len(texts), dim)`."""
        ...


_WORDLLAMA_LOCK = threading.Lock()
_WORDLLAMA_MODEL: Any = None


def _wordllama_model() -> Any:
    """The process-wide WordLlama model, loaded from the wheel on first call."""
    global _WORDLLAMA_MODEL
    with _WORDLLAMA_LOCK:
        if _WORDLLAMA_MODEL is None:
            import wordllama
            from wordllama import WordLlama

            # Plain `load()` looks in the wrong sub-folder and then tries to download.
            _WORDLLAMA_MODEL = WordLlama.load(
                cache_dir=Path(wordllama.__file__).parent, disable_download=True
            )
        return _WORDLLAMA_MODEL


class WordLlamaEmbedder:
    """Static 256-d WordLlama embeddings (`l2_supercat`): fast, offline, no torch."""

    name = "wordllama-l2_supercat-256"
    dim = 256

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts; rows are L2-normalised (an all-unknown text stays zero).

        Args:
            texts: The texts, in order.

        Returns:
            A float32 array of shape `(len(texts), 256)`.
        """
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = _wordllama_model().embed(list(texts), norm=False)
        return normalize_rows(np.asarray(vectors, dtype=np.float32))


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """Scale each row to unit L2 norm; zero rows stay zero.

    Args:
        vectors: A 1-d vector or a 2-d array of row vectors.

    Returns:
        A float32 2-d array.
    """
    matrix = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarities between every row of `a` and every row of `b`.

    Args:
        a: Shape `(n, d)` (or `(d,)` for one vector).
        b: Shape `(m, d)` (or `(d,)`).

    Returns:
        A float32 array of shape `(n, m)`; a zero vector has similarity 0 to all.
    """
    return normalize_rows(a) @ normalize_rows(b).T


class VectorIndex:
    """One LanceDB table of `(id, text, vector)` rows searched by cosine similarity.

    The connection is opened on first use. Calls on one instance are serialised by
    a lock, so threads may share it.

    Args:
        db_dir: The LanceDB database directory (created when first written), or
            its `RemotePath` at an object-store URL.
        table: Table name.
        embedder: Embeds texts given without vectors, and queries given as text.
        storage_options: LanceDB's options for a URL (endpoint, plain http).
    """

    def __init__(
        self,
        db_dir: StorePath,
        table: str,
        embedder: Embedder,
        *,
        storage_options: Mapping[str, str] | None = None,
    ) -> None:
        self._db_dir = db_dir
        self._storage_options = dict(storage_options or {})
        self._table_name = table
        self._embedder = embedder
        self._lock = threading.Lock()
        self._db: lancedb.DBConnection | None = None

    @property
    def embedder(self) -> Embedder:
        return self._embedder

    def reset(self) -> None:
        """Drop and recreate the table empty (so a re-run starts from nothing)."""
        with self._lock:
            self._connect().create_table(
                self._table_name, schema=self._schema(), mode="overwrite"
            )

    def add(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        vectors: np.ndarray | None = None,
    ) -> None:
        """Append rows.

        Args:
            ids: Row ids, one per text.
            texts: The texts.
            vectors: Their embeddings, shape `(len(ids), dim)`; None embeds `texts`.

        Raises:
            ValueError: If lengths or the vector dimension do not match.
        """
        if len(ids) != len(texts):
            raise ValueError(f"{len(ids)} ids but {len(texts)} texts")
        if not ids:
            return
        if vectors is None:
            vectors = self._embedder.embed(texts)
        matrix = np.asarray(vectors, dtype=np.float32)
        expected = (len(ids), self._embedder.dim)
        if matrix.shape != expected:
            raise ValueError(f"vectors have shape {matrix.shape}, expected {expected}")
        column = pa.FixedSizeListArray.from_arrays(
            pa.array(matrix.ravel(), type=pa.float32()), self._embedder.dim
        )
        rows = pa.table(
            {"id": list(ids), "text": list(texts), "vector": column},
            schema=self._schema(),
        )
        with self._lock:
            self._open().add(rows)

    def nearest(self, vector: np.ndarray, k: int = 1) -> list[tuple[str, float]]:
        """The `k` rows most similar to `vector`, best first.

        Args:
            vector: A query vector of the index dimension.
            k: How many neighbours.

        Returns:
            `(id, cosine similarity rounded to 4 places)` pairs; ties are ordered by
            id. Empty when the table is empty.

        Raises:
            ValueError: If `k` < 1 or the vector has the wrong dimension.
        """
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        if query.shape != (self._embedder.dim,):
            raise ValueError(
                f"query has {query.shape[0]} dimensions, expected {self._embedder.dim}"
            )
        with self._lock:
            table = self._open()
            if table.count_rows() == 0:
                return []
            hits = (
                table.search(query, vector_column_name="vector")
                .distance_type("cosine")
                .limit(k)
                .select(["id", "_distance"])
                .to_arrow()
            )
        pairs = [
            (row_id, round(1.0 - float(distance), 4))
            for row_id, distance in zip(
                hits.column("id").to_pylist(),
                hits.column("_distance").to_pylist(),
                strict=True,
            )
        ]
        return sorted(pairs, key=lambda pair: (-pair[1], pair[0]))

    def nearest_text(self, text: str, k: int = 1) -> list[tuple[str, float]]:
        """Like `nearest`, for a text embedded with this index's embedder."""
        return self.nearest(self._embedder.embed([text])[0], k=k)

    def count(self) -> int:
        """Number of rows."""
        with self._lock:
            return self._open().count_rows()

    def all_ids(self) -> list[str]:
        """Every row id, in insertion order."""
        with self._lock:
            table = self._open().to_arrow()
        return table.column("id").to_pylist()

    def _schema(self) -> pa.Schema:
        return pa.schema(
            [
                pa.field("id", pa.string()),
                pa.field("text", pa.string()),
                pa.field("vector", pa.list_(pa.float32(), self._embedder.dim)),
            ]
        )

    def _connect(self) -> lancedb.DBConnection:
        if self._db is None:
            import lancedb

            if isinstance(self._db_dir, RemotePath):
                self._db = lancedb.connect(
                    str(self._db_dir), storage_options=self._storage_options
                )
            else:
                self._db_dir.mkdir(parents=True, exist_ok=True)
                self._db = lancedb.connect(str(self._db_dir))
        return self._db

    def _open(self) -> lancedb.table.Table:
        try:
            return self._connect().create_table(
                self._table_name, schema=self._schema(), exist_ok=True
            )
        except ValueError as exc:
            raise ValueError(
                f"LanceDB table {self._table_name!r} in {self._db_dir} does not match "
                f"embedder {self._embedder.name} ({self._embedder.dim}-d); "
                "reset() the index to rebuild it"
            ) from exc
