"""Derive the generated parts of the docs (`make docs`) from the code, and check that they are up to date.

From the OpenAPI document: docs/postman_collection.json and the curl examples and the field and answer
tables of docs/api.md. From the modules' docstrings: the module map of docs/desenvolvimento.md.

    python -m scripts.export_docs          # rewrite whatever is out of date (`make docs`)
    python -m scripts.export_docs --check  # exit 1 if anything is out of date
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import sys
from pathlib import Path

from glpi_gateway.web.routes import api_document

ROOT = Path(__file__).resolve().parent.parent

COLLECTION_PATH = ROOT / "docs" / "postman_collection.json"
API_PATH = ROOT / "docs" / "api.md"
DEVELOPMENT_PATH = ROOT / "docs" / "desenvolvimento.md"
BASE_URL = "http://127.0.0.1:5000"  # where `make run` serves
# Where the module map looks for modules besides the repository root, those that exist.
MODULE_DIRECTORIES = ("glpi_gateway", "glpi_sandbox", "scripts", "bench")


def block(name: str) -> re.Pattern[str]:
    """A generated block of a Markdown page: what lies between its two marker comments."""
    return re.compile(rf"(<!-- {name}: início -->\n).*?(<!-- {name}: fim -->)", re.DOTALL)


CURL_BLOCK = block("curl")
ANSWERS_BLOCK = block("respostas")
FIELDS_BLOCK = block("campos")
MODULES_BLOCK = block("módulos")
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


def documented_modules(root: Path = ROOT) -> list[Path]:
    """The modules the map lists: the root's *.py, then every *.py under MODULE_DIRECTORIES, by path."""
    nested = [
        path
        for directory in MODULE_DIRECTORIES
        if (root / directory).is_dir()
        for path in (root / directory).rglob("*.py")
    ]
    return sorted(root.glob("*.py")) + sorted(nested, key=lambda path: path.relative_to(root).as_posix())


def module_summary(path: Path) -> str | None:
    """The first paragraph of the module's docstring (its summary, which may wrap), on one line."""
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    return " ".join(docstring.split("\n\n")[0].split()) if docstring and docstring.strip() else None


def module_map(root: Path = ROOT, page_dir: Path = DEVELOPMENT_PATH.parent) -> str:
    """Markdown: one row per module, linked from the page, with its docstring's summary."""
    rows = []
    for path in documented_modules(root):
        name = path.relative_to(root).as_posix()
        link = Path(os.path.relpath(path, page_dir)).as_posix()
        summary = module_summary(path)
        text = summary.replace("|", "\\|") if summary else "*(sem docstring)*"
        rows.append(f"| [`{name}`]({link}) | {text} |")
    return "| módulo | o que faz |\n|---|---|\n" + "\n".join(rows) + "\n"


def fill(path: Path, blocks: dict[re.Pattern[str], str]) -> str:
    """The page at `path` with each of its generated blocks replaced by the given content."""
    text = path.read_text(encoding="utf-8")
    for pattern, content in blocks.items():
        if not pattern.search(text):
            raise SystemExit(f"{path.relative_to(ROOT)} has no block matching {pattern.pattern!r}")

        def keep_markers(match: re.Match[str], content: str = content) -> str:
            return match[1] + content + match[2]

        text = pattern.sub(keep_markers, text)
    return text


def render() -> dict[Path, str]:
    """Every generated file, as it should be."""
    document = api_document()
    criar = document["paths"]["/criar-chamado"]["post"]
    chamado = document["components"]["schemas"]["Chamado"]
    return {
        COLLECTION_PATH: json.dumps(postman_collection(document), ensure_ascii=False, indent=2) + "\n",
        API_PATH: fill(
            API_PATH,
            {
                CURL_BLOCK: curl_examples(document),
                ANSWERS_BLOCK: answers_table(criar),
                FIELDS_BLOCK: fields_table(chamado),
            },
        ),
        DEVELOPMENT_PATH: fill(DEVELOPMENT_PATH, {MODULES_BLOCK: module_map()}),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether the files are up to date")
    args = parser.parse_args()
    wanted = render()
    stale = [path for path, text in wanted.items() if not path.exists() or path.read_text(encoding="utf-8") != text]
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
