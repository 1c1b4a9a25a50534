"""compose.yaml: valid for Docker Compose, and shaped as docs/operacao.md describes it.

Compose itself reads and resolves the file (`docker compose config`, or Debian's `docker-compose
config`); it needs no engine for that. Skipped where neither is installed; with CI=true it fails.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from tests.harness import ROOT
from tests.helpers import skip_or_fail

pytestmark = [pytest.mark.slow, pytest.mark.docker]


@pytest.fixture(scope="module")
def compose() -> list[str]:
    """The Compose command: the docker CLI's plugin if it has one, else docker-compose."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy]
    skip_or_fail("Docker Compose ausente: apt-get install docker-compose")


@pytest.fixture(scope="module")
def resolved(compose, tmp_path_factory) -> dict:
    """The model Compose makes of compose.yaml with every profile, in a copy of the project whose .env
    is .env.example (a clean clone has no .env, and the file names it)."""
    project = tmp_path_factory.mktemp("compose")
    shutil.copy(ROOT / "compose.yaml", project / "compose.yaml")
    shutil.copy(ROOT / ".env.example", project / ".env")

    def config(*options: str) -> dict:
        result = subprocess.run(
            [*compose, "--file", str(project / "compose.yaml"), *options, "config"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=project,
        )
        assert result.returncode == 0, result.stderr
        return yaml.safe_load(result.stdout)

    config()  # without a profile: the gateway alone
    model = config("--profile", "escala")
    model["project"] = str(project)
    return model


def mount_targets(service: dict) -> dict[str, str]:
    """target -> source of a service's volumes, in the short syntax (docker-compose 1) or the long one."""
    mounts = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume.get("source", ""), volume["target"]
        mounts[target] = source
    return mounts


def test_the_gateway_alone_is_the_image_with_its_data_volume_and_env_file(resolved):
    gateway = resolved["services"]["gateway"]
    assert "profiles" not in gateway  # `docker compose up` starts it
    assert gateway["build"]["context"] == resolved["project"]
    assert gateway["environment"]["GLPI_URL"] == "https://glpi.exemplo.com.br/apirest.php"  # from .env
    assert mount_targets(gateway) == {"/app/data": "dados"}
    assert "healthcheck" not in gateway  # the image's HEALTHCHECK (/ping) applies
    assert gateway["read_only"] is True and gateway["tmpfs"] == ["/tmp"]
    assert [str(port["published"]) for port in gateway["ports"]] == ["5000"]


def test_the_escala_profile_runs_two_gateways_on_one_redis(resolved):
    services = resolved["services"]
    assert set(services) == {"gateway", "gateway-1", "gateway-2", "redis"}
    scaled = [services["gateway-1"], services["gateway-2"]]
    for gateway in scaled:
        assert gateway["profiles"] == ["escala"]
        assert gateway["environment"]["REDIS_URL"] == "redis://redis:6379/0"
        assert gateway["depends_on"]["redis"]["condition"] == "service_healthy"
        assert gateway["image"] == services["gateway"]["image"]
        assert "healthcheck" not in gateway
    assert {str(gateway["ports"][0]["published"]) for gateway in scaled} == {"5001", "5002"}
    redis = services["redis"]
    assert redis["profiles"] == ["escala"]
    assert "--appendonly" in redis["command"]  # the queue lives in Redis: it must reach the disk
    assert mount_targets(redis) == {"/data": "redis-dados"}
