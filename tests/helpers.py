"""What several test modules share besides fixtures: test data, assertions, a fake clock, waits, the
customer's pages driven in a browser, and whether the suite runs in CI.

Fixtures live in conftest.py, the gateway as a process in harness.py; a test module imports from
here (`from tests.helpers import body`), never from conftest or from another test module.
"""

from __future__ import annotations

import html
import io
import os
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import pytest
from flask import Flask
from flask.testing import FlaskClient
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from app import create_app
from config import load_config
from glpi_gateway.challenge import solve
from glpi_gateway.validation import TicketRequest
from glpi_gateway.web import services

# --- the sandbox's demonstration CNPJs ---------------------------------------------------

ALFA = "11.222.333/0001-81"  # stored formatted in the sandbox (entity 1)
BETA = "11444777000161"  # stored bare (entity 2)
GAMA = "12.abc.345/01de-35"  # alphanumeric, typed in lower case (entity 3)
DELTA = "A1.B2C.3D4/E5F6-68"  # alphanumeric, stored bare in lower case (entity 6)
DUPLICATED = "19.131.100/0001-85"  # carried by entities 7 and 8
UNKNOWN = "45.723.174/0001-10"  # valid, on no entity

# --- requests ----------------------------------------------------------------------------


def body(**overrides):
    """A valid POST /criar-chamado body; an override of None leaves that field out."""
    ticket = {
        "nome_cliente": "Maria Souza",
        "telefone_cliente": "(11) 99999-0000",
        "cnpj_cliente": ALFA,
        "anydesk_cliente": "123 456 789",
        "descricao_problema": "A impressora não imprime.\nJá reiniciei.",
    }
    ticket.update(overrides)
    return {key: value for key, value in ticket.items() if value is not None}


def ticket_request(cnpj="11222333000181", **overrides) -> TicketRequest:
    """A validated request, as the gateway's core receives it."""
    values = dict(
        nome_cliente="Maria",
        telefone_cliente="11 99999-0000",
        cnpj=cnpj,
        anydesk_cliente="123 456 789",
        descricao_problema="Impressora parada",
    )
    values.update(overrides)
    return TicketRequest(**values)


# --- files to attach ---------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8 + b"\r\n--\r\n"
PDF = b"%PDF-1.4\n" + bytes(range(256)) + b"\n%%EOF\n"
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + bytes(200)
LOG = "2026-11-28 10:00 erro de impressão\r\n".encode()


def anexos(*files: tuple[str, bytes]) -> list:
    """Files for the `anexos` field of a multipart post, as `requests` takes them."""
    return [("anexos", (name, content, "application/octet-stream")) for name, content in files]


def docx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


# --- answers -----------------------------------------------------------------------------


def assert_error(response, status, codigo):
    """An error answer of the catalogue: `status`, JSON with `codigo` and `erro`, no traceback.

    `response` comes from requests (a gateway process) or from Flask's test client (in-process).
    """
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    answer = response.get_json() if hasattr(response, "get_json") else response.json()
    assert answer["codigo"] == codigo and answer["erro"]
    assert "Traceback" not in response.text
    return answer


def stored_ticket(sandbox, ticket_id):
    """The ticket as a technician reads it (GLPI 10 stores text entity-encoded once)."""
    ticket = sandbox.tickets[ticket_id]
    return {**ticket, "name": html.unescape(ticket["name"]), "content": html.unescape(ticket["content"])}


class BufferedClient(FlaskClient):
    """Flask's test client reading each answer whole and closing it, as a server does: a file answer
    (the form's page, the docs' assets) would otherwise leave its file open (a ResourceWarning)."""

    def open(self, *args, buffered=True, **kwargs):
        return super().open(*args, buffered=buffered, **kwargs)


@contextmanager
def in_process_app(settings: dict[str, str]) -> Iterator[Flask]:
    """The gateway built by create_app() inside this process, for Flask's test client: no gunicorn,
    no socket. `settings` are its whole environment (nothing comes from os.environ or .env)."""
    app = create_app(load_config(settings, env_file=None))
    app.test_client_class = BufferedClient
    try:
        yield app
    finally:
        services(app).glpi_client.close()
        services(app).store.close()


DELIVERY_DEADLINE = 60.0  # generous: a step that never happens fails the test, a slow one does not


def solved_challenge(process) -> dict[str, str]:
    """The headers of a freshly solved form challenge, as formulario.js sends them; `process` is a
    gateway process or Flask's test client."""
    answer = process.get("/formulario/desafio")
    issued = answer.get_json() if hasattr(answer, "get_json") else answer.json()
    return {"X-Desafio": issued["desafio"], "X-Desafio-Solucao": solve(issued["desafio"], issued["dificuldade"])}


def tickets_with_protocol(sandbox, protocol: str) -> list[int]:
    """The sandbox tickets whose content carries the protocol line (GLPI 10 stores it encoded)."""
    line = f"&#60;strong&#62;Protocolo:&#60;/strong&#62; {protocol}"
    return sorted(ticket_id for ticket_id, ticket in sandbox.tickets.items() if line in ticket["content"])


def queued(response) -> str:
    """The protocol of a 202 answer, after checking its shape."""
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["status"] == "enfileirado" and answer["protocolo"]
    assert response.headers["Location"] == f"/chamados/{answer['protocolo']}"
    return answer["protocolo"]


def wait_for_final_state(process, protocol: str) -> dict:
    """GET /chamados/<protocol> until it is no longer queued."""
    deadline = time.monotonic() + DELIVERY_DEADLINE
    while time.monotonic() < deadline:
        answer = process.get(f"/chamados/{protocol}")
        assert answer.status_code == 200, answer.text
        if answer.json()["status"] != "enfileirado":
            return answer.json()
        time.sleep(0.2)
    raise AssertionError(f"protocol {protocol} still queued after {DELIVERY_DEADLINE} s:\n{process.logs()}")


# --- time --------------------------------------------------------------------------------


class Clock:
    """Time that a test moves forward by hand (`clock.now += 30`); pass it as a `clock=` argument.

    Starts at the real time unless given `now`: a store hands Redis absolute expiry times, which
    Redis judges by its own clock.
    """

    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now


# --- the customer's pages in a browser (the `browser` fixture) ---------------------------------

WAIT_SECONDS = 20  # a safety net against hanging, not a speed expectation


def wait_for(driver, condition):
    """Until `condition(driver)` holds; an element the page re-drew meanwhile (stale) is read again."""
    return WebDriverWait(driver, WAIT_SECONDS, ignored_exceptions=(StaleElementReferenceException,)).until(condition)


def open_form_page(driver, gateway):
    driver.get(f"{gateway.url}/formulario")
    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "form.gf"))


def open_form_snippet(driver, gateway, site) -> None:
    """A page of another site (the `foreign_site` fixture) with the form injected by its script tag."""
    site.pages["/"] = (
        "<!doctype html><html lang='pt-BR'><body><div id='formulario-chamado'></div>"
        f"<script src='{gateway.url}/formulario.js' async></script></body></html>"
    )
    driver.get(site.url + "/")
    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#formulario-chamado form.gf"))


def control(driver, label_start: str):
    """The control a person finds by its visible label (so every control must have one), on the form or
    the follow-up page."""
    for label in driver.find_elements(By.CSS_SELECTOR, ".gf label"):
        if label.text.startswith(label_start):
            return driver.find_element(By.ID, label.get_attribute("for"))
    raise AssertionError(f"no label starting with {label_start!r}")


def error_of(driver, element) -> str:
    """Text of the error message the control points to with aria-describedby."""
    described = element.get_attribute("aria-describedby").split()
    error_ids = [item for item in described if item.endswith("-erro")]
    assert len(error_ids) == 1, described
    return driver.find_element(By.ID, error_ids[0]).text.strip()


def fill_form(driver, **overrides: str):
    """Type a valid ticket into the form, each field by its label; `overrides` by label start."""
    values = {
        "Nome": "Maria Souza",
        "Telefone": "11987654321",
        "CNPJ": ALFA,
        "ID do AnyDesk": "123 456 789",
        "Descrição": "A impressora não imprime.\nJá reiniciei.",
        **overrides,
    }
    for label, value in values.items():
        element = control(driver, label)
        element.clear()
        element.send_keys(value)


def submit_form(driver):
    """Press Abrir chamado by keyboard, as a person without a mouse does."""
    control(driver, "Descrição").click()
    # Keyboard only: from the description past the file field and each file's Remover to the button.
    # (ActionChains: keys sent to a file input's element are taken as a file's path.)
    for _ in range(2 + len(driver.find_elements(By.CSS_SELECTOR, ".gf-remover"))):
        ActionChains(driver).send_keys(Keys.TAB).perform()
    button = driver.switch_to.active_element
    assert button.text == "Abrir chamado"
    button.send_keys(Keys.ENTER)


def form_result(driver) -> str:
    """The form's live region's text once the form is no longer sending."""
    region = driver.find_element(By.CSS_SELECTOR, "form.gf .gf-resultado")
    assert region.get_attribute("aria-live") == "polite"
    wait_for(driver, lambda d: region.text and d.find_element(By.CSS_SELECTOR, ".gf-enviar").text == "Abrir chamado")
    return region.text


# --- what the machine has ----------------------------------------------------------------


def in_ci() -> bool:
    """Whether the suite runs in CI (`.ci/run`, where CI=true): the one place that decides it.

    Any value but empty, 0, false or no counts, as CI services set CI=true or CI=1.
    """
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def skip_or_fail(reason: str) -> NoReturn:
    """A tool or service the test needs is missing: skip on a developer's machine, fail in CI,
    where .ci/run installs and starts everything and a skip would hide a broken set-up."""
    if in_ci():
        pytest.fail(f"{reason} (na CI isto é uma falha, não um teste pulado)")
    pytest.skip(reason)
