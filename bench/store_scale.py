"""Helpers for the retrieval benchmark's scale test: perturbed copies of the demo corpus.

Embedding 100k chunks with MiniLM on a 2-core machine takes far too long for a benchmark, so
copies reuse the demo corpus's real vectors plus Gaussian noise (cosine ≈ 0.9 to the original)
instead of re-embedding. Texts are perturbed too (word swaps/drops), so the full-text index sees
a realistic vocabulary and posting-list lengths. Latency of exact KNN does not depend on which
vectors are stored; the full-text side does depend on the texts, which are realistic.
"""

from __future__ import annotations

import hashlib
import random

import numpy as np

from store.knowledge import Document


class NoisyCopyEmbedder:
    """Embedder for perturbed copies: a stored demo vector chosen by the text's hash, plus noise."""

    def __init__(self, base_vectors: np.ndarray, noise: float = 0.025, seed: int = 7) -> None:
        self.base = np.asarray(base_vectors, dtype=np.float32)
        self.dimensions = int(self.base.shape[1])
        self.noise = noise
        self.seed = seed

    def embed(self, texts: list[str], *, task_type: str) -> np.ndarray:
        out = np.empty((len(texts), self.dimensions), dtype=np.float32)
        for i, text in enumerate(texts):
            h = int.from_bytes(
                hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little"
            )
            rng = np.random.default_rng(h ^ self.seed)
            vec = self.base[h % len(self.base)] + rng.normal(0.0, self.noise, self.dimensions).astype(
                np.float32
            )
            out[i] = vec / np.linalg.norm(vec)
        return out


def perturb(text: str, rng: random.Random, vocabulary: list[str], rate: float = 0.12) -> str:
    """Swap or drop about `rate` of the words of each line; keeps line structure."""
    lines = []
    for line in text.split("\n"):
        words = line.split(" ")
        out = []
        for w in words:
            r = rng.random()
            if r < rate / 2:
                continue
            out.append(rng.choice(vocabulary) if r < rate else w)
        lines.append(" ".join(out) or line)
    return "\n".join(lines)


def copies(
    chunks_by_doc: dict[str, tuple[Document, list[str]]], n_copies: int, tenant: str, seed: int = 11
) -> list[Document]:
    """`n_copies` perturbed copies of every document, as plain-text documents of its chunks."""
    rng = random.Random(seed)
    vocabulary = sorted(
        {w for _, chunks in chunks_by_doc.values() for c in chunks for w in c.split() if w.isalpha()}
    )
    docs: list[Document] = []
    for copy in range(n_copies):
        for doc, chunks in chunks_by_doc.values():
            body = "\n\n".join(perturb(c, rng, vocabulary) for c in chunks)
            docs.append(
                Document(
                    tenant=tenant,
                    kind=doc.kind,
                    external_id=f"{doc.external_id}-copy{copy}",
                    title=doc.title,
                    body=body,
                    body_format="text",
                    source="scale",
                    url=doc.url,
                    locale=doc.locale,
                    tags=doc.tags,
                )
            )
    return docs
