"""infra/deploy.sh: syntax, shellcheck, refusals, and a dry run that executes nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "infra" / "deploy.sh"
VARS = {
    "PROJECT_ID": "acme-support-prod",
    "REGION": "us-central1",
    "TF_STATE_BUCKET": "acme-tf-state",
    "PUBLIC_URL": "https://sidebar.acme.example",
    "CORS_ALLOWED_ORIGINS": "https://1234.apps.zdusercontent.com,https://acme.zendesk.com",
    "COMMERCE_API_URL": "https://shop.acme.example/api",
    "IMAGE_TAG": "abc123",
}


@pytest.fixture
def tools(tmp_path) -> tuple[Path, Path]:
    """gcloud/terraform/docker/curl stand-ins that only record being called: a dry run must
    leave the log empty."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    for tool in ("gcloud", "terraform", "docker", "curl"):
        script = bin_dir / tool
        script.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{log}"\nexit 1\n')
        script.chmod(0o755)
    return bin_dir, log


def deploy(tmp_path, tools, *args: str, **overrides: str) -> subprocess.CompletedProcess:
    bin_dir, _ = tools
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(tmp_path), **VARS}
    env.update({"RENDERED_SERVICE": str(tmp_path / "service.yaml"), **overrides})
    env = {k: v for k, v in env.items() if v != "<unset>"}
    return subprocess.run(["bash", str(DEPLOY), *args], env=env, capture_output=True, text=True, timeout=60)


def test_syntax_and_strict_mode():
    subprocess.run(["bash", "-n", str(DEPLOY)], check=True)
    text = DEPLOY.read_text()
    assert text.startswith("#!/usr/bin/env bash")
    assert "set -euo pipefail" in text
    assert os.access(DEPLOY, os.X_OK)


def test_shellcheck_is_clean():
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck not installed (Debian: apt-get install shellcheck)")
    result = subprocess.run(["shellcheck", "-x", str(DEPLOY)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_dry_run_prints_every_step_and_runs_nothing(tmp_path, tools):
    result = deploy(tmp_path, tools, "--dry-run")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    image = "us-central1-docker.pkg.dev/acme-support-prod/sidebar-assistant/sidebar-assistant:abc123"
    expected_in_order = [
        "+ terraform -chdir=",
        "init -input=false -backend-config=bucket=acme-tf-state",
        "apply -input=false -var project_id=acme-support-prod",
        "+ gcloud secrets versions describe latest --secret sidebar-assistant-secret-key",
        f"+ gcloud builds submit {DEPLOY.parents[1]} --project acme-support-prod --region us-central1 --tag {image}",
        f"+ gcloud run services replace {tmp_path / 'service.yaml'}",
        "+ gcloud run services add-iam-policy-binding sidebar-assistant",
        "+ gcloud run services describe sidebar-assistant",
        "/readyz",
    ]
    pos = 0
    for fragment in expected_in_order:
        found = out.find(fragment, pos)
        assert found >= 0, f"{fragment!r} missing (or out of order) in:\n{out}"
        pos = found
    assert "-auto-approve" not in out  # interactive approval unless AUTO_APPROVE=1
    assert not tools[1].exists(), f"dry run executed: {tools[1].read_text()}"
    service = yaml.safe_load((tmp_path / "service.yaml").read_text())
    assert service["spec"]["template"]["spec"]["containers"][0]["image"] == image
    assert "${" not in (tmp_path / "service.yaml").read_text()


def test_docker_builder_and_skips(tmp_path, tools):
    out = deploy(tmp_path, tools, "--dry-run", "--skip-infra", BUILDER="docker", TF_STATE_BUCKET="<unset>")
    assert out.returncode == 0, out.stderr
    assert "+ docker build --pull -t" in out.stdout and "+ docker push" in out.stdout
    assert "terraform" not in out.stdout.replace("skipped (--skip-infra)", "")
    out = deploy(tmp_path, tools, "--dry-run", "--skip-build")
    assert "gcloud builds submit" not in out.stdout and "gcloud run services replace" in out.stdout


def test_rollback_dry_run(tmp_path, tools):
    out = deploy(
        tmp_path, tools, "--dry-run", "--rollback", "sidebar-assistant-00042-xyz", PUBLIC_URL="<unset>"
    )
    assert out.returncode == 0, out.stderr
    assert "--to-revisions sidebar-assistant-00042-xyz=100" in out.stdout
    assert "/readyz" in out.stdout and "services replace" not in out.stdout


@pytest.mark.parametrize(
    "missing", ["PROJECT_ID", "REGION", "TF_STATE_BUCKET", "PUBLIC_URL", "COMMERCE_API_URL"]
)
def test_refuses_missing_required_variables(tmp_path, tools, missing):
    out = deploy(tmp_path, tools, "--dry-run", **{missing: "<unset>"})
    assert out.returncode == 2
    assert "missing required variables" in out.stderr and missing in out.stderr
    assert not tools[1].exists()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PUBLIC_URL", "http://insecure.example"),
        ("PUBLIC_URL", 'https://x.example/"; rm -rf /'),
        ("CORS_ALLOWED_ORIGINS", "https://a.example, https://b.example"),
        ("PROJECT_ID", "Bad_Project"),
        ("IMAGE_TAG", "tag with space"),
        ("MIN_INSTANCES", "5"),  # above MAX_INSTANCES (10 is the default; set 3 below)
        ("BUILDER", "kaniko"),
        ("EMBEDDING_DIMENSIONS", "4096"),  # over gemini-embedding-001's 3072
        ("EMBEDDING_DIMENSIONS", "768; rm -rf /"),
    ],
)
def test_refuses_invalid_values(tmp_path, tools, name, value):
    extra = {"MAX_INSTANCES": "3"} if name == "MIN_INSTANCES" else {}
    out = deploy(tmp_path, tools, "--dry-run", **{name: value}, **extra)
    assert out.returncode == 2, out.stdout
    assert name in out.stderr
    assert not (tmp_path / "service.yaml").exists()


def test_unknown_argument_and_help(tmp_path, tools):
    assert deploy(tmp_path, tools, "--yolo").returncode == 2
    helped = deploy(tmp_path, tools, "--help")
    assert helped.returncode == 0 and "PROJECT_ID" in helped.stdout and "--dry-run" in helped.stdout


@pytest.fixture
def cloud(tmp_path) -> tuple[Path, Path]:
    """Stand-ins that answer like gcloud/terraform/curl do, recording every call."""
    bin_dir, log = tmp_path / "cloud-bin", tmp_path / "cloud.log"
    bin_dir.mkdir()
    scripts = {
        "gcloud": """case "$*" in
  "secrets versions describe"*) echo "${FAKE_SECRET_STATE:-ENABLED}" ;;
  "run services describe"*) echo "https://sidebar-assistant-xyz.a.run.app" ;;
esac""",
        "terraform": """case "$*" in
  *"output -raw service_account_email"*) echo "${FAKE_SA:-sidebar-assistant-run@acme-support-prod.iam.gserviceaccount.com}" ;;
esac""",
        "curl": 'echo \'{"status":"ready"}\'',
    }
    # `gcloud spanner databases execute-sql --format json`: the index probe, then the row count.
    scripts["gcloud"] += """
case "$*" in
  *"execute-sql"*INFORMATION_SCHEMA*) echo '{"rows": [["'"${FAKE_INDEXES:-0}"'"]]}' ;;
  *"execute-sql"*KnowledgeChunks*) echo '{"rows": [["'"${FAKE_CHUNKS:-0}"'"]]}' ;;
esac"""
    for tool, body in scripts.items():
        path = bin_dir / tool
        path.write_text(f'#!/bin/bash\necho "{tool} $*" >> "{log}"\n{body}\nexit 0\n')
        path.chmod(0o755)
    return bin_dir, log


def test_real_run_calls_the_tools_in_order(tmp_path, cloud):
    out = deploy(tmp_path, cloud, AUTO_APPROVE="1")
    assert out.returncode == 0, out.stderr
    calls = cloud[1].read_text().splitlines()
    order = [
        "init",
        "apply",
        "output",
        "secrets versions describe",
        "builds submit",
        "run services replace",
        "add-iam-policy-binding",
        "run services describe",
        "curl",
    ]
    pos = 0
    for step in order:
        idx = next((i for i in range(pos, len(calls)) if step in calls[i]), None)
        assert idx is not None, f"{step!r} not called after position {pos}: {calls}"
        pos = idx
    assert "-auto-approve" in next(c for c in calls if " apply " in c)
    assert calls[-1] == "curl -fsS --max-time 5 https://sidebar-assistant-xyz.a.run.app/readyz"
    assert "is ready" in out.stdout


def test_real_run_stops_before_deploying_without_secret_values(tmp_path, cloud):
    out = deploy(tmp_path, cloud, "--skip-infra", FAKE_SECRET_STATE="DESTROYED")
    assert out.returncode == 2
    assert "sidebar-assistant-secret-key has no enabled version" in out.stderr
    assert not any("services replace" in c for c in cloud[1].read_text().splitlines())


def test_real_run_refuses_a_terraform_naming_mismatch(tmp_path, cloud):
    out = deploy(tmp_path, cloud, FAKE_SA="someone-else@acme-support-prod.iam.gserviceaccount.com")
    assert out.returncode == 2 and "service account" in out.stderr
    assert not any("builds submit" in c for c in cloud[1].read_text().splitlines())


SPANNER_DOCS = (
    "https://cloud.google.com/spanner/docs/vector-indexes",
    "https://cloud.google.com/spanner/docs/vector-index-best-practices",
)


def test_dry_run_renders_the_schema_for_embedding_dimensions(tmp_path, tools):
    """Issue 14 item 2: one setting drives the DDL. Spanner's embedding column is
    `ARRAY<FLOAT32>(vector_length=>N)`; N must be what the service asks Vertex for, so deploy
    renders the schema from EMBEDDING_DIMENSIONS, hands it to Terraform and to the service."""
    schema = tmp_path / "schema.sql"
    out = deploy(tmp_path, tools, "--dry-run", EMBEDDING_DIMENSIONS="3072", RENDERED_SCHEMA=str(schema))
    assert out.returncode == 0, out.stderr
    assert "Embedding ARRAY<FLOAT32>(vector_length=>3072) NOT NULL" in schema.read_text()
    assert "VECTOR INDEX" not in schema.read_text().replace("--vector-index", "")
    apply = next(
        line for line in out.stdout.splitlines() if line.startswith("+ terraform") and " apply " in line
    )
    assert "-var embedding_dimensions=3072" in apply and f"-var spanner_schema_file={schema}" in apply
    env = yaml.safe_load((tmp_path / "service.yaml").read_text())["spec"]["template"]["spec"]["containers"][
        0
    ]["env"]
    assert {"name": "EMBEDDING_DIMENSIONS", "value": "3072"} in env
    assert not tools[1].exists()


@pytest.mark.parametrize(
    ("chunks", "indexes", "created"), [(0, 0, False), (250_000, 0, True), (250_000, 1, False)]
)
def test_vector_index_is_created_after_the_first_load(tmp_path, cloud, chunks, indexes, created):
    """SPANNER_DOCS[0]: "Create your vector index after most of the rows with embeddings are
    written to your database." Terraform creates the database without it; a deploy finding
    chunks and no index creates it, sized from the row count (SPANNER_DOCS[1]: 200-1000 rows per
    leaf; tree_depth 2 under 10 million rows)."""
    out = deploy(tmp_path, cloud, AUTO_APPROVE="1", FAKE_CHUNKS=str(chunks), FAKE_INDEXES=str(indexes))
    assert out.returncode == 0, out.stderr
    calls = cloud[1].read_text().splitlines()
    ddl = [c for c in calls if "spanner databases ddl update" in c]
    if not created:
        assert ddl == []
        return
    (call,) = ddl
    assert "CREATE VECTOR INDEX KnowledgeChunksEmbedding ON KnowledgeChunks (Embedding)" in call
    assert "num_leaves = 500" in call and "tree_depth = 2" in call and "--async" in call
    # After Terraform (the database exists), before the new revision.
    assert calls.index(call) > next(i for i, c in enumerate(calls) if " apply " in c)
    assert calls.index(call) < next(i for i, c in enumerate(calls) if "services replace" in c)
