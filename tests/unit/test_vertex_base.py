"""BaseLLM is the template every backend fills in (issue 16, item 2): a backend that implements
only ``_generate_impl`` / ``_stream_impl`` / ``_embed_impl`` gets request checks, callbacks, the
usage ledger and the controlled-generation repair step from the base class, and callers ask
``capabilities`` what it can do instead of which backend it is."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import BaseModel

from vertex_interface import (
    LLM,
    BaseLLM,
    Blocked,
    CallbackChain,
    CallTags,
    Delta,
    Embeddings,
    InvalidOutput,
    LLMCapabilities,
    LLMConfig,
    ModelPrice,
    ModelRequest,
    Response,
    Unavailable,
    Usage,
    Veto,
    Vetoed,
    create_llm,
)
from vertex_interface.local import LocalLLM
from vertex_interface.vertex import VertexLLM

DOC = Path(__file__).resolve().parents[2] / "docs" / "vertex_interface.md"


class ScriptedLLM(BaseLLM):
    """A third-party backend: the three calls and nothing else."""

    backend = "scripted"
    capabilities = LLMCapabilities(follows_instructions=True, controlled_generation=True)
    text_model = "scripted-1"
    embedding_model = "scripted-embed"
    embedding_dimensions = 2

    def __init__(self, replies: list[str | Exception], **kw: Any) -> None:
        prices = {"scripted-1": ModelPrice(input_per_million=1.0, output_per_million=2.0)}
        super().__init__(LLMConfig(prices=prices), **kw)
        self.replies = list(replies)
        self.seen: list[ModelRequest] = []
        self.streams_closed = 0

    def _reply(self, request: ModelRequest) -> Response:
        self.seen.append(request)
        item = self.replies.pop(0)
        if isinstance(item, Exception):
            raise item
        usage = self._usage(self.text_model, 1_000, 500)
        return Response(
            text=item, finish_reason="STOP", usage=usage, model=self.text_model, backend=self.backend
        )

    def _generate_impl(self, request: ModelRequest, schema: type[BaseModel] | None) -> Response:
        return self._reply(request)

    def _stream_impl(self, request: ModelRequest) -> Iterator[Delta]:
        try:
            response = self._reply(request)
            for word in re.findall(r"\S+\s*", response.text):
                yield Delta(word)
            yield Delta("", response=response)
        finally:
            self.streams_closed += 1

    def _embed_impl(self, request: ModelRequest) -> Embeddings:
        vectors = np.array([[3.0, 4.0]] * len(request.texts))  # not normalised: the base does it
        return Embeddings(vectors, self._usage(self.embedding_model, 7, 0))


class Decision(BaseModel):
    agent: str


def recording_chain() -> tuple[CallbackChain, list[tuple[str, Any]]]:
    events: list[tuple[str, Any]] = []
    chain = CallbackChain(
        before=[lambda req: events.append(("before", req)) or None],
        after=[lambda req, result: events.append(("after", result))],
        on_error=[lambda req, exc: events.append(("error", exc))],
    )
    return chain, events


def test_a_backend_that_implements_only_the_calls_is_an_llm_with_callbacks_and_cost() -> None:
    chain, events = recording_chain()
    llm = ScriptedLLM(["Refunds take 5 days."], callbacks=chain)
    assert isinstance(llm, LLM)
    resp = llm.generate("How long?", system="Be brief.", tags=CallTags("s1", "t1", "kb"))
    assert resp.text == "Refunds take 5 days."
    [request] = llm.seen
    assert (request.kind, request.model, request.backend, request.system) == (
        "generate",
        "scripted-1",
        "scripted",
        "Be brief.",
    )
    assert [kind for kind, _ in events] == ["before", "after"]
    totals = llm.ledger.totals(session_id="s1", agent="kb")
    assert totals.calls == 1 and totals.cost_usd == pytest.approx((1_000 * 1.0 + 500 * 2.0) / 1e6)
    with pytest.raises(ValueError):
        llm.generate([])  # checked by the base before the backend sees it
    with pytest.raises(TypeError, match="tags"):
        llm.generate("q", tags={"session_id": "s1"})  # type: ignore[arg-type]
    assert len(llm.seen) == 1


def test_generate_json_repairs_once_in_the_base_for_every_backend() -> None:
    chain, events = recording_chain()
    llm = ScriptedLLM(["not json at all", '{"agent": "knowledge"}'], callbacks=chain)
    assert llm.generate_json("route", schema=Decision) == {"agent": "knowledge"}
    first, repair = llm.seen
    assert (first.kind, first.attempt, first.schema) == ("generate_json", 1, "Decision")
    assert repair.attempt == 2 and repair.contents[-2].role == "model"
    assert repair.contents[-2].text == "not json at all" and repair.contents[-1].role == "user"
    assert llm.ledger.totals().calls == 2  # both calls are billed
    assert [kind for kind, _ in events] == ["before", "after", "before", "after"]

    still_bad = ScriptedLLM(["{}", '{"agent": 3}'])
    with pytest.raises(InvalidOutput, match="after one repair") as info:
        still_bad.generate_json("route", schema=Decision)
    assert info.value.raw == '{"agent": 3}'
    with pytest.raises(TypeError, match="schema"):
        still_bad.generate_json("route", schema=dict)  # type: ignore[arg-type]


def test_without_controlled_generation_generate_json_refuses_before_any_call() -> None:
    class Quoting(ScriptedLLM):
        capabilities = LLMCapabilities(extractive=True)

    chain, events = recording_chain()
    llm = Quoting(['{"agent": "knowledge"}'], callbacks=chain)
    with pytest.raises(Unavailable, match="controlled generation") as info:
        llm.generate_json("route", schema=Decision)
    assert not info.value.retryable
    assert llm.seen == [] and events == [] and llm.ledger.totals().calls == 0


def test_stream_records_once_before_the_final_delta_and_closes_the_backend_early() -> None:
    chain, events = recording_chain()
    llm = ScriptedLLM(["one two three four", "five six seven"], callbacks=chain)
    it = llm.stream("q")
    assert [kind for kind, _ in events] == ["before"]  # callbacks run at the call
    deltas: list[Delta] = []
    for delta in it:
        if delta.is_final:
            # Recorded and after-callbacks run before the caller sees the final delta.
            assert llm.ledger.totals().calls == 1 and events[-1] == ("after", delta.response)
        deltas.append(delta)
    assert "".join(d.text for d in deltas) == "one two three four"
    assert deltas[-1].response is not None and llm.streams_closed == 1

    early = llm.stream("q")
    assert next(early).text == "five "
    early.close()  # the caller stops reading: the backend's finally runs, nothing is recorded
    assert llm.streams_closed == 2 and llm.ledger.totals().calls == 1

    vetoing = ScriptedLLM(["never"], callbacks=CallbackChain(before=[lambda req: Veto("locked")]))
    with pytest.raises(Vetoed, match="locked"):
        vetoing.stream("q")
    assert vetoing.seen == []


def test_backend_errors_reach_error_callbacks_and_blocked_prompts_are_billed() -> None:
    chain, events = recording_chain()
    billed = Usage(model="scripted-1", input_tokens=40, cost_usd=0.00004)
    blocked = Blocked("blocked", reason="SAFETY", usage=billed)
    llm = ScriptedLLM([blocked, Unavailable("down", retryable=True)], callbacks=chain)
    with pytest.raises(Blocked):
        llm.generate("bad")
    stream = llm.stream("q")
    with pytest.raises(Unavailable, match="down"):
        list(stream)
    errors = [exc for kind, exc in events if kind == "error"]
    assert errors[0] is blocked and isinstance(errors[1], Unavailable) and len(errors) == 2
    assert llm.ledger.totals().calls == 1 and llm.ledger.totals().input_tokens == 40
    assert llm.streams_closed == 1


def test_embed_normalises_rows_and_skips_empty_input() -> None:
    llm = ScriptedLLM([])
    vectors = llm.embed(["a", "b"], task_type="RETRIEVAL_QUERY", tags=CallTags("s1"))
    assert vectors.dtype == np.float32 and np.allclose(vectors, [[0.6, 0.8], [0.6, 0.8]])
    assert llm.embed([], task_type="RETRIEVAL_QUERY").shape == (0, 2)
    assert llm.ledger.totals().calls == 1
    with pytest.raises(ValueError, match="task_type"):
        llm.embed(["a"], task_type="NEAREST")


def test_builtin_backends_declare_what_they_can_do() -> None:
    local = create_llm(LLMConfig())
    vertex = create_llm(LLMConfig(backend="vertex", project="p"), client=object())
    assert isinstance(local, LocalLLM) and isinstance(vertex, VertexLLM)
    assert isinstance(local, LLM) and isinstance(vertex, LLM)
    # The offline twin quotes; it neither follows instructions nor makes decisions.
    assert local.capabilities == LLMCapabilities(
        follows_instructions=False, controlled_generation=False, extractive=True
    )
    assert vertex.capabilities == LLMCapabilities(
        follows_instructions=True, controlled_generation=True, extractive=False
    )
    assert (local.text_model, local.embedding_dimensions) == ("local-extractive", 384)
    assert (vertex.text_model, vertex.embedding_model) == ("gemini-3.5-flash-lite", "text-embedding-005")


def test_the_doc_names_every_capability_and_protocol_method() -> None:
    text = DOC.read_text()
    for name in LLMCapabilities.__dataclass_fields__:
        assert f"`{name}`" in text, name
    for method in ("generate", "stream", "generate_json", "embed", "close"):
        assert f"`{method}(" in text or f"`{method}`" in text, method
    for hook in ("_generate_impl", "_stream_impl", "_embed_impl"):
        assert hook in text, hook
