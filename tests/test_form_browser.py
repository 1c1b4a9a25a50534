"""The contact form in headless Chromium, against the gateway under gunicorn and the GLPI sandbox.

Needs Debian's `chromium` and `chromium-driver` (.ci/run installs them). Without them the
tests are skipped on a developer's machine and fail in CI (tests.helpers.in_ci).
"""

from __future__ import annotations

import os
import random
import re
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from glpi_gateway.cnpj import is_valid_cnpj
from tests.harness import free_port, sandbox_settings
from tests.helpers import ALFA, UNKNOWN, skip_or_fail, stored_ticket

pytestmark = pytest.mark.slow  # Chromium, and the gateway under gunicorn

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# The machine has no network: nothing in the browser may try to reach one.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
WAIT_SECONDS = 20  # a safety net against hanging, not a speed expectation


@pytest.fixture(scope="module")
def browser():
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        skip_or_fail("Chromium ausente: apt-get install -y chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        options.add_argument(f"--user-data-dir={profile}")
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        driver.set_window_size(1280, 1000)
        yield driver
        driver.quit()


@pytest.fixture
def page(browser, gateway):
    """A fresh /formulario page at desktop size."""
    browser.set_window_size(1280, 1000)
    open_form_page(browser, gateway)
    return browser


@pytest.fixture
def foreign_site():
    """Another origin (its own port) serving whatever HTML a test puts in `pages`."""
    pages: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = pages.get(self.path, "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    server.block_on_close = False  # the browser may hold idle connections open
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.pages = pages
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()


def wait_for(driver, condition):
    return WebDriverWait(driver, WAIT_SECONDS).until(condition)


def open_form_page(driver, gateway):
    driver.get(f"{gateway.url}/formulario")
    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "form.gf"))


def control(driver, label_start: str):
    """The input a person finds by its visible label (so every control must have one)."""
    for label in driver.find_elements(By.CSS_SELECTOR, "form.gf label"):
        if label.text.startswith(label_start):
            return driver.find_element(By.ID, label.get_attribute("for"))
    raise AssertionError(f"no label starting with {label_start!r}")


def error_of(driver, element) -> str:
    """Text of the error message the control points to with aria-describedby."""
    described = element.get_attribute("aria-describedby").split()
    error_ids = [item for item in described if item.endswith("-erro")]
    assert len(error_ids) == 1, described
    return driver.find_element(By.ID, error_ids[0]).text.strip()


def fill(driver, **overrides: str):
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


def submit(driver):
    control(driver, "Descrição").click()
    active = driver.switch_to.active_element
    active.send_keys(Keys.TAB)  # keyboard only: from the description to the button
    button = driver.switch_to.active_element
    assert button.text == "Abrir chamado"
    button.send_keys(Keys.ENTER)


def result(driver) -> str:
    """The live region's text once the form is no longer sending."""
    region = driver.find_element(By.CSS_SELECTOR, ".gf-resultado")
    assert region.get_attribute("aria-live") == "polite"
    wait_for(driver, lambda d: region.text and d.find_element(By.CSS_SELECTOR, ".gf-enviar").text == "Abrir chamado")
    return region.text


def post_lines(gateway) -> int:
    return gateway.logs().count('"method": "POST", "path": "/criar-chamado"')


# --- the page ---------------------------------------------------------------------


def test_happy_path_by_keyboard_shows_the_ticket_number_and_glpi_has_what_was_typed(page, gateway, sandbox):
    fill(page, Telefone="11987654321", CNPJ="11222333000181")
    control(page, "E-mail").send_keys("maria@cliente.com.br")
    assert control(page, "Telefone").get_attribute("value") == "(11) 98765-4321"
    assert control(page, "CNPJ").get_attribute("value") == ALFA
    submit(page)

    message = result(page)
    ticket_id = max(sandbox.tickets)
    assert f"Chamado nº {ticket_id} aberto" in message
    ticket = stored_ticket(sandbox, ticket_id)
    assert ticket["entities_id"] == 1
    for typed in (
        "Maria Souza",
        "(11) 98765-4321",
        ALFA,
        "123 456 789",
        "maria@cliente.com.br",
        "A impressora não imprime.",
        "Já reiniciei.",
    ):
        assert typed in ticket["content"]
    assert control(page, "Nome").get_attribute("value") == ""  # ready for the next ticket


def test_invalid_cnpj_is_caught_in_the_browser_before_any_request(page, gateway, sandbox):
    posts, glpi_posts, tickets = post_lines(gateway), sandbox.call_count(method="POST"), len(sandbox.tickets)
    fill(page, CNPJ="11.222.333/0001-82")
    submit(page)

    cnpj = control(page, "CNPJ")
    assert error_of(page, cnpj) == "CNPJ inválido: confira os dígitos."
    assert cnpj.get_attribute("aria-invalid") == "true"
    assert page.switch_to.active_element == cnpj
    # Correcting the CNPJ sends exactly one request: the invalid attempt sent none.
    cnpj.clear()
    cnpj.send_keys(ALFA)
    submit(page)
    assert "Chamado nº" in result(page)
    assert post_lines(gateway) == posts + 1
    assert sandbox.call_count(method="POST") == glpi_posts + 1  # the one POST /Ticket
    assert len(sandbox.tickets) == tickets + 1


def test_empty_form_flags_every_required_field_and_focuses_the_first(page, gateway):
    posts = post_lines(gateway)
    submit(page)
    for label in ("Nome", "Telefone", "CNPJ", "ID do AnyDesk", "Descrição"):
        element = control(page, label)
        assert error_of(page, element) == "Preencha este campo.", label
        assert element.get_attribute("aria-invalid") == "true"
    assert error_of(page, control(page, "E-mail")) == ""
    assert page.switch_to.active_element == control(page, "Nome")
    assert "Corrija os campos indicados" in page.find_element(By.CSS_SELECTOR, ".gf-resultado").text
    # Typing a valid value and leaving the field clears its error.
    control(page, "Nome").send_keys("Maria", Keys.TAB)
    assert error_of(page, control(page, "Nome")) == ""
    assert post_lines(gateway) == posts


def test_alphanumeric_cnpj_is_masked_in_upper_case_and_accepted(page, sandbox):
    fill(page, CNPJ="12abc34501de35")
    assert control(page, "CNPJ").get_attribute("value") == "12.ABC.345/01DE-35"
    submit(page)
    message = result(page)
    assert "Chamado nº" in message
    assert sandbox.tickets[max(sandbox.tickets)]["entities_id"] == 3


def test_cnpj_of_no_entity_shows_the_gateway_error_in_the_result_and_at_the_cnpj(page):
    fill(page, CNPJ=UNKNOWN)
    submit(page)
    assert "Entidade não encontrada para o CNPJ informado" in result(page)
    assert "Entidade não encontrada" in error_of(page, control(page, "CNPJ"))


def test_glpi_down_shows_the_queued_protocol(page, sandbox, gateway):
    sandbox.fault = "http500"
    fill(page)
    submit(page)
    shown = result(page)
    protocol = re.search(r"protocolo ([0-9a-f]{32})", shown)
    assert protocol, shown
    sandbox.fault = None
    assert gateway.get(f"/chamados/{protocol.group(1)}").json()["protocolo"] == protocol.group(1)


def test_field_errors_from_the_server_are_shown_next_to_the_field(page, gateway):
    # Both slip past the browser's checks: a description of invisible characters only
    # (the server drops them, then finds it blank) and a name over the server's limit.
    fill(page)
    page.execute_script("arguments[0].value = '\\u200b\\u200b'", control(page, "Descrição"))
    submit(page)
    assert "Campos obrigatórios ausentes" in result(page)
    description = control(page, "Descrição")
    assert error_of(page, description) == "Preencha este campo."
    assert page.switch_to.active_element == description

    fill(page)
    page.execute_script("arguments[0].value = 'M'.repeat(300)", control(page, "Nome"))
    submit(page)
    assert "Dados inválidos" in result(page)
    assert error_of(page, control(page, "Nome")) == "Deve ter no máximo 255 caracteres."
    assert page.switch_to.active_element == control(page, "Nome")


def accessible_textboxes(driver) -> dict[str, dict]:
    """Chromium's accessibility tree, as a screen reader gets it: each text box by its name."""
    boxes = {}
    for node in driver.execute_cdp_cmd("Accessibility.getFullAXTree", {})["nodes"]:
        if node.get("role", {}).get("value") == "textbox":
            properties = {item["name"]: item["value"].get("value") for item in node.get("properties", [])}
            boxes[node["name"]["value"]] = {"description": node.get("description", {}).get("value", ""), **properties}
    return boxes


def test_screen_readers_get_each_field_by_its_label_with_hint_error_and_state(page):
    assert page.find_element(By.TAG_NAME, "html").get_attribute("lang") == "pt-BR"
    fill(page, Nome="", CNPJ="11.222.333/0001-82")
    submit(page)
    boxes = accessible_textboxes(page)
    assert set(boxes) == {
        "Nome",
        "Telefone com DDD",
        "CNPJ da empresa",
        "ID do AnyDesk",
        "E-mail (opcional)",
        "Descrição do problema",
    }
    assert boxes["Nome"]["description"] == "Preencha este campo."
    assert boxes["Nome"]["invalid"] == "true" and boxes["Nome"]["required"] and boxes["Nome"]["focused"]
    assert boxes["CNPJ da empresa"]["description"] == (
        "Só números ou com letras, ex.: 11.222.333/0001-81 ou 12.ABC.345/01DE-35. CNPJ inválido: confira os dígitos."
    )
    assert boxes["CNPJ da empresa"]["invalid"] == "true"
    assert boxes["ID do AnyDesk"]["invalid"] == "false" and boxes["ID do AnyDesk"]["required"]
    assert boxes["E-mail (opcional)"]["invalid"] == "false" and not boxes["E-mail (opcional)"]["required"]


def test_the_page_fits_a_phone_screen_without_sideways_scrolling(page):
    page.set_window_size(360, 800)
    width = page.execute_script("return window.innerWidth")
    assert page.execute_script("return document.documentElement.scrollWidth") <= width
    for element in page.find_elements(By.CSS_SELECTOR, "form.gf input, form.gf textarea, .gf-enviar"):
        assert element.rect["x"] >= 0 and element.rect["x"] + element.rect["width"] <= width


def test_js_cnpj_check_agrees_with_the_server_on_random_cnpjs(page):
    rng = random.Random(5)
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    candidates = [
        "11.222.333/0001-81",
        "12.ABC.345/01DE-35",
        "A1.B2C.3D4/E5F6-68",
        "a1b2c3d4e5f668",
        "",
        "11222333000181 ",
        "11.222.333/0001-8",
        "1122233300018A",
        "11_222_333_0001_81",
    ]
    for _ in range(300):
        base = "".join(rng.choice(alphabet if rng.random() < 0.5 else "0123456789") for _ in range(12))
        # Every pair of check digits: exactly one is right, and both sides must find the same one.
        candidates += [f"{base}{pair:02d}" for pair in range(100)]
    candidates += [f"{c[:2]}.{c[2:5]}.{c[5:8]}/{c[8:12]}-{c[12:]}".lower() for c in candidates[9:200]]

    in_browser = page.execute_script(
        "return arguments[0].map(function (c) { return window.GlpiFormulario.cnpjValido(c); });", candidates
    )
    assert in_browser == [is_valid_cnpj(candidate) for candidate in candidates]
    assert sum(in_browser) >= 300  # one per random base, plus the known good ones


# --- embedded in another site -------------------------------------------------------


def test_iframe_in_another_site_shows_the_form_and_reports_its_height(browser, gateway, foreign_site):
    foreign_site.pages["/"] = (
        "<!doctype html><html><body><script>window.heights = [];"
        "addEventListener('message', function (e) {"
        " if (e.data && e.data.tipo === 'glpi-formulario-altura') { window.heights.push(e.data.altura); } });"
        f"</script><iframe id='f' title='Abrir chamado' src='{gateway.url}/formulario'></iframe></body></html>"
    )
    browser.get(foreign_site.url + "/")
    wait_for(browser, lambda d: d.execute_script("return window.heights.length > 0"))
    assert browser.execute_script("return window.heights[window.heights.length - 1]") > 500
    browser.switch_to.frame(browser.find_element(By.ID, "f"))
    try:
        assert browser.find_elements(By.CSS_SELECTOR, "form.gf")
    finally:
        browser.switch_to.default_content()


def test_iframe_is_refused_outside_form_frame_ancestors(browser, sandbox, launch, foreign_site):
    gateway = launch(sandbox_settings(sandbox.url, FORM_FRAME_ANCESTORS="https://www.exemplo.com.br"))
    foreign_site.pages["/"] = f"<!doctype html><iframe id='f' src='{gateway.url}/formulario'></iframe>"
    browser.get(foreign_site.url + "/")
    browser.switch_to.frame(browser.find_element(By.ID, "f"))
    try:
        frame_url = wait_for(
            browser,
            lambda d: d.execute_script(
                "return location.href !== 'about:blank' && document.readyState === 'complete' && location.href"
            ),
        )
        assert frame_url.startswith("chrome-error://")  # what Chromium shows for a refused frame
        assert not browser.find_elements(By.CSS_SELECTOR, "form.gf")
    finally:
        browser.switch_to.default_content()
    assert "GET /formulario -> 200" in gateway.logs() and "formulario.js" not in gateway.logs()


def test_script_snippet_injects_the_form_that_targets_the_gateway(browser, gateway, foreign_site):
    foreign_site.pages["/"] = (
        "<!doctype html><html lang='pt-BR'><body><h1>Suporte</h1><div id='chamado'></div>"
        f"<script src='{gateway.url}/formulario.js' data-alvo='#chamado' async></script></body></html>"
    )
    browser.get(foreign_site.url + "/")
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#chamado form.gf"))
    assert browser.execute_script("return window.GlpiFormulario.endpoint") == f"{gateway.url}/criar-chamado"
    button = browser.find_element(By.CSS_SELECTOR, ".gf-enviar")
    wait_for(browser, lambda d: button.value_of_css_property("background-color") == "rgba(11, 87, 164, 1)")

    fill(browser, CNPJ="11.222.333/0001-80")
    submit(browser)
    assert error_of(browser, control(browser, "CNPJ")) == "CNPJ inválido: confira os dígitos."
    # Without CORS_ORIGINS allowing this site, the browser itself blocks the post.
    control(browser, "CNPJ").clear()
    control(browser, "CNPJ").send_keys(ALFA)
    submit(browser)
    assert "Não foi possível falar com o servidor de chamados" in result(browser)


# --- with API keys ------------------------------------------------------------------

FORM_KEY = "form-key-0123456789abcdefghijklmnopqrstu"
SITE_KEY = "site-key-0123456789abcdefghijklmnopqrstuv"


def keyed_settings(sandbox, **overrides: str) -> dict[str, str]:
    return sandbox_settings(sandbox.url, API_KEYS=f"site-principal:{SITE_KEY},formulario:{FORM_KEY}", **overrides)


def test_with_api_keys_the_page_sends_the_form_key_and_the_ticket_names_the_form(browser, sandbox, launch):
    gateway = launch(keyed_settings(sandbox, FORM_API_KEY_NAME="formulario"))
    open_form_page(browser, gateway)
    fill(browser)
    submit(browser)
    message = result(browser)
    ticket_id = max(sandbox.tickets)
    assert f"Chamado nº {ticket_id} aberto" in message
    assert "<strong>Origem:</strong> formulario" in stored_ticket(sandbox, ticket_id)["content"]
    assert FORM_KEY not in gateway.logs()


def test_with_api_keys_the_snippet_on_an_allowed_site_sends_the_form_key(browser, sandbox, launch, foreign_site):
    gateway = launch(keyed_settings(sandbox, FORM_API_KEY_NAME="formulario", CORS_ORIGINS=foreign_site.url))
    foreign_site.pages["/"] = (
        "<!doctype html><html lang='pt-BR'><body><div id='formulario-chamado'></div>"
        f"<script src='{gateway.url}/formulario.js' async></script></body></html>"
    )
    browser.get(foreign_site.url + "/")
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#formulario-chamado form.gf"))
    fill(browser, CNPJ="11444777000161")
    submit(browser)
    message = result(browser)
    ticket_id = max(sandbox.tickets)
    assert f"Chamado nº {ticket_id} aberto" in message
    ticket = stored_ticket(sandbox, ticket_id)
    assert ticket["entities_id"] == 2 and "<strong>Origem:</strong> formulario" in ticket["content"]


def test_with_api_keys_but_no_form_key_the_form_says_the_service_is_misconfigured(browser, sandbox, launch):
    gateway = launch(keyed_settings(sandbox))
    open_form_page(browser, gateway)
    tickets = len(sandbox.tickets)
    fill(browser)
    submit(browser)
    assert result(browser) == (
        "Chave de API ausente ou inválida. "
        "O serviço de chamados está com a configuração incorreta. Avise o suporte por telefone."
    )
    assert "gf-resultado-erro" in browser.find_element(By.CSS_SELECTOR, ".gf-resultado").get_attribute("class")
    assert control(browser, "Nome").get_attribute("value") == "Maria Souza"  # nothing typed is lost
    assert len(sandbox.tickets) == tickets
    assert "POST /criar-chamado -> 401" in gateway.logs()
