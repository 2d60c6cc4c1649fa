"""The local load balancer's config: rendering, validation, and nginx's own syntax check."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from backend.cluster import (
    DEFAULT_TEMPLATE,
    NginxProcess,
    ProxyConfig,
    cluster_ports,
    find_nginx,
    render_nginx_conf,
)


def config(tmp_path: Path, **kw) -> ProxyConfig:
    args = {
        "listen_host": "127.0.0.1",
        "listen_port": 8080,
        "upstreams": ("127.0.0.1:8081", "127.0.0.1:8082"),
        "prefix": tmp_path / "nginx",
    } | kw
    return ProxyConfig(**args)


def test_rendered_config_is_sticky_websocket_ready_and_rootless(tmp_path):
    conf = render_nginx_conf(DEFAULT_TEMPLATE.read_text(), config(tmp_path))
    assert "{{" not in conf
    assert "listen 127.0.0.1:8080;" in conf
    upstream = re.search(r"upstream sidebar_assistant \{(.*?)\}", conf, re.S).group(1)
    assert "ip_hash;" in upstream
    assert re.findall(r"server (\S+) ", upstream) == ["127.0.0.1:8081", "127.0.0.1:8082"]
    for directive in (
        "proxy_http_version 1.1;",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $connection_upgrade;",
        "proxy_read_timeout 3600s;",
        "daemon off;",
    ):
        assert directive in conf
    # Every file nginx writes is under the prefix (no /var/log, /run or /var/lib paths).
    paths = re.findall(r"^\s*(?:pid|\w+_temp_path)\s+(\S+);", conf, re.M)
    assert len(paths) == 6
    assert all(p.startswith(str(tmp_path / "nginx")) for p in paths)
    assert "/var/" not in conf


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"listen_port": 0}, "listen port"),
        ({"upstreams": ()}, "at least one upstream"),
        ({"upstreams": ("127.0.0.1",)}, "host:port"),
        ({"upstreams": ("127.0.0.1:8081; evil",)}, "host:port"),
        ({"upstreams": ("127.0.0.1:8081", "127.0.0.1:8081")}, "distinct"),
        ({"prefix": Path("relative/nginx")}, "absolute"),
        ({"prefix": Path("/tmp/with space")}, "whitespace"),
    ],
)
def test_invalid_proxy_config_is_refused(tmp_path, kw, message):
    with pytest.raises(ValueError, match=message):
        config(tmp_path, **kw)


def test_template_placeholders_are_checked(tmp_path):
    with pytest.raises(ValueError, match="unknown placeholders"):
        render_nginx_conf("listen {{listen}}; {{prefix}} {{servers}} {{nope}}", config(tmp_path))
    with pytest.raises(ValueError, match="lacks required"):
        render_nginx_conf("listen {{listen}};", config(tmp_path))


def test_cluster_ports():
    assert cluster_ports(8080, 2) == (8080, [8081, 8082])
    with pytest.raises(ValueError):
        cluster_ports(65535, 2)
    with pytest.raises(ValueError):
        cluster_ports(8080, 0)


def test_find_nginx_rejects_a_bad_explicit_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        find_nginx(str(tmp_path / "no-nginx"))


def test_nginx_accepts_the_rendered_config(tmp_path):
    try:
        binary = find_nginx()
    except FileNotFoundError:
        pytest.skip("nginx not installed (Debian: apt-get install nginx-light)")
    proxy = NginxProcess(config(tmp_path), binary=binary)
    proxy.write_config()
    proxy.check()  # `nginx -t`: raises with nginx's message on a bad config
    # And a broken config is reported, not started.
    proxy.conf_path.write_text(proxy.conf_path.read_text().replace("ip_hash;", "ip_hash"))
    with pytest.raises(RuntimeError, match="nginx rejected"):
        proxy.check()
    result = subprocess.run([binary, "-v"], capture_output=True, text=True)
    assert "nginx" in result.stderr
