"""Config, callbacks, cost ledger, circuit breaker, retry policy and JSON cleaning on their own,
plus callbacks wired into the vertex backend (through the fake Vertex AI)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import tenacity
from pydantic import BaseModel

from testkit.fake_vertex import FakeVertex, offline_credentials, prompt_blocked, rate_limited, text_reply
from vertex_interface import (
    Blocked,
    BreakerPolicy,
    BreakerState,
    CallbackChain,
    CallTags,
    CircuitBreaker,
    LLMConfig,
    ModelPrice,
    ModelRequest,
    RateLimited,
    RetryPolicy,
    Source,
    Usage,
    UsageLedger,
    UsageRecord,
    Veto,
    Vetoed,
    create_llm,
)
from vertex_interface.json_output import JsonProblem, clean_json_text, parse_and_validate
from vertex_interface.retry import retrying

# --- config ------------------------------------------------------------------------------------------


def test_config_round_trips_through_json_and_is_frozen() -> None:
    config = LLMConfig(
        backend="vertex",
        project="acme-support",
        location="europe-west1",
        gemini_model="gemini-2.5-pro",
        retry=RetryPolicy(max_attempts=2),
        prices={"gemini-2.5-pro": ModelPrice(input_per_million=1.25, output_per_million=10)},
    )
    again = LLMConfig.model_validate_json(config.model_dump_json())
    assert again == config
    with pytest.raises(ValueError):
        config.timeout_s = 3  # type: ignore[misc]
    with pytest.raises(ValueError, match="extra"):
        LLMConfig(backend="local", temperature=0.3)  # type: ignore[call-arg]


def test_price_lookup_falls_back_to_the_model_family() -> None:
    config = LLMConfig()
    assert config.price("gemini-2.5-flash-001") == config.price("gemini-2.5-flash")
    assert config.price("some-unknown-model") is None


def test_unpriced_model_is_flagged_not_guessed() -> None:
    with FakeVertex() as fake:
        fake.script("generateContent", text_reply("x", prompt_tokens=1000, output_tokens=10))
        llm = create_llm(
            LLMConfig(
                backend="vertex", project="p", api_endpoint=fake.base_url, gemini_model="gemini-9-ultra"
            ),
            credentials=offline_credentials(),
        )
        usage = llm.generate("hi").usage
    assert usage.cost_usd == 0.0 and not usage.priced and usage.input_tokens == 1000


def test_create_llm_rejects_non_config() -> None:
    with pytest.raises(TypeError):
        create_llm({"backend": "local"})  # type: ignore[arg-type]


# --- callbacks ---------------------------------------------------------------------------------------


def test_callback_chain_vetoes_with_reason_and_name() -> None:
    calls: list[str] = []

    def allow(req: str) -> None:
        calls.append("allow")

    def no_pii(req: str) -> Veto | None:
        calls.append("no_pii")
        return Veto("contains a card number") if "4111" in req else None

    def never_reached(req: str) -> None:
        calls.append("never")

    chain: CallbackChain[str, str] = CallbackChain(before=[allow, no_pii, never_reached])
    chain.run_before("fine")
    assert calls == ["allow", "no_pii", "never"]
    calls.clear()
    with pytest.raises(Vetoed) as info:
        chain.run_before("card 4111 1111")
    assert info.value.reason == "contains a card number"
    assert "no_pii" in info.value.callback
    assert calls == ["allow", "no_pii"]


def test_callback_chain_rejects_odd_return_and_shields_error_callbacks() -> None:
    chain: CallbackChain[str, str] = CallbackChain(before=[lambda r: "yes"])
    with pytest.raises(TypeError, match="None or Veto"):
        chain.run_before("x")
    seen: list[BaseException] = []

    def broken(req: str, exc: BaseException) -> None:
        raise RuntimeError("telemetry down")

    chain = CallbackChain(on_error=[broken, lambda r, e: seen.append(e)])
    err = ValueError("boom")
    chain.run_error("x", err)  # must not raise
    assert seen == [err]
    extended = chain.extended(after=[lambda r, res: None])
    assert len(extended.after) == 1 and chain.after == []


@pytest.fixture
def fake() -> Iterator[FakeVertex]:
    with FakeVertex() as server:
        yield server


def vertex(fake: FakeVertex, **kw):
    config = LLMConfig(
        backend="vertex",
        project="p",
        api_endpoint=fake.base_url,
        retry=RetryPolicy(initial_backoff_s=0, jitter_s=0),
    )
    return create_llm(config, credentials=offline_credentials(), sleep=lambda s: None, **kw)


def test_before_callback_veto_sends_nothing_and_after_sees_request_and_response(fake: FakeVertex) -> None:
    seen: list[tuple[ModelRequest, object]] = []
    errors: list[BaseException] = []
    chain = CallbackChain(
        before=[
            lambda req: (
                Veto("off-topic") if req.contents and "bitcoin" in req.contents[-1].text.lower() else None
            )
        ],
        after=[lambda req, resp: seen.append((req, resp))],
        on_error=[lambda req, exc: errors.append(exc)],
    )
    llm = vertex(fake, callbacks=chain)
    with pytest.raises(Vetoed, match="off-topic"):
        llm.generate("Can I pay with Bitcoin?")
    with pytest.raises(Vetoed):
        llm.stream("bitcoin?")  # vetoed at the call, before iteration
    assert fake.calls() == []
    assert llm.ledger.totals().calls == 0

    source = Source(1, "Returns", "Returns are free.")
    resp = llm.generate("Are returns free?", sources=[source], tags=CallTags("s1", "t1", "synth"))
    req, result = seen[-1]
    assert req.kind == "generate" and req.model == "gemini-3.5-flash-lite" and req.backend == "vertex"
    assert req.sources == (source,) and req.tags.agent == "synth"
    assert result is resp

    fake.script("generateContent", prompt_blocked())
    with pytest.raises(Blocked):
        llm.generate("bad")
    assert isinstance(errors[-1], Blocked)

    llm.embed(["a b c"], task_type="RETRIEVAL_QUERY")
    assert seen[-1][0].kind == "embed" and seen[-1][1].vectors.shape == (1, 768)


def test_concurrent_calls_share_one_client_safely(fake: FakeVertex) -> None:
    llm = vertex(fake)
    with ThreadPoolExecutor(max_workers=8) as pool:
        texts = list(
            pool.map(lambda i: llm.generate(f"q{i}", tags=CallTags("s", f"t{i % 2}")).text, range(24))
        )
    assert texts == ["Hello from the fake."] * 24
    assert len(fake.calls()) == 24
    by_turn = llm.ledger.by_turn("s")
    assert by_turn["t0"].calls == 12 and by_turn["t1"].calls == 12
    llm.close()


# --- cost --------------------------------------------------------------------------------------------


def usage(model: str, i: int, o: int, ctx: int = 0, cost: float = 0.0) -> Usage:
    return Usage(model=model, input_tokens=i, output_tokens=o, context_tokens=ctx, cost_usd=cost)


def test_ledger_rolls_up_per_model_turn_agent_turn_turn_and_session() -> None:
    ledger = UsageLedger()
    ledger.record(
        UsageRecord(
            "generate_json", "vertex", usage("flash", 500, 40, 0, 0.001), CallTags("s1", "t1", "controller")
        )
    )
    ledger.record(
        UsageRecord(
            "generate", "vertex", usage("flash", 3000, 200, 2400, 0.004), CallTags("s1", "t1", "knowledge")
        )
    )
    ledger.record(
        UsageRecord(
            "generate", "vertex", usage("flash", 2000, 100, 1500, 0.002), CallTags("s1", "t1", "knowledge")
        )
    )
    ledger.record(
        UsageRecord(
            "generate", "vertex", usage("flash", 100, 10, 0, 0.0005), CallTags("s1", "t2", "controller")
        )
    )
    ledger.record(
        UsageRecord(
            "generate", "vertex", usage("flash", 100, 10, 0, 0.0005), CallTags("s2", "t9", "controller")
        )
    )

    turn = ledger.totals(session_id="s1", turn_id="t1")
    assert (turn.calls, turn.input_tokens, turn.context_tokens, turn.prompt_tokens, turn.output_tokens) == (
        3,
        5500,
        3900,
        1600,
        340,
    )
    assert turn.cost_usd == pytest.approx(0.007)
    agents = ledger.by_agent("s1", "t1")
    assert agents["knowledge"].calls == 2 and agents["controller"].input_tokens == 500
    assert set(ledger.by_turn("s1")) == {"t1", "t2"}
    sessions = ledger.by_session()
    assert sessions["s1"].calls == 4 and sessions["s2"].calls == 1
    assert ledger.totals().cost_usd == pytest.approx(0.008)
    assert turn.as_dict()["prompt_tokens"] == 1600
    gone = ledger.discard(session_id="s1")
    assert gone.calls == 4 and ledger.totals().calls == 1 and "s1" not in ledger.by_session()


def test_ledger_is_thread_safe() -> None:
    ledger = UsageLedger()

    def work(n: int) -> None:
        for _ in range(500):
            ledger.record(UsageRecord("generate", "vertex", usage("m", 1, 1), CallTags("s", str(n))))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ledger.totals().calls == 4000 and ledger.totals(turn_id="3").calls == 500


# --- breaker and retry -------------------------------------------------------------------------------


def test_breaker_lets_exactly_one_probe_through_when_half_open() -> None:
    now = [0.0]
    breaker = CircuitBreaker(BreakerPolicy(failure_threshold=3, reset_timeout_s=10), clock=lambda: now[0])
    for _ in range(2):
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED and breaker.try_acquire()
    breaker.record_success()  # a success resets the count
    for _ in range(3):
        breaker.record_failure()
    assert breaker.state is BreakerState.OPEN and not breaker.try_acquire()
    assert breaker.retry_in() == pytest.approx(10)
    now[0] = 10.5
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.try_acquire() and not breaker.try_acquire()  # one probe only
    breaker.release()  # an inconclusive probe frees the slot
    assert breaker.try_acquire()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED


def test_retry_policy_caps_attempts_and_total_deadline() -> None:
    sleeps: list[float] = []
    attempts = 0

    def flaky() -> None:
        nonlocal attempts
        attempts += 1
        raise RateLimited("slow down", retry_after=4)

    policy = RetryPolicy(max_attempts=10, total_deadline_s=9, max_retry_after_s=5)
    with pytest.raises(RateLimited):
        for attempt in retrying(policy, sleep=sleeps.append):
            with attempt:
                flaky()
    # tenacity measures elapsed time from the real clock; with instant sleeps the attempt cap rules.
    assert attempts == 10 and sleeps == [4.0] * 9
    assert isinstance(retrying(policy).stop, tenacity.stop.stop_any)


# --- JSON cleaning -----------------------------------------------------------------------------------


class Plan(BaseModel):
    steps: list[str]
    done: bool = False


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ('{"a": 1}', '{"a": 1}'),
        ('```json\n{"a": 1}\n```', '{"a": 1}'),
        ('```\n{"a": 1}\n```', '{"a": 1}'),
        ('Sure! Here it is:\n```JSON\n{"a": 1}\n```\nAnything else?', '{"a": 1}'),
        ('The answer is {"a": {"b": 2}} as requested.', '{"a": {"b": 2}}'),
        ("  [1, 2]  ", "[1, 2]"),
    ],
)
def test_clean_json_text(raw: str, clean: str) -> None:
    assert clean_json_text(raw) == clean


def test_parse_and_validate_reports_field_paths() -> None:
    assert parse_and_validate('```json\n{"steps": ["a"]}\n```', Plan) == {"steps": ["a"], "done": False}
    with pytest.raises(JsonProblem, match=r"steps\.1: Input should be a valid string"):
        parse_and_validate('{"steps": ["a", 3]}', Plan)
    with pytest.raises(JsonProblem, match="empty"):
        parse_and_validate("   ", Plan)


def test_rate_limit_retry_after_in_http_date_form(fake: FakeVertex) -> None:
    from testkit.fake_vertex import Reply

    sleeps: list[float] = []
    config = LLMConfig(
        backend="vertex", project="p", api_endpoint=fake.base_url, retry=RetryPolicy(max_attempts=2)
    )
    llm = create_llm(config, credentials=offline_credentials(), sleep=sleeps.append)
    limited = rate_limited()
    fake.script(
        "generateContent",
        Reply(status=429, body=limited.body, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),
        text_reply("ok"),
    )
    assert llm.generate("hi").text == "ok"
    assert sleeps == [0.0]  # a date in the past: retry at once
