"""EMBEDDING_DIMENSIONS is the one width: the embedder asks Vertex for it and the Spanner index
expects it (issue 14, item 2). Before, the wiring hard-coded 768 whatever EMBEDDING_MODEL was,
while gemini-embedding-001 answers 3072-wide vectors unless output_dimensionality says otherwise
(https://cloud.google.com/vertex-ai/generative-ai/docs/embeddings/get-text-embeddings)."""

from __future__ import annotations

from typing import Any

import pytest

from backend import assistant
from backend.settings import Settings


class _FakeLLM:
    backend = "vertex"


def test_vertex_embedder_and_index_take_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_create_llm(config: Any, **options: Any) -> _FakeLLM:
        seen["config"], seen["options"] = config, options
        return _FakeLLM()

    monkeypatch.setattr(assistant, "create_llm", fake_create_llm)
    settings = Settings(
        llm_backend="vertex",
        google_cloud_project="acme-prod",
        embedding_model="gemini-embedding-001",
        embedding_dimensions=1536,
        archive_backend="spanner",
        spanner_project="acme-prod",
        spanner_instance="sidebar",
    )
    _, embedder = assistant.build_llm(settings)
    assert seen["options"]["embedding_dimensions"] == 1536  # -> output_dimensionality
    assert embedder.dimensions == 1536
    assert assistant.spanner_config(settings, embedder.dimensions).dimensions == 1536


def test_default_is_768_and_the_range_is_the_models() -> None:
    assert Settings().embedding_dimensions == 768
    with pytest.raises(ValueError):
        Settings(embedding_dimensions=4096)  # gemini-embedding-001 returns at most 3072
    with pytest.raises(ValueError):
        Settings(embedding_dimensions=0)
