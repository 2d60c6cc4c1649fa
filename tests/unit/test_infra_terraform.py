"""infra/terraform: parsed (python-hcl2) and checked, since it cannot be applied here."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

hcl2 = pytest.importorskip("hcl2", reason="python-hcl2 not installed (pip install -e '.[test]')")

from store.spanner.ddl import all_ddl  # noqa: E402

TF = Path(__file__).resolve().parents[2] / "infra" / "terraform"
SCHEMA = TF.parent / "spanner" / "schema.sql"
# The runtime service account may hold these and nothing else.
ALLOWED_PROJECT_ROLES = {
    "roles/aiplatform.user",
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/cloudtrace.agent",
}
RESOURCE_ROLES = {
    "google_spanner_database_iam_member": {"roles/spanner.databaseUser"},
    "google_secret_manager_secret_iam_member": {"roles/secretmanager.secretAccessor"},
}


def unquote(value: Any) -> Any:
    """python-hcl2 keeps string quotes and wraps expressions in ${...}; strip the quotes."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def load_all() -> dict[str, list]:
    merged: dict[str, list] = {}
    for path in sorted(TF.glob("*.tf")):
        with path.open() as f:
            for key, blocks in hcl2.load(f).items():
                merged.setdefault(key, []).extend(blocks)
    return merged


@pytest.fixture(scope="module")
def tf() -> dict[str, list]:
    return load_all()


def resources(tf: dict, rtype: str) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for block in tf.get("resource", []):
        for t, named in block.items():
            if unquote(t) == rtype:
                found.update({unquote(n): body for n, body in named.items()})
    return found


def locals_of(tf: dict) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for block in tf.get("locals", []):
        merged.update(block)
    return merged


def test_every_file_parses_and_is_formatted(tf):
    assert tf["resource"]
    if not shutil.which("terraform"):
        pytest.skip("terraform not installed: `terraform fmt -check` not run")
    result = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", "-diff", str(TF)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(
    "rtype",
    [
        "google_artifact_registry_repository",
        "google_compute_network",
        "google_compute_subnetwork",
        "google_redis_instance",
        "google_spanner_instance",
        "google_spanner_database",
        "google_secret_manager_secret",
        "google_service_account",
    ],
)
def test_required_resources_exist(tf, rtype):
    assert resources(tf, rtype), f"no {rtype} in infra/terraform"


def test_redis_is_private_and_authenticated(tf):
    (redis,) = resources(tf, "google_redis_instance").values()
    assert redis["auth_enabled"] is True
    assert "google_compute_network.vpc" in redis["authorized_network"]
    configs = {unquote(k): unquote(v) for k, v in redis["redis_configs"].items()}
    assert configs["maxmemory-policy"] == "noeviction"


def test_spanner_database_applies_the_store_schema(tf):
    (db,) = resources(tf, "google_spanner_database").values()
    assert "local.spanner_ddl" in db["ddl"]
    assert db["deletion_protection"] == "${var.deletion_protection}"
    assert "spanner/schema.sql" in locals_of(tf)["spanner_schema_file"]
    # Terraform's split (drop `--` comments, split on `;`) yields exactly the store's DDL.
    text = re.sub(r"--[^\n]*", "", SCHEMA.read_text())
    statements = [s.strip() for s in text.split(";") if s.strip()]

    def norm(s: str) -> str:
        return " ".join(s.split())

    assert [norm(s) for s in statements] == [norm(s) for s in all_ddl()]


def test_spanner_schema_width_is_a_variable_checked_before_apply(tf):
    """Issue 14 item 2: the Embedding column is `ARRAY<FLOAT32>(vector_length=>N)` (Spanner DDL)
    and N is EMBEDDING_DIMENSIONS. deploy.sh passes the schema it rendered for N; a precondition
    refuses a schema of another width before anything is applied. No vector index in the schema:
    it is created after the first load (https://cloud.google.com/spanner/docs/vector-indexes)."""
    variables = {unquote(k): v for block in tf["variable"] for k, v in block.items()}
    assert variables["embedding_dimensions"]["default"] == 768
    assert unquote(variables["spanner_schema_file"]["default"]) == ""
    assert "var.spanner_schema_file" in locals_of(tf)["spanner_schema_file"]
    (db,) = resources(tf, "google_spanner_database").values()
    (pre,) = [p for block in db["lifecycle"] for p in block["precondition"]]
    assert "vector_length=>${var.embedding_dimensions}" in pre["condition"]
    assert "VECTOR INDEX" not in SCHEMA.read_text().replace("--vector-index", "")


def test_service_account_roles_are_least_privilege(tf):
    project_roles = {unquote(r) for r in locals_of(tf)["project_roles"]}
    assert project_roles <= ALLOWED_PROJECT_ROLES, project_roles - ALLOWED_PROJECT_ROLES
    # Project-level grants go only through that list.
    for body in resources(tf, "google_project_iam_member").values():
        assert body["role"] == "${each.value}" and "local.project_roles" in body["for_each"]
    for rtype, allowed in RESOURCE_ROLES.items():
        (body,) = resources(tf, rtype).values()
        assert unquote(body["role"]) in allowed
        assert body["member"] == "${local.run_member}"
    # Nothing else grants roles (no project-wide secret access, no editor/owner).
    iam_types = {
        t
        for block in tf["resource"]
        for t in map(unquote, block)
        if re.search(r"_iam_(member|binding|policy)$", t)
    }
    assert iam_types == {"google_project_iam_member", *RESOURCE_ROLES}
    text = "\n".join(p.read_text() for p in TF.glob("*.tf"))
    assert not re.search(r"roles/(owner|editor|secretmanager\.admin|spanner\.admin)", text)


def test_names_match_what_deploy_sh_derives(tf):
    (sa,) = resources(tf, "google_service_account").values()
    assert unquote(sa["account_id"]) == "${local.name}-run"
    (repo,) = resources(tf, "google_artifact_registry_repository").values()
    assert repo["repository_id"] == "${local.name}"
    (instance,) = resources(tf, "google_spanner_instance").values()
    assert instance["name"] == "${local.name}"
    deploy = (TF.parent / "deploy.sh").read_text()
    for derived in (
        'SERVICE_ACCOUNT="${SERVICE_NAME}-run@${PROJECT_ID}.iam.gserviceaccount.com"',
        'REPOSITORY="${REGION}-docker.pkg.dev/${PROJECT_ID}/${SERVICE_NAME}"',
        'SPANNER_INSTANCE="${SERVICE_NAME}"',
    ):
        assert derived in deploy


def test_state_backend_and_required_apis(tf):
    (terraform,) = tf["terraform"]
    assert "gcs" in {unquote(k) for b in terraform["backend"] for k in b}
    apis = {unquote(a) for a in locals_of(tf)["apis"]}
    for api in ("run", "redis", "spanner", "secretmanager", "aiplatform", "artifactregistry", "compute"):
        assert f"{api}.googleapis.com" in apis
