"""The suite's fixtures, and nothing else: the GLPI sandbox as a real HTTP server, the gateway under real
gunicorn, Redis.

What test modules share besides fixtures is in tests/helpers.py (test data, assertions, a fake clock)
and tests/harness.py (the gateway as a process, also used by `make bench`): import from those, never
from this file or from another test module (tests/test_suite_layout.py checks it).

Two tiers. A test that starts a process (gunicorn, redis-server, Chromium, `python app.py doctor`, the
sandbox's command line) or uses the shared Redis is marked `slow`; the rest (unit tests, the app
in-process through `app.test_client()`, the sandbox as a server inside this process) is the fast
tier that `make test-fast` (`pytest -m "not slow"`) runs. The mark is written where the test is:
`pytestmark = pytest.mark.slow` in a module whose every test is slow, `@pytest.mark.slow` on the slow
tests of a mixed module, `pytest.param("redis", marks=pytest.mark.slow)` in a fixture's params.
Forgetting it cannot go unnoticed: a test without the mark fails as soon as it starts a process
(an audit hook below) or asks for `redis_url`.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import redis
from flask.testing import FlaskClient

from glpi_sandbox import GlpiSandbox
from tests.harness import (
    SANDBOX_APP_TOKEN,
    SANDBOX_USER_TOKEN,
    GatewayProcess,
    free_port,
    has_chromium,
    headless_chromium,
    sandbox_settings,
    start_gateway,
)
from tests.helpers import in_process_app, skip_or_fail

# --- the two tiers ----------------------------------------------------------------------------

# What starts another program or process: subprocess (and so selenium's chromedriver), os.system,
# posix_spawn, exec and fork (multiprocessing).
PROCESS_EVENTS = frozenset({"subprocess.Popen", "os.system", "os.posix_spawn", "os.exec", "os.fork", "os.forkpty"})
_fast_test: pytest.Item | None = None  # the test being run, while it is one of the fast tier


def _refuse_processes_in_fast_tests(event: str, args: tuple) -> None:
    if _fast_test is not None and event in PROCESS_EVENTS:
        test, started = _fast_test.nodeid, args[1] if event == "subprocess.Popen" else args[:1]
        pytest.fail(
            f"{test} inicia um processo ({started!r}) sem a marca slow: marque-o com @pytest.mark.slow "
            "(ou pytestmark = pytest.mark.slow no módulo) para que o make test-fast o deixe de fora"
        )


sys.addaudithook(_refuse_processes_in_fast_tests)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Set up, run and tear down each test not marked slow under the audit hook's watch."""
    global _fast_test
    _fast_test = None if item.get_closest_marker("slow") else item
    try:
        return (yield)
    finally:
        _fast_test = None


# --- Redis ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def reachable_redis_url():
    """REDIS_URL of a reachable Redis. Without REDIS_URL: skipped locally, a failure in CI (CI=true,
    where .ci/run starts Redis). Set but not answering: a failure everywhere."""
    url = os.environ.get("REDIS_URL", "").strip()
    if not url:
        skip_or_fail("REDIS_URL não definida: suba um redis-server e exporte REDIS_URL (veja docs/desenvolvimento.md)")
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.fail(f"REDIS_URL está definida, mas o Redis não responde: {error}")
    finally:
        client.close()
    return url


@pytest.fixture
def redis_url(request):
    """The shared Redis, for tests marked slow (the fast tier needs no service outside pytest)."""
    if request.node.get_closest_marker("slow") is None:
        pytest.fail(f"{request.node.nodeid} usa o Redis sem a marca slow: marque-o com @pytest.mark.slow")
    return request.getfixturevalue("reachable_redis_url")


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server of this test's own, which the test may stop."""
    server = shutil.which("redis-server")
    if server is None:
        skip_or_fail("redis-server ausente: apt-get install -y redis-server")
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


@pytest.fixture(params=["sqlite", "redis"])
def backend(request):
    """Gateway settings selecting the store: SQLite in the gateway's own DATA_DIR, or Redis."""
    if request.param == "sqlite":
        return {}
    return {
        "REDIS_URL": request.getfixturevalue("redis_url"),
        "REDIS_KEY_PREFIX": request.getfixturevalue("redis_prefix"),
    }


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


@pytest.fixture(scope="module")
def client(sandbox, tmp_path_factory):
    """The gateway inside this process through Flask's test client, configured like `gateway`: for
    answers that need no real process (status, headers, body), in milliseconds."""
    settings = sandbox_settings(sandbox.url, DATA_DIR=str(tmp_path_factory.mktemp("client-data")))
    with in_process_app(settings) as app:
        yield app.test_client()


@pytest.fixture
def make_client(sandbox, tmp_path):
    """In-process gateways with particular settings, against the module's sandbox, through Flask's test
    client; the n-th gets DATA_DIR tmp_path/d<n> unless given one. All are closed after the test."""
    with contextlib.ExitStack() as apps:
        made = itertools.count()

        def _make(**overrides: str) -> FlaskClient:
            settings = {**sandbox_settings(sandbox.url), "DATA_DIR": str(tmp_path / f"d{next(made)}"), **overrides}
            return apps.enter_context(in_process_app(settings)).test_client()

        yield _make


@pytest.fixture
def launch(tmp_path, redis_prefix):
    """Start extra gateways with particular settings; all are stopped after the test.

    Gateways given a REDIS_URL and no REDIS_KEY_PREFIX get this test's own prefix, shared by the
    test's gateways and no one else's: the default prefix would let the gateways of other tests (or
    of a parallel run) take this test's queue, its drainer lease and its rate-limit counters.
    """
    started: list[GatewayProcess] = []

    def _launch(settings: dict[str, str], wait: float = 15.0) -> GatewayProcess:
        if settings.get("REDIS_URL") and not settings.get("REDIS_KEY_PREFIX"):
            settings = {**settings, "REDIS_KEY_PREFIX": redis_prefix}
        process = start_gateway(tmp_path, settings, wait)
        started.append(process)
        return process

    yield _launch
    for process in started:
        process.stop()


# --- the browser: headless Chromium (tests/test_form_browser.py, tests/test_follow_browser.py) ---------


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per test module, at desktop size. Without it: skipped locally, a failure in CI."""
    if not has_chromium():
        skip_or_fail("Chromium ausente: apt-get install -y chromium chromium-driver")
    with headless_chromium() as driver:
        yield driver


@pytest.fixture
def foreign_site():
    """Another origin (its own port) serving whatever HTML a test puts in `pages`."""
    pages: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = pages.get(self.path, "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    server.block_on_close = False  # the browser may hold idle connections open
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.pages = pages
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()


# --- Docker: the production image (tests/test_docker.py, tests/test_compose.py) --------------------


@pytest.fixture(scope="session")
def docker_cli() -> str:
    """The docker command, with an engine that answers. Skipped locally without one; in CI (CI=true,
    where .ci/run starts dockerd and exports DOCKER_HOST) a missing engine fails."""
    command = shutil.which("docker")
    if command is None:
        problem = "the docker command is not installed"
    else:
        info = subprocess.run(
            [command, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=60
        )
        problem = None if info.returncode == 0 else f"no Docker engine answers: {info.stderr.strip()}"
    if problem:
        skip_or_fail(
            f"{problem}: em CI, .ci/run sobe o dockerd e exporta DOCKER_HOST; localmente, veja "
            "docs/desenvolvimento.md, 'Docker (testes da imagem)'"
        )
    return command


def pytest_terminal_summary(terminalreporter):
    """The figures the Docker tests measured (image size, time to healthy, `docker stop`), in the log."""
    lines = []
    for outcome in ("passed", "failed"):
        for report in terminalreporter.stats.get(outcome, []):
            if report.when != "call" or "docker" not in report.keywords:
                continue
            figures = [
                f"{name[len('docker:') :]}: {value}"
                for name, value in report.user_properties
                if name.startswith("docker:")
            ]
            lines.append(f"{report.nodeid.split('::')[-1]} ({outcome}, {report.duration:.1f} s)")
            lines.extend(f"    {figure}" for figure in figures)
    if lines:
        terminalreporter.write_sep("-", "docker: the production image")
        for line in lines:
            terminalreporter.write_line(line)
