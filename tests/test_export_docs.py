"""The Postman collection and the README's curl examples and answers table are derived from the OpenAPI document
and kept up to date."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from conftest import ROOT

from glpi_gateway.validation import FIELDS, MAX_LENGTHS, REQUIRED_FIELDS
from glpi_gateway.web.routes import api_document

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


def test_committed_collection_and_readme_are_up_to_date_with_the_document():
    result = subprocess.run(
        [sys.executable, "scripts/export_docs.py", "--check"], cwd=ROOT, capture_output=True, text=True, timeout=60
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


def test_readme_has_a_curl_example_for_every_documented_operation():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- curl: início -->")[1].split("<!-- curl: fim -->")[0]
    for method, path in OPERATIONS:
        prefix = "curl -i " if method == "GET" else f"curl -i -X {method} "
        assert prefix + "http://127.0.0.1:5000" + path.split("{")[0] in block, (method, path)


def test_readme_answers_table_lists_every_codigo_of_criar_chamado():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("<!-- respostas: início -->")[1].split("<!-- respostas: fim -->")[0]
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


def test_readme_fields_table_is_the_validation_spec():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("<!-- campos: início -->")[1].split("<!-- campos: fim -->")[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == [field.name for field in FIELDS]
    for row, field in zip(rows, FIELDS, strict=True):
        assert ("obrigatório" in row) == (field.name in REQUIRED_FIELDS)
        assert field.name not in MAX_LENGTHS or f"até {MAX_LENGTHS[field.name]} caracteres" in row
