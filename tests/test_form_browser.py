"""The contact form in headless Chromium, against the gateway under gunicorn and the GLPI sandbox.

Needs Debian's `chromium` and `chromium-driver` (.ci/run installs them). Without them the
tests are skipped on a developer's machine and fail in CI (tests.helpers.in_ci).
"""

from __future__ import annotations

import base64
import random
import re

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from glpi_gateway.cnpj import is_valid_cnpj
from tests.harness import sandbox_settings
from tests.helpers import (
    ALFA,
    UNKNOWN,
    body,
    control,
    error_of,
    fill_form,
    form_result,
    open_form_page,
    open_form_snippet,
    stored_ticket,
    submit_form,
    wait_for,
)

pytestmark = pytest.mark.slow  # Chromium, and the gateway under gunicorn


@pytest.fixture
def page(browser, gateway):
    """A fresh /formulario page at desktop size."""
    browser.set_window_size(1280, 1000)
    open_form_page(browser, gateway)
    return browser


def post_lines(gateway) -> int:
    return gateway.logs().count('"method": "POST", "path": "/criar-chamado"')


# --- the page ---------------------------------------------------------------------


def test_happy_path_by_keyboard_shows_the_ticket_number_and_glpi_has_what_was_typed(page, gateway, sandbox):
    fill_form(page, Telefone="11987654321", CNPJ="11222333000181")
    control(page, "E-mail").send_keys("maria@cliente.com.br")
    assert control(page, "Telefone").get_attribute("value") == "(11) 98765-4321"
    assert control(page, "CNPJ").get_attribute("value") == ALFA
    submit_form(page)

    message = form_result(page)
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
    fill_form(page, CNPJ="11.222.333/0001-82")
    submit_form(page)

    cnpj = control(page, "CNPJ")
    assert error_of(page, cnpj) == "CNPJ inválido: confira os dígitos."
    assert cnpj.get_attribute("aria-invalid") == "true"
    assert page.switch_to.active_element == cnpj
    # Correcting the CNPJ sends exactly one request: the invalid attempt sent none.
    cnpj.clear()
    cnpj.send_keys(ALFA)
    submit_form(page)
    assert "Chamado nº" in form_result(page)
    assert post_lines(gateway) == posts + 1
    assert sandbox.call_count(method="POST") == glpi_posts + 1  # the one POST /Ticket
    assert len(sandbox.tickets) == tickets + 1


def test_empty_form_flags_every_required_field_and_focuses_the_first(page, gateway):
    posts = post_lines(gateway)
    submit_form(page)
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
    fill_form(page, CNPJ="12abc34501de35")
    assert control(page, "CNPJ").get_attribute("value") == "12.ABC.345/01DE-35"
    submit_form(page)
    message = form_result(page)
    assert "Chamado nº" in message
    assert sandbox.tickets[max(sandbox.tickets)]["entities_id"] == 3


def test_cnpj_of_no_entity_shows_the_gateway_error_in_the_result_and_at_the_cnpj(page):
    fill_form(page, CNPJ=UNKNOWN)
    submit_form(page)
    assert "Entidade não encontrada para o CNPJ informado" in form_result(page)
    assert "Entidade não encontrada" in error_of(page, control(page, "CNPJ"))


def test_glpi_down_shows_the_queued_protocol(page, sandbox, gateway):
    sandbox.fault = "http500"
    fill_form(page)
    submit_form(page)
    shown = form_result(page)
    protocol = re.search(r"protocolo ([0-9a-f]{32})", shown)
    assert protocol, shown
    sandbox.fault = None
    assert gateway.get(f"/chamados/{protocol.group(1)}").json()["protocolo"] == protocol.group(1)


# The page's fetch reaches the gateway, which creates the ticket, but the answer never arrives
# (a mobile network drop, a proxy timeout): the page sees a network error.
LOSE_NEXT_ANSWER = """
window.__keysSent = [];
var realFetch = window.fetch, loseNext = true;
window.fetch = function (url, options) {
  window.__keysSent.push(options.headers["Idempotency-Key"]);
  return realFetch(url, options).then(function (response) {
    if (loseNext) { loseNext = false; throw new TypeError("resposta perdida"); }
    return response;
  });
};
"""


def test_a_lost_answer_then_a_second_press_shows_the_one_ticket_opened(page, sandbox):
    description = f"Resposta perdida {random.randrange(10**9)}"
    fill_form(page, Descrição=description)
    page.execute_script(LOSE_NEXT_ANSWER)
    submit_form(page)
    assert "Não foi possível falar com o servidor" in form_result(page)
    tickets = [ticket_id for ticket_id, ticket in sandbox.tickets.items() if description in ticket["content"]]
    assert len(tickets) == 1  # GLPI got it; only the answer was lost

    submit_form(page)  # the customer presses again, with the same data still in the form
    assert f"Chamado nº {tickets[0]} aberto" in form_result(page)
    assert [ticket_id for ticket_id, ticket in sandbox.tickets.items() if description in ticket["content"]] == tickets
    first_key, second_key = page.execute_script("return window.__keysSent")
    assert first_key == second_key and len(first_key) >= 32


def test_edited_data_after_an_error_gets_a_new_idempotency_key(page, sandbox):
    fill_form(page, Descrição=f"Primeira versão {random.randrange(10**9)}")
    page.execute_script(LOSE_NEXT_ANSWER)
    submit_form(page)
    form_result(page)
    control(page, "Descrição").send_keys(" e mais um detalhe")
    submit_form(page)
    assert "Chamado nº" in form_result(page)
    first_key, second_key = page.execute_script("return window.__keysSent")
    assert first_key != second_key


def test_field_errors_from_the_server_are_shown_next_to_the_field(page, gateway):
    # Both slip past the browser's checks: a description of invisible characters only
    # (the server drops them, then finds it blank) and a name over the server's limit.
    fill_form(page)
    page.execute_script("arguments[0].value = '\\u200b\\u200b'", control(page, "Descrição"))
    submit_form(page)
    assert "Campos obrigatórios ausentes" in form_result(page)
    description = control(page, "Descrição")
    assert error_of(page, description) == "Preencha este campo."
    assert page.switch_to.active_element == description

    fill_form(page)
    page.execute_script("arguments[0].value = 'M'.repeat(300)", control(page, "Nome"))
    submit_form(page)
    assert "Dados inválidos" in form_result(page)
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
    fill_form(page, Nome="", CNPJ="11.222.333/0001-82")
    submit_form(page)
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


def test_the_page_fits_a_phone_screen_without_sideways_scrolling(page, tmp_path):
    page.set_window_size(360, 800)
    long_name = "relatorio-do-erro-da-impressora-fiscal-do-caixa-2-" + "x" * 60 + ".pdf"
    choose(page, files_on_disk(tmp_path, **{long_name: PDF}))
    page.execute_script("document.querySelector('.gf-progresso').hidden = false")  # as while sending
    width = page.execute_script("return window.innerWidth")
    assert page.execute_script("return document.documentElement.scrollWidth") <= width
    selector = "form.gf input, form.gf textarea, form.gf button, form.gf progress, .gf-arquivos li"
    for element in page.find_elements(By.CSS_SELECTOR, selector):
        if element.is_displayed():
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

    fill_form(browser, CNPJ="11.222.333/0001-80")
    submit_form(browser)
    assert error_of(browser, control(browser, "CNPJ")) == "CNPJ inválido: confira os dígitos."
    # Without CORS_ORIGINS allowing this site, the browser itself blocks the post.
    control(browser, "CNPJ").clear()
    control(browser, "CNPJ").send_keys(ALFA)
    submit_form(browser)
    assert "Não foi possível falar com o servidor de chamados" in form_result(browser)


# --- with API keys ------------------------------------------------------------------

FORM_KEY = "form-key-0123456789abcdefghijklmnopqrstu"
SITE_KEY = "site-key-0123456789abcdefghijklmnopqrstuv"


def keyed_settings(sandbox, **overrides: str) -> dict[str, str]:
    return sandbox_settings(sandbox.url, API_KEYS=f"site-principal:{SITE_KEY},formulario:{FORM_KEY}", **overrides)


def test_with_api_keys_the_page_sends_the_form_key_and_the_ticket_names_the_form(browser, sandbox, launch):
    gateway = launch(keyed_settings(sandbox, FORM_API_KEY_NAME="formulario"))
    open_form_page(browser, gateway)
    fill_form(browser)
    submit_form(browser)
    message = form_result(browser)
    ticket_id = max(sandbox.tickets)
    assert f"Chamado nº {ticket_id} aberto" in message
    assert "<strong>Origem:</strong> formulario" in stored_ticket(sandbox, ticket_id)["content"]
    assert FORM_KEY not in gateway.logs()


def test_with_api_keys_the_snippet_on_an_allowed_site_sends_the_form_key(browser, sandbox, launch, foreign_site):
    gateway = launch(keyed_settings(sandbox, FORM_API_KEY_NAME="formulario", CORS_ORIGINS=foreign_site.url))
    open_form_snippet(browser, gateway, foreign_site)
    fill_form(browser, CNPJ="11444777000161")
    submit_form(browser)
    message = form_result(browser)
    ticket_id = max(sandbox.tickets)
    assert f"Chamado nº {ticket_id} aberto" in message
    ticket = stored_ticket(sandbox, ticket_id)
    assert ticket["entities_id"] == 2 and "<strong>Origem:</strong> formulario" in ticket["content"]


def test_with_api_keys_but_no_form_key_the_form_says_the_service_is_misconfigured(browser, sandbox, launch):
    gateway = launch(keyed_settings(sandbox))
    open_form_page(browser, gateway)
    tickets = len(sandbox.tickets)
    fill_form(browser)
    submit_form(browser)
    assert form_result(browser) == (
        "Chave de API ausente ou inválida. "
        "O serviço de chamados está com a configuração incorreta. Avise o suporte por telefone."
    )
    assert "gf-resultado-erro" in browser.find_element(By.CSS_SELECTOR, ".gf-resultado").get_attribute("class")
    assert control(browser, "Nome").get_attribute("value") == "Maria Souza"  # nothing typed is lost
    assert len(sandbox.tickets) == tickets
    assert "POST /criar-chamado -> 401" in gateway.logs()


# Records the headers of every post the form sends, for a test to replay them as an attacker would.
RECORD_POSTS = """
window.__posts = [];
var realFetch = window.fetch;
window.fetch = function (url, options) {
  if (options && options.method === "POST") { window.__posts.push(options.headers); }
  return realFetch(url, options);
};
"""


def test_a_bot_post_with_the_public_key_is_refused_while_the_form_in_the_browser_opens_a_ticket(
    browser, sandbox, launch
):
    gateway = launch(keyed_settings(sandbox, FORM_API_KEY_NAME="formulario"))
    tickets = len(sandbox.tickets)
    bot = gateway.post_ticket(body(), headers={"X-API-Key": FORM_KEY})  # the key read from formulario.js
    assert bot.status_code == 403 and bot.json()["codigo"] == "desafio_invalido"
    assert len(sandbox.tickets) == tickets

    open_form_page(browser, gateway)
    fill_form(browser)
    submit_form(browser)
    shown = form_result(browser)
    assert f"Chamado nº {max(sandbox.tickets)} aberto" in shown
    assert len(sandbox.tickets) == tickets + 1


def test_a_challenge_solution_replayed_from_the_browser_is_refused(browser, sandbox, launch):
    gateway = launch(keyed_settings(sandbox, FORM_API_KEY_NAME="formulario"))
    open_form_page(browser, gateway)
    browser.execute_script(RECORD_POSTS)
    fill_form(browser)
    submit_form(browser)
    assert "Chamado nº" in form_result(browser)
    (sent,) = browser.execute_script("return window.__posts")
    assert sent["X-Desafio"] and sent["X-Desafio-Solucao"]
    tickets = len(sandbox.tickets)
    replayed = gateway.post_ticket(body(descricao_problema="Outro pedido"), headers=sent)
    assert replayed.status_code == 403 and "já usado" in replayed.json()["detalhe"]
    assert len(sandbox.tickets) == tickets


def test_the_honeypot_is_hidden_from_people_keyboards_and_screen_readers(page):
    trap = page.find_element(By.CSS_SELECTOR, "form.gf input[name=website]")
    assert trap.get_attribute("tabindex") == "-1"
    assert page.execute_script("return arguments[0].closest('[aria-hidden=true]') !== null", trap)
    assert not trap.is_displayed() or page.execute_script(
        "var box = arguments[0].closest('.gf-armadilha').getBoundingClientRect(); return box.width <= 1", trap
    )
    labels = [label.text for label in page.find_elements(By.CSS_SELECTOR, "form.gf label") if label.is_displayed()]
    assert "Não preencha este campo" not in labels


# --- attachments --------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
PDF = b"%PDF-1.4\n" + bytes(range(256)) + b"\n%%EOF\n"
# Records the headers of every XMLHttpRequest the form sends (the multipart post).
RECORD_UPLOADS = """
window.__uploads = [];
var realOpen = XMLHttpRequest.prototype.open, realHeader = XMLHttpRequest.prototype.setRequestHeader;
XMLHttpRequest.prototype.open = function () {
  this.__headers = {};
  window.__uploads.push(this.__headers);
  return realOpen.apply(this, arguments);
};
XMLHttpRequest.prototype.setRequestHeader = function (name, value) {
  this.__headers[name] = value;
  return realHeader.apply(this, arguments);
};
"""


def files_on_disk(folder, **files: bytes) -> str:
    """The files written to `folder`, as the newline-separated paths a file input takes."""
    paths = []
    for name, content in files.items():
        path = folder / name
        path.write_bytes(content)
        paths.append(str(path))
    return "\n".join(paths)


def choose(driver, paths: str):
    control(driver, "Anexos").send_keys(paths)


def chosen(driver) -> list[str]:
    return [item.text for item in driver.find_elements(By.CSS_SELECTOR, ".gf-arquivo-nome")]


def documents_of(sandbox, ticket_id: int) -> list[dict]:
    return [
        sandbox.documents[link["documents_id"]]
        for link in sandbox.document_items
        if (link["itemtype"], link["items_id"]) == ("Ticket", ticket_id)
    ]


def test_chosen_files_arrive_as_documents_of_the_ticket_and_the_refused_one_is_listed(page, sandbox, tmp_path):
    page.execute_script(RECORD_UPLOADS)
    fill_form(page)
    # A default GLPI has no "log" document type: the gateway takes the file, GLPI drops it.
    choose(page, files_on_disk(tmp_path, **{"print.png": PNG, "orçamento.pdf": PDF, "erro.log": b"erro\r\n"}))
    assert chosen(page) == ["print.png", "orçamento.pdf", "erro.log"]
    submit_form(page)

    message = form_result(page)
    ticket_id = max(sandbox.tickets)
    assert f"Chamado nº {ticket_id} aberto" in message
    assert [document["filename"] for document in documents_of(sandbox, ticket_id)] == ["print.png", "orçamento.pdf"]
    assert "Estes arquivos não foram anexados: “erro.log” (o GLPI recusou o arquivo" in message
    (headers,) = page.execute_script("return window.__uploads")
    assert len(headers["Idempotency-Key"]) >= 32 and "Content-Type" not in headers  # the browser sets the boundary
    assert chosen(page) == [] and control(page, "Nome").get_attribute("value") == ""  # ready for the next ticket


def test_files_queued_after_the_ticket_are_named_in_the_success_message(page, sandbox, tmp_path):
    fill_form(page)
    choose(page, files_on_disk(tmp_path, **{"print.png": PNG, "orçamento.pdf": PDF}))
    sandbox.fault_endpoints = {"Document"}  # the ticket is created, then GLPI fails for its files
    sandbox.fault = "http500"
    submit_form(page)
    message = form_result(page)
    assert f"Chamado nº {max(sandbox.tickets)} aberto" in message
    assert "Os anexos “print.png” e “orçamento.pdf” serão enviados assim que o GLPI voltar." in message


# A paste of what a screenshot tool puts on the clipboard: one PNG file and no text.
PASTE = """
var bytes = Uint8Array.from(atob(arguments[1]), function (c) { return c.charCodeAt(0); });
var data = new DataTransfer();
if (arguments[2]) { data.setData("text/plain", arguments[2]); } else {
  data.items.add(new File([bytes], "image.png", {type: "image/png"}));
}
var event = new ClipboardEvent("paste", {clipboardData: data, bubbles: true, cancelable: true});
arguments[0].dispatchEvent(event);
return event.defaultPrevented;
"""


def test_a_pasted_screenshot_becomes_a_document_of_the_ticket(page, sandbox):
    fill_form(page)
    description = control(page, "Descrição")
    screenshot = base64.b64encode(PNG).decode()
    assert page.execute_script(PASTE, description, screenshot, None) is True
    assert chosen(page) == ["captura-de-tela-1.png"]
    # Text pasted into a field stays text: nothing attached, the browser pastes it as usual.
    assert page.execute_script(PASTE, description, "", "texto colado") is False
    assert chosen(page) == ["captura-de-tela-1.png"]
    submit_form(page)

    assert "Chamado nº" in form_result(page)
    (document,) = documents_of(sandbox, max(sandbox.tickets))
    assert document["filename"] == "captura-de-tela-1.png"
    assert sandbox.document_files[document["id"]] == PNG


def test_too_big_wrong_type_and_one_too_many_are_refused_in_the_browser_naming_the_file(
    browser, sandbox, launch, tmp_path
):
    gateway = launch(sandbox_settings(sandbox.url, ATTACHMENTS_MAX_COUNT="2", ATTACHMENTS_MAX_BYTES="2048"))
    open_form_page(browser, gateway)
    picker = control(browser, "Anexos")
    assert "Até 2 arquivos de até 2 KB cada" in browser.find_element(By.ID, "gf1-anexos-dica").text
    posts = post_lines(gateway)
    files = {"ok.txt": b"ok", "grande.txt": b"x" * 3000, "programa.exe": b"MZ" + bytes(10), "dois.pdf": PDF}
    choose(browser, files_on_disk(tmp_path, **files))
    assert chosen(browser) == ["ok.txt", "dois.pdf"]
    assert error_of(browser, picker) == (
        "“grande.txt” tem 2,9 KB, mais que o limite de 2 KB por arquivo. "
        "“programa.exe” não é de um tipo aceito (.exe). São aceitos: "
        ".png, .jpg, .jpeg, .gif, .webp, .pdf, .txt, .log, .csv, .docx, .xlsx, .pptx, .odt, .ods, .odp."
    )
    assert picker.get_attribute("aria-invalid") == "true"
    choose(browser, files_on_disk(tmp_path, **{"tres.txt": b"tres"}))
    assert chosen(browser) == ["ok.txt", "dois.pdf"]
    assert error_of(browser, picker) == "“tres.txt” não foi adicionado: envie no máximo 2 arquivos."
    assert post_lines(gateway) == posts  # nothing was sent
    for _ in range(2):
        browser.find_element(By.CSS_SELECTOR, ".gf-remover").click()
    assert chosen(browser) == []

    fill_form(browser)
    choose(browser, str(tmp_path / "ok.txt"))
    assert error_of(browser, picker) == ""
    submit_form(browser)
    assert "Chamado nº" in form_result(browser)
    assert [document["filename"] for document in documents_of(sandbox, max(sandbox.tickets))] == ["ok.txt"]
    assert post_lines(gateway) == posts + 1


def accessible_nodes(driver, role: str) -> list[dict]:
    return [
        node
        for node in driver.execute_cdp_cmd("Accessibility.getFullAXTree", {})["nodes"]
        if node.get("role", {}).get("value") == role and not node.get("ignored")
    ]


def test_the_upload_shows_a_labelled_progress_bar_announced_politely(page, sandbox, tmp_path):
    fill_form(page)
    choose(page, files_on_disk(tmp_path, **{"print.png": PNG}))
    assert not accessible_nodes(page, "progressbar")  # only while sending
    sandbox.latency_ms = 1500  # the upload is done long before GLPI answers
    submit_form(page)

    wait_for(page, lambda d: d.find_element(By.CSS_SELECTOR, ".gf-progresso").is_displayed())
    bar = page.find_element(By.CSS_SELECTOR, ".gf-progresso progress")
    wait_for(page, lambda d: bar.get_attribute("value") == "100")
    (node,) = accessible_nodes(page, "progressbar")
    assert node["name"]["value"] == "Envio dos anexos"
    live = page.find_element(By.CSS_SELECTOR, ".gf-progresso-texto")
    assert live.get_attribute("aria-live") == "polite"
    assert live.text == "Anexos enviados. Abrindo o chamado…"
    assert "Chamado nº" in form_result(page)
    assert not page.find_element(By.CSS_SELECTOR, ".gf-progresso").is_displayed()


def test_each_file_has_a_remove_button_named_for_it_that_works_by_keyboard(page, tmp_path):
    choose(page, files_on_disk(tmp_path, **{"a.txt": b"a", "b.txt": b"b"}))
    picker = control(page, "Anexos")
    names = [node["name"]["value"] for node in accessible_nodes(page, "button") if "Remover" in node["name"]["value"]]
    assert names == ["Remover a.txt", "Remover b.txt"]

    page.execute_script("arguments[0].focus()", picker)  # a click would open the file dialog
    ActionChains(page).send_keys(Keys.TAB).perform()  # from the file field to the first file's button
    assert page.switch_to.active_element.get_attribute("aria-label") == "Remover a.txt"
    page.switch_to.active_element.send_keys(Keys.ENTER)
    assert chosen(page) == ["b.txt"]
    assert page.switch_to.active_element.get_attribute("aria-label") == "Remover b.txt"  # focus not lost
    page.switch_to.active_element.send_keys(Keys.SPACE)
    assert chosen(page) == []
    assert page.switch_to.active_element == picker


def test_an_edited_file_list_gets_a_new_idempotency_key(browser, sandbox, launch, tmp_path):
    # With GLPI down a request with files is queued (202); with no room for files in the queue it
    # is refused (503), and the page keeps the submission for another try.
    page = browser
    open_form_page(page, launch(sandbox_settings(sandbox.url, QUEUE_MAX_ATTACHMENT_BYTES="0")))
    page.execute_script(RECORD_UPLOADS)
    fill_form(page)
    choose(page, files_on_disk(tmp_path, **{"a.txt": b"a"}))
    sandbox.fault = "http500"
    submit_form(page)
    form_result(page)
    submit_form(page)  # the same submission again: same key
    form_result(page)
    page.find_element(By.CSS_SELECTOR, ".gf-remover").click()
    choose(page, files_on_disk(tmp_path, **{"b.txt": b"b"}))
    submit_form(page)
    form_result(page)
    first, again, edited = (headers["Idempotency-Key"] for headers in page.execute_script("return window.__uploads"))
    assert first == again and edited != again


def test_with_the_form_key_the_multipart_post_carries_the_key_and_a_solved_challenge(
    browser, sandbox, launch, tmp_path
):
    gateway = launch(keyed_settings(sandbox, FORM_API_KEY_NAME="formulario"))
    open_form_page(browser, gateway)
    browser.execute_script(RECORD_UPLOADS)
    fill_form(browser)
    choose(browser, files_on_disk(tmp_path, **{"print.png": PNG}))
    submit_form(browser)
    assert "Chamado nº" in form_result(browser)
    ticket_id = max(sandbox.tickets)
    assert "<strong>Origem:</strong> formulario" in stored_ticket(sandbox, ticket_id)["content"]
    assert [document["filename"] for document in documents_of(sandbox, ticket_id)] == ["print.png"]
    (headers,) = browser.execute_script("return window.__uploads")
    assert headers["X-API-Key"] == FORM_KEY and headers["X-Desafio"] and headers["X-Desafio-Solucao"]


def test_the_snippet_on_an_allowed_site_uploads_files_through_cors(browser, sandbox, launch, foreign_site, tmp_path):
    gateway = launch(keyed_settings(sandbox, FORM_API_KEY_NAME="formulario", CORS_ORIGINS=foreign_site.url))
    open_form_snippet(browser, gateway, foreign_site)
    fill_form(browser)
    choose(browser, files_on_disk(tmp_path, **{"relatorio.pdf": PDF}))
    submit_form(browser)
    assert "Chamado nº" in form_result(browser)
    assert [document["filename"] for document in documents_of(sandbox, max(sandbox.tickets))] == ["relatorio.pdf"]


def test_a_file_the_server_refuses_by_its_content_is_named_next_to_the_field(page, sandbox, tmp_path):
    tickets = len(sandbox.tickets)
    fill_form(page)
    choose(page, files_on_disk(tmp_path, **{"nota.pdf": b"nao sou um PDF\r\n"}))  # only the content tells
    submit_form(page)
    assert form_result(page) == "Dados inválidos. Corrija os campos indicados."
    picker = control(page, "Anexos")
    assert error_of(page, picker) == "nota.pdf: o conteúdo é texto, mas a extensão é .pdf."
    assert picker.get_attribute("aria-invalid") == "true" and page.switch_to.active_element == picker
    assert chosen(page) == ["nota.pdf"]  # kept, for the customer to remove
    assert len(sandbox.tickets) == tickets
