"""Derive the Postman collection (docs/) and the README's curl examples and tables from the OpenAPI document.

python scripts/export_docs.py          # rewrite docs/postman_collection.json and the README block
python scripts/export_docs.py --check  # exit 1 if either is out of date with the document
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from glpi_gateway.web.routes import api_document  # noqa: E402

COLLECTION_PATH = ROOT / "docs" / "postman_collection.json"
README_PATH = ROOT / "README.md"
BASE_URL = "http://127.0.0.1:5000"  # where `make run` serves
CURL_BLOCK = re.compile(r"(<!-- curl: início -->\n).*?(<!-- curl: fim -->)", re.DOTALL)
ANSWERS_BLOCK = re.compile(r"(<!-- respostas: início -->\n).*?(<!-- respostas: fim -->)", re.DOTALL)
FIELDS_BLOCK = re.compile(r"(<!-- campos: início -->\n).*?(<!-- campos: fim -->)", re.DOTALL)
POSTMAN_SCHEMA = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"


def operations(document: dict) -> list[tuple[str, str, dict]]:
    return [(method, path, op) for path, methods in document["paths"].items() for method, op in methods.items()]


def request_example(operation: dict) -> object | None:
    media = operation.get("requestBody", {}).get("content", {}).get("application/json")
    return next(iter(media["examples"].values()))["value"] if media else None


def path_with_examples(path: str, operation: dict) -> str:
    """The path with each {parameter} replaced by its documented example."""
    for parameter in operation.get("parameters", ()):
        if parameter.get("in") == "path":
            path = path.replace("{" + parameter["name"] + "}", str(parameter["example"]))
    return path


def postman_collection(document: dict) -> dict:
    """A Postman v2.1 collection: one folder per tag, one request per operation, documented answers as examples."""
    folders: dict[str, list[dict]] = {tag["name"]: [] for tag in document["tags"]}
    for method, path, operation in operations(document):
        body = request_example(operation)
        postman_path = re.sub(r"\{(\w+)\}", r":\1", path)
        request = {
            "method": method.upper(),
            "header": [{"key": "Content-Type", "value": "application/json"}] if body is not None else [],
            "url": {
                "raw": "{{baseUrl}}" + postman_path,
                "host": ["{{baseUrl}}"],
                "path": postman_path.strip("/").split("/"),
                "variable": [
                    {"key": p["name"], "value": str(p["example"]), "description": p.get("description", "")}
                    for p in operation.get("parameters", ())
                    if p.get("in") == "path"
                ],
            },
            "description": operation.get("description", ""),
        }
        if body is not None:
            request["body"] = {
                "mode": "raw",
                "raw": json.dumps(body, ensure_ascii=False, indent=2),
                "options": {"raw": {"language": "json"}},
            }
        folders[operation["tags"][0]].append(
            {
                "name": f"{operation['summary']} ({method.upper()} {path})",
                "request": request,
                "response": saved_answers(operation),
            }
        )
    return {
        "info": {
            "name": document["info"]["title"],
            "description": document["info"]["description"] + "\n\nGerada de /openapi.json por scripts/export_docs.py.",
            "schema": POSTMAN_SCHEMA,
        },
        "variable": [{"key": "baseUrl", "value": BASE_URL}],
        "item": [
            {"name": tag["name"], "description": tag["description"], "item": folders[tag["name"]]}
            for tag in document["tags"]
            if folders[tag["name"]]
        ],
    }


def saved_answers(operation: dict) -> list[dict]:
    """Each documented example answer, once, under its first exact status, as a Postman saved example."""
    answers = []
    seen = set()
    for status, response in operation["responses"].items():
        if not status.isdigit():
            continue  # a range such as 4XX has no single status to show
        for media_type, media in response.get("content", {}).items():
            single = {response["description"].rstrip("."): {"value": media["example"]}} if "example" in media else {}
            examples = media.get("examples") or single
            for name, example in examples.items():
                if name in seen:
                    continue
                seen.add(name)
                value = example["value"]
                answers.append(
                    {
                        "name": f"{status} {name}",
                        "code": int(status),
                        "header": [{"key": "Content-Type", "value": media_type}],
                        "body": value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=2),
                    }
                )
    return answers


def curl_examples(document: dict) -> str:
    """Markdown: one curl command per operation, against `make run`."""
    lines = []
    for method, path, operation in operations(document):
        command = f"curl -i {BASE_URL}{path_with_examples(path, operation)}"
        if method != "get":
            command = f"curl -i -X {method.upper()} {BASE_URL}{path_with_examples(path, operation)}"
        body = request_example(operation)
        if body is not None:
            payload = json.dumps(body, ensure_ascii=False).replace("'", "'\\''")
            command += f" \\\n  -H 'Content-Type: application/json' \\\n  -d '{payload}'"
        lines += [f"# {operation['summary']}", command, ""]
    return "```sh\n" + "\n".join(lines).rstrip() + "\n```\n"


def fields_table(body_schema: dict) -> str:
    """Markdown: each field of a request body, required or not, its description and limits."""
    rows = []
    for name, field in body_schema["properties"].items():
        text = field.get("anyOf", [field])[0]
        limits = []
        if "maxLength" in text:
            limits.append(f"até {text['maxLength']} caracteres")
        if "format" in text:
            limits.append(f"formato {text['format']}")
        if "maximum" in field:
            limits.append(f"de {field['minimum']} a {field['maximum']}, número ou texto numérico")
        if "default" in field:
            limits.append(f"padrão {field['default']}")
        required = "obrigatório" if name in body_schema["required"] else "opcional"
        rows.append(f"| `{name}` | {required} | {field['description']} | {'; '.join(limits)} |")
    return "| Campo | | Descrição | Limites |\n|---|---|---|---|\n" + "\n".join(rows) + "\n"


def sets_header(spec: dict, example: str) -> bool:
    """Whether the answer of `example` sets a header: all answers under a status do when it is a
    reference; an inline header is set only by the answers its description names ("Só em `x`")."""
    return "$ref" in spec or f"`{example}`" in spec["description"]


def answers_table(operation: dict) -> str:
    """Markdown: every documented answer of one operation, with an example body and when it happens."""
    ranged = {
        name
        for status, response in operation["responses"].items()
        if not status.isdigit()
        for name in response["content"]["application/json"]["examples"]
    }
    rows = []
    for status, response in operation["responses"].items():
        for media in response.get("content", {}).values():
            examples = media.get("examples") or {"": {"value": media.get("example")}}
            for name, example in examples.items():
                if status.isdigit() and name in ranged:
                    continue  # shown once, under its range
                body = json.dumps(example["value"], ensure_ascii=False)
                headers = "".join(
                    f" + `{header}`"
                    for header, spec in response.get("headers", {}).items()
                    if header != "X-Request-ID" and sets_header(spec, name)
                )
                when = next(
                    (
                        line.split(": ", 1)[1]
                        for line in response["description"].split("\n\n")
                        if line.startswith(f"`{name}`: ")
                    ),
                    response["description"],
                )
                rows.append(f"| {status} | `{body}`{headers} | {when} |")
    return "| Status | Corpo | Quando |\n|---|---|---|\n" + "\n".join(rows) + "\n"


def render() -> tuple[str, str]:
    """The collection file and the README, as they should be."""
    document = api_document()
    collection = json.dumps(postman_collection(document), ensure_ascii=False, indent=2) + "\n"
    readme = README_PATH.read_text(encoding="utf-8")
    for block in (CURL_BLOCK, ANSWERS_BLOCK, FIELDS_BLOCK):
        if not block.search(readme):
            raise SystemExit(f"README.md has no block matching {block.pattern!r}")
    readme = CURL_BLOCK.sub(lambda match: match[1] + curl_examples(document) + match[2], readme)
    criar = document["paths"]["/criar-chamado"]["post"]
    readme = ANSWERS_BLOCK.sub(lambda match: match[1] + answers_table(criar) + match[2], readme)
    chamado = document["components"]["schemas"]["Chamado"]
    readme = FIELDS_BLOCK.sub(lambda match: match[1] + fields_table(chamado) + match[2], readme)
    return collection, readme


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether the files are up to date")
    args = parser.parse_args()
    collection, readme = render()
    current = {
        COLLECTION_PATH: COLLECTION_PATH.read_text(encoding="utf-8") if COLLECTION_PATH.exists() else "",
        README_PATH: README_PATH.read_text(encoding="utf-8"),
    }
    wanted = {COLLECTION_PATH: collection, README_PATH: readme}
    stale = [path for path in wanted if current[path] != wanted[path]]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} está desatualizado: rode `make docs`", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(exist_ok=True)
        path.write_text(wanted[path], encoding="utf-8")
        print(f"escrito {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
