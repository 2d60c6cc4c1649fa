"""The production image definition: stages, user, command, health check, build context.

No Docker engine here, so the Dockerfile is parsed; the slow test builds the wheel the image
installs and checks the router adapter weights (package data) make it in."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import backend.gunicorn_conf as gconf
from backend.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGES = [p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, args = line.partition(" ")
            out.append((op.upper(), args.strip()))
    return out


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for op, args in instructions():
        if op == "FROM":
            result.append([])
        if result:
            result[-1].append((op, args))
    return result


def test_multi_stage_slim_base():
    all_stages = stages()
    assert len(all_stages) >= 2
    for stage in all_stages:
        assert re.match(r"python:3\.11-slim( AS \w+)?$", stage[0][1]), stage[0]
    final = all_stages[-1]
    copies = [a for op, a in final if op == "COPY"]
    # The runtime stage gets only the built virtualenv, never the source tree or build tools.
    assert copies == ["--from=build /opt/venv /opt/venv"]
    assert not any(op == "RUN" and "apt-get install" in a for op, a in final)


def test_runs_as_a_non_root_user():
    final = stages()[-1]
    users = [a for op, a in final if op == "USER"]
    assert users, "no USER in the runtime stage"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    # Nothing after USER switches back to root.
    assert [op for op, _ in final].index("USER") > max(i for i, (op, _) in enumerate(final) if op == "RUN")


def test_cmd_is_gunicorn_gthread_with_the_project_config():
    (cmd,) = [a for op, a in stages()[-1] if op == "CMD"]
    assert cmd.startswith("["), "exec form, so gunicorn is PID 1 and gets SIGTERM from Cloud Run"
    assert cmd == '["gunicorn", "-c", "python:backend.gunicorn_conf", "backend.wsgi:app"]'
    assert (gconf.worker_class, gconf.workers) == ("gthread", 1)
    assert gconf.timeout == 0  # WebSockets outlive any worker timeout


def test_healthcheck_port_and_environment():
    final = stages()[-1]
    (health,) = [a for op, a in final if op == "HEALTHCHECK"]
    assert "/healthz" in health and "CMD" in health
    assert [a for op, a in final if op == "EXPOSE"] == [str(Settings.model_fields["port"].default)]
    env = " ".join(a for op, a in final if op == "ENV")
    for required in ("HF_HUB_OFFLINE=1", "TRANSFORMERS_OFFLINE=1", "PORT=8080", "HOST=0.0.0.0"):
        assert required in env
    # ENV names the app reads are Settings fields (the rest configure Python and Hugging Face).
    names = set(re.findall(r"(?:^|\s)([A-Z_]+)=", env))
    others = {"PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"}
    assert names - others - {"HF_HOME"} <= {n.upper() for n in Settings.model_fields}


def test_cpu_torch_from_the_wheel_index_pinned_like_pyproject():
    build = stages()[0]
    args = dict(a.split("=", 1) for op, a in build if op == "ARG" and "=" in a)
    assert args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    (pin,) = [d for d in PYPROJECT["project"]["dependencies"] if d.startswith("torch")]
    run = " ".join(a for op, a in build if op == "RUN")
    assert f'--index-url "$TORCH_INDEX_URL" {pin}' in run


def test_every_python_package_is_copied_and_not_ignored():
    copied = {a.split()[0] for op, a in stages()[0] if op == "COPY" and not a.startswith("--")}
    assert set(PACKAGES) <= copied, f"Dockerfile misses packages: {set(PACKAGES) - copied}"
    ignore = [ln for ln in (ROOT / ".dockerignore").read_text().splitlines() if ln and not ln.startswith("#")]
    assert ignore[0] == "**"  # allow-list style: a new top-level file stays out by default
    for pkg in PACKAGES:
        assert f"!{pkg}/" in ignore
    for secret in ("**/.env", "**/*.sqlite3"):
        assert secret in ignore
    # Cloud Build's upload (gcloud builds submit) skips local state and secrets as well.
    gcloud = (ROOT / ".gcloudignore").read_text().splitlines()
    assert "#!include:.gitignore" in gcloud and ".env*" in gcloud


@pytest.mark.slow
def test_wheel_bakes_in_the_router_adapter(tmp_path):
    """The image runs `pip install .`: whatever the wheel lacks, the image lacks."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__", "node_modules"))
    adapters = src / "orchestrator" / "routing" / "adapters"
    if not (ROOT / "orchestrator" / "routing" / "adapters").exists():
        # No adapter trained yet: a stand-in with the files peft writes.
        (adapters / "router").mkdir(parents=True)
        (adapters / "router" / "adapter_config.json").write_text("{}")
        (adapters / "router" / "adapter_model.safetensors").write_bytes(b"\0" * 64)
    expected = {str(p.relative_to(src)) for p in adapters.rglob("*") if p.is_file() and p.suffix != ".pyc"}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(src),
        ],
        check=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert expected and expected <= names, sorted(expected - names)
    assert "backend/gunicorn_conf.py" in names and "backend/wsgi.py" in names
