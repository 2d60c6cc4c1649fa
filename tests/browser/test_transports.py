"""Which Socket.IO transport the real sidebar uses, behind load balancers that do not keep a
client on one instance (Cloud Run's affinity is best effort) or that refuse WebSockets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from backend.cluster import DEFAULT_TEMPLATE, NginxProcess, ProxyConfig, find_nginx
from backend.dev_auth import load_or_create_dev_key
from backend.launcher import Instance, wait_ready
from testkit.servers import free_port
from tests.browser.conftest import server_env

expect = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is missing (pip install -e '.[test]')"
).expect

try:
    NGINX = find_nginx()
except FileNotFoundError:
    NGINX = None
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx not installed (apt-get install nginx-light)")

# A proxy that refuses WebSocket upgrades (some corporate proxies strip or block them).
NO_WEBSOCKET = "            if ($http_upgrade) { return 403; }\n"


def _cluster(
    redis_url: str, tmp_path: Path, *, sticky: bool, instances: int, template: Path
) -> Iterator[str]:
    data = tmp_path / "data"
    load_or_create_dev_key(data)  # one dev installation key for every instance (shared DATA_DIR)
    base = free_port()
    procs = []
    for _ in range(instances):
        port = free_port()
        procs.append(Instance(port, server_env(data, redis_url, port)))
    proxy = NginxProcess(
        ProxyConfig(
            "127.0.0.1", base, tuple(f"127.0.0.1:{p.port}" for p in procs), tmp_path / "nginx", sticky=sticky
        ),
        binary=NGINX,
        template=template,
    )
    try:
        for p in procs:
            p.start()
        for p in procs:
            wait_ready(p.url, alive=p.alive)
        proxy.start()
        wait_ready(proxy.url, timeout=20, alive=proxy.alive)
        yield proxy.url
    finally:
        proxy.stop()
        for p in procs:
            p.stop()


@pytest.fixture
def round_robin(redis_server, tmp_path) -> Iterator[str]:
    yield from _cluster(redis_server.url, tmp_path, sticky=False, instances=2, template=DEFAULT_TEMPLATE)


@pytest.fixture
def no_websocket(redis_server, tmp_path) -> Iterator[str]:
    text = DEFAULT_TEMPLATE.read_text()
    anchor = "            proxy_pass http://sidebar_assistant;\n"
    assert anchor in text
    template = tmp_path / "no-websocket.conf.template"
    template.write_text(text.replace(anchor, NO_WEBSOCKET + anchor))
    yield from _cluster(redis_server.url, tmp_path, sticky=True, instances=1, template=template)


def _socket_requests(page) -> list[str]:
    """Socket.IO's HTTP requests (long-polling) and WebSocket openings, in order."""
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url) if "/socket.io/" in r.url else None)
    page.on("websocket", lambda ws: seen.append(ws.url) if "/socket.io/" in ws.url else None)
    return seen


def _ask(page, url: str, user: str, question: str) -> None:
    page.goto(f"{url}/dev/sidebar?user={user}")
    frame = page.frame_locator("#app-frame")
    expect(frame.locator("#status")).to_be_hidden(timeout=20_000)
    frame.locator("#question").fill(question)
    frame.locator("#question").press("Enter")
    reply = frame.locator("li.sa-msg--assistant").last
    expect(reply).to_have_attribute("data-status", "complete", timeout=20_000)
    expect(reply.locator(".sa-answer")).to_have_text(f"echo: {question}")


def test_sidebar_works_without_sticky_routing_over_websocket(round_robin, page):
    """Cloud Run (https://cloud.google.com/run/docs/configuring/session-affinity): "Due to the
    autoscaling behavior of Cloud Run, session affinity is *best effort* affinity", with a
    cookie; https://cloud.google.com/run/docs/triggering/websockets: "Even if you use session
    affinity on Cloud Run, which provides best effort affinity, WebSockets requests could still
    potentially end up at different instances". Socket.IO
    (https://socket.io/docs/v4/using-multiple-nodes/): long-polling needs every request of a
    session on one process — "without enabling sticky-session, you will experience HTTP 400
    errors due to 'Session ID unknown'" — while "the WebSocket transport does not have this
    limitation, since it relies on a single TCP connection for the whole session"; the client's
    `transports` order decides which is tried first (https://socket.io/docs/v4/client-options/#transports).

    nginx here sends every request to the next of two instances. The sidebar must connect over
    WebSocket straight away (no long-polling request at all) and answer."""
    ids = {requests.get(f"{round_robin}/", timeout=5).json()["instance"] for _ in range(4)}
    assert len(ids) == 2  # really round robin: consecutive requests reach both instances
    seen = _socket_requests(page)
    _ask(page, round_robin, "rita", "no affinity here")
    assert any("transport=websocket" in u for u in seen), seen
    assert not [u for u in seen if "transport=polling" in u]


def test_sidebar_falls_back_to_polling_when_websocket_is_refused(no_websocket, page):
    """socket.io-client 4.8 (https://socket.io/docs/v4/client-options/#tryalltransports, release
    notes https://github.com/socketio/socket.io/releases/tag/socket.io-client@4.8.0): with
    `tryAllTransports`, "if the first transport ... fails, then the other transports will be
    tested too" — without it a WebSocket-first client never tries polling. A proxy that refuses
    the upgrade must still leave a working sidebar (on long-polling)."""
    seen = _socket_requests(page)
    _ask(page, no_websocket, "wendy", "behind a strict proxy")
    assert any("transport=websocket" in u for u in seen), seen  # tried first
    assert any("transport=polling" in u for u in seen), seen  # then fell back
