"""infra/cloudrun/service.yaml: what Cloud Run would be told, checked against the code it runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr

from backend.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SERVICE = ROOT / "infra" / "cloudrun" / "service.yaml"
DEPLOY = ROOT / "infra" / "deploy.sh"
SETTINGS_ENV = {name.upper() for name in Settings.model_fields}
# Settings that hold credentials: SecretStr fields, plus the Redis URL (it carries the AUTH string).
SECRET_ENV = {
    name.upper()
    for name, f in Settings.model_fields.items()
    if SecretStr in getattr(f.annotation, "__args__", ())
} | {"REDIS_URL"}
DEPLOY_VARS = {
    "PROJECT_ID": "acme-support-prod",
    "REGION": "europe-west1",
    "TF_STATE_BUCKET": "acme-tf-state",
    "PUBLIC_URL": "https://sidebar.acme.example",
    "CORS_ALLOWED_ORIGINS": "https://1234.apps.zdusercontent.com",
    "COMMERCE_API_URL": "https://shop.acme.example/api",
    "IMAGE_TAG": "v1.2.3",
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict:
    """service.yaml as deploy.sh renders it (dry run: nothing is executed)."""
    out = tmp_path_factory.mktemp("deploy") / "service.yaml"
    env = {"PATH": os.environ["PATH"], "HOME": str(out.parent), **DEPLOY_VARS, "RENDERED_SERVICE": str(out)}
    subprocess.run(["bash", str(DEPLOY), "--dry-run"], env=env, check=True, capture_output=True, text=True)
    return yaml.safe_load(out.read_text())


def container(doc: dict) -> dict:
    (c,) = doc["spec"]["template"]["spec"]["containers"]
    return c


def env_of(doc: dict) -> dict[str, dict]:
    entries = container(doc)["env"]
    names = [e["name"] for e in entries]
    assert len(names) == len(set(names)), "duplicate env names"
    return {e["name"]: e for e in entries}


def test_template_parses_and_is_a_knative_service():
    doc = yaml.safe_load(SERVICE.read_text())
    assert (doc["apiVersion"], doc["kind"]) == ("serving.knative.dev/v1", "Service")


def test_scaling_affinity_and_timeouts(rendered):
    meta = rendered["spec"]["template"]["metadata"]["annotations"]
    spec = rendered["spec"]["template"]["spec"]
    assert meta["run.googleapis.com/sessionAffinity"] == "true"
    assert meta["run.googleapis.com/cpu-throttling"] == "false"  # CPU always allocated
    lo, hi = int(meta["autoscaling.knative.dev/minScale"]), int(meta["autoscaling.knative.dev/maxScale"])
    assert 1 <= lo <= hi
    assert spec["timeoutSeconds"] == 3600
    # Each WebSocket holds a gunicorn thread: concurrency must leave threads for probes/polling.
    threads = int(env_of(rendered)["THREADS"]["value"])
    assert 0 < spec["containerConcurrency"] < threads


def test_vpc_egress_reaches_the_terraform_network(rendered):
    meta = rendered["spec"]["template"]["metadata"]["annotations"]
    (nic,) = json.loads(meta["run.googleapis.com/network-interfaces"])
    assert nic == {"network": "sidebar-assistant-vpc", "subnetwork": "sidebar-assistant-run"}
    assert meta["run.googleapis.com/vpc-access-egress"] == "private-ranges-only"
    tf = (ROOT / "infra" / "terraform" / "main.tf").read_text()
    assert 'name                    = "${local.name}-vpc"' in tf
    assert 'name                     = "${local.name}-run"' in tf


def test_identity_and_image(rendered):
    spec = rendered["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == "sidebar-assistant-run@acme-support-prod.iam.gserviceaccount.com"
    assert container(rendered)["image"] == (
        "europe-west1-docker.pkg.dev/acme-support-prod/sidebar-assistant/sidebar-assistant:v1.2.3"
    )
    assert rendered["metadata"]["labels"]["cloud.googleapis.com/location"] == "europe-west1"


def test_port_matches_settings_and_dockerfile(rendered):
    (port,) = container(rendered)["ports"]
    assert port["containerPort"] == Settings.model_fields["port"].default == 8080
    assert re.search(r"^EXPOSE 8080$", (ROOT / "Dockerfile").read_text(), re.M)
    assert "PORT" not in env_of(rendered)  # Cloud Run sets PORT itself and rejects it in env


def test_every_env_name_is_a_settings_field(rendered):
    unknown = set(env_of(rendered)) - SETTINGS_ENV
    assert not unknown, f"not Settings fields (backend/settings.py): {sorted(unknown)}"


def test_production_settings_are_chosen(rendered):
    env = env_of(rendered)
    assert env["ARCHIVE_BACKEND"]["value"] == "spanner"
    assert env["AUTH_MODE"]["value"] == "zendesk"
    assert env["LLM_BACKEND"]["value"] == "vertex"
    assert env["HOST"]["value"] == "0.0.0.0"


def test_secrets_are_references_never_values(rendered):
    assert {"SECRET_KEY", "COMMERCE_API_KEY", "REDIS_URL"} <= SECRET_ENV
    env = env_of(rendered)
    assert {"SECRET_KEY", "REDIS_URL"} <= set(env)
    for name in SECRET_ENV & set(env):
        entry = env[name]
        assert "value" not in entry, f"{name} must come from Secret Manager"
        ref = entry["valueFrom"]["secretKeyRef"]
        assert ref["name"].startswith("sidebar-assistant-") and ref["key"] == "latest"
    # No literal value looks like a credential: a URL with user:password@, or a long key-like token.
    for name, entry in env.items():
        if "value" in entry:
            value = str(entry["value"])
            assert not re.search(r"://[^/@]*:[^/@]*@", value), name
            assert not re.fullmatch(r"[A-Za-z0-9+=_-]{32,}", value), name


def test_secret_names_exist_in_terraform(rendered):
    tf = (ROOT / "infra" / "terraform" / "secrets.tf").read_text()
    declared = {f"sidebar-assistant-{s}" for s in re.findall(r'"\$\{local\.name\}-([a-z-]+)"', tf)}
    spec = rendered["spec"]["template"]["spec"]
    refs = {e["valueFrom"]["secretKeyRef"]["name"] for e in container(rendered)["env"] if "valueFrom" in e}
    refs |= {v["secret"]["secretName"] for v in spec["volumes"] if "secret" in v}
    assert refs <= declared, f"secrets Terraform does not create: {sorted(refs - declared)}"


def test_zendesk_tenants_file_is_a_mounted_secret(rendered):
    env = env_of(rendered)
    path = Path(env["ZENDESK_TENANTS_FILE"]["value"])
    (mount,) = container(rendered)["volumeMounts"]
    assert path.parent == Path(mount["mountPath"]) and mount["readOnly"] is True
    (volume,) = [v for v in rendered["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"]["items"][0]["path"] == path.name


def test_env_values_are_valid_settings(rendered, monkeypatch, tmp_path):
    for name in SETTINGS_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, entry in env_of(rendered).items():
        # Secrets get stand-in values: only their presence and type are checked here.
        monkeypatch.setenv(
            name, entry.get("value", "redis://10.0.0.3:6379/0" if name == "REDIS_URL" else "x" * 32)
        )
    monkeypatch.chdir(tmp_path)
    s = Settings(_env_file=None)
    assert s.spanner_project == "acme-support-prod" and s.google_cloud_location == "europe-west1"
    assert s.secret_key is not None and s.redis_url


def test_probes_hit_real_routes(rendered, live_app):
    c = container(rendered)
    startup, liveness = c["startupProbe"]["httpGet"], c["livenessProbe"]["httpGet"]
    assert (startup["path"], liveness["path"]) == ("/readyz", "/healthz")
    assert startup["port"] == liveness["port"] == c["ports"][0]["containerPort"]
    # Cloud Run's limits: a startup probe may take at most 240 s (threshold x period).
    sp, lp = c["startupProbe"], c["livenessProbe"]
    assert sp["failureThreshold"] * sp["periodSeconds"] <= 240
    assert sp.get("initialDelaySeconds", 0) <= 240
    for probe in (sp, lp):
        assert 1 <= probe["timeoutSeconds"] <= probe["periodSeconds"]
    # Liveness must not depend on Redis (an outage would restart every instance): /healthz.
    srv = live_app()
    rules = {r.rule for r in srv.app.url_map.iter_rules()}
    assert {"/readyz", "/healthz"} <= rules
    client = srv.app.test_client()
    assert client.get(startup["path"]).status_code == 200
    assert client.get(liveness["path"]).status_code == 200
