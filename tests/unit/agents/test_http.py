"""The shared API client against a real local HTTP server with injected faults."""

from __future__ import annotations

import pytest

from agents.base import ToolError, ToolUnavailable
from agents.commerce import HttpCommerceAPI
from agents.http import ApiClient, BreakerRegistry, HttpClientConfig, normalise_base_url, path_segment
from tests.fakes.fake_commerce import FakeCommerce
from vertex_interface.breaker import BreakerState
from vertex_interface.config import BreakerPolicy

SECRET = "sk-live-very-secret-key"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def server(commerce):
    with FakeCommerce(commerce, api_key=SECRET) as fake:
        yield fake


@pytest.fixture(autouse=True)
def _reset(server):
    server.faults.clear()
    server.requests.clear()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(server, sleeps):
    config = HttpClientConfig(
        read_timeout_s=0.5, max_attempts=3, initial_backoff_s=0.05, max_backoff_s=0.2, jitter_s=0.01,
        breaker=BreakerPolicy(failure_threshold=4, reset_timeout_s=30),
    )  # fmt: skip
    c = ApiClient(server.url, name="Order system", api_key=SECRET, config=config, breakers=BreakerRegistry(),
                  sleep=sleeps.append)  # fmt: skip
    yield c
    c.close()


def test_happy_path_sends_the_key_and_decodes_json(client, server, commerce):
    order = commerce.all("orders")[0]
    got = client.get_json(f"/orders/{order['order_number']}")
    assert got == order
    _path, headers = server.requests[-1]
    assert headers["Authorization"] == f"Bearer {SECRET}"
    assert headers["Accept"] == "application/json"


def test_404_returns_the_not_found_value(client):
    assert client.get_json("/orders/BO-000000") is None
    assert client.get_json("/orders/BO-000000", not_found={}) == {}
    assert client.breaker.state is BreakerState.CLOSED


def test_500_then_success_is_retried_with_backoff(client, server, sleeps):
    server.fail("500", times=2, path="/products")
    assert client.get_json("/products", {"q": "teak"})["products"]
    assert len(server.requests) == 3
    assert len(sleeps) == 2 and all(0 < s <= 0.2 + 0.01 for s in sleeps)
    assert sleeps[1] >= sleeps[0] - 0.01  # exponential, modulo jitter


def test_429_honours_retry_after(client, server, sleeps):
    server.fail("429", retry_after="2")
    assert client.get_json("/products", {"q": "teak"})
    assert sleeps == [2.0]


def test_429_with_a_long_retry_after_fails_at_once(client, server, sleeps):
    server.fail("429", retry_after="3600")
    with pytest.raises(ToolUnavailable, match=r"Order system is unavailable \(HTTP 429\)"):
        client.get_json("/products", {"q": "teak"})
    assert len(server.requests) == 1 and sleeps == []


def test_persistent_5xx_gives_tool_unavailable_after_max_attempts(client, server):
    server.fail("503", times=5)
    with pytest.raises(ToolUnavailable, match=r"HTTP 503"):
        client.get_json("/products", {"q": "teak"})
    assert len(server.requests) == 3


def test_slow_server_times_out_and_is_retried(client, server):
    server.fail("slow", delay_s=1.5)
    assert client.get_json("/products", {"q": "teak"})["products"]  # second attempt is fast
    server.fail("slow", times=3, delay_s=1.5)
    with pytest.raises(ToolUnavailable, match="timed out"):
        client.get_json("/products", {"q": "teak"})


def test_dropped_connection_is_retried(client, server):
    server.fail("drop")
    assert client.get_json("/products", {"q": "teak"})["products"]
    assert len(server.requests) == 2


def test_garbage_body_is_unavailable_not_retried(client, server):
    server.fail("garbage")
    with pytest.raises(ToolUnavailable, match="malformed response"):
        client.get_json("/products", {"q": "teak"})
    assert len(server.requests) == 1


def test_oversized_body_is_refused(client, server):
    server.fail("huge")
    with pytest.raises(ToolError, match="larger than"):
        client.get_json("/products", {"q": "teak"})


def test_wrong_key_is_unavailable_and_never_echoed(server):
    with ApiClient(server.url, name="Order system", api_key="sk-wrong-key-123") as c:
        with pytest.raises(ToolUnavailable) as err:
            c.get_json("/products", {"q": "teak"})
        assert "HTTP 401" in str(err.value)
        assert "sk-wrong" not in str(err.value) and "sk-wrong" not in repr(c)


def test_error_messages_never_contain_secrets_or_query_strings(client, server):
    server.fail("503", times=3)
    with pytest.raises(ToolUnavailable) as err:
        client.get_json("/customers", {"email": "private.person@example.com"})
    text = str(err.value) + repr(err.value)
    assert SECRET not in text and "private.person" not in text and "127.0.0.1" not in text


def test_connection_refused_is_unavailable():
    config = HttpClientConfig(max_attempts=2, initial_backoff_s=0, jitter_s=0, connect_timeout_s=0.5)
    with (
        ApiClient("http://127.0.0.1:9", config=config, breakers=BreakerRegistry(), sleep=lambda s: None) as c,
        pytest.raises(ToolUnavailable, match="could not be reached"),
    ):
        c.get_json("/orders/BO-100101")


def test_circuit_breaker_opens_fails_fast_and_probes_after_cool_down(server):
    clock = Clock()
    breakers = BreakerRegistry(clock=clock)
    config = HttpClientConfig(max_attempts=1, breaker=BreakerPolicy(failure_threshold=2, reset_timeout_s=10))
    a = ApiClient(server.url, api_key=SECRET, config=config, breakers=breakers)
    b = ApiClient(server.url + "/", api_key=SECRET, config=config, breakers=breakers)
    assert a.breaker is b.breaker  # one breaker per base URL, shared by every client of it
    server.fail("500", times=2)
    for _ in range(2):
        with pytest.raises(ToolUnavailable):
            a.get_json("/products", {"q": "teak"})
    assert a.breaker.state is BreakerState.OPEN and not b.available
    sent = len(server.requests)
    with pytest.raises(ToolUnavailable, match="circuit open"):
        b.get_json("/products", {"q": "teak"})
    assert len(server.requests) == sent  # failed fast: nothing was sent
    clock.now += 11
    assert b.get_json("/products", {"q": "teak"})["products"]  # the probe succeeds and closes it
    assert a.breaker.state is BreakerState.CLOSED


@pytest.mark.parametrize(
    "url", ["ftp://x", "localhost:8080", "http://user:pw@host", "http://host/?key=1", "", "http://"]
)
def test_bad_base_urls_are_refused(url):
    with pytest.raises(ValueError):
        normalise_base_url(url)


def test_path_segments_are_quoted():
    assert path_segment("BO-1/../admin") == "BO-1%2F..%2Fadmin"
    with pytest.raises(ToolError):
        path_segment("..")


# --- the HTTP commerce API against the same data ------------------------------------------------
@pytest.fixture
def http_commerce(server):
    api = HttpCommerceAPI(server.url, api_key=SECRET, breakers=BreakerRegistry(), sleep=lambda s: None)
    yield api
    api.close()


def test_http_commerce_matches_the_local_api(http_commerce, commerce):
    order = commerce.all("orders")[5]
    assert http_commerce.get_order(order["order_number"].lower()) == order
    assert http_commerce.get_order("BO-000001") is None
    assert http_commerce.orders_for_customer(order["email"]) == commerce.orders_for_customer(order["email"])
    assert http_commerce.orders_for_customer("nobody@example.invalid") == []
    customer = commerce.get_customer(order["customer_id"])
    assert http_commerce.get_customer(customer["id"]) == customer
    assert http_commerce.get_customer(customer["email"]) == customer
    assert http_commerce.get_customer(str(customer["zendesk_user_id"])) == customer
    assert http_commerce.search_products("teak bench", 2) == commerce.search_products("teak bench", 2)
    assert http_commerce.get_product("of-101") == commerce.get_product("OF-101")
    assert http_commerce.get_product("ZZ-999") is None


def test_http_commerce_validates_arguments(http_commerce):
    with pytest.raises(ToolError):
        http_commerce.search_products("", 3)
    with pytest.raises(ToolError):
        http_commerce.search_products("teak", 0)
    with pytest.raises(ToolError):
        http_commerce.get_order("x" * 100)
