"""The README's quick start works as written: its curl opens a ticket against the sandbox that `make run`
starts, and each demonstration CNPJ it lists answers as it says."""

from __future__ import annotations

import json
import re

import pytest

from tests.harness import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
QUICK_START = README.split("## Começo rápido")[1].split("\n## ")[0]


def quick_start_body() -> dict:
    """The JSON body of the quick start's curl to POST /criar-chamado."""
    command = next(
        block for block in re.findall(r"```sh\n(.*?)```", QUICK_START, re.DOTALL) if "/criar-chamado" in block
    )
    return json.loads(re.search(r"-d '(.*?)'", command, re.DOTALL)[1])


def demonstration_cnpjs() -> list[tuple[str, str]]:
    """Each CNPJ of the README's list of demonstration CNPJs, with what the README says of it."""
    paragraph = next(p for p in QUICK_START.split("\n\n") if p.startswith("CNPJs de demonstração"))
    return re.findall(r"`([0-9A-Z./-]+)` \(([^)]*)\)", paragraph.replace("\n", " "))


def test_the_quick_start_lists_the_demonstration_cnpjs_and_a_curl():
    assert len(demonstration_cnpjs()) >= 5
    assert quick_start_body()["cnpj_cliente"] in dict(demonstration_cnpjs())
    assert "make run" in QUICK_START and "make test" in QUICK_START


@pytest.mark.slow
def test_the_quick_start_curl_opens_a_ticket(gateway):
    response = gateway.post_ticket(quick_start_body())
    assert response.status_code == 201, response.text
    assert isinstance(response.json()["ticket_id"], int)


@pytest.mark.slow
@pytest.mark.parametrize("cnpj, said", [pytest.param(cnpj, said, id=cnpj) for cnpj, said in demonstration_cnpjs()])
def test_each_demonstration_cnpj_answers_as_the_readme_says(gateway, cnpj, said):
    response = gateway.post_ticket({**quick_start_body(), "cnpj_cliente": cnpj})
    expected = int(re.search(r"responde (\d{3})", said)[1]) if "responde" in said else 201
    assert response.status_code == expected, response.text
