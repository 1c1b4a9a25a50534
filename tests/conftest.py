"""Shared fixtures: the GLPI sandbox as a real HTTP server and the gateway under real gunicorn."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
import requests

from glpi_gateway.challenge import solve
from glpi_sandbox import GlpiSandbox

ROOT = Path(__file__).resolve().parent.parent
SANDBOX_APP_TOKEN = "sandbox-app-token-0123456789abcdefghij"
SANDBOX_USER_TOKEN = "sandbox-user-token-0123456789abcdefghi"
# Every variable the gateway reads: set blank unless a test wants it, so a developer's
# own .env or shell never leaks into a test run.
GATEWAY_VARIABLES = (
    "GLPI_URL",
    "GLPI_APP_TOKEN",
    "GLPI_USER_TOKEN",
    "GLPI_CNPJ_FIELD_ID",
    "GLPI_CNPJ_FIELD_LABEL",
    "GLPI_DEFAULT_CATEGORY_ID",
    "GLPI_REQUESTER_USER_ID",
    "GLPI_REQUEST_TYPE_ID",
    "GLPI_TIMEOUT",
    "GLPI_VERIFY_TLS",
    "GLPI_ENTITY_CACHE_TTL",
    "GLPI_FOLLOW_CACHE_TTL",
    "GLPI_ENTITY_NEGATIVE_CACHE_TTL",
    "GLPI_SESSION_MAX_AGE",
    "HEALTH_CACHE_TTL",
    "HEALTH_QUEUE_MAX_AGE",
    "MAX_BODY_BYTES",
    "ATTACHMENTS_MAX_COUNT",
    "ATTACHMENTS_MAX_BYTES",
    "MAX_MULTIPART_BODY_BYTES",
    "FORM_ATTACHMENTS_MAX_COUNT",
    "FORM_ATTACHMENTS_MAX_BYTES",
    "FORM_MAX_MULTIPART_BODY_BYTES",
    "MULTIPART_MAX_IN_FLIGHT",
    "LOG_LEVEL",
    "METRICS_ENABLED",
    "PROMETHEUS_MULTIPROC_DIR",
    "FORM_FRAME_ANCESTORS",
    "WEB_CONCURRENCY",
    "GUNICORN_THREADS",
    "GUNICORN_WORKER_CLASS",
    "GUNICORN_WORKER_CONNECTIONS",
    "GUNICORN_CMD_ARGS",
    "API_KEYS",
    "CORS_ORIGINS",
    "RATE_LIMIT_PER_IP",
    "RATE_LIMIT_PER_KEY",
    "TRUSTED_PROXIES",
    "DATA_DIR",
    "REDIS_URL",
    "REDIS_KEY_PREFIX",
    "IDEMPOTENCY_TTL",
    "PROTOCOL_TTL_DAYS",
    "RATE_LIMIT_LOOKUP_PER_IP",
    "DEDUPE_WINDOW_SECONDS",
    "QUEUE_WHEN_UNAVAILABLE",
    "QUEUE_RETRY_MAX_SECONDS",
    "FORM_API_KEY_NAME",
    "FORM_CHALLENGE_DIFFICULTY",
    "FORM_CHALLENGE_TTL",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _one_connection_per_request() -> requests.Session:
    """A reused keep-alive connection can be closed by gunicorn (keepalive = 5 s) just as a slow
    test sends on it, and requests does not resend a POST: tests would fail by chance."""
    session = requests.Session()
    session.headers["Connection"] = "close"
    return session


@dataclass
class GatewayProcess:
    """The gateway served by gunicorn exactly as in production, on a free local port."""

    process: subprocess.Popen
    url: str
    log_path: Path
    exit_code: int | None = None
    session: requests.Session = field(default_factory=_one_connection_per_request)

    def post_ticket(self, body, **kwargs) -> requests.Response:
        return self.session.post(f"{self.url}/criar-chamado", json=body, timeout=30, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.session.get(f"{self.url}{path}", timeout=30, **kwargs)

    def logs(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        """SIGKILL to gunicorn and its workers at once: no shutdown code runs anywhere."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.session.close()

    def stop(self) -> None:
        self.session.close()  # an idle keep-alive connection would hold up the graceful shutdown
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def gateway_environment(settings: dict[str, str]) -> dict[str, str]:
    """This process's environment with every gateway variable blank except `settings`."""
    env = {name: value for name, value in os.environ.items() if name not in GATEWAY_VARIABLES}
    env.update({name: "" for name in GATEWAY_VARIABLES})
    env.update(settings)
    return env


def start_gateway(tmp_dir: Path, settings: dict[str, str], wait: float = 15.0) -> GatewayProcess:
    """Start `gunicorn "app:create_app()"` from the repository root with only `settings` configured.

    Returns once /ping answers, or once gunicorn exited (then `exit_code` is set).
    """
    port = free_port()
    env = gateway_environment(
        {
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "WEB_CONCURRENCY": "1",
            "GUNICORN_THREADS": "4",
            "DATA_DIR": str(tmp_dir / f"data-{port}"),
            **settings,
        }
    )
    log_path = tmp_dir / f"gateway-{port}.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "app:create_app()"],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so kill() reaches the workers too
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
        except (requests.ConnectionError, requests.Timeout):
            pass  # gunicorn's socket accepts before the worker is ready to answer
        time.sleep(0.05)
    gateway.stop()
    raise RuntimeError(f"gateway did not start:\n{gateway.logs()}")


def solved_challenge(process: GatewayProcess) -> dict[str, str]:
    """The headers of a freshly solved form challenge, as formulario.js sends them."""
    issued = process.get("/formulario/desafio").json()
    return {"X-Desafio": issued["desafio"], "X-Desafio-Solucao": solve(issued["desafio"], issued["dificuldade"])}


def sandbox_settings(sandbox_url: str, **overrides: str) -> dict[str, str]:
    settings = {
        "GLPI_URL": sandbox_url,
        "GLPI_APP_TOKEN": SANDBOX_APP_TOKEN,
        "GLPI_USER_TOKEN": SANDBOX_USER_TOKEN,
        "GLPI_DEFAULT_CATEGORY_ID": "1",
        "GLPI_REQUEST_TYPE_ID": "7",
        "GLPI_TIMEOUT": "2",
        "QUEUE_RETRY_MAX_SECONDS": "1",
        # Most tests send the same body again and expect a new ticket; the dedupe tests turn it on.
        "DEDUPE_WINDOW_SECONDS": "0",
        # Tests poll GET /chamados/<protocolo> far faster than a customer; the limit tests set their own.
        "RATE_LIMIT_LOOKUP_PER_IP": "100000/hour",
    }
    settings.update(overrides)
    return settings


@pytest.fixture(scope="session")
def redis_url():
    """REDIS_URL of a reachable Redis. Skipped locally when REDIS_URL is unset; in CI
    (CI=true, where .ci/run starts Redis) a missing or unreachable Redis fails."""
    url = os.environ.get("REDIS_URL", "").strip()
    in_ci = os.environ.get("CI", "").lower() == "true"
    if not url:
        if in_ci:
            pytest.fail("CI=true but REDIS_URL is not set: .ci/run must start Redis and export REDIS_URL")
        pytest.skip("REDIS_URL not set (install redis-server and export REDIS_URL to run these tests)")
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.fail(f"REDIS_URL is set but Redis does not answer: {error}")
    finally:
        client.close()
    return url


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server of this test's own, which the test may stop."""
    server = shutil.which("redis-server")
    if server is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but redis-server is not installed")
        pytest.skip("redis-server not installed")
    port = free_port()
    process = subprocess.Popen(
        [
            server,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
    yield process, url
    if process.poll() is None:
        process.kill()
        process.wait()


@pytest.fixture
def redis_prefix():
    """A key prefix of this test's own: parallel test runs may share the Redis server."""
    return f"test-{uuid.uuid4().hex}:"


@pytest.fixture(scope="module")
def sandbox():
    box = GlpiSandbox(app_token=SANDBOX_APP_TOKEN, user_tokens={SANDBOX_USER_TOKEN: 7})
    box.url = box.start(host="127.0.0.1", port=0)
    yield box
    box.stop()


@pytest.fixture
def new_sandbox():
    """Sandboxes with a test's own switches, not started yet; all stopped after the test."""
    created: list[GlpiSandbox] = []

    def _new(**options) -> GlpiSandbox:
        box = GlpiSandbox(**{"app_token": SANDBOX_APP_TOKEN, "user_tokens": {SANDBOX_USER_TOKEN: 7}, **options})
        created.append(box)
        return box

    yield _new
    for box in created:
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
