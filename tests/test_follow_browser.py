"""The follow-up page (/acompanhar) in headless Chromium, against the gateway under gunicorn and the GLPI
sandbox: reached from the form's success link, the ticket's state as a timeline, a message added to it,
and each refusal said in words; by keyboard and screen reader; embedded in another site.

The technician's side is played through the sandbox's control endpoints (/_sandbox/tickets/<id>/...),
as from another process. Needs Chromium like test_form_browser.py.
"""

from __future__ import annotations

import html
import random
import re
from urllib.parse import urlsplit

import pytest
import requests
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from glpi_gateway.ticket_format import content_has_line
from tests.harness import sandbox_settings
from tests.helpers import (
    PNG,
    control,
    error_of,
    fill_form,
    form_result,
    open_form_page,
    open_form_snippet,
    submit_form,
    wait_for,
)

pytestmark = pytest.mark.slow  # Chromium, and the gateway under gunicorn

FORM_KEY = "form-key-0123456789abcdefghijklmnopqrstu"
SITE_KEY = "site-key-0123456789abcdefghijklmnopqrstuv"
PENDING = 4  # GLPI's status "Pendente"
CLOSED = 6


@pytest.fixture
def live(sandbox, launch):
    """A gateway that reads GLPI anew on every lookup (no follow cache): a change shows at the next one."""
    return launch(sandbox_settings(sandbox.url, GLPI_FOLLOW_CACHE_TTL="0"))


def technician(sandbox, method: str, path: str, payload: dict | None = None):
    """What the technician does in GLPI, through the sandbox's control endpoints."""
    origin = sandbox.url.rsplit("/apirest.php", 1)[0]
    answer = requests.request(method, f"{origin}/_sandbox/{path}", json=payload, timeout=10)
    assert answer.ok, answer.text
    return answer.json()


def created(gateway, headers: dict | None = None) -> tuple[str, int]:
    answer = gateway.post_ticket(
        {
            "nome_cliente": "Maria Souza",
            "telefone_cliente": "(11) 99999-0000",
            "cnpj_cliente": "11.222.333/0001-81",
            "anydesk_cliente": "123 456 789",
            "descricao_problema": "A impressora não imprime.",
        },
        headers=headers,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["protocolo"], answer.json()["ticket_id"]


def open_follow_page(driver, url: str):
    driver.get(url)
    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".gf-acompanhar"))


def follow_result(driver) -> str:
    """The page's live region once no lookup is running."""
    region = driver.find_element(By.CSS_SELECTOR, ".gf-acompanhar > .gf-resultado")
    assert region.get_attribute("aria-live") == "polite" and region.get_attribute("role") == "status"
    button = driver.find_element(By.CSS_SELECTOR, ".gf-consulta .gf-enviar")
    wait_for(driver, lambda d: region.text and button.text == "Consultar")
    return region.text


def situation(driver) -> str:
    follow_result(driver)
    return driver.find_element(By.CSS_SELECTOR, ".gf-situacao strong").text


def timeline(driver) -> list[str]:
    """The timeline's entries as shown, read in one go: the page may redraw it between two reads."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('.gf-linha-do-tempo li'), item => item.innerText.trim());"
    )


def press(driver, element):
    """Focus `element` and press Enter, by keyboard."""
    driver.execute_script("arguments[0].focus()", element)
    ActionChains(driver).send_keys(Keys.ENTER).perform()


def add_message(driver, message: str, name: str = ""):
    control(driver, "Adicionar informação").send_keys(message)
    if name:
        control(driver, "Seu nome").send_keys(name)
    press(driver, driver.find_element(By.CSS_SELECTOR, ".gf-complemento .gf-enviar"))


def complement_result(driver) -> str:
    region = driver.find_element(By.CSS_SELECTOR, ".gf-complemento .gf-resultado")
    assert region.get_attribute("aria-live") == "polite"
    button = driver.find_element(By.CSS_SELECTOR, ".gf-complemento .gf-enviar")
    wait_for(driver, lambda d: region.text and button.text == "Enviar informação")
    return region.text


# --- from the form to the ticket -------------------------------------------------------------


def test_from_the_forms_success_link_the_customer_sees_the_status_and_adds_a_message(browser, live, sandbox):
    open_form_page(browser, live)
    fill_form(browser, Descrição=f"Impressora parada {random.randrange(10**9)}")
    submit_form(browser)
    assert "Chamado nº" in form_result(browser)
    ticket_id = max(sandbox.tickets)
    link = browser.find_element(By.LINK_TEXT, "Acompanhar o chamado")
    protocol = re.fullmatch(
        rf"{re.escape(live.url)}/acompanhar\?protocolo=([0-9a-f]{{32}})", link.get_attribute("href")
    )
    assert protocol and content_has_line(sandbox.tickets[ticket_id]["content"], "Protocolo", protocol[1])
    press(browser, link)

    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".gf-acompanhar"))
    assert situation(browser) == "Novo"
    assert browser.find_element(By.CSS_SELECTOR, ".gf-chamado h2").text == f"Chamado nº {ticket_id}"
    assert timeline(browser)[0].startswith(f"Chamado nº {ticket_id} aberto")
    assert control(browser, "Protocolo").get_attribute("value") == protocol[1]

    technician(sandbox, "POST", f"tickets/{ticket_id}/followups", {"content": "<p>Pode reiniciar &amp; testar?</p>"})
    technician(sandbox, "POST", f"tickets/{ticket_id}/status", {"status": PENDING})
    browser.refresh()
    assert situation(browser) == "Pendente"
    assert timeline(browser)[-1].startswith("Equipe de suporte") and "Pode reiniciar & testar?" in timeline(browser)[-1]

    typed = "Reiniciei <b>duas vezes</b> & nada\nSegue parada"
    add_message(browser, typed, name="Maria <Financeiro>")
    assert complement_result(browser) == "Informação enviada: ela já está no chamado."
    wait_for(browser, lambda d: len(timeline(d)) == 3)
    last = browser.find_elements(By.CSS_SELECTOR, ".gf-linha-do-tempo li")[-1]
    assert last.find_element(By.CSS_SELECTOR, ".gf-evento-titulo").text.startswith("Cliente")
    assert last.find_element(By.CSS_SELECTOR, ".gf-evento-texto").text == typed
    assert control(browser, "Adicionar informação").get_attribute("value") == ""

    (row,) = [
        row for row in technician(sandbox, "GET", f"tickets/{ticket_id}/followups") if "Reiniciei" in row["content"]
    ]
    # GLPI 10 stores the gateway's HTML entity-encoded once: decoded, the customer's text is escaped.
    stored = html.unescape(row["content"])
    assert "Reiniciei &lt;b&gt;duas vezes&lt;/b&gt; &amp; nada<br>Segue parada" in stored
    assert "Maria &lt;Financeiro&gt;" in stored and "<b>" not in stored and row["is_private"] == 0


def test_the_queued_protocol_link_shows_the_request_waiting_in_line(browser, gateway, sandbox):
    sandbox.fault = "http500"
    open_form_page(browser, gateway)
    fill_form(browser)
    submit_form(browser)
    assert "Pedido recebido com o protocolo" in form_result(browser)
    press(browser, browser.find_element(By.LINK_TEXT, "Acompanhar o pedido"))
    assert situation(browser) == "Na fila, aguardando o sistema de chamados"
    assert any(event.startswith("Na fila") for event in timeline(browser))
    assert browser.find_element(By.CSS_SELECTOR, ".gf-complemento").is_displayed()  # it waits behind the ticket
    notice = browser.find_element(By.CSS_SELECTOR, ".gf-sem-complemento").text
    assert notice.startswith("O chamado ainda não foi aberto: a informação que você enviar fica na fila")


# --- messages queued while GLPI is down, and files ----------------------------------------------


def test_with_glpi_down_a_message_is_accepted_as_queued_and_shows_delivered_once_glpi_returns(browser, live, sandbox):
    protocol, ticket_id = created(live)
    open_follow_page(browser, f"{live.url}/acompanhar?protocolo={protocol}")
    assert situation(browser) == "Novo"
    sandbox.fault = "http500"
    add_message(browser, "Troquei o toner e nada")
    assert complement_result(browser).startswith("Mensagem recebida, na fila")
    assert "gf-resultado-sucesso" in browser.find_element(
        By.CSS_SELECTOR, ".gf-complemento .gf-resultado"
    ).get_attribute("class")
    sandbox.fault = None
    press(browser, browser.find_element(By.CSS_SELECTOR, ".gf-atualizar"))
    follow_result(browser)
    waiting = [event for event in timeline(browser) if event.startswith("Sua mensagem (na fila)")]
    delivered = [event for event in timeline(browser) if event.startswith("Cliente")]
    assert len(waiting + delivered) == 1 and "Troquei o toner e nada" in (waiting + delivered)[0]

    def delivered_in_the_timeline(driver) -> bool:
        press(driver, driver.find_element(By.CSS_SELECTOR, ".gf-atualizar"))
        follow_result(driver)
        events = timeline(driver)
        return any(e.startswith("Cliente") for e in events) and not any(e.startswith("Sua mensagem") for e in events)

    wait_for(browser, delivered_in_the_timeline)
    assert [row for row in sandbox.followups.values() if row["items_id"] == ticket_id and "toner" in row["content"]]


def test_a_file_attached_on_the_page_arrives_as_a_document_of_the_ticket(browser, live, sandbox, tmp_path):
    protocol, ticket_id = created(live)
    open_follow_page(browser, f"{live.url}/acompanhar?protocolo={protocol}")
    follow_result(browser)
    path = tmp_path / "print.png"
    path.write_bytes(PNG)
    control(browser, "Anexos").send_keys(str(path))
    add_message(browser, "Segue o print do erro")
    assert complement_result(browser) == "Informação enviada: ela já está no chamado."
    [link] = [link for link in sandbox.document_items if (link["itemtype"], link["items_id"]) == ("Ticket", ticket_id)]
    document = sandbox.documents[link["documents_id"]]
    assert document["filename"] == "print.png" and sandbox.document_files[document["id"]] == PNG
    assert document["comment"].startswith("Protocolo do complemento: c-")


def test_a_message_in_the_ticket_whose_file_waits_shows_once_with_the_file_in_line(browser, live, sandbox, tmp_path):
    protocol, ticket_id = created(live)
    open_follow_page(browser, f"{live.url}/acompanhar?protocolo={protocol}")
    follow_result(browser)
    sandbox.fault, sandbox.fault_endpoints = "http500", {"Document"}  # GLPI takes the message, not its file
    path = tmp_path / "print.png"
    path.write_bytes(PNG)
    control(browser, "Anexos").send_keys(str(path))
    add_message(browser, "Segue o print do erro")
    assert complement_result(browser) == (
        "Informação enviada: ela já está no chamado. O anexo “print.png” será enviado assim que o GLPI voltar."
    )
    press(browser, browser.find_element(By.CSS_SELECTOR, ".gf-atualizar"))
    follow_result(browser)
    events = timeline(browser)
    [message] = [event for event in events if "Segue o print do erro" in event]
    assert message.startswith("Cliente")  # as GLPI shows it, not a second time as waiting
    [waiting] = [event for event in events if event.startswith("Anexos da sua mensagem (na fila)")]
    assert "print.png" in waiting and "Serão enviados assim que o sistema voltar." in waiting

    sandbox.fault = None

    def file_delivered(driver) -> bool:
        press(driver, driver.find_element(By.CSS_SELECTOR, ".gf-atualizar"))
        follow_result(driver)
        return not any(event.startswith("Anexos da sua mensagem") for event in timeline(driver))

    wait_for(browser, file_delivered)
    assert [event for event in timeline(browser) if "Segue o print do erro" in event] == [message]
    [link] = [link for link in sandbox.document_items if (link["itemtype"], link["items_id"]) == ("Ticket", ticket_id)]
    assert sandbox.documents[link["documents_id"]]["filename"] == "print.png"


# --- typed protocols and refusals ------------------------------------------------------------


def test_a_typed_protocol_is_looked_up_and_the_focus_moves_to_the_ticket(browser, gateway):
    protocol, ticket_id = created(gateway)
    open_follow_page(browser, f"{gateway.url}/acompanhar")
    field = control(browser, "Protocolo")
    field.send_keys(f"  {protocol.upper()} ", Keys.ENTER)
    assert situation(browser) == "Novo"
    heading = browser.find_element(By.CSS_SELECTOR, ".gf-chamado h2")
    assert browser.switch_to.active_element == heading and heading.text == f"Chamado nº {ticket_id}"
    assert follow_result(browser).startswith(f"Chamado nº {ticket_id}: Novo.")
    assert browser.current_url == f"{gateway.url}/acompanhar?protocolo={protocol}"  # a reload shows it again


def test_unknown_and_expired_protocols_get_the_same_one_message_at_the_field(browser, gateway):
    open_follow_page(browser, f"{gateway.url}/acompanhar?protocolo={'0' * 32}")
    shown = follow_result(browser)
    assert shown.startswith("Protocolo não encontrado.")
    field = control(browser, "Protocolo")
    assert error_of(browser, field) == shown and field.get_attribute("aria-invalid") == "true"
    assert not browser.find_element(By.CSS_SELECTOR, ".gf-chamado").is_displayed()

    field.clear()
    field.send_keys("123", Keys.ENTER)
    assert error_of(browser, field).startswith("O protocolo tem 32 caracteres")
    assert browser.switch_to.active_element == field


def test_lookups_over_the_limit_say_how_long_to_wait(browser, sandbox, launch):
    gateway = launch(sandbox_settings(sandbox.url, RATE_LIMIT_LOOKUP_PER_IP="2/hour"))
    protocol, _ = created(gateway)
    open_follow_page(browser, f"{gateway.url}/acompanhar?protocolo={protocol}")
    assert situation(browser) == "Novo"
    press(browser, browser.find_element(By.CSS_SELECTOR, ".gf-atualizar"))
    follow_result(browser)
    press(browser, browser.find_element(By.CSS_SELECTOR, ".gf-atualizar"))
    wait_for(browser, lambda d: "Muitas consultas" in follow_result(d))
    assert re.fullmatch(r"Muitas consultas seguidas\. Aguarde \d+ minutos? e tente de novo\.", follow_result(browser))
    assert browser.find_element(By.CSS_SELECTOR, ".gf-chamado").is_displayed()  # what was shown stays


def test_glpi_unreadable_shows_the_gateways_warning_and_the_ticket_number(browser, gateway, sandbox):
    protocol, ticket_id = created(gateway)
    sandbox.fault = "http503"
    open_follow_page(browser, f"{gateway.url}/acompanhar?protocolo={protocol}")
    assert situation(browser) == "Chamado aberto"
    assert "GLPI não pôde ser consultado agora" in browser.find_element(By.CSS_SELECTOR, ".gf-aviso").text
    assert timeline(browser) == [f"Chamado nº {ticket_id} aberto"]


def test_a_closed_ticket_takes_no_message_and_points_to_a_new_ticket(browser, live, sandbox):
    protocol, ticket_id = created(live)
    technician(sandbox, "POST", f"tickets/{ticket_id}/status", {"status": CLOSED})
    open_follow_page(browser, f"{live.url}/acompanhar?protocolo={protocol}")
    assert situation(browser) == "Fechado"
    assert any(event.startswith("Chamado fechado") for event in timeline(browser))
    assert not browser.find_element(By.CSS_SELECTOR, ".gf-complemento").is_displayed()
    link = browser.find_element(By.LINK_TEXT, "abra um novo chamado")
    assert link.get_attribute("href") == f"{live.url}/formulario"


def test_a_ticket_closed_while_the_customer_writes_refuses_the_message_in_words(browser, live, sandbox):
    protocol, ticket_id = created(live)
    open_follow_page(browser, f"{live.url}/acompanhar?protocolo={protocol}")
    assert situation(browser) == "Novo"
    technician(sandbox, "POST", f"tickets/{ticket_id}/status", {"status": CLOSED})
    add_message(browser, "Mais um detalhe")
    assert complement_result(browser).startswith("Este chamado está fechado e não recebe mais informações.")
    assert browser.find_element(By.LINK_TEXT, "Abrir um novo chamado").get_attribute("href") == f"{live.url}/formulario"
    assert control(browser, "Adicionar informação").get_attribute("value") == "Mais um detalhe"  # nothing lost
    assert technician(sandbox, "GET", f"tickets/{ticket_id}/followups") == []


def test_an_empty_message_is_caught_in_the_browser(browser, gateway):
    protocol, _ = created(gateway)
    open_follow_page(browser, f"{gateway.url}/acompanhar?protocolo={protocol}")
    situation(browser)
    posts = gateway.logs().count("/complemento")
    add_message(browser, "   ")
    message = control(browser, "Adicionar informação")
    assert error_of(browser, message) == "Escreva a mensagem."
    assert message.get_attribute("aria-invalid") == "true" and browser.switch_to.active_element == message
    assert gateway.logs().count("/complemento") == posts


# --- accessibility ----------------------------------------------------------------------------


def test_screen_readers_get_the_fields_by_label_and_the_timeline_as_a_named_list(browser, gateway):
    protocol, _ = created(gateway)
    open_follow_page(browser, f"{gateway.url}/acompanhar?protocolo={protocol}")
    situation(browser)
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "pt-BR"
    nodes = browser.execute_cdp_cmd("Accessibility.getFullAXTree", {})["nodes"]
    names = {
        (node["role"]["value"], node.get("name", {}).get("value"))
        for node in nodes
        if not node.get("ignored") and "role" in node
    }
    assert {("textbox", "Protocolo do chamado"), ("textbox", "Adicionar informação")} <= names
    assert ("textbox", "Seu nome (opcional)") in names and ("list", "Andamento") in names
    assert ("button", "Atualizar") in names and ("button", "Enviar informação") in names


# --- with the form's public key, and embedded ---------------------------------------------------


def test_with_api_keys_the_page_follows_with_the_form_key_and_adds_with_a_solved_challenge(browser, sandbox, launch):
    gateway = launch(
        sandbox_settings(sandbox.url, API_KEYS=f"formulario:{FORM_KEY},site:{SITE_KEY}", FORM_API_KEY_NAME="formulario")
    )
    protocol, ticket_id = created(gateway, headers={"X-API-Key": SITE_KEY})
    open_follow_page(browser, f"{gateway.url}/acompanhar?protocolo={protocol}")
    assert situation(browser) == "Novo"
    add_message(browser, "Enviado pela página com a chave pública")
    assert complement_result(browser) == "Informação enviada: ela já está no chamado."
    (row,) = technician(sandbox, "GET", f"tickets/{ticket_id}/followups")
    assert "Origem:&#60;/strong&#62; formulario" in row["content"]
    assert f"GET /chamados/{protocol} -> 200" in gateway.logs() and FORM_KEY not in gateway.logs()


def test_the_form_snippet_on_another_site_links_to_the_gateways_page(browser, sandbox, launch, foreign_site):
    gateway = launch(sandbox_settings(sandbox.url, CORS_ORIGINS=foreign_site.url))
    open_form_snippet(browser, gateway, foreign_site)
    fill_form(browser)
    submit_form(browser)
    assert "Chamado nº" in form_result(browser)
    href = browser.find_element(By.LINK_TEXT, "Acompanhar o chamado").get_attribute("href")
    assert urlsplit(href)[:3] == urlsplit(f"{gateway.url}/acompanhar")[:3]


def test_the_page_works_in_an_iframe_and_as_a_snippet_on_another_site(browser, sandbox, launch, foreign_site):
    gateway = launch(sandbox_settings(sandbox.url, CORS_ORIGINS=foreign_site.url))
    protocol, ticket_id = created(gateway)
    foreign_site.pages["/quadro"] = (
        "<!doctype html><html><body><script>window.heights = [];"
        "addEventListener('message', function (e) {"
        " if (e.data && e.data.tipo === 'glpi-acompanhar-altura') { window.heights.push(e.data.altura); } });"
        f"</script><iframe id='f' title='Acompanhar chamado' src='{gateway.url}/acompanhar?protocolo={protocol}'>"
        "</iframe></body></html>"
    )
    browser.get(foreign_site.url + "/quadro")
    wait_for(browser, lambda d: d.execute_script("return window.heights.length > 0"))
    browser.switch_to.frame(browser.find_element(By.ID, "f"))
    try:
        assert situation(browser) == "Novo"
    finally:
        browser.switch_to.default_content()

    foreign_site.pages[f"/suporte?protocolo={protocol}"] = (
        "<!doctype html><html lang='pt-BR'><body><h1>Suporte</h1><div id='acompanhar-chamado'></div>"
        f"<script src='{gateway.url}/acompanhar.js' async></script></body></html>"
    )
    browser.get(f"{foreign_site.url}/suporte?protocolo={protocol}")
    assert situation(browser) == "Novo"
    assert browser.find_element(By.CSS_SELECTOR, ".gf-chamado h2").text == f"Chamado nº {ticket_id}"
