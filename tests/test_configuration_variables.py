"""Every environment variable the gateway reads is blanked for test gateways and documented.

The variables are found in the source of config.py (its typed readers, `env.integer("X")` and so on)
and gunicorn.conf.py (`os.environ.get("X")`), so a new one cannot be forgotten in
tests/harness.py's GATEWAY_VARIABLES (or a developer's own value would leak into test gateways),
in .env.example or in docs/configuracao.md.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.harness import GATEWAY_VARIABLES, ROOT

SOURCES = ("config.py", "gunicorn.conf.py")
READ_BY_GUNICORN_ITSELF = {"GUNICORN_CMD_ARGS"}


def string_constants(tree: ast.Module) -> dict[str, str]:
    """Module-level `NAME = "text"` assignments, to follow `os.environ.get(NAME)`."""
    return {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def reader_methods(tree: ast.Module) -> set[str]:
    """The methods of config.py's `_Env`, whose first argument is a variable's name."""
    return {
        item.name
        for node in tree.body
        if isinstance(node, ast.ClassDef) and node.name == "_Env"
        for item in node.body
        if isinstance(item, ast.FunctionDef) and not item.name.startswith("_")
    }


def is_environ(node: ast.expr) -> bool:
    """`os.environ` or a bare `environ`."""
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
        isinstance(node, ast.Name) and node.id == "environ"
    )


def variables_read(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    constants, readers = string_constants(tree), reader_methods(tree)

    def name_of(argument: ast.expr) -> str | None:
        if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
            return argument.value
        if isinstance(argument, ast.Name):
            return constants.get(argument.id)
        return None

    found: set[str | None] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and is_environ(node.value):
            found.add(name_of(node.slice))  # os.environ["X"]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            receiver, method = node.func.value, node.func.attr
            if (
                (method == "get" and is_environ(receiver))  # os.environ.get("X")
                or (method == "getenv" and isinstance(receiver, ast.Name) and receiver.id == "os")
                or (method in readers and isinstance(receiver, ast.Name) and receiver.id == "env")  # env.text("X")
            ):
                found.add(name_of(node.args[0]))
    return {name for name in found if name and re.fullmatch(r"[A-Z][A-Z0-9_]+", name)}


VARIABLES = sorted(set().union(*(variables_read(ROOT / source) for source in SOURCES)))


def test_the_scan_finds_the_variables_of_both_files():
    assert {"GLPI_URL", "REDIS_KEY_PREFIX", "FORM_API_KEY_NAME"} <= variables_read(ROOT / "config.py")
    assert {"HOST", "PORT", "GUNICORN_TIMEOUT", "PROMETHEUS_MULTIPROC_DIR"} <= variables_read(ROOT / "gunicorn.conf.py")
    assert len(VARIABLES) >= 40


@pytest.mark.parametrize("variable", VARIABLES)
def test_every_variable_read_is_blank_in_test_gateways_unless_a_test_sets_it(variable):
    assert variable in GATEWAY_VARIABLES


def test_gateway_variables_holds_only_variables_the_gateway_reads():
    assert set(GATEWAY_VARIABLES) - set(VARIABLES) <= READ_BY_GUNICORN_ITSELF


@pytest.mark.parametrize("variable", VARIABLES)
def test_every_variable_read_is_in_env_example(variable):
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    assert re.search(rf"^(# )?{variable}=", example, re.MULTILINE), f"{variable} is missing from .env.example"


@pytest.mark.parametrize("variable", VARIABLES)
def test_every_variable_read_is_documented(variable):
    page = (ROOT / "docs" / "configuracao.md").read_text(encoding="utf-8")
    assert f"`{variable}`" in page, f"{variable} is missing from docs/configuracao.md"
