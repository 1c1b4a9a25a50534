"""Contract of logging_setup.py: one JSON object per line, with every configured secret masked."""

from __future__ import annotations

import ast
import io
import json
import logging
from pathlib import Path

import pytest

from glpi_gateway.logging_setup import JsonFormatter, SecretMaskingFilter

ROOT = Path(__file__).resolve().parent.parent

SECRET = "api-key-secret-0123456789abcdefghijklm"


def rendered(record: logging.LogRecord) -> dict:
    SecretMaskingFilter([SECRET, ""]).filter(record)
    return json.loads(JsonFormatter().format(record))


def record(msg: str, args: tuple = (), exc_info=None, **extra) -> logging.LogRecord:
    made = logging.LogRecord("glpi_gateway", logging.INFO, __file__, 1, msg, args, exc_info)
    for name, value in extra.items():
        setattr(made, name, value)
    return made


def test_secrets_are_masked_in_the_message_and_its_arguments():
    line = rendered(record("key %s rejected", (SECRET,)))
    assert line["msg"] == "key *** rejected"


def test_secrets_are_masked_in_request_context_fields():
    line = rendered(record("GET", request_id=SECRET, path=f"/x/{SECRET}", api_key="site", status=404))
    assert (line["request_id"], line["path"], line["api_key"], line["status"]) == ("***", "/x/***", "site", 404)


def test_secrets_are_masked_in_tracebacks():
    try:
        raise RuntimeError(f"boom {SECRET}")
    except RuntimeError as error:
        line = rendered(record("failed", exc_info=(type(error), error, error.__traceback__)))
    assert "Traceback" in line["exc"] and "boom ***" in line["exc"] and SECRET not in json.dumps(line)


def test_each_line_names_the_worker_process():
    assert isinstance(rendered(record("hello"))["pid"], int)


LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical", "log"}
SERVICE_SOURCES = [ROOT / "app.py", ROOT / "glpi_client.py", *sorted((ROOT / "glpi_gateway").rglob("*.py"))]


def _log_calls_without_event(path: Path) -> list[int]:
    missing = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in LOG_METHODS or not (
            isinstance(node.func.value, ast.Name) and node.func.value.id == "log"
        ):
            continue
        extra = next((keyword.value for keyword in node.keywords if keyword.arg == "extra"), None)
        keys = (
            {key.value for key in extra.keys if isinstance(key, ast.Constant)} if isinstance(extra, ast.Dict) else set()
        )
        if "event" not in keys:
            missing.append(node.lineno)
    return missing


@pytest.mark.parametrize("path", SERVICE_SOURCES, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_operator_log_line_names_its_event(path):
    """Alerts and tests match the stable `event`, never the wording meant for people."""
    assert _log_calls_without_event(path) == []


def test_the_event_field_reaches_the_json_line():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("glpi_gateway.test_event")
    logger.addHandler(handler)
    try:
        logger.warning("algo aconteceu", extra={"event": "algo"})
    finally:
        logger.removeHandler(handler)
    assert json.loads(stream.getvalue())["event"] == "algo"
