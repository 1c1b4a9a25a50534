"""The generated parts of the docs are kept up to date: the Postman collection and docs/api.md's curl examples
and tables, derived from the OpenAPI document, and docs/desenvolvimento.md's module map, derived from the
modules' docstrings."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from glpi_gateway.validation import FIELDS, MAX_LENGTHS, REQUIRED_FIELDS
from glpi_gateway.web.routes import api_document
from scripts import export_docs
from tests.harness import ROOT

DOCUMENT = api_document()
CRIAR_CHAMADO = DOCUMENT["paths"]["/criar-chamado"]["post"]
OPERATIONS = [(method.upper(), path) for path, methods in DOCUMENT["paths"].items() for method in methods]


def documented_codigos(operation: dict) -> set[str]:
    return {
        name
        for status, response in operation["responses"].items()
        if not status.startswith("2")
        for name in response["content"]["application/json"]["examples"]
    }


def committed_collection() -> dict:
    return json.loads((ROOT / "docs" / "postman_collection.json").read_text(encoding="utf-8"))


def api_page() -> str:
    return (ROOT / "docs" / "api.md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_every_generated_file_is_up_to_date():
    result = subprocess.run(
        [sys.executable, "-m", "scripts.export_docs", "--check"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_collection_is_postman_v2_1_with_one_request_per_documented_operation():
    collection = committed_collection()
    assert collection["info"]["schema"].endswith("/collection/v2.1.0/collection.json")
    requests = [item["request"] for folder in collection["item"] for item in folder["item"]]
    named = sorted((r["method"], "/" + "/".join(r["url"]["path"])) for r in requests)
    assert named == sorted((method, re.sub(r"\{(\w+)\}", r":\1", path)) for method, path in OPERATIONS)
    assert all(r["url"]["raw"].startswith("{{baseUrl}}/") for r in requests)


def test_collection_body_is_the_documented_example_and_every_codigo_is_a_saved_answer():
    collection = committed_collection()
    items = {
        item["request"]["method"] + " " + item["request"]["url"]["raw"]: item
        for folder in collection["item"]
        for item in folder["item"]
    }
    criar = items["POST {{baseUrl}}/criar-chamado"]
    examples = DOCUMENT["paths"]["/criar-chamado"]["post"]["requestBody"]["content"]["application/json"]["examples"]
    assert json.loads(criar["request"]["body"]["raw"]) == examples["minimo"]["value"]
    saved = {json.loads(answer["body"])["codigo"] for answer in criar["response"] if answer["code"] >= 400}
    assert saved == documented_codigos(CRIAR_CHAMADO)
    assert len(saved) == len([answer for answer in criar["response"] if answer["code"] >= 400])  # each once


def test_api_page_has_a_curl_example_for_every_documented_operation():
    block = api_page().split("<!-- curl: início -->")[1].split("<!-- curl: fim -->")[0]
    for method, path in OPERATIONS:
        prefix = "curl -i " if method == "GET" else f"curl -i -X {method} "
        assert prefix + "http://127.0.0.1:5000" + path.split("{")[0] in block, (method, path)


def test_api_page_answers_table_lists_every_codigo_of_criar_chamado():
    table = api_page().split("<!-- respostas: início -->")[1].split("<!-- respostas: fim -->")[0]
    codigos = documented_codigos(CRIAR_CHAMADO)
    assert {
        "chave_api_invalida",
        "limite_de_requisicoes",
        "pedido_em_andamento",
        "armazenamento_indisponivel",
        "idempotency_key_reutilizada",
        "idempotency_key_invalida",
    } <= codigos
    for codigo in codigos:
        assert f'"codigo": "{codigo}"' in table, codigo
    assert '| 202 | `{"status": "enfileirado"' in table and "`Location`" in table


def test_api_page_fields_table_is_the_validation_spec():
    table = api_page().split("<!-- campos: início -->")[1].split("<!-- campos: fim -->")[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == [field.name for field in FIELDS]
    for row, field in zip(rows, FIELDS, strict=True):
        assert ("obrigatório" in row) == (field.name in REQUIRED_FIELDS)
        assert field.name not in MAX_LENGTHS or f"até {MAX_LENGTHS[field.name]} caracteres" in row


# The module map of docs/desenvolvimento.md.

MAPPED_MODULES = export_docs.documented_modules()


def module_map_block() -> str:
    page = (ROOT / "docs" / "desenvolvimento.md").read_text(encoding="utf-8")
    return page.split("<!-- módulos: início -->\n")[1].split("<!-- módulos: fim -->")[0]


@pytest.mark.parametrize("path", MAPPED_MODULES, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_every_mapped_module_has_a_docstring(path):
    assert export_docs.module_summary(path), (
        f"{path.relative_to(ROOT)} needs a module docstring: its first paragraph is its line in the module map"
    )


def test_module_map_is_the_modules_docstrings():
    assert module_map_block() == export_docs.module_map(), "the module map is out of date: run `make docs`"


def python_files_outside_tests() -> list[str]:
    """Every *.py of the repository but the tests, hidden directories (.venv, .git…) and caches."""
    found = []
    for directory, subdirectories, files in os.walk(ROOT):
        subdirectories[:] = [
            name for name in subdirectories if not name.startswith(".") and name not in {"tests", "__pycache__", "data"}
        ]
        found += [(Path(directory) / name).relative_to(ROOT).as_posix() for name in files if name.endswith(".py")]
    return found


def test_module_map_lists_every_python_file_of_the_code_once():
    names = re.findall(r"^\| \[`([^`]+)`\]", module_map_block(), re.MULTILINE)
    assert sorted(names) == sorted(python_files_outside_tests()), (
        "a Python file outside the mapped places: add its directory to MODULE_DIRECTORIES in scripts/export_docs.py"
    )
    assert len(names) == len(set(names))
    assert {"app.py", "config.py", "glpi_client.py", "gunicorn.conf.py", "scripts/export_docs.py"} <= set(names)


def write(path: Path, text: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_module_map_follows_the_package_layout_root_first_then_the_packages_by_path(tmp_path):
    for name in ("gunicorn.conf.py", "app.py", "config.py"):
        write(tmp_path / name, f'"""{name} at the root."""\n')
    write(tmp_path / "glpi_gateway" / "__init__.py", '"""The service."""\n')
    write(tmp_path / "glpi_gateway" / "web" / "routes.py", '"""Routes,\nwrapped over two lines.\n\nDetails."""\n')
    write(tmp_path / "glpi_gateway" / "store" / "sqlite.py", '"""SQLite | the default."""\n')
    write(tmp_path / "glpi_gateway" / "tickets.py", "import os\n")
    write(tmp_path / "glpi_sandbox" / "__main__.py", '"""python -m glpi_sandbox."""\n')
    write(tmp_path / "bench" / "bench.py", '"""Bench."""\n')
    write(tmp_path / "scripts" / "export_docs.py", '"""Docs."""\n')
    write(tmp_path / "tests" / "test_x.py", '"""Not mapped."""\n')
    write(tmp_path / "static" / "formulario.js", "// not Python\n")

    table = export_docs.module_map(tmp_path, tmp_path / "docs")

    rows = table.splitlines()
    assert rows[:2] == ["| módulo | o que faz |", "|---|---|"]
    assert rows[2:] == [
        "| [`app.py`](../app.py) | app.py at the root. |",
        "| [`config.py`](../config.py) | config.py at the root. |",
        "| [`gunicorn.conf.py`](../gunicorn.conf.py) | gunicorn.conf.py at the root. |",
        "| [`bench/bench.py`](../bench/bench.py) | Bench. |",
        "| [`glpi_gateway/__init__.py`](../glpi_gateway/__init__.py) | The service. |",
        "| [`glpi_gateway/store/sqlite.py`](../glpi_gateway/store/sqlite.py) | SQLite \\| the default. |",
        "| [`glpi_gateway/tickets.py`](../glpi_gateway/tickets.py) | *(sem docstring)* |",
        "| [`glpi_gateway/web/routes.py`](../glpi_gateway/web/routes.py) | Routes, wrapped over two lines. |",
        "| [`glpi_sandbox/__main__.py`](../glpi_sandbox/__main__.py) | python -m glpi_sandbox. |",
        "| [`scripts/export_docs.py`](../scripts/export_docs.py) | Docs. |",
    ]
    assert export_docs.module_summary(tmp_path / "glpi_gateway" / "tickets.py") is None
