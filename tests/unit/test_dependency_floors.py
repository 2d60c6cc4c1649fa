"""Version floors must admit no release that lacks an API the code uses (issue 14, item 5).

Each floor is checked against the release notes that introduced the API, not against whatever
happens to be installed here: a floor that admits an older release lets a fresh install pick
one that fails on first contact with Spanner or Terraform.
"""

from __future__ import annotations

import inspect
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

REPO = Path(__file__).resolve().parents[2]


def _requirement(name: str) -> Requirement:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    (req,) = [Requirement(d) for d in deps if Requirement(d).name == name]
    return req


def _terraform_google_constraint() -> SpecifierSet:
    text = (REPO / "infra/terraform/versions.tf").read_text()
    block = re.search(r"google\s*=\s*\{(.*?)\}", text, re.S)
    assert block, "versions.tf declares no google provider"
    version = re.search(r'version\s*=\s*"([^"]+)"', block.group(1))
    assert version, "the google provider has no version constraint"
    # Terraform's ">= 6.4, < 8.0" reads the same as a PEP 440 specifier set.
    return SpecifierSet(version.group(1).replace(" ", ""))


def test_spanner_floor_admits_only_releases_with_float32_params_and_disable_builtin_metrics() -> None:
    """python-spanner release notes (https://github.com/googleapis/python-spanner/blob/main/CHANGELOG.md):

    - 3.44.0 (2024-03-13): "Add support of float32 type (#1113)" — param_types.FLOAT32, which
      store/spanner/knowledge.py binds the query vector with (ARRAY<FLOAT32> embedding column).
    - 3.60.0 (2025-12-10): "Provide Spanner Option to disable metrics (#1460)" — the
      `disable_builtin_metrics` argument of spanner.Client, which store/spanner/connection.py passes
      for the emulator; older clients raise TypeError on the unknown keyword.
    """
    spec = _requirement("google-cloud-spanner").specifier
    for too_old in ("3.40.0", "3.43.0", "3.44.0", "3.59.0"):
        assert not spec.contains(too_old), f"floor admits {too_old}, which lacks an API in use"
    assert spec.contains("3.60.0")


def test_installed_spanner_client_has_the_apis_the_floor_promises() -> None:
    spanner = pytest.importorskip("google.cloud.spanner")
    from google.cloud.spanner_v1 import param_types

    assert "disable_builtin_metrics" in inspect.signature(spanner.Client.__init__).parameters
    assert param_types.FLOAT32.code.name == "FLOAT32"


def test_terraform_google_provider_floor_has_spanner_instance_edition() -> None:
    """terraform-provider-google CHANGELOG, 6.4.0 (September 23, 2024), IMPROVEMENTS: "spanner: added
    `edition` field to `google_spanner_instance` resource (#19449)"
    (https://github.com/hashicorp/terraform-provider-google/blob/main/CHANGELOG.md). spanner.tf sets
    `edition = "ENTERPRISE"` (vector and full-text search need it); 6.0–6.3 reject the argument."""
    assert re.search(r'edition\s*=\s*"ENTERPRISE"', (REPO / "infra/terraform/spanner.tf").read_text())
    spec = _terraform_google_constraint()
    for too_old in ("6.0.0", "6.3.0"):
        assert not spec.contains(too_old), f"provider constraint admits {too_old} (no `edition`)"
    assert spec.contains("6.4.0") and spec.contains("7.0.0")
