"""The production image: built from the Dockerfile and run the way production runs it.

`docker run` with a read-only root filesystem, the data volume and a tmpfs for /tmp, configured only
by `--env-file` and `-e`; GLPI is the sandbox on this machine's loopback, which the container reaches
because it shares the host's network (`--network host`: CI's dockerd has no bridge, and all traffic
stays on loopback). .ci/run builds the image (on a Debian base made locally by
scripts/docker-base.sh) and names it in GATEWAY_IMAGE; without that variable the image is built here,
from BASE_IMAGE if set. Skipped without a Docker engine; with CI=true they fail instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import requests

from tests.harness import ROOT, free_port, sandbox_settings
from tests.helpers import body, queued, tickets_with_protocol

pytestmark = [pytest.mark.slow, pytest.mark.docker]

RUNTIME_UID = 10001  # the Dockerfile's `gateway` user
API_KEY = "site:chave-de-teste-do-container-0123456789abcdef"
AUTH = {"Authorization": "Bearer chave-de-teste-do-container-0123456789abcdef"}
IMAGE_SIZE_BUDGET = 200e6  # bytes; on bookworm-slim it is about 150 MB
HEALTHY_WITHIN = 60.0
DELIVERY_DEADLINE = 60.0
# Signs of trouble in a log: gunicorn's own format and the app's JSON lines.
TROUBLE = (
    "[ERROR]",
    "[WARNING]",
    "[CRITICAL]",
    '"level": "ERROR"',
    '"level": "WARNING"',
    '"level": "CRITICAL"',
    "Traceback",
    "Read-only file system",
    "Permission denied",
)


class Docker:
    def __init__(self, command: str):
        self.command = command

    def __call__(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([self.command, *args], capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
        return result


@pytest.fixture(scope="session")
def docker(docker_cli) -> Docker:
    return Docker(docker_cli)


@pytest.fixture(scope="session")
def image(docker) -> str:
    """The image under test: GATEWAY_IMAGE (built by .ci/run), or built here from the Dockerfile."""
    name = os.environ.get("GATEWAY_IMAGE", "").strip()
    if name:
        if docker("image", "inspect", name, check=False).returncode != 0:
            pytest.fail(f"GATEWAY_IMAGE={name} names no image")
        return name
    name = "glpi-gateway:test"
    base = os.environ.get("BASE_IMAGE", "").strip()
    docker(
        "build",
        "--network",
        "host",
        *(["--build-arg", f"BASE_IMAGE={base}"] if base else []),
        "-t",
        name,
        str(ROOT),
        timeout=900,
    )
    return name


@dataclass
class Container:
    docker: Docker
    name: str
    url: str

    def logs(self) -> str:
        result = self.docker("logs", self.name, check=False)
        return result.stdout + result.stderr

    def state(self) -> dict:
        return json.loads(self.docker("inspect", "--format", "{{json .State}}", self.name).stdout)

    def exec(self, *command: str) -> subprocess.CompletedProcess[str]:
        return self.docker("exec", self.name, *command, check=False)

    def wait_healthy(self) -> float:
        """Seconds from now until Docker's HEALTHCHECK reports healthy."""
        started = time.monotonic()
        while time.monotonic() - started < HEALTHY_WITHIN:
            state = self.state()
            if not state["Running"]:
                raise AssertionError(f"the container exited ({state['ExitCode']}):\n{self.logs()}")
            if state["Health"]["Status"] == "healthy":
                return time.monotonic() - started
            time.sleep(0.2)
        raise AssertionError(f"not healthy after {HEALTHY_WITHIN} s: {self.state()['Health']}\n{self.logs()}")

    def stop(self) -> float:
        """`docker stop`; returns how long it took."""
        started = time.monotonic()
        self.docker("stop", self.name, timeout=60)
        return time.monotonic() - started

    def post_ticket(self, ticket: dict) -> requests.Response:
        return requests.post(
            f"{self.url}/criar-chamado", json=ticket, headers={**AUTH, "Connection": "close"}, timeout=30
        )

    def get(self, path: str) -> requests.Response:
        return requests.get(f"{self.url}{path}", headers={**AUTH, "Connection": "close"}, timeout=30)


@pytest.fixture
def run_gateway(docker, image, tmp_path):
    """`docker run` the image as production does, configured for the sandbox; removed after the test."""
    names: list[str] = []
    volumes: set[str] = set()

    def _run(glpi_url: str, volume: str, **settings: str) -> Container:
        port = free_port()
        env_file = tmp_path / f"gateway-{port}.env"
        env = {**sandbox_settings(glpi_url), "API_KEYS": API_KEY, "HOST": "127.0.0.1", **settings}
        env_file.write_text("".join(f"{key}={value}\n" for key, value in env.items()), encoding="utf-8")
        name = f"glpi-gateway-test-{uuid.uuid4().hex[:10]}"
        names.append(name)
        volumes.add(volume)
        docker(
            "run", "--detach", "--name", name, "--network", "host",
            "--read-only", "--tmpfs", "/tmp", "--volume", f"{volume}:/app/data",
            "--env-file", str(env_file), "--env", f"PORT={port}",
            "--stop-timeout", "35", "--health-interval", "1s", "--health-timeout", "5s",
            image,
        )  # fmt: skip
        return Container(docker, name, f"http://127.0.0.1:{port}")

    yield _run
    for name in names:
        docker("rm", "--force", "--volumes", name, check=False)
    for volume in volumes:
        docker("volume", "rm", "--force", volume, check=False)


@pytest.fixture
def started_sandbox(new_sandbox):
    box = new_sandbox()
    box.url = box.start(host="127.0.0.1", port=0)
    return box


def new_volume() -> str:
    return f"glpi-gateway-test-{uuid.uuid4().hex[:10]}"


def trouble(logs: str) -> list[str]:
    return [line for line in logs.splitlines() if any(sign in line for sign in TROUBLE)]


def test_image_runs_as_a_user_that_owns_only_its_data(docker, image, record_property):
    config = json.loads(docker("image", "inspect", "--format", "{{json .Config}}", image).stdout)
    size = int(docker("image", "inspect", "--format", "{{.Size}}", image).stdout)
    record_property("docker:image", image)
    record_property("docker:image size", f"{size / 1e6:.0f} MB")
    assert config["User"] == "gateway"
    assert config["Cmd"] == ["gunicorn", "app:create_app()"]  # exec form: gunicorn is PID 1 and gets SIGTERM
    assert config["Healthcheck"]["Test"][0] == "CMD"
    assert "/app/data" in config["Volumes"]
    assert size < IMAGE_SIZE_BUDGET, f"the image grew to {size / 1e6:.0f} MB"
    owners = docker(
        "run", "--rm", "--network", "none", "--entrypoint", "stat", image,
        "-c", "%u %n", "/app/app.py", "/app/glpi_gateway", "/opt/venv/lib", "/app/data",
    ).stdout.split("\n")  # fmt: skip
    assert owners[:4] == ["0 /app/app.py", "0 /app/glpi_gateway", "0 /opt/venv/lib", f"{RUNTIME_UID} /app/data"]


def test_read_only_container_turns_healthy_and_creates_tickets(run_gateway, started_sandbox, record_property):
    container = run_gateway(started_sandbox.url, new_volume())
    record_property("docker:healthy after", f"{container.wait_healthy():.1f} s")

    response = container.post_ticket(body())
    assert response.status_code == 201, response.text
    assert response.json()["ticket_id"] in started_sandbox.tickets
    assert container.get("/health").status_code == 200

    uids = next(line for line in container.exec("cat", "/proc/1/status").stdout.splitlines() if line.startswith("Uid:"))
    assert uids.split()[1:] == [str(RUNTIME_UID)] * 4  # gunicorn itself, not only `docker exec`
    written = container.exec("touch", "/app/gateway.txt")
    assert written.returncode != 0 and "Read-only file system" in written.stderr
    assert container.exec("ls", "/app/data/gateway.sqlite3").returncode == 0  # the store is on the volume
    assert trouble(container.logs()) == [], container.logs()


def test_docker_stop_lets_requests_in_flight_finish(run_gateway, started_sandbox, record_property):
    container = run_gateway(started_sandbox.url, new_volume(), GLPI_TIMEOUT="5")
    container.wait_healthy()
    # GLPI takes 1.5 s to create each ticket (well within GLPI_TIMEOUT, even on a busy machine): once
    # every POST /Ticket has reached it, every request is inside the gateway, waiting for GLPI.
    started_sandbox.fault, started_sandbox.fault_endpoints, started_sandbox.stall_seconds = "stall", {"Ticket"}, 1.5
    started_sandbox.reset_calls()
    in_flight = 8
    with ThreadPoolExecutor(in_flight) as pool:
        answers = [pool.submit(container.post_ticket, body()) for _ in range(in_flight)]
        deadline = time.monotonic() + 10
        while started_sandbox.call_count("Ticket", "POST") < in_flight:
            assert time.monotonic() < deadline, f"the requests never reached GLPI:\n{container.logs()}"
            time.sleep(0.01)
        stop_seconds = container.stop()
        statuses = [answer.result().status_code for answer in answers]
    record_property("docker:docker stop, 8 requests in flight", f"{stop_seconds:.1f} s")
    state = container.state()
    assert statuses == [201] * in_flight
    assert len(started_sandbox.tickets) == in_flight
    assert state["ExitCode"] == 0 and not state["OOMKilled"], container.logs()  # 137 would be Docker's SIGKILL
    assert stop_seconds < 10, f"docker stop took {stop_seconds:.1f} s"
    assert "Shutting down: Master" in container.logs()
    assert trouble(container.logs()) == [], container.logs()


def test_ticket_queued_while_glpi_is_down_is_delivered_once_by_the_next_container(
    run_gateway, started_sandbox, record_property
):
    volume = new_volume()
    first = run_gateway(started_sandbox.url, volume)
    first.wait_healthy()
    port = int(started_sandbox.url.split(":")[2].split("/")[0])
    started_sandbox.stop()  # GLPI down: connection refused
    protocol = queued(first.post_ticket(body()))
    first.stop()
    first.docker("rm", first.name)
    assert started_sandbox.start(port=port) == started_sandbox.url
    assert started_sandbox.tickets == {}

    replaced = time.monotonic()
    second = run_gateway(started_sandbox.url, volume)  # the same volume, a new container
    second.wait_healthy()
    deadline = time.monotonic() + DELIVERY_DEADLINE
    while (status := second.get(f"/chamados/{protocol}").json())["status"] == "enfileirado":
        assert time.monotonic() < deadline, f"still queued:\n{second.logs()}"
        time.sleep(0.2)
    record_property(
        "docker:queued ticket delivered after the new container started", f"{time.monotonic() - replaced:.1f} s"
    )
    assert status["status"] == "criado"
    assert tickets_with_protocol(started_sandbox, protocol) == [status["ticket_id"]]
    time.sleep(2)  # two retry periods (QUEUE_RETRY_MAX_SECONDS=1): a second delivery would show by now
    assert len(started_sandbox.tickets) == 1
