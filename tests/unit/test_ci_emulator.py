""".ci/run ends the Spanner emulator it started, by process group, and nothing else (issue 14, item 13).

The real gateway_main starts emulator_main as a child and leaves it running when the gateway
itself is terminated, which is why the old trap added `pkill -f cloud_spanner_emulator/emulator_main`
— a pattern that also ends any other emulator on the machine (another CI run's, a developer's).
The fake gateway below behaves the same way, so the test runs the real .ci/run without the real
emulator and with `make` stubbed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testkit.servers import free_port

# Runs .ci/run, which starts (fake) emulator and gateway processes that listen on ports.
pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CI_RUN = REPO / ".ci" / "run"

FAKE_GATEWAY = """\
import os, subprocess, sys
port = int(sys.argv[sys.argv.index("--grpc_port") + 1])
listener = (
    "import socket, time\\n"
    "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\\n"
    f"s.bind(('127.0.0.1', {port})); s.listen(); time.sleep(120)\\n"
)
# Like gateway_main: the emulator is a child that outlives a terminated gateway.
child = subprocess.Popen([sys.executable, "-c", listener])
with open(os.environ["FAKE_EMULATOR_PIDS"], "w") as f:
    f.write(f"{os.getpid()} {child.pid}")
child.wait()
"""


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper has already ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _ci_run_can_skip_installs() -> str | None:
    """.ci/run installs what is missing first; run it only where that is a no-op (no network)."""
    if not shutil.which("dpkg") or not shutil.which("npm"):
        return "dpkg/npm not available"
    for pkg in ("make", "gcc", "chromium", "nginx-light", "shellcheck"):
        if subprocess.run(["dpkg", "-s", pkg], capture_output=True).returncode != 0:
            return f"{pkg} not installed (.ci/run would apt-get it)"
    if not (REPO / "zendesk_app" / "node_modules").is_dir():
        return "zendesk_app/node_modules missing (.ci/run would npm ci)"
    return None


def test_ci_run_never_kills_by_command_line_pattern() -> None:
    text = CI_RUN.read_text() + (REPO / ".ci" / "emulator.sh").read_text()
    code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    assert "pkill" not in code and "killall" not in code


def test_ci_run_trap_ends_its_emulator_group_and_spares_other_emulators(tmp_path: Path) -> None:
    """bash(1), SHELL BUILTIN COMMANDS, kill: "If pid is negative ... the signal is sent to every
    process in the process group"; `set -m` (job control) runs a background job "in a separate
    process group" (bash manual, Job Control Basics:
    https://www.gnu.org/software/bash/manual/html_node/Job-Control-Basics.html). So .ci/run's
    EXIT trap can end the gateway and the emulator it spawned by that group id — and must leave
    alone an unrelated process whose command line merely contains the emulator's path."""
    reason = _ci_run_can_skip_installs()
    if reason:
        pytest.skip(reason)
    gateway = tmp_path / "gateway_main"
    gateway.write_text(f"#!{sys.executable}\n{FAKE_GATEWAY}")
    gateway.chmod(0o755)
    stub_bin = tmp_path / "bin"
    stub_bin.mkdir()
    seen = tmp_path / "make_saw"
    (stub_bin / "make").write_text(f'#!/bin/sh\necho "$SPANNER_EMULATOR_HOST" > "{seen}"\nexit 0\n')
    (stub_bin / "make").chmod(0o755)
    pids_file = tmp_path / "pids"
    port = free_port()
    # Someone else's emulator: its command line matches the old `pkill -f` pattern.
    decoy = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "/x/cloud_spanner_emulator/emulator_main"]
    )
    try:
        env = {k: v for k, v in os.environ.items() if k != "SPANNER_EMULATOR_HOST"}
        env.update(
            PATH=f"{stub_bin}:{env['PATH']}",
            SPANNER_EMULATOR_BIN=str(gateway),
            SPANNER_EMULATOR_PORT=str(port),
            FAKE_EMULATOR_PIDS=str(pids_file),
        )
        result = subprocess.run(["bash", str(CI_RUN)], env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        assert seen.read_text().strip() == f"localhost:{port}"  # the tests ran against it
        gateway_pid, emulator_pid = map(int, pids_file.read_text().split())
        deadline = time.monotonic() + 5
        while (_alive(gateway_pid) or _alive(emulator_pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(gateway_pid), "gateway still running after .ci/run exited"
        assert not _alive(emulator_pid), "the gateway's emulator child outlived .ci/run"
        assert decoy.poll() is None, "an unrelated emulator_main was killed"
    finally:
        decoy.send_signal(signal.SIGKILL)
        decoy.wait()
