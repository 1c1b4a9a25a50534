"""The test suite's own shape: shared code comes from tests/helpers.py and tests/harness.py, never from
conftest.py (a pytest plugin, not a module) or from another test module (renaming one breaks the others);
and a test that needs a process or Redis cannot slip into the fast tier unmarked."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import ROOT
from tests.helpers import in_ci, skip_or_fail


def python_files() -> list[Path]:
    """Every Python file of the repository, outside hidden directories (.venv, .git, caches)."""
    found = []
    for directory, subdirectories, files in os.walk(ROOT):
        subdirectories[:] = sorted(name for name in subdirectories if not name.startswith((".", "__pycache__")))
        found += [Path(directory, name) for name in sorted(files) if name.endswith(".py")]
    return found


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, dotted name) of each module an import statement names; `from . import x` names `.x`."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            names.append((node.lineno, base))
            names += [(node.lineno, f"{base.rstrip('.')}.{alias.name}".lstrip(".")) for alias in node.names]
    return names


def is_forbidden(module: str) -> bool:
    last = module.rsplit(".", 1)[-1]
    return last == "conftest" or last.startswith("test_")


def test_nothing_imports_conftest_or_a_test_module():
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in python_files()
        for line, module in imported_modules(path)
        if is_forbidden(module)
    ]
    assert offenders == [], "import from tests.helpers or tests.harness instead:\n" + "\n".join(offenders)


@pytest.mark.parametrize(
    "source, forbidden",
    [
        ("from conftest import free_port", True),
        ("import conftest", True),
        ("from tests.conftest import sandbox", True),
        ("from test_http_contract import body", True),
        ("from tests.test_store import Clock", True),
        ("from tests import test_gateway", True),
        ("from . import test_gateway", True),
        ("from .test_gateway import ticket_request", True),
        ("from tests.helpers import body", False),
        ("from tests.harness import start_gateway", False),
        ("from glpi_gateway.tickets import TicketGateway", False),
    ],
)
def test_the_import_scan_sees_every_spelling(tmp_path, source, forbidden):
    module = tmp_path / "example.py"
    module.write_text(source + "\n", encoding="utf-8")
    assert any(is_forbidden(name) for _, name in imported_modules(module)) is forbidden


# --- the fast tier stays fast (tests/conftest.py) ------------------------------------------------


def test_a_test_without_the_slow_mark_cannot_start_a_process():
    with pytest.raises(pytest.fail.Exception, match="sem a marca slow"):
        subprocess.run([sys.executable, "-c", "pass"], check=True)


def test_a_test_without_the_slow_mark_cannot_use_redis(request):
    with pytest.raises(pytest.fail.Exception, match="sem a marca slow"):
        request.getfixturevalue("redis_url")


# --- in CI, a missing tool fails instead of skipping (tests/helpers.py) -----------------------------


@pytest.mark.parametrize(
    "value, ci",
    [(None, False), ("", False), ("0", False), ("false", False), ("No", False), ("true", True), ("1", True)],
)
def test_in_ci_reads_the_ci_variable_as_ci_services_set_it(monkeypatch, value, ci):
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    assert in_ci() is ci


def test_a_missing_tool_skips_locally_and_fails_in_ci(monkeypatch):
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception, match="^redis-server ausente$"):
        skip_or_fail("redis-server ausente")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="^redis-server ausente \\(na CI"):
        skip_or_fail("redis-server ausente")
