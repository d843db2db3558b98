"""`make local` as a subprocess, the way a user starts and stops it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from offline.mariadb_server import free_port

ROOT = Path(__file__).resolve().parents[1]


def post_json(
    url: str, body: Any, headers: dict[str, str] | None = None, timeout: float = 60
) -> tuple[int, dict[str, str], Any]:
    """POST `body` (JSON, or bytes as they are) as a client would: the status, the headers and
    the JSON answer, an error status included."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers or {}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def stack_environment() -> dict[str, str]:
    """The environment a `make local` starts with: this process's, without the buyer mode the
    in-process tests run the purchase handler in (tests/conftest.py), so that a stack serves
    its own default unless a test asks otherwise."""
    return {name: value for name, value in os.environ.items() if name != "BUYER_AUTH"}


class RunningStack:
    """A `make local` process group and everything it printed."""

    def __init__(self, env: dict[str, str]) -> None:
        self.output: list[str] = []
        self.ready = threading.Event()
        self.process = subprocess.Popen(
            ["make", "--no-print-directory", "local"],
            cwd=ROOT,
            env={**stack_environment(), "PYTHONUNBUFFERED": "1", **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line.rstrip("\n"))
            if line.strip() == "Ready.":
                self.ready.set()

    @property
    def text(self) -> str:
        return "\n".join(self.output)

    def wait_ready(self, timeout: float = 90) -> None:
        if not self.ready.wait(timeout):
            self.stop()
            pytest.fail(f"make local did not become ready:\n{self.text}")

    def stop(self) -> None:
        """Ctrl-C, as a user would: make and the stack both get SIGINT."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGINT)
        try:
            # make itself reports the interrupt; the stack must have shut down on its own.
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            raise
        deadline = time.monotonic() + 10
        while self.processes_left() and time.monotonic() < deadline:
            time.sleep(0.1)

    def processes_left(self) -> list[str]:
        """Processes still in the stack's session (make, python, workers, servers)."""
        listing = subprocess.run(
            ["ps", "-eo", "pid=,sid=,args="], capture_output=True, text=True, check=True
        ).stdout
        return [
            line for line in listing.splitlines() if line.split(None, 2)[1] == str(self.process.pid)
        ]


def ports() -> dict[str, str]:
    return {"LOCAL_API_PORT": str(free_port()), "LOCAL_AWS_PORT": str(free_port())}
