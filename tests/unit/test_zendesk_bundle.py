"""The committed sidebar bundle is the build of zendesk_app/src, and the pages load what exists."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "zendesk_app"
STATIC = ROOT / "backend" / "static" / "sidebar"


def test_templates_reference_committed_assets():
    for template in (ROOT / "backend" / "templates").glob("*.html"):
        for name in re.findall(r"filename='([^']+)'", template.read_text()):
            assert (STATIC / name).is_file(), f"{template.name} loads {name}, which is not built"


def test_committed_bundle_is_current():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (apt-get install nodejs npm; .ci/run does)")
    if not (APP / "node_modules" / "esbuild").exists():
        pytest.skip("zendesk_app/node_modules is missing: run `npm ci` in zendesk_app (make zendesk-build)")
    proc = subprocess.run(
        [node, "build.mjs", "--check"], cwd=APP, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
