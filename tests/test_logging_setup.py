"""Contract of logging_setup.py: one JSON object per line, with every configured secret masked."""

from __future__ import annotations

import json
import logging

from glpi_gateway.logging_setup import JsonFormatter, SecretMaskingFilter

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
