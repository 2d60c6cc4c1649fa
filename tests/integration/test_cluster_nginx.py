"""The local scale-out path: two gunicorn instances behind a real nginx (sticky sessions,
WebSocket upgrades). A client talks only to nginx; when the instance serving it is killed
mid-turn, it reconnects through nginx to the survivor and resumes its thread."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from backend import protocol
from backend.cluster import NginxProcess, ProxyConfig, find_nginx, start_instances
from backend.launcher import wait_ready
from testkit.client import SidebarClient
from tests.conftest import TEST_SECRET

try:
    NGINX = find_nginx()
except FileNotFoundError:
    NGINX = None

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(NGINX is None, reason="nginx not installed (Debian: apt-get install nginx-light)"),
]

ROOT = Path(__file__).resolve().parents[2]
TICKET = {"id": "7001", "subject": "Parcel stuck in customs"}
EXTRA_ENV = {
    "SECRET_KEY": TEST_SECRET,
    "TURN_HANDLER": "testkit.handlers:EchoHandler",
    "TEST_TURN_DELAY": "0.15",
    "INSTANCE_HEARTBEAT_SECONDS": "0.5",
    "PYTHONPATH": str(ROOT),
    "THREADS": "32",
}


def free_ports(n: int) -> int:
    """First of n consecutive free ports (the cluster uses PORT, PORT+1, ...)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + n > 65535:
            continue
        try:
            for p in range(base, base + n):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
    raise RuntimeError("no run of free ports")


def kill_tree(pid: int) -> None:
    """SIGKILL a gunicorn arbiter and its worker together: a crashed instance, not a shutdown."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    for p in [pid, *children]:
        os.kill(p, signal.SIGKILL)


def instance_id(url: str) -> str:
    return requests.get(f"{url}/", timeout=5).json()["instance"]


@pytest.fixture
def cluster(settings, redis_url, tmp_path):
    base = free_ports(3)
    instances = start_instances(settings, [base + 1, base + 2], redis_url=redis_url, extra=EXTRA_ENV)
    proxy = NginxProcess(
        ProxyConfig("127.0.0.1", base, tuple(f"127.0.0.1:{i.port}" for i in instances), tmp_path / "nginx"),
        binary=NGINX,
    )
    try:
        for inst in instances:
            wait_ready(inst.url, alive=inst.alive)
        proxy.start()
        wait_ready(proxy.url, timeout=20, alive=proxy.alive)
        yield proxy, instances
    finally:
        proxy.stop()
        for inst in instances:
            inst.stop(timeout=5)


def test_client_fails_over_through_nginx_and_resumes(cluster, tokens):
    proxy, instances = cluster
    token = tokens.mint("acme", "carol", "Carol")

    tab = SidebarClient()
    tab.connect(proxy.url, token, transports=["websocket"])
    session_id = tab.join(TICKET)["session_id"]
    assert tab.ask("m1", "where is my parcel", timeout=20)["message"]["text"] == "echo: where is my parcel"

    # ip_hash: every request from this client lands on the same instance; find which one.
    by_id = {instance_id(inst.url): inst for inst in instances}
    serving = by_id[instance_id(proxy.url)]
    assert {instance_id(proxy.url) for _ in range(5)} == {instance_id(serving.url)}
    survivor = next(inst for inst in instances if inst is not serving)

    # A slow turn; the serving instance crashes once it is streaming.
    tab.emit(protocol.MESSAGE, {"id": "m2", "text": "a slow question that takes several words to echo"})
    tab.wait_for(protocol.ACK, lambda d: d["id"] == "m2")
    tab.wait_for(protocol.DELTA, lambda d: d["id"] == "m2")
    assert serving.process is not None
    kill_tree(serving.process.pid)
    serving.process.wait(5)

    # nginx closes the client's side of the dead upstream connection.
    deadline = time.monotonic() + 10
    while tab.sio.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not tab.sio.connected

    # The sidebar reconnects (after its backoff, longer than the dead instance's heartbeat)
    # to the same nginx address, which sends it to the survivor.
    time.sleep(2.0)
    again = SidebarClient()
    again.connect(proxy.url, token, transports=["websocket"])
    state = again.join(TICKET)
    assert state["session_id"] == session_id
    assert state["resumed"] is True
    assert [(m["id"], m["status"]) for m in state["thread"]] == [
        ("m1", "complete"),
        ("m1.reply", "complete"),
        ("m2", "complete"),
        ("m2.reply", "interrupted"),
    ]
    assert instance_id(proxy.url) == instance_id(survivor.url)

    again.emit(protocol.RETRY, {"id": "m2"})
    done = again.wait_for(protocol.DONE, lambda d: d["id"] == "m2", timeout=30)
    assert done["message"]["text"] == "echo: a slow question that takes several words to echo"
    assert again.ask("m3", "still there?", timeout=20)["message"]["text"] == "echo: still there?"
    again.disconnect()


def test_run_cluster_command_serves_polling_and_websocket_clients(settings, redis_url, tmp_path, tokens):
    base = free_ports(3)
    data_dir = tmp_path / "cluster-data"
    env = {
        **os.environ,
        **EXTRA_ENV,
        "REDIS_URL": redis_url,
        "DATA_DIR": str(data_dir),
        "TEST_TURN_DELAY": "0",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "run-cluster", "--port", str(base)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{base}"
    try:
        wait_ready(url, timeout=90, alive=lambda: proc.poll() is None)
        conf = (data_dir / "nginx" / "nginx.conf").read_text()
        assert f"server 127.0.0.1:{base + 1}" in conf and f"server 127.0.0.1:{base + 2}" in conf
        for port in (base + 1, base + 2):
            assert requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200

        token = tokens.mint("acme", "dave")
        # Long-polling is several HTTP requests per client: it only works if nginx keeps them
        # on one instance (sticky sessions); WebSocket exercises the upgrade headers.
        for i, transports in enumerate((["polling"], ["websocket"], ["polling", "websocket"])):
            client = SidebarClient()
            client.connect(url, token, transports=transports)
            client.join(TICKET)
            answer = client.ask(f"c{i}", f"via {'+'.join(transports)}", timeout=20)
            assert answer["message"]["text"] == f"echo: via {'+'.join(transports)}"
            client.disconnect()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert proc.returncode == 0, out[-3000:]
    assert "cluster is running" in out and f"{url}/dev/sidebar" in out
    # Everything it started is gone: nginx and both instances stopped listening.
    for port in (base, base + 1, base + 2):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
