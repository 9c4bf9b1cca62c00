"""The OpenAI-compatible embedder, against a mock endpoint."""

from __future__ import annotations

import json

import httpx2
import numpy as np

from tasks.llm.embeddings import OpenAIEmbedder


class FakeEmbeddings(httpx2.BaseTransport):
    """Embeds text i as [len(text), 0, 3]; answers rows in reverse order."""

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.read())
        texts = body["input"]
        self.batch_sizes.append(len(texts))
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(t)), 0.0, 3.0]}
            for i, t in enumerate(texts)
        ]
        payload = {
            "object": "list",
            "model": body["model"],
            "data": list(reversed(data)),
            "usage": {"prompt_tokens": 1, "total_tokens": 1},
        }
        return httpx2.Response(200, json=payload)


def _embedder(fake: FakeEmbeddings) -> OpenAIEmbedder:
    return OpenAIEmbedder(
        "emb-small", "http://endpoint.test/v1", "sk-test", transport=fake
    )


def test_embed_batches_by_256_and_keeps_input_order() -> None:
    """300 texts take two requests; rows follow the input order."""
    fake = FakeEmbeddings()
    embedder = _embedder(fake)
    assert embedder.dim is None
    texts = ["abcd" if i % 2 else "" for i in range(300)]
    matrix = embedder.embed(texts)
    assert fake.batch_sizes == [256, 44]
    assert matrix.shape == (300, 3)
    assert matrix.dtype == np.float32
    np.testing.assert_allclose(matrix[0], [0.0, 0.0, 1.0])
    np.testing.assert_allclose(matrix[1], [0.8, 0.0, 0.6], rtol=1e-6)
    assert embedder.dim == 3
    assert embedder.name == "openai:emb-small"


def test_embed_rows_are_unit_length() -> None:
    """Every row is L2-normalised."""
    matrix = _embedder(FakeEmbeddings()).embed(["a", "bb", "a longer text"])
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, rtol=1e-6)


def test_embed_of_nothing_makes_no_request() -> None:
    """An empty list gives an empty matrix of the known width."""
    fake = FakeEmbeddings()
    embedder = _embedder(fake)
    embedder.embed(["x"])
    assert embedder.embed([]).shape == (0, 3)
    assert fake.batch_sizes == [1]
