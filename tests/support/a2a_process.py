"""Start A2A servers as separate processes for the tests (and the benchmark) and wait until their
agent card answers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


class A2AProcess:
    """One server process; `url` is its base URL (the line `A2A_READY <url>` it prints)."""

    def __init__(
        self, argv: Sequence[str], *, env: dict[str, str] | None = None, card_path: str = ""
    ) -> None:
        self.proc = subprocess.Popen(
            list(argv),
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output: list[str] = []
        try:
            self.url = self._ready(card_path)
        except BaseException:
            self.stop()  # never leave a half-started server behind
            raise

    def _ready(self, card_path: str, timeout: float = 120.0) -> str:
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        url = None
        while url is None:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"A2A server exited ({self.proc.poll()}):\n{''.join(self.output)[-3000:]}")
            self.output.append(line)
            if line.startswith("A2A_READY "):
                url = line.split(None, 1)[1].strip()
            if time.monotonic() > deadline:
                raise RuntimeError("A2A server did not start")
        card = f"{url}{card_path or '/.well-known/agent-card.json'}"
        while True:
            try:
                httpx.get(card, timeout=1.0)  # any answer (a 401 included) means it listens
                return url
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"A2A server card never answered:\n{''.join(self.output)[-3000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout:
            self.proc.stdout.close()


def scripted_server(mode: str, *extra: str, env: dict[str, str] | None = None) -> A2AProcess:
    return A2AProcess([sys.executable, "-m", "tests.support.a2a_server", "--mode", mode, *extra], env=env)
