"""Contract tests: the real google-genai client, through vertex_interface, against the fake Vertex AI.

They pin what we send (paths, systemInstruction, generationConfig, responseSchema, sources) and how
we read real-shaped replies (text, finishReason, usageMetadata, safetyRatings, embeddings).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from pydantic import BaseModel, Field

from testkit.fake_vertex import (
    FakeVertex,
    Reply,
    fake_embedding,
    fake_token_count,
    json_reply,
    offline_credentials,
    proto_json_keys,
    stream_reply,
    text_reply,
    vertex_llm_for,
)
from vertex_interface import (
    CallTags,
    GenerateConfig,
    LLMConfig,
    LLMError,
    Message,
    RetryPolicy,
    Source,
    UsageLedger,
    create_llm,
)
from vertex_interface.prompting import SOURCES_HEADER
from vertex_interface.vertex import VertexLLM


class RouteDecision(BaseModel):
    agent: str = Field(description="Which agent handles the turn.")
    confidence: float = Field(ge=0, le=1)
    reasons: list[str] = []


@pytest.fixture
def fake() -> Iterator[FakeVertex]:
    with FakeVertex() as server:
        yield server


def make_llm(fake: FakeVertex, **overrides) -> VertexLLM:
    llm = vertex_llm_for(fake, **overrides)
    assert isinstance(llm, VertexLLM)
    return llm


SOURCES = [
    Source(1, "Returns policy", "Items can be returned within 30 days.", url="https://help.example.com/1"),
    Source(2, "Shipping", "Express shipping costs $14.99.", kind="macro"),
]


def test_generate_sends_system_config_and_history_to_the_vertex_path(fake: FakeVertex) -> None:
    fake.script("generateContent", text_reply("Sure, 30 days [1].", prompt_tokens=120, output_tokens=8))
    llm = make_llm(fake)
    history = [
        Message("user", "Hi"),
        {"role": "model", "text": "Hello! How can I help?"},
        {"role": "user", "parts": [{"text": "How long is the return window?"}]},
    ]
    resp = llm.generate(
        history,
        system="You are a support assistant.",
        config=GenerateConfig(temperature=0.2, max_output_tokens=256, stop_sequences=["END"]),
        sources=SOURCES,
    )
    req = fake.calls("generateContent")[-1]
    assert req.path == (
        "/v1beta1/projects/demo-project/locations/europe-west4/publishers/google/models/gemini-3.5-flash-lite:generateContent"
    )
    assert req.headers["authorization"] == "Bearer test-token"
    body = req.body
    assert body["systemInstruction"]["parts"] == [{"text": "You are a support assistant."}]
    assert proto_json_keys(body["generationConfig"]) == {
        "temperature": 0.2,
        "maxOutputTokens": 256,
        "stopSequences": ["END"],
        "thinkingConfig": {"thinkingLevel": "MINIMAL"},
    }
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    # Sources ride as their own part right before the last question, numbered for citation.
    last_parts = body["contents"][-1]["parts"]
    assert last_parts[-1] == {"text": "How long is the return window?"}
    rendered = last_parts[0]["text"]
    assert rendered.startswith(SOURCES_HEADER)
    assert (
        "[1] Returns policy (article) <https://help.example.com/1>\nItems can be returned within 30 days."
        in rendered
    )
    assert "[2] Shipping (macro)\nExpress shipping costs $14.99." in rendered
    assert "tools" not in body and "responseSchema" not in body["generationConfig"]

    assert resp.text == "Sure, 30 days [1]."
    assert resp.finish_reason == "STOP"
    assert resp.citations == (1,)
    assert resp.backend == "vertex" and not resp.offline
    assert resp.usage.input_tokens == 120 and resp.usage.output_tokens == 8
    assert 0 < resp.usage.context_tokens < 120
    # gemini-3.5-flash-lite: $0.30 / $2.50 per 1M tokens (https://cloud.google.com/vertex-ai/generative-ai/pricing).
    assert resp.usage.cost_usd == pytest.approx((120 * 0.30 + 8 * 2.50) / 1e6)
    assert resp.safety[0].category == "HARM_CATEGORY_HATE_SPEECH"
    assert resp.safety[0].probability == "NEGLIGIBLE" and resp.safety[0].score == pytest.approx(0.02)


def test_generate_json_sends_controlled_generation_and_returns_validated_dict(fake: FakeVertex) -> None:
    fake.script("generateContent", json_reply({"agent": "knowledge", "confidence": 0.9}))
    llm = make_llm(fake, gemini_model="gemini-2.5-pro")
    out = llm.generate_json("Route: where is my parcel?", schema=RouteDecision, system="Route the turn.")
    assert out == {"agent": "knowledge", "confidence": 0.9, "reasons": []}
    req = fake.calls("generateContent")[-1]
    assert req.model == "gemini-2.5-pro"
    gen = req.body["generationConfig"]
    assert gen["responseMimeType"] == "application/json"
    schema = gen["responseSchema"]
    assert schema["type"] == "OBJECT"
    assert schema["properties"]["agent"]["type"] == "STRING"
    assert schema["properties"]["confidence"]["type"] == "NUMBER"
    assert set(schema["required"]) == {"agent", "confidence"}
    assert req.body["systemInstruction"]["parts"][0]["text"] == "Route the turn."


def test_stream_yields_deltas_then_final_usage(fake: FakeVertex) -> None:
    fake.script(
        "streamGenerateContent",
        stream_reply(["Returns ", "take ", "30 days [1]."], prompt_tokens=50, output_tokens=9),
    )
    llm = make_llm(fake)
    deltas = list(llm.stream("How long do returns take?", sources=SOURCES[:1]))
    req = fake.calls("streamGenerateContent")[-1]
    assert req.query == "alt=sse"
    assert [d.text for d in deltas[:-1]] == ["Returns ", "take ", "30 days [1]."]
    final = deltas[-1]
    assert final.is_final and final.text == ""
    assert final.response.text == "Returns take 30 days [1]."
    assert final.response.finish_reason == "STOP"
    assert final.response.usage.input_tokens == 50 and final.response.usage.output_tokens == 9
    assert final.response.citations == (1,)
    assert not any(d.is_final for d in deltas[:-1])


def test_embed_batches_passes_task_type_and_normalises(fake: FakeVertex) -> None:
    llm = make_llm(fake, embed_batch_size=2)
    texts = ["refund window", "express shipping", "reset password", "gift cards"]
    vectors = llm.embed(texts, task_type="RETRIEVAL_QUERY")
    calls = fake.calls("predict")
    assert len(calls) == 2
    assert calls[0].path.endswith("/publishers/google/models/text-embedding-005:predict")
    assert calls[0].body == {
        "instances": [
            {"content": "refund window", "task_type": "RETRIEVAL_QUERY"},
            {"content": "express shipping", "task_type": "RETRIEVAL_QUERY"},
        ],
        # text-embedding-005's full width, asked for explicitly (see the dimension tests below).
        "parameters": {"outputDimensionality": 768},
    }
    assert calls[1].body["instances"][1]["content"] == "gift cards"
    assert vectors.shape == (4, 768) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Row order follows input order across batches.
    expected = np.asarray(fake_embedding("reset password"), dtype=np.float32)
    assert np.allclose(vectors[2], expected / np.linalg.norm(expected), atol=1e-5)


def test_embed_rejects_bad_input_before_any_request(fake: FakeVertex) -> None:
    llm = make_llm(fake)
    with pytest.raises(ValueError, match="task_type"):
        llm.embed(["x"], task_type="RETRIEVAL")
    with pytest.raises(ValueError, match="empty"):
        llm.embed(["ok", "  "], task_type="RETRIEVAL_DOCUMENT")
    with pytest.raises(TypeError):
        llm.embed("not a list", task_type="RETRIEVAL_DOCUMENT")
    assert fake.calls() == []
    assert llm.embed([], task_type="RETRIEVAL_DOCUMENT").shape == (0, 768)


def test_every_call_lands_in_the_ledger_with_its_tags(fake: FakeVertex) -> None:
    ledger = UsageLedger()
    config = LLMConfig(backend="vertex", project="p", api_endpoint=fake.base_url)
    llm = create_llm(config, ledger=ledger, credentials=offline_credentials())
    fake.script("generateContent", text_reply("a", prompt_tokens=100, output_tokens=10))
    fake.script("generateContent", text_reply("b", prompt_tokens=200, output_tokens=20))
    llm.generate("q1", tags=CallTags("s1", "t1", "controller"))
    llm.generate("q2", tags=CallTags("s1", "t1", "knowledge"))
    llm.embed(["abcdefgh"], task_type="RETRIEVAL_QUERY", tags=CallTags("s1", "t2", "knowledge"))
    turn1 = ledger.totals(session_id="s1", turn_id="t1")
    assert (turn1.calls, turn1.input_tokens, turn1.output_tokens) == (2, 300, 30)
    assert turn1.cost_usd == pytest.approx((300 * 0.30 + 30 * 2.50) / 1e6)
    assert set(ledger.by_turn("s1")) == {"t1", "t2"}
    assert ledger.by_agent("s1", "t1")["knowledge"].input_tokens == 200
    assert ledger.by_model()["text-embedding-005"].calls == 1
    llm.close()


def test_invalid_config_values_fail_at_the_boundary() -> None:
    with pytest.raises(ValueError, match="project"):
        LLMConfig(backend="vertex")
    with pytest.raises(ValueError):
        LLMConfig(backend="vertex", project="p", location="us central")
    with pytest.raises(ValueError, match="project id"):
        LLMConfig(backend="vertex", project="p/../../other")
    with pytest.raises(ValueError):
        GenerateConfig(temperature=5)
    with pytest.raises(ValueError):
        LLMConfig(timeout_s=0)
    with pytest.raises(ValueError):
        LLMConfig(gemini_model="gemini 2.5")


EMBED_DOC = "https://cloud.google.com/vertex-ai/generative-ai/docs/embeddings/get-text-embeddings"


def make_embedding_llm(fake: FakeVertex, model: str, dimensions: int | None, **overrides) -> VertexLLM:
    config = LLMConfig(
        backend="vertex",
        project="demo-project",
        location="europe-west4",
        api_endpoint=fake.base_url,
        timeout_s=5,
        retry=RetryPolicy(max_attempts=1),
        embedding_model=model,
        **overrides,
    )
    llm = create_llm(
        config, credentials=offline_credentials(), sleep=lambda s: None, embedding_dimensions=dimensions
    )
    assert isinstance(llm, VertexLLM)
    return llm


@pytest.mark.parametrize("count", [1, 3])
def test_gemini_embedding_001_sends_one_text_per_request(fake: FakeVertex, count: int) -> None:
    """EMBED_DOC: "Note that gemini-embedding-001 supports one instance per request." The fake
    refuses a request with more (400), as the page says Vertex does."""
    llm = make_llm(fake, embedding_model="gemini-embedding-001")
    texts = ["refund window", "express shipping", "reset password"][:count]
    vectors = llm.embed(texts, task_type="RETRIEVAL_DOCUMENT")
    calls = fake.calls()
    assert [c.action for c in calls] == ["embedContent"] * count
    assert [c.body["content"]["parts"][0]["text"] for c in calls] == texts
    assert calls[0].body["embedContentConfig"]["taskType"] == "RETRIEVAL_DOCUMENT"
    expected = np.asarray(fake_embedding(texts[-1], vectors.shape[1]), dtype=np.float32)
    assert np.allclose(vectors[-1], expected / np.linalg.norm(expected), atol=1e-5)


@pytest.mark.parametrize(
    ("model", "dimensions"), [("gemini-embedding-001", 768), ("text-embedding-005", 256)]
)
def test_embedding_dimensions_are_sent_as_output_dimensionality(
    fake: FakeVertex, model: str, dimensions: int
) -> None:
    """EMBED_DOC: "All models produce a full-length embedding vector by default. For
    gemini-embedding-001, this vector has 3072 dimensions, and other models produce
    768-dimensional vectors. However, by using the output_dimensionality parameter, users can
    control the size of the output embedding vector." Without it, gemini-embedding-001 fills a
    768-wide Spanner column with 3072-wide vectors."""
    llm = make_embedding_llm(fake, model, dimensions)
    vectors = llm.embed(["refund window", "gift cards"], task_type="RETRIEVAL_DOCUMENT")
    assert vectors.shape == (2, dimensions)
    for call in fake.calls():
        sent = (
            call.body["parameters"]["outputDimensionality"]
            if call.action == "predict"
            else call.body["embedContentConfig"]["outputDimensionality"]
        )
        assert sent == dimensions
    assert llm.embed([], task_type="RETRIEVAL_QUERY").shape == (0, dimensions)


def test_embeddings_of_another_width_are_refused(fake: FakeVertex) -> None:
    """A reply that ignores output_dimensionality would corrupt the index: it is an error."""
    fake.script("predict", Reply(body={"predictions": [{"embeddings": {"values": [0.1] * 3072}}]}))
    llm = make_embedding_llm(fake, "text-embedding-005", 768)
    with pytest.raises(LLMError, match="3072"):
        llm.embed(["refund window"], task_type="RETRIEVAL_DOCUMENT")


def test_dimensions_beyond_the_model_are_refused_before_any_request(fake: FakeVertex) -> None:
    """EMBED_DOC's model table: text-embedding-005 outputs "up to 768" dimensions,
    gemini-embedding-001 "up to 3072"."""
    with pytest.raises(ValueError, match="at most 768"):
        make_embedding_llm(fake, "text-embedding-005", 3072)
    assert make_embedding_llm(fake, "gemini-embedding-001", 3072).embedding_dimensions == 3072
    assert fake.calls() == []


def test_text_embedding_requests_stay_within_250_texts_and_20000_tokens(fake: FakeVertex) -> None:
    """EMBED_DOC, API limits: "For each request, you're limited to 250 input texts." / "The API
    has a maximum input token limit of 20,000. Inputs exceeding this limit result in a 400
    error." 30 texts of ~1,000 tokens each must go out in several requests."""
    texts = [" ".join(f"w{i}x{j}" for j in range(1000)) for i in range(30)]
    llm = make_embedding_llm(fake, "text-embedding-005", 768, embed_batch_size=250)
    vectors = llm.embed(texts, task_type="RETRIEVAL_DOCUMENT")
    assert vectors.shape == (30, 768)
    calls = fake.calls("predict")
    assert len(calls) > 1
    sent = [i["content"] for c in calls for i in c.body["instances"]]
    assert sent == texts  # every text once, in order
    for call in calls:
        contents = [i["content"] for i in call.body["instances"]]
        assert len(contents) <= 250
        assert sum(fake_token_count(t) for t in contents) <= 20_000
    many = [f"short text {i}" for i in range(600)]
    assert llm.embed(many, task_type="RETRIEVAL_DOCUMENT").shape == (600, 768)
    assert all(len(c.body["instances"]) <= 250 for c in fake.calls("predict"))


def test_unknown_paths_get_404(fake: FakeVertex) -> None:
    import json as _json
    import urllib.error
    import urllib.request

    url = fake.base_url + "v1beta1/projects/p/locations/l/publishers/google/models/m:countTokens"
    req = urllib.request.Request(url, data=_json.dumps({}).encode(), method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=5)
    assert info.value.code == 404


# --- thinking ----------------------------------------------------------------------------------------
# REST reference, GenerationConfig.ThinkingConfig
# (https://cloud.google.com/vertex-ai/docs/reference/rest/v1/GenerationConfig#ThinkingConfig):
# generationConfig.thinkingConfig carries thinkingBudget ("the thinking budget in tokens"; "0 is
# DISABLED. -1 is AUTOMATIC. The default values and allowed ranges are model dependent") or
# thinkingLevel (MINIMAL | LOW | MEDIUM | HIGH). Keys are compared as Vertex's JSON parser reads them
# (proto3 JSON, https://protobuf.dev/programming-guides/proto3/#json: "Parsers accept both the
# lowerCamelCase name ... and the original proto field name"); google-genai sends thinkingConfig's
# inner keys under their proto names.
THINKING_PAGE = "https://docs.cloud.google.com/gemini-enterprise-agent-platform/models/thinking"


def thinking_of(req) -> dict | None:
    return proto_json_keys(req.body["generationConfig"]).get("thinkingConfig")


def test_every_generate_stream_and_json_call_carries_the_thinking_level_for_gemini_3(
    fake: FakeVertex,
) -> None:
    """Thinking (THINKING_PAGE): "Gemini 3 models introduce the thinking_level parameter"; Gemini
    3.5 Flash-Lite supports "MINIMAL, LOW, MEDIUM, HIGH", and its model page advises
    "thinking_level.MINIMAL for latency-sensitive ... tasks". Every call sends it, and never a
    thinkingBudget beside it ("settings are mutually exclusive")."""
    fake.script("generateContent", text_reply("ok"), json_reply({"agent": "knowledge", "confidence": 0.5}))
    fake.script("streamGenerateContent", stream_reply(["o", "k"]))
    llm = make_llm(fake)
    llm.generate("hi")
    list(llm.stream("hi"))
    llm.generate_json("route", schema=RouteDecision)
    bodies = fake.calls("generateContent") + fake.calls("streamGenerateContent")
    assert len(bodies) == 3
    for req in bodies:
        assert req.model == "gemini-3.5-flash-lite"
        assert thinking_of(req) == {"thinkingLevel": "MINIMAL"}


def test_gemini_2_5_calls_carry_generation_config_thinking_config_thinking_budget(fake: FakeVertex) -> None:
    """REST reference: generationConfig.thinkingConfig.thinkingBudget, "the thinking budget in
    tokens". Thinking (THINKING_PAGE): Gemini 2.5 models are controlled with thinking_budget.
    GEMINI_THINKING_BUDGET reaches generate, stream and generate_json alike."""
    fake.script("generateContent", text_reply("ok"), json_reply({"agent": "knowledge", "confidence": 0.5}))
    fake.script("streamGenerateContent", stream_reply(["o", "k"]))
    llm = make_llm(fake, gemini_model="gemini-2.5-flash", thinking_budget=512)
    llm.generate("hi")
    list(llm.stream("hi"))
    llm.generate_json("route", schema=RouteDecision)
    bodies = fake.calls("generateContent") + fake.calls("streamGenerateContent")
    assert [thinking_of(r) for r in bodies] == [{"thinkingBudget": 512}] * 3


@pytest.mark.parametrize(
    ("model", "sent"),
    [
        ("gemini-2.5-flash", {"thinkingBudget": 0}),
        ("gemini-2.5-flash-lite", {"thinkingBudget": 0}),
        ("gemini-2.5-pro", {"thinkingBudget": 128}),
    ],
)
def test_unset_budget_sends_the_least_thinking_the_model_accepts(
    fake: FakeVertex, model: str, sent: dict
) -> None:
    """Thinking (THINKING_PAGE), Gemini 2.5 budgets: 2.5 Flash and Flash-Lite turn thinking off
    with 0; 2.5 Pro "cannot turn off thinking", its minimum budget is 128. Unset, the sidebar asks
    for the least each model accepts."""
    fake.script("generateContent", text_reply("ok"))
    make_llm(fake, gemini_model=model).generate("hi")
    assert thinking_of(fake.calls("generateContent")[-1]) == sent


def test_gemini_3_with_level_unset_sends_the_budget_alone(fake: FakeVertex) -> None:
    """REST reference: thinkingBudget "-1 is AUTOMATIC"; Gemini 3 accepts thinking_budget for
    backwards compatibility, and a request carries one of the two settings, never both. With
    neither configured nothing is sent and the model uses its documented default."""
    fake.script("generateContent", text_reply("ok"), text_reply("ok"))
    make_llm(fake, thinking_level=None, thinking_budget=-1).generate("hi")
    assert thinking_of(fake.calls("generateContent")[-1]) == {"thinkingBudget": -1}
    make_llm(fake, thinking_level=None).generate("hi")
    assert thinking_of(fake.calls("generateContent")[-1]) is None


@pytest.mark.parametrize(
    "overrides",
    [
        {"gemini_model": "gemini-2.5-pro", "thinking_budget": 0},
        {"gemini_model": "gemini-2.5-flash-lite", "thinking_budget": 100},
        {"gemini_model": "gemini-2.5-flash", "thinking_budget": 30_000},
        {"gemini_model": "gemini-3.8-flash", "thinking_level": "minimal"},
    ],
)
def test_thinking_values_outside_the_documented_ones_are_refused_before_any_call(overrides: dict) -> None:
    """Thinking (THINKING_PAGE): 2.5 Pro 128..32,768 ("cannot turn off thinking"), 2.5 Flash-Lite
    512..24,576 or 0, 2.5 Flash up to 24,576; Gemini 3.8 Flash supports "LOW, MEDIUM, HIGH". A value
    outside these would fail every call, so the configuration is refused at start-up."""
    with pytest.raises(ValueError, match="GEMINI_THINKING_"):
        LLMConfig(backend="vertex", project="demo-project", **overrides)


@pytest.mark.parametrize(
    ("model", "thinking"),
    [
        ("gemini-3.5-flash-lite", {"thinkingLevel": "LOW", "thinkingBudget": 0}),
        ("gemini-2.5-flash", {"thinking_level": "LOW"}),
        ("gemini-2.5-pro", {"thinkingBudget": 0}),
    ],
)
def test_fake_vertex_refuses_what_the_thinking_docs_refuse(
    fake: FakeVertex, model: str, thinking: dict
) -> None:
    """Thinking (THINKING_PAGE): level and budget are mutually exclusive, "Gemini 2.5 series models
    don't support thinkingLevel", 2.5 Pro cannot turn thinking off. The fake answers these with 400
    as Vertex does, so the tests above cannot pass on a request Vertex would refuse."""
    import json
    import urllib.error
    import urllib.request

    url = f"{fake.base_url}/v1beta1/projects/p/locations/l/publishers/google/models/{model}:generateContent"
    body = json.dumps({"contents": [], "generationConfig": {"thinkingConfig": thinking}}).encode()
    request = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 400
