"""Fault injection through the fake Vertex AI: each fault maps to a typed error or a successful retry."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from pydantic import BaseModel

from testkit.fake_vertex import (
    FakeVertex,
    Reply,
    json_reply,
    malformed_json,
    offline_credentials,
    prompt_blocked,
    rate_limited,
    safety_stop,
    server_error,
    slow,
    stream_reply,
    text_reply,
)
from vertex_interface import (
    Blocked,
    BreakerPolicy,
    BreakerState,
    InvalidOutput,
    LLMConfig,
    RateLimited,
    RetryPolicy,
    Timeout,
    Unavailable,
    create_llm,
)
from vertex_interface.vertex import VertexLLM


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake() -> Iterator[FakeVertex]:
    with FakeVertex() as server:
        yield server


def make_llm(
    fake: FakeVertex,
    *,
    sleeps: list[float] | None = None,
    clock: Clock | None = None,
    timeout_s: float = 5,
    attempts: int = 3,
    breaker: BreakerPolicy | None = None,
) -> VertexLLM:
    config = LLMConfig(
        backend="vertex",
        project="p",
        api_endpoint=fake.base_url,
        timeout_s=timeout_s,
        retry=RetryPolicy(max_attempts=attempts, initial_backoff_s=0.05, max_backoff_s=1, jitter_s=0.01),
        breaker=breaker or BreakerPolicy(failure_threshold=50),
    )
    record = sleeps if sleeps is not None else []
    llm = create_llm(
        config,
        credentials=offline_credentials(),
        sleep=record.append,  # record the backoff instead of waiting it out
        clock=clock or Clock(),
    )
    assert isinstance(llm, VertexLLM)
    return llm


def test_429_with_retry_after_is_honoured_then_succeeds(fake: FakeVertex) -> None:
    fake.script("generateContent", rate_limited(retry_after=2), text_reply("done"))
    sleeps: list[float] = []
    resp = make_llm(fake, sleeps=sleeps).generate("hi")
    assert resp.text == "done"
    assert sleeps == [2.0]
    assert len(fake.calls("generateContent")) == 2


def test_429_with_too_long_retry_after_fails_fast(fake: FakeVertex) -> None:
    fake.script("generateContent", rate_limited(retry_after=600))
    sleeps: list[float] = []
    with pytest.raises(RateLimited) as info:
        make_llm(fake, sleeps=sleeps).generate("hi")
    assert info.value.retry_after == 600 and info.value.retryable
    assert sleeps == [] and len(fake.calls()) == 1


def test_500_retries_with_growing_backoff_then_succeeds(fake: FakeVertex) -> None:
    fake.script("generateContent", server_error(500), server_error(503), text_reply("recovered"))
    sleeps: list[float] = []
    assert make_llm(fake, sleeps=sleeps).generate("hi").text == "recovered"
    assert len(sleeps) == 2
    assert 0.05 <= sleeps[0] <= 0.07 and 0.1 <= sleeps[1] <= 0.12  # exponential, small jitter


def test_persistent_500_raises_unavailable_after_max_attempts(fake: FakeVertex) -> None:
    fake.script("generateContent", *[server_error(500)] * 3)
    with pytest.raises(Unavailable) as info:
        make_llm(fake, attempts=3).generate("hi")
    assert "500" in str(info.value) and info.value.retryable
    assert len(fake.calls()) == 3


def test_400_is_not_retried(fake: FakeVertex) -> None:
    fake.script(
        "generateContent",
        Reply(
            status=400, body={"error": {"code": 400, "message": "bad field", "status": "INVALID_ARGUMENT"}}
        ),
    )
    from vertex_interface import LLMError

    with pytest.raises(LLMError, match="bad field") as info:
        make_llm(fake).generate("hi")
    assert type(info.value) is LLMError and not info.value.retryable
    assert len(fake.calls()) == 1


def _our_threads() -> set[threading.Thread]:
    """Live threads, less the fake server's and the keep-alive pings that Socket.IO clients left by
    earlier tests in this process start on their own schedule (engineio's `_send_ping`)."""
    return {
        t
        for t in threading.enumerate()
        if t.is_alive() and not t.name.startswith("fake-vertex") and "_send_ping" not in t.name
    }


def test_slow_reply_times_out_retries_and_leaves_no_thread(fake: FakeVertex) -> None:
    fake.script("generateContent", slow(text_reply("late"), 30), slow(text_reply("late"), 30))
    llm = make_llm(fake, timeout_s=0.3, attempts=2)
    before = _our_threads()
    started = time.monotonic()
    with pytest.raises(Timeout) as info:
        llm.generate("hi")
    elapsed = time.monotonic() - started
    assert info.value.retryable
    assert len(fake.calls()) == 2
    assert elapsed < 10  # both attempts gave up at their timeout, not at the 30 s reply
    llm.close()
    # Client side: no thread of ours survives the timed-out call.
    assert _our_threads() == before
    # Server side: stopping the fake releases the slow handlers and joins every thread.
    baseline = threading.active_count()
    fake.stop()
    assert threading.active_count() <= baseline - 1
    assert not [t for t in threading.enumerate() if t.name.startswith("fake-vertex")]


def test_slow_first_then_fast_reply_succeeds(fake: FakeVertex) -> None:
    fake.script("generateContent", slow(text_reply("late"), 30), text_reply("fast"))
    assert make_llm(fake, timeout_s=0.3).generate("hi").text == "fast"


def test_malformed_json_body_is_retried_then_unavailable(fake: FakeVertex) -> None:
    fake.script("generateContent", malformed_json(), text_reply("fine"))
    assert make_llm(fake).generate("hi").text == "fine"
    fake.script("generateContent", *[malformed_json()] * 2)
    with pytest.raises(Unavailable, match="malformed"):
        make_llm(fake, attempts=2).generate("hi")


def test_stream_cut_in_the_middle_raises_unavailable_after_partial_text(fake: FakeVertex) -> None:
    fake.script("streamGenerateContent", stream_reply(["one ", "two ", "three"], cut_after=2))
    llm = make_llm(fake)
    received: list[str] = []
    with pytest.raises(Unavailable, match="broke off") as info:
        for delta in llm.stream("count"):
            received.append(delta.text)
    assert received == ["one ", "two "]
    assert not info.value.retryable  # text already reached the caller: no silent replay
    assert len(fake.calls("streamGenerateContent")) == 1


def test_stream_failing_before_first_chunk_is_retried(fake: FakeVertex) -> None:
    fake.script("streamGenerateContent", server_error(503), stream_reply(["ok"]))
    deltas = list(make_llm(fake).stream("hi"))
    assert deltas[0].text == "ok" and deltas[-1].response.text == "ok"
    assert len(fake.calls("streamGenerateContent")) == 2


def test_stream_without_finish_reason_is_unavailable(fake: FakeVertex) -> None:
    reply = stream_reply(["partial"])
    reply.chunks[-1]["candidates"][0].pop("finishReason")
    fake.script("streamGenerateContent", reply)
    with pytest.raises(Unavailable, match="without a finish reason"):
        list(make_llm(fake).stream("hi"))


def test_prompt_block_raises_blocked_and_is_still_billed(fake: FakeVertex) -> None:
    fake.script("generateContent", prompt_blocked("SAFETY"))
    llm = make_llm(fake)
    with pytest.raises(Blocked) as info:
        llm.generate("something nasty")
    assert info.value.reason == "SAFETY"
    assert info.value.safety[0].blocked and info.value.safety[0].category == "HARM_CATEGORY_HARASSMENT"
    assert len(fake.calls()) == 1  # a block is an answer, never retried
    assert llm.ledger.totals().input_tokens == 9


def test_finish_reason_safety_raises_blocked(fake: FakeVertex) -> None:
    fake.script("generateContent", safety_stop())
    with pytest.raises(Blocked) as info:
        make_llm(fake).generate("hi")
    assert info.value.reason == "SAFETY" and info.value.safety[0].probability == "HIGH"


def test_stream_blocked_mid_answer_raises_blocked(fake: FakeVertex) -> None:
    reply = stream_reply(["Here is", " how"], finish_reason="SAFETY")
    fake.script("streamGenerateContent", reply)
    with pytest.raises(Blocked):
        list(make_llm(fake).stream("hi"))


class Verdict(BaseModel):
    answerable: bool
    agent: str


def test_generate_json_cleans_fenced_output(fake: FakeVertex) -> None:
    fake.script(
        "generateContent", text_reply('Here you go:\n```json\n{"answerable": true, "agent": "kb"}\n```')
    )
    assert make_llm(fake).generate_json("q", schema=Verdict) == {"answerable": True, "agent": "kb"}
    assert len(fake.calls()) == 1


def test_generate_json_repairs_once_with_the_validation_error(fake: FakeVertex) -> None:
    fake.script(
        "generateContent",
        json_reply({"answerable": "maybe"}),
        json_reply({"answerable": False, "agent": "kb"}),
    )
    assert make_llm(fake).generate_json("q", schema=Verdict) == {"answerable": False, "agent": "kb"}
    calls = fake.calls("generateContent")
    assert len(calls) == 2
    repair = calls[1]
    contents = repair.body["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert contents[1]["parts"][0]["text"] == '{"answerable": "maybe"}'
    feedback = contents[2]["parts"][0]["text"]
    assert "answerable" in feedback and "agent" in feedback and "Field required" in feedback
    assert repair.body["generationConfig"]["responseMimeType"] == "application/json"


def test_generate_json_gives_up_after_one_repair(fake: FakeVertex) -> None:
    fake.script("generateContent", text_reply("not json"), text_reply('{"answerable": true'))
    with pytest.raises(InvalidOutput) as info:
        make_llm(fake).generate_json("q", schema=Verdict)
    assert info.value.raw == '{"answerable": true' and "not valid JSON" in info.value.detail
    assert len(fake.calls()) == 2


def test_breaker_opens_fails_fast_and_half_open_probe_closes_it(fake: FakeVertex) -> None:
    clock = Clock()
    llm = make_llm(
        fake, clock=clock, attempts=1, breaker=BreakerPolicy(failure_threshold=2, reset_timeout_s=30)
    )
    fake.script("generateContent", server_error(500), server_error(500))
    for _ in range(2):
        with pytest.raises(Unavailable):
            llm.generate("hi")
    breaker = llm.breakers.for_model(llm.config.gemini_model)
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(Unavailable, match="circuit"):
        llm.generate("hi")
    assert len(fake.calls()) == 2  # failed fast: nothing sent
    # Other models have their own breaker.
    assert llm.embed(["x y z"], task_type="RETRIEVAL_QUERY").shape[0] == 1

    clock.now += 31  # cool-down over: one probe goes out; it fails, so the breaker re-opens
    fake.script("generateContent", server_error(503))
    with pytest.raises(Unavailable, match="503"):
        llm.generate("hi")
    assert breaker.state is BreakerState.OPEN

    clock.now += 31  # next probe succeeds and closes it
    assert llm.generate("hi").text == "Hello from the fake."
    assert breaker.state is BreakerState.CLOSED
    assert llm.generate("hi").text == "Hello from the fake."


def test_rate_limits_do_not_trip_the_breaker(fake: FakeVertex) -> None:
    llm = make_llm(fake, attempts=1, breaker=BreakerPolicy(failure_threshold=1))
    fake.script("generateContent", rate_limited(1))
    with pytest.raises(RateLimited):
        llm.generate("hi")
    assert llm.breakers.for_model(llm.config.gemini_model).state is BreakerState.CLOSED


def test_empty_answer_is_invalid_output_but_json_mode_repairs_it(fake: FakeVertex) -> None:
    fake.script("generateContent", text_reply("", finish_reason="MAX_TOKENS"))
    with pytest.raises(InvalidOutput, match="MAX_TOKENS"):
        make_llm(fake).generate("hi")
    assert len(fake.calls()) == 1  # an answer, not an outage: no retry
    fake.script("generateContent", text_reply(""), json_reply({"answerable": True, "agent": "kb"}))
    assert make_llm(fake).generate_json("q", schema=Verdict) == {"answerable": True, "agent": "kb"}
    repair = fake.calls("generateContent")[-1]
    assert repair.body["contents"][1]["parts"][0]["text"] == "(empty reply)"
    assert "empty" in repair.body["contents"][2]["parts"][0]["text"]


def test_stream_stalling_past_the_timeout_breaks_off_without_hanging(fake: FakeVertex) -> None:
    fake.script("streamGenerateContent", stream_reply(["first ", "second"], chunk_delay=30))
    llm = make_llm(fake, timeout_s=0.3)
    before = {t for t in threading.enumerate() if not t.name.startswith("fake-vertex")}
    received: list[str] = []
    started = time.monotonic()
    with pytest.raises(Timeout, match="broke off") as info:
        for delta in llm.stream("hi"):
            received.append(delta.text)
    assert time.monotonic() - started < 10
    assert received == ["first "]
    assert not info.value.retryable
    llm.close()
    assert {t for t in threading.enumerate() if not t.name.startswith("fake-vertex")} == before


def test_auth_and_missing_model_errors_are_unavailable_and_not_retried(fake: FakeVertex) -> None:
    from testkit.fake_vertex import error_reply

    fake.script(
        "generateContent", error_reply(403, "Permission denied on resource project p.", "PERMISSION_DENIED")
    )
    with pytest.raises(Unavailable, match="403") as info:
        make_llm(fake).generate("hi")
    assert not info.value.retryable and "test-token" not in str(info.value)
    fake.script("generateContent", error_reply(404, "Publisher model not found.", "NOT_FOUND"))
    with pytest.raises(Unavailable, match="not found"):
        make_llm(fake).generate("hi")
    assert len(fake.calls()) == 2
