"""Text embeddings from an OpenAI-compatible `/embeddings` endpoint.

Inputs: a model name, a base URL and an API key (resolved by the caller), then lists
of texts. Output: float32 matrices with L2-normalised rows, one row per text in
input order. Side effects: HTTP requests, 256 texts per request. The offline
default embedder (wordllama) lives in `tasks.store`.
"""

from __future__ import annotations

import httpx2
import numpy as np
import openai

EMBED_BATCH_SIZE = 256


class OpenAIEmbedder:
    """Embeds texts with an OpenAI-compatible embedding model."""

    def __init__(
        self,
        model: str,
        base_url: str,
        api_key: str,
        *,
        transport: httpx2.BaseTransport | None = None,
        batch_size: int = EMBED_BATCH_SIZE,
        max_retries: int = 3,
        timeout_s: float = 120.0,
    ) -> None:
        """Create the embedder; no request is made until `embed`.

        Args:
            model: Embedding model name, such as `text-embedding-3-small`.
            base_url: Endpoint root such as `https://api.openai.com/v1`.
            api_key: API key (any value for local servers).
            transport: httpx2 transport to use instead of real HTTP (tests).
            batch_size: Texts per request.
            max_retries: openai client retries for transient HTTP failures.
            timeout_s: Per-request timeout.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1; got {batch_size}")
        self.model = model
        self.name = f"openai:{model}"
        self.batch_size = batch_size
        self._dim: int | None = None
        http = httpx2.Client(transport=transport) if transport is not None else None
        self._client = openai.OpenAI(
            base_url=base_url,
            api_key=api_key,
            http_client=http,
            max_retries=max_retries,
            timeout=timeout_s,
        )

    @property
    def dim(self) -> int | None:
        """Vector width, known after the first successful `embed` call."""
        return self._dim

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed texts in batches.

        Args:
            texts: Texts to embed.

        Returns:
            Array of shape `(len(texts), dim)`, float32, rows of unit length (a
            zero vector stays zero).

        Raises:
            openai.OpenAIError: the endpoint failed after its retries.
            ValueError: the endpoint returned the wrong number of vectors or
                vectors of differing width.
        """
        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            response = self._client.embeddings.create(model=self.model, input=batch)
            ordered = sorted(response.data, key=lambda item: item.index)
            if len(ordered) != len(batch):
                raise ValueError(
                    f"{self.name} returned {len(ordered)} vectors for "
                    f"{len(batch)} texts"
                )
            rows.extend(list(item.embedding) for item in ordered)
        if not rows:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        widths = {len(row) for row in rows}
        if len(widths) != 1:
            raise ValueError(f"{self.name} returned vectors of widths {sorted(widths)}")
        matrix = np.asarray(rows, dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        matrix = matrix / np.where(norms == 0, 1.0, norms)
        self._dim = matrix.shape[1]
        return matrix.astype(np.float32, copy=False)

    def close(self) -> None:
        """Close the underlying HTTP client."""
        self._client.close()
