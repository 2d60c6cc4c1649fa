"""`sidebar-assistant run-cluster`: N instances behind nginx, the local twin of Cloud Run scale-out.

nginx listens on PORT and spreads clients over instances on PORT+1 ... PORT+N with sticky
sessions (ip_hash) and WebSocket upgrades; the instances share one Redis (embedded unless
REDIS_URL is set) and the archive, exactly like Cloud Run instances share Memorystore and
Spanner. nginx runs as a child process with its config, pid file and temp dirs under
DATA_DIR/nginx, so nothing needs root. Instances come from backend.launcher.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from backend.auth import DevTokenAuthenticator, load_or_create_secret
from backend.launcher import Instance, instance_env, ready_timeout, stop_on_signals, supervise, wait_ready
from backend.settings import Settings

DEFAULT_TEMPLATE = Path(__file__).resolve().parents[1] / "infra" / "nginx" / "cluster.conf.template"
# Debian installs nginx to /usr/sbin, which is not on an unprivileged user's PATH.
NGINX_CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_UPSTREAM = re.compile(r"^[A-Za-z0-9.\-]+:\d{1,5}$")
TEMP_DIRS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


@dataclass(frozen=True)
class ProxyConfig:
    """What the nginx template needs; validated so a typo fails here, not inside nginx."""

    listen_host: str
    listen_port: int
    upstreams: tuple[str, ...]
    prefix: Path
    max_body_bytes: int = 256_000
    # False: round robin, every request to the next instance (Cloud Run without affinity).
    sticky: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.listen_port <= 65535:
            raise ValueError(f"listen port out of range: {self.listen_port}")
        if not self.upstreams:
            raise ValueError("at least one upstream instance is required")
        for up in self.upstreams:
            if not _UPSTREAM.match(up) or not 1 <= int(up.rsplit(":", 1)[1]) <= 65535:
                raise ValueError(f"upstream must look like host:port, got {up!r}")
        if len(set(self.upstreams)) != len(self.upstreams):
            raise ValueError("upstreams must be distinct")
        if not self.prefix.is_absolute():
            raise ValueError(f"nginx prefix must be an absolute path, got {self.prefix}")
        if any(c.isspace() or c in ";{}\"'" for c in str(self.prefix)):
            raise ValueError(
                f"nginx prefix must not contain whitespace, quotes, ';' or braces: {self.prefix}"
            )
        if self.max_body_bytes < 1024:
            raise ValueError("max_body_bytes must be at least 1024")


def render_nginx_conf(template: str, config: ProxyConfig) -> str:
    """Fill the template's {{placeholders}}; an unknown or missing placeholder is an error."""
    host = "127.0.0.1" if config.listen_host in ("", "localhost") else config.listen_host
    values = {
        "prefix": str(config.prefix),
        "listen": f"{host}:{config.listen_port}",
        "servers": "\n".join(
            # One failed connect takes an instance out for a few seconds, then it is retried.
            f"        server {up} max_fails=1 fail_timeout=5s;"
            for up in config.upstreams
        ),
        "max_body_bytes": str(config.max_body_bytes),
        "balance": "ip_hash;" if config.sticky else "# round robin: no affinity",
        # nginx drops worker privileges to `nobody` only when started as root; keep the
        # current user instead so the workers can use the temp dirs under DATA_DIR.
        "user_directive": f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else "",
    }
    used = set(_PLACEHOLDER.findall(template))
    if unknown := used - values.keys():
        raise ValueError(f"unknown placeholders in nginx template: {sorted(unknown)}")
    if missing := {"prefix", "listen", "servers"} - used:
        raise ValueError(f"nginx template lacks required placeholders: {sorted(missing)}")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def find_nginx(explicit: str | None = None) -> str:
    """The nginx binary: an explicit path, else PATH, else Debian's /usr/sbin."""
    if explicit:
        if not (Path(explicit).is_file() and os.access(explicit, os.X_OK)):
            raise FileNotFoundError(f"nginx binary not found or not executable: {explicit}")
        return explicit
    found = shutil.which("nginx") or next((c for c in NGINX_CANDIDATES if os.access(c, os.X_OK)), None)
    if not found:
        raise FileNotFoundError("nginx not found; install it (Debian: apt-get install nginx-light)")
    return found


class NginxProcess:
    """nginx in the foreground as a child process, with everything under config.prefix."""

    def __init__(self, config: ProxyConfig, *, binary: str, template: Path = DEFAULT_TEMPLATE) -> None:
        self.config = config
        self.binary = binary
        self.template = template
        self.conf_path = config.prefix / "nginx.conf"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        host = self.config.listen_host
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '', 'localhost') else host}:{self.config.listen_port}"

    def _command(self, *extra: str) -> list[str]:
        # -e: the error log before the config is read (the compiled-in default is under /var/log).
        return [self.binary, "-e", "stderr", "-p", str(self.config.prefix), "-c", str(self.conf_path), *extra]

    def write_config(self) -> None:
        self.config.prefix.mkdir(parents=True, exist_ok=True)
        for name in TEMP_DIRS:
            (self.config.prefix / name).mkdir(exist_ok=True)
        self.conf_path.write_text(render_nginx_conf(self.template.read_text(), self.config))

    def check(self) -> None:
        """`nginx -t` on the rendered config: a broken config fails with nginx's own message."""
        result = subprocess.run(self._command("-t", "-q"), capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise RuntimeError(f"nginx rejected {self.conf_path}:\n{result.stderr.strip()}")

    def start(self) -> None:
        self.write_config()
        self.check()
        self.process = subprocess.Popen(self._command())

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10) -> None:
        if not self.alive():
            return
        assert self.process is not None
        self.process.send_signal(signal.SIGQUIT)  # graceful: finish open requests, then exit
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def cluster_ports(port: int, instances: int) -> tuple[int, list[int]]:
    """nginx on `port`, instances on the ports right after it."""
    if instances < 1:
        raise ValueError("a cluster needs at least one instance")
    if port + instances > 65535:
        raise ValueError(f"ports {port}..{port + instances} do not fit below 65536")
    return port, [port + i for i in range(1, instances + 1)]


def start_instances(
    settings: Settings, ports: Sequence[int], *, redis_url: str, extra: dict[str, str] | None = None
) -> list[Instance]:
    instances = [Instance(p, instance_env(settings, p, redis_url=redis_url, extra=extra)) for p in ports]
    for inst in instances:
        inst.start()
    return instances


def run_cluster(
    settings: Settings,
    *,
    instances: int = 2,
    nginx_binary: str | None = None,
    template: Path = DEFAULT_TEMPLATE,
    prepare: Callable[[Settings], None] | None = None,
) -> int:
    """Run until SIGINT/SIGTERM, restarting instances that die (their sessions resume on peers)."""
    binary = find_nginx(nginx_binary)
    lb_port, ports = cluster_ports(settings.port, instances)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    data_dir = settings.data_dir.resolve()
    embedded = None
    redis_url = settings.redis_url
    if not redis_url:
        from backend.redis_embedded import EmbeddedRedis

        embedded = EmbeddedRedis(data_dir)
        redis_url = embedded.url
    secret = (
        settings.secret_key.get_secret_value() if settings.secret_key else load_or_create_secret(data_dir)
    )
    if prepare:
        prepare(settings)
    proxy = NginxProcess(
        ProxyConfig(
            settings.host,
            lb_port,
            tuple(f"127.0.0.1:{p}" for p in ports),
            data_dir / "nginx",
            settings.max_event_bytes,
        ),
        binary=binary,
        template=template,
    )
    stopping = stop_on_signals()
    procs: list[Instance] = []
    try:
        procs = start_instances(settings, ports, redis_url=redis_url)
        for inst in procs:
            wait_ready(inst.url, timeout=ready_timeout(settings), alive=inst.alive)
        proxy.start()
        wait_ready(proxy.url, timeout=20, alive=proxy.alive)
        _banner(settings, proxy, procs, redis_url, secret)
        if not supervise(procs, stopping, healthy=proxy.alive):
            print("nginx exited; stopping the cluster", file=sys.stderr)
            return 1
    finally:
        proxy.stop()
        for inst in procs:
            inst.stop()
        if embedded:
            embedded.shutdown()
    return 0


def _banner(
    settings: Settings, proxy: NginxProcess, procs: list[Instance], redis_url: str, secret: str
) -> None:
    lines = ["", "Zendesk sidebar assistant cluster is running"]
    lines.append(f"  nginx        {proxy.url}   (sticky: ip_hash; config: {proxy.conf_path})")
    lines.extend(f"  instance     {inst.url}" for inst in procs)
    lines.append(f"  redis        {redis_url}")
    if settings.auth_mode == "dev":
        lines.append(f"  dev sidebar  {proxy.url}/dev/sidebar   (through nginx)")
        token = DevTokenAuthenticator(secret, settings.dev_token_ttl_seconds).mint(
            "demo", "agent-1", "Demo Agent"
        )
        lines.append("  dev token    (tenant demo, user agent-1)")
        lines.append(f"               {token}")
    lines.append("  stop with Ctrl-C")
    print("\n".join(lines), flush=True)
