"""The gateway as a real process: gunicorn on a free loopback port, configured only by what a test passes;
and headless Chromium, to look at its pages.

Shared by the tests (their fixtures are in conftest.py), by `make bench` (`python -m bench.bench`) and by
scripts/screenshot_acompanhar.py, so it needs neither pytest nor the GLPI sandbox: import it as
`tests.harness`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import requests

if TYPE_CHECKING:
    from selenium.webdriver import Chrome

ROOT = Path(__file__).resolve().parent.parent
SANDBOX_APP_TOKEN = "sandbox-app-token-0123456789abcdefghij"
SANDBOX_USER_TOKEN = "sandbox-user-token-0123456789abcdefghi"
# Every variable the gateway reads (config.py, gunicorn.conf.py) or gunicorn itself reads: set blank
# unless a test wants it, so a developer's own .env or shell never leaks into a test run.
# tests/test_configuration_variables.py fails when the code reads one that is missing here.
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
    "HOST",
    "PORT",
    "WEB_CONCURRENCY",
    "GUNICORN_THREADS",
    "GUNICORN_WORKER_CLASS",
    "GUNICORN_TIMEOUT",
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
    "QUEUE_MAX_ATTACHMENT_BYTES",
    "FORM_API_KEY_NAME",
    "FORM_CHALLENGE_DIFFICULTY",
    "FORM_CHALLENGE_TTL",
    "FORM_CATEGORIES",
    "FORM_MAX_URGENCY",
    "EMAIL_NOTIFY_LIMIT",
    "EMAIL_NOTIFY_UNLIMITED_KEYS",
    "RATE_LIMIT_IPV6_PREFIX",
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

    def records(self) -> list[dict]:
        """The JSON log lines, decoded (gunicorn's lines before logging is set up are plain text)."""
        return [json.loads(line) for line in self.logs().splitlines() if line.startswith("{")]

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
    for _ in range(3):
        gateway = _start_gateway_on_a_free_port(tmp_dir, settings, wait)
        # free_port() only finds a port free: another process (a parallel test run) may take it
        # before gunicorn binds it. Then gunicorn gives up with "Connection in use"; try another.
        if gateway.exit_code is None or "Connection in use" not in gateway.logs():
            break
    return gateway


def _start_gateway_on_a_free_port(tmp_dir: Path, settings: dict[str, str], wait: float) -> GatewayProcess:
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


def sandbox_settings(sandbox_url: str, **overrides: str) -> dict[str, str]:
    """The settings of a gateway in front of a GLPI sandbox made with the SANDBOX_* tokens."""
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


# --- headless Chromium ------------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# The machine has no network: nothing in the browser may try to reach one.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def has_chromium() -> bool:
    """Debian's `chromium` and `chromium-driver` are installed."""
    return os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)


@contextmanager
def headless_chromium(width: int = 1280, height: int = 1000) -> Iterator[Chrome]:
    """Chromium without a window, driven by Selenium, with a fresh profile that is deleted afterwards."""
    from selenium import webdriver  # only the browser tests, the benchmark and the screenshot need it
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        options.add_argument(f"--user-data-dir={profile}")
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        try:
            driver.set_window_size(width, height)
            yield driver
        finally:
            driver.quit()
