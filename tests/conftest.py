"""Shared fixtures: the GLPI sandbox as a real HTTP server and the gateway under real gunicorn."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from glpi_sandbox import GlpiSandbox

ROOT = Path(__file__).resolve().parent.parent
SANDBOX_APP_TOKEN = "sandbox-app-token-0123456789abcdefghij"
SANDBOX_USER_TOKEN = "sandbox-user-token-0123456789abcdefghi"
# Every variable the gateway reads: set blank unless a test wants it, so a developer's
# own .env or shell never leaks into a test run.
GATEWAY_VARIABLES = (
    "GLPI_URL", "GLPI_APP_TOKEN", "GLPI_USER_TOKEN", "GLPI_CNPJ_FIELD_ID", "GLPI_CNPJ_FIELD_LABEL",
    "GLPI_DEFAULT_CATEGORY_ID", "GLPI_REQUESTER_USER_ID", "GLPI_REQUEST_TYPE_ID", "GLPI_TIMEOUT",
    "GLPI_VERIFY_TLS", "GLPI_ENTITY_CACHE_TTL", "GLPI_ENTITY_NEGATIVE_CACHE_TTL", "GLPI_SESSION_MAX_AGE",
    "MAX_BODY_BYTES", "LOG_LEVEL", "WEB_CONCURRENCY", "GUNICORN_THREADS",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class GatewayProcess:
    """The gateway served by gunicorn exactly as in production, on a free local port."""

    process: subprocess.Popen
    url: str
    log_path: Path
    exit_code: int | None = None
    session: requests.Session = field(default_factory=requests.Session)

    def post_ticket(self, body, **kwargs) -> requests.Response:
        return self.session.post(f"{self.url}/criar-chamado", json=body, timeout=30, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.session.get(f"{self.url}{path}", timeout=30, **kwargs)

    def logs(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.session.close()


def start_gateway(tmp_dir: Path, settings: dict[str, str], wait: float = 15.0) -> GatewayProcess:
    """Start `gunicorn "app:create_app()"` from the repository root with only `settings` configured.

    Returns once /ping answers, or once gunicorn exited (then `exit_code` is set).
    """
    port = free_port()
    env = {name: value for name, value in os.environ.items() if name not in GATEWAY_VARIABLES}
    env.update({name: "" for name in GATEWAY_VARIABLES})
    env.update({"HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "1", "GUNICORN_THREADS": "4"})
    env.update(settings)
    log_path = tmp_dir / f"gateway-{port}.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "app:create_app()"],
            cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
        )
    gateway = GatewayProcess(process, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if process.poll() is not None:
            gateway.exit_code = process.returncode
            return gateway
        try:
            if requests.get(f"{gateway.url}/ping", timeout=1).status_code == 200:
                return gateway
        except (requests.ConnectionError, requests.Timeout):  # not listening yet, or still loading the app
            pass
        time.sleep(0.05)
    gateway.stop()
    raise RuntimeError(f"gateway did not start:\n{gateway.logs()}")


def sandbox_settings(sandbox_url: str, **overrides: str) -> dict[str, str]:
    settings = {
        "GLPI_URL": sandbox_url,
        "GLPI_APP_TOKEN": SANDBOX_APP_TOKEN,
        "GLPI_USER_TOKEN": SANDBOX_USER_TOKEN,
        "GLPI_DEFAULT_CATEGORY_ID": "1",
        "GLPI_REQUEST_TYPE_ID": "7",
        "GLPI_TIMEOUT": "2",
    }
    settings.update(overrides)
    return settings


@pytest.fixture(scope="module")
def sandbox():
    box = GlpiSandbox(app_token=SANDBOX_APP_TOKEN, user_tokens={SANDBOX_USER_TOKEN: 7})
    box.url = box.start(host="127.0.0.1", port=0)
    yield box
    box.stop()


@pytest.fixture(autouse=True)
def healthy_sandbox(request):
    """Each test starts with a sandbox without faults or latency."""
    yield
    if "sandbox" in request.fixturenames:
        box = request.getfixturevalue("sandbox")
        box.fault = None
        box.fault_endpoints = None
        box.latency_ms = 0


@pytest.fixture(scope="module")
def gateway(sandbox, tmp_path_factory):
    """The gateway under gunicorn, configured against the sandbox."""
    process = start_gateway(tmp_path_factory.mktemp("gateway"), sandbox_settings(sandbox.url))
    assert process.exit_code is None, process.logs()
    yield process
    process.stop()


@pytest.fixture
def launch(tmp_path):
    """Start extra gateways with particular settings; all are stopped after the test."""
    started: list[GatewayProcess] = []

    def _launch(settings: dict[str, str], wait: float = 15.0) -> GatewayProcess:
        process = start_gateway(tmp_path, settings, wait)
        started.append(process)
        return process

    yield _launch
    for process in started:
        process.stop()
