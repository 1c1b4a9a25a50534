"""Every line the served gateway writes is JSON with the secrets masked (REVIEW.md #6), gunicorn's too."""

from __future__ import annotations

import json

import pytest

from tests.harness import sandbox_settings, start_gateway

LEAKED = "SUPERSECRET-user-token-123"


def json_lines(text: str, allowed_plain: tuple[str, ...] = ()) -> list[dict]:
    lines = [line for line in text.splitlines() if line.strip() and line not in allowed_plain]
    for line in lines:
        try:
            json.loads(line)
        except ValueError:
            pytest.fail(f"linha fora do formato JSON: {line!r}\n--- log ---\n{text}")
    return [json.loads(line) for line in lines]


@pytest.mark.slow
def test_a_token_with_a_stray_newline_is_refused_at_start_up_naming_only_the_variable(sandbox, tmp_path):
    settings = sandbox_settings(sandbox.url, GLPI_USER_TOKEN=f"abc\n{LEAKED}")
    process = start_gateway(tmp_path, settings)
    try:
        assert process.exit_code is not None, "the gateway started with a malformed token"
        logs = process.logs()
        assert LEAKED not in logs and "GLPI_USER_TOKEN" in logs
        # gunicorn's arbiter also prints a failed boot's exception message raw (arbiter.py,
        # spawn_worker); a ConfigError's message names the variable and never carries its value.
        raw = tuple(line for line in logs.splitlines() if line.startswith("GLPI_USER_TOKEN deve ter"))
        assert len(raw) <= 1
        json_lines(logs, allowed_plain=raw)
    finally:
        process.stop()


@pytest.mark.slow
def test_each_request_is_one_log_line_the_apps_and_gunicorn_writes_none(sandbox, tmp_path):
    process = start_gateway(tmp_path, sandbox_settings(sandbox.url))
    try:
        assert process.exit_code is None, process.logs()
        for _ in range(3):
            assert process.get("/ping").status_code == 200
        process.stop()
        lines = json_lines(process.logs())
        ping_lines = [line for line in lines if "/ping" in json.dumps(line)]  # the harness pings too, at start
        assert len(ping_lines) >= 3
        assert all(line.get("event") == "pedido" for line in ping_lines), ping_lines
    finally:
        process.stop()


@pytest.mark.slow
def test_an_unexpected_error_is_logged_once_as_json_without_flasks_plain_text_traceback(sandbox, tmp_path):
    process = start_gateway(tmp_path, sandbox_settings(sandbox.url))
    try:
        assert process.exit_code is None, process.logs()
        assert process.get("/debug").status_code == 500
        process.stop()
        lines = json_lines(process.logs())
        errors = [line for line in lines if line.get("event") == "erro_inesperado"]
        assert len(errors) == 1 and "RuntimeError" in errors[0]["exc"]
        assert any(line["logger"].startswith("gunicorn") for line in lines)
    finally:
        process.stop()
