"""GlpiClient against recorded GLPI answers (responses mocks; shapes from tests/transcripts)."""

from __future__ import annotations

import io
import json
import threading
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses

from glpi_client import (
    GlpiAuthError,
    GlpiClient,
    GlpiNotFound,
    GlpiRequestError,
    GlpiSessionInvalid,
    GlpiUnavailable,
)
from tests.helpers import Clock

BASE = "https://glpi.example.com/apirest.php"
APP_TOKEN = "app-token-0123456789abcdefghijklmnopqrstu"
USER_TOKEN = "user-token-0123456789abcdefghijklmnopqrst"
SESSION_INVALID = ["ERROR_SESSION_TOKEN_INVALID", "session_token seems invalid"]
ADD_REFUSED = ["ERROR_GLPI_ADD", "You don't have permission to perform this action."]
EMPTY_SEARCH = {"totalcount": 0, "count": 0, "sort": ["1"], "order": ["ASC"], "content-range": "0--1/0"}


@pytest.fixture
def clock() -> Clock:
    return Clock(1000.0)


@pytest.fixture
def client(clock: Clock) -> GlpiClient:
    return GlpiClient(BASE, user_token=USER_TOKEN, app_token=APP_TOKEN, timeout=2, session_max_age=900, clock=clock)


@pytest.fixture
def glpi():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def sessions(glpi, *tokens: str) -> None:
    for token in tokens:
        glpi.get(f"{BASE}/initSession", json={"session_token": token})


def calls_to(glpi, endpoint: str) -> list:
    return [call for call in glpi.calls if urlsplit(call.request.url).path.endswith(endpoint)]


def test_session_is_opened_once_and_reused(client, glpi):
    sessions(glpi, "s1")
    glpi.get(f"{BASE}/ITILCategory/1", json={"id": 1})
    client.get_item("ITILCategory", 1)
    client.get_item("ITILCategory", 1)
    assert len(calls_to(glpi, "initSession")) == 1
    assert [c.request.headers["Session-Token"] for c in calls_to(glpi, "ITILCategory/1")] == ["s1", "s1"]


def test_tokens_travel_in_headers_never_in_the_query_string(client, glpi):
    sessions(glpi, "s1")
    glpi.get(f"{BASE}/User/8", json={"id": 8})
    client.get_item("User", 8)
    init = calls_to(glpi, "initSession")[0].request
    assert init.headers["App-Token"] == APP_TOKEN
    assert init.headers["Authorization"] == f"user_token {USER_TOKEN}"
    for call in glpi.calls:
        assert APP_TOKEN not in call.request.url and USER_TOKEN not in call.request.url and "s1" not in call.request.url


def test_no_app_token_header_when_none_is_configured(clock, glpi):
    client = GlpiClient(BASE, user_token=USER_TOKEN, app_token=None, clock=clock)
    sessions(glpi, "s1")
    glpi.get(f"{BASE}/User/8", json={"id": 8})
    client.get_item("User", 8)
    assert all("App-Token" not in call.request.headers for call in glpi.calls)


def test_expired_session_is_reopened_once_and_the_call_replayed(client, glpi):
    sessions(glpi, "s1", "s2")
    glpi.get(f"{BASE}/User/8", json=SESSION_INVALID, status=401)
    glpi.get(f"{BASE}/User/8", json={"id": 8})
    assert client.get_item("User", 8) == {"id": 8}
    assert [c.request.headers["Session-Token"] for c in calls_to(glpi, "User/8")] == ["s1", "s2"]


def test_a_session_refused_twice_in_a_row_is_not_retried_forever(client, glpi):
    sessions(glpi, "s1", "s2", "s3")
    glpi.get(f"{BASE}/User/8", json=SESSION_INVALID, status=401)
    with pytest.raises(GlpiSessionInvalid):
        client.get_item("User", 8)
    assert len(calls_to(glpi, "User/8")) == 2
    assert len(calls_to(glpi, "initSession")) == 2


def test_wrong_user_token_is_an_auth_error(client, glpi):
    glpi.get(
        f"{BASE}/initSession", json=["ERROR_GLPI_LOGIN_USER_TOKEN", "parameter user_token seems invalid"], status=401
    )
    with pytest.raises(GlpiAuthError) as raised:
        client.get_item("User", 8)
    assert (raised.value.code, raised.value.status) == ("ERROR_GLPI_LOGIN_USER_TOKEN", 401)


@pytest.mark.parametrize(
    "code", ["ERROR_WRONG_APP_TOKEN_PARAMETER", "ERROR_APP_TOKEN_PARAMETERS_MISSING", "ERROR_LOGIN_PARAMETERS_MISSING"]
)
def test_app_token_and_missing_credentials_refusals_are_auth_errors(client, glpi, code):
    glpi.get(f"{BASE}/initSession", json=[code, "message; view documentation in your browser at …"], status=400)
    with pytest.raises(GlpiAuthError) as raised:
        client.get_item("User", 8)
    assert raised.value.code == code


def test_api_disabled_is_an_auth_error(client, glpi):
    glpi.get(f"{BASE}/initSession", json=["ERROR", "API disabled"], status=400)
    with pytest.raises(GlpiAuthError):
        client.get_item("User", 8)


def test_empty_search_result_without_data_key_is_an_empty_list(client, glpi):
    sessions(glpi, "s1")
    glpi.get(f"{BASE}/search/Entity", json=EMPTY_SEARCH)
    assert client.search("Entity", [{"field": 76666, "searchtype": "contains", "value": "^1$"}]) == []


def test_partial_search_answer_206_is_success(client, glpi):
    sessions(glpi, "s1")
    body = {"totalcount": 7, "count": 1, "data": [{"1": "Root entity", "2": 0}], "content-range": "0-0/7"}
    glpi.get(f"{BASE}/search/Entity", json=body, status=206)
    assert client.search("Entity", []) == [{"1": "Root entity", "2": 0}]


def test_search_sends_php_style_criteria_forcedisplay_and_range(client, glpi):
    sessions(glpi, "s1")
    glpi.get(f"{BASE}/search/Entity", json=EMPTY_SEARCH)
    client.search("Entity", [{"field": 76666, "searchtype": "contains", "value": "^11%222$"}], forcedisplay=(2, 1))
    query = parse_qsl(urlsplit(calls_to(glpi, "search/Entity")[0].request.url).query)
    assert query == [
        ("criteria[0][field]", "76666"),
        ("criteria[0][searchtype]", "contains"),
        ("criteria[0][value]", "^11%222$"),
        ("forcedisplay[0]", "2"),
        ("forcedisplay[1]", "1"),
        ("range", "0-49"),
    ]


def test_glpi_error_arrays_become_typed_errors_with_code_status_and_message(client, glpi):
    sessions(glpi, "s1")
    glpi.get(f"{BASE}/search/Ticket", json=["ERROR", "Bad field ID in search criteria; view documentation"], status=400)
    glpi.get(f"{BASE}/ITILCategory/99999", json=["ERROR_ITEM_NOT_FOUND", "Item not found"], status=404)
    with pytest.raises(GlpiRequestError) as raised:
        client.search("Ticket", [])
    assert (raised.value.code, raised.value.status) == ("ERROR", 400)
    assert raised.value.message.startswith("Bad field ID")
    with pytest.raises(GlpiNotFound) as not_found:
        client.get_item("ITILCategory", 99999)
    assert not_found.value.code == "ERROR_ITEM_NOT_FOUND"


def test_read_timeout_is_unavailable_and_the_request_may_have_been_processed(client, glpi):
    sessions(glpi, "s1")
    glpi.post(f"{BASE}/Ticket", body=requests.ReadTimeout("slow"))
    with pytest.raises(GlpiUnavailable) as raised:
        client.create_item("Ticket", {"name": "x"})
    assert raised.value.code == "TIMEOUT" and raised.value.request_sent is True


def test_connect_timeout_is_unavailable_and_nothing_was_sent(client, glpi):
    glpi.get(f"{BASE}/initSession", body=requests.ConnectTimeout("no route"))
    with pytest.raises(GlpiUnavailable) as raised:
        client.get_item("User", 8)
    assert raised.value.code == "TIMEOUT" and raised.value.request_sent is False


def test_refused_connection_is_unavailable_and_nothing_was_sent():
    client = GlpiClient("http://127.0.0.1:9/apirest.php", user_token=USER_TOKEN, timeout=2)
    with pytest.raises(GlpiUnavailable) as raised:
        client.get_item("User", 8)
    assert raised.value.code == "CONNECTION_FAILED" and raised.value.request_sent is False


def test_server_error_is_unavailable(client, glpi):
    glpi.get(f"{BASE}/initSession", body="<h1>Internal Server Error</h1>", status=500, content_type="text/html")
    with pytest.raises(GlpiUnavailable) as raised:
        client.get_item("User", 8)
    assert (raised.value.code, raised.value.status) == ("SERVER_ERROR", 500)


def test_html_login_page_is_unavailable_not_json(client, glpi):
    page = "<!DOCTYPE html><html><head><title>GLPI - Authentication</title></head></html>"
    glpi.get(f"{BASE}/initSession", body=page, status=200, content_type="text/html")
    with pytest.raises(GlpiUnavailable) as raised:
        client.get_item("User", 8)
    assert raised.value.code == "NOT_JSON"


def test_redirect_to_the_web_ui_is_not_followed(client, glpi):
    glpi.get(f"{BASE}/initSession", status=302, headers={"Location": "https://glpi.example.com/index.php"})
    with pytest.raises(GlpiUnavailable) as raised:
        client.get_item("User", 8)
    assert len(glpi.calls) == 1
    assert raised.value.code == "REDIRECTED"
    assert "https://glpi.example.com/index.php" in raised.value.message


def test_new_ticket_id_is_read_from_the_body_not_the_location_header(client, glpi):
    sessions(glpi, "s1")
    glpi.post(
        f"{BASE}/Ticket",
        json={"id": 42, "message": "Item successfully added: x (42)"},
        status=201,
        headers={"location": "http://wrong-host/apirest.php/Ticket/999"},
    )
    assert client.create_item("Ticket", {"name": "x"}) == 42


def multipart_parts(request) -> dict[str, tuple[str | None, bytes]]:
    """name -> (file name, bytes) of a multipart request body, read with the stdlib email parser."""
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode() + request.body
    )
    return {
        part.get_param("name", header="content-disposition"): (part.get_filename(), part.get_payload(decode=True))
        for part in message.iter_parts()
    }


def test_document_upload_is_multipart_with_a_manifest_linking_the_item_in_its_entity(client, glpi):
    sessions(glpi, "s1", "s2")
    glpi.post(f"{BASE}/Document", json=SESSION_INVALID, status=401)
    glpi.post(
        f"{BASE}/Document", json={"id": 9, "message": "Item successfully added: Document: Ticket - x"}, status=201
    )
    content = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    assert client.upload_document("relatório.png", content, "image/png", "Ticket", 42, 3) == 9
    sent = calls_to(glpi, "/Document")
    assert len(sent) == 2  # replayed whole with the new session
    for call in sent:
        parts = multipart_parts(call.request)
        manifest_name, manifest = parts["uploadManifest"]
        assert manifest_name is None and b"\\" not in manifest  # GLPI may stripcslashes() it
        assert json.loads(manifest) == {
            "input": {
                "name": "relatório.png",
                "_filename": ["relatório.png"],
                "itemtype": "Ticket",
                "items_id": 42,
                "entities_id": 3,
            }
        }
        assert parts["filename[0]"] == ("relatório.png", content)


def test_ticket_refused_with_an_old_session_is_retried_once_with_a_new_session(client, glpi, clock):
    sessions(glpi, "old", "fresh")
    glpi.get(f"{BASE}/User/8", json={"id": 8})
    glpi.get(f"{BASE}/killSession", json=True)
    glpi.post(f"{BASE}/Ticket", json=ADD_REFUSED, status=400)
    glpi.post(f"{BASE}/Ticket", json={"id": 377, "message": "ok"}, status=201)
    client.get_item("User", 8)  # the session now predates this ticket
    clock.now += 60
    assert client.create_item("Ticket", {"entities_id": 10}) == 377
    assert [c.request.headers["Session-Token"] for c in calls_to(glpi, "Ticket")] == ["old", "fresh"]
    assert calls_to(glpi, "killSession")[0].request.headers["Session-Token"] == "old"


def test_ticket_refused_with_a_session_opened_for_it_is_not_retried(client, glpi):
    sessions(glpi, "s1", "s2")
    glpi.post(f"{BASE}/Ticket", json=ADD_REFUSED, status=400)
    with pytest.raises(GlpiRequestError) as raised:
        client.create_item("Ticket", {"entities_id": 10})
    assert raised.value.code == "ERROR_GLPI_ADD"
    assert len(calls_to(glpi, "Ticket")) == 1


def test_refusal_of_anything_but_a_ticket_post_is_not_retried(client, glpi, clock):
    sessions(glpi, "s1", "s2")
    glpi.get(f"{BASE}/User/8", json={"id": 8})
    client.get_item("User", 8)
    glpi.get(f"{BASE}/search/Entity", json=["ERROR_GLPI_ADD", "odd"], status=400)
    with pytest.raises(GlpiRequestError):
        client.search("Entity", [])
    assert len(calls_to(glpi, "initSession")) == 1


def test_session_older_than_max_age_is_killed_and_renewed(client, glpi, clock):
    sessions(glpi, "s1", "s2")
    glpi.get(f"{BASE}/User/8", json={"id": 8})
    glpi.get(f"{BASE}/killSession", json=True)
    client.get_item("User", 8)
    clock.now += 901
    client.get_item("User", 8)
    assert [c.request.headers["Session-Token"] for c in calls_to(glpi, "User/8")] == ["s1", "s2"]
    assert calls_to(glpi, "killSession")[0].request.headers["Session-Token"] == "s1"


def test_each_thread_has_its_own_session(client, glpi):
    sessions(glpi, "main", "worker")
    glpi.get(f"{BASE}/User/8", json={"id": 8})
    client.get_item("User", 8)
    thread = threading.Thread(target=client.get_item, args=("User", 8))
    thread.start()
    thread.join()
    assert [c.request.headers["Session-Token"] for c in calls_to(glpi, "User/8")] == ["main", "worker"]


def test_close_kills_every_session_it_opened(client, glpi):
    sessions(glpi, "main", "worker")
    glpi.get(f"{BASE}/User/8", json={"id": 8})
    glpi.get(f"{BASE}/killSession", json=True)
    client.get_item("User", 8)
    thread = threading.Thread(target=client.get_item, args=("User", 8))
    thread.start()
    thread.join()
    client.close()
    assert sorted(c.request.headers["Session-Token"] for c in calls_to(glpi, "killSession")) == ["main", "worker"]


def test_close_survives_a_session_glpi_already_forgot(client, glpi):
    sessions(glpi, "s1")
    glpi.get(f"{BASE}/User/8", json={"id": 8})
    glpi.get(f"{BASE}/killSession", json=SESSION_INVALID, status=401)
    client.get_item("User", 8)
    client.close()
    assert len(calls_to(glpi, "killSession")) == 1


def test_list_items_reads_every_page(client, glpi, monkeypatch):
    monkeypatch.setattr("glpi_client.LIST_PAGE_SIZE", 2)
    sessions(glpi, "s1")
    glpi.get(f"{BASE}/ITILCategory", json=[{"id": 1}, {"id": 2}], status=206)
    glpi.get(f"{BASE}/ITILCategory", json=[{"id": 3}], status=200)
    assert [item["id"] for item in client.list_items("ITILCategory")] == [1, 2, 3]
    ranges = [dict(parse_qsl(urlsplit(c.request.url).query))["range"] for c in calls_to(glpi, "ITILCategory")]
    assert ranges == ["0-1", "2-3"]


def test_every_call_is_reported_to_the_observer(clock, glpi):
    seen = []
    client = GlpiClient(BASE, user_token=USER_TOKEN, clock=clock, observer=lambda m, e, s, t: seen.append((m, e, s)))
    sessions(glpi, "s1")
    glpi.get(f"{BASE}/ITILCategory/5", json={"id": 5})
    client.get_item("ITILCategory", 5)
    assert seen == [("GET", "initSession", 200), ("GET", "ITILCategory/:id", 200)]


def test_count_is_a_one_row_search_reading_totalcount(client, glpi):
    sessions(glpi, "s1")
    glpi.get(f"{BASE}/search/Entity", json={**EMPTY_SEARCH, "totalcount": 42, "count": 1, "data": [{"1": "Root"}]})
    assert client.count("Entity") == 42
    assert dict(parse_qsl(urlsplit(calls_to(glpi, "search/Entity")[0].request.url).query)) == {"range": "0-0"}


def test_count_without_totalcount_is_an_unexpected_answer(client, glpi):
    sessions(glpi, "s1")
    glpi.get(f"{BASE}/search/Entity", json={"count": 0})
    with pytest.raises(GlpiUnavailable) as raised:
        client.count("Entity")
    assert raised.value.code == "UNEXPECTED_ANSWER"


def test_check_login_replaces_this_threads_session_and_kills_the_old_one(client, glpi):
    sessions(glpi, "s1", "s2")
    glpi.get(f"{BASE}/killSession", json=True)
    glpi.get(f"{BASE}/User/8", json={"id": 8})
    client.get_item("User", 8)
    client.check_login()
    client.get_item("User", 8)
    assert [c.request.headers["Session-Token"] for c in calls_to(glpi, "killSession")] == ["s1"]
    assert calls_to(glpi, "User/8")[-1].request.headers["Session-Token"] == "s2"


def test_check_login_surfaces_glpis_refusal_of_the_caller_ip(client, glpi):
    message = "There isn't an active API client matching your IP address in the configuration (10.0.0.5)"
    glpi.get(f"{BASE}/initSession", status=400, json=["ERROR_NOT_ALLOWED_IP", message])
    with pytest.raises(GlpiAuthError) as raised:
        client.check_login()
    assert (raised.value.code, raised.value.message) == ("ERROR_NOT_ALLOWED_IP", message)


def test_proxy_and_ca_bundle_variables_of_the_environment_apply_to_every_call(clock, glpi, monkeypatch):
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.com:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/empresa.pem")
    client = GlpiClient(BASE, user_token=USER_TOKEN, clock=clock)
    monkeypatch.delenv("HTTPS_PROXY")  # read at start-up, like every other setting
    sessions(glpi, "s1")
    glpi.get(f"{BASE}/User/8", json={"id": 8})
    client.get_item("User", 8)
    for call in glpi.calls:
        assert call.request.req_kwargs["proxies"].get("https") == "http://proxy.example.com:3128"
        assert call.request.req_kwargs["verify"] == "/etc/ssl/empresa.pem"


def test_no_proxy_and_glpi_verify_tls_false_are_honoured(clock, glpi, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.com:3128")
    monkeypatch.setenv("NO_PROXY", "glpi.example.com")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/empresa.pem")
    client = GlpiClient(BASE, user_token=USER_TOKEN, verify_tls=False, clock=clock)
    sessions(glpi, "s1")
    glpi.get(f"{BASE}/User/8", json={"id": 8})
    client.get_item("User", 8)
    assert all("https" not in call.request.req_kwargs["proxies"] for call in glpi.calls)
    assert all(call.request.req_kwargs["verify"] is False for call in glpi.calls)


@pytest.mark.parametrize("header, seconds", [("120", 120.0), ("999999", 3600.0), ("soon", None), (None, None)])
def test_a_5xx_carries_the_retry_after_glpi_or_its_proxy_asked_for(client, glpi, header, seconds):
    headers = {"Retry-After": header} if header else {}
    glpi.get(f"{BASE}/initSession", body="<h1>Maintenance</h1>", status=503, content_type="text/html", headers=headers)
    with pytest.raises(GlpiUnavailable) as raised:
        client.get_item("ITILCategory", 1)
    assert raised.value.retry_after == seconds


def test_a_document_from_a_file_is_streamed_not_copied_and_replayed_from_its_start(client, glpi):
    sessions(glpi, "s1", "s2")
    glpi.post(f"{BASE}/Document", json=SESSION_INVALID, status=401)
    glpi.post(f"{BASE}/Document", json={"id": 9, "message": "Item successfully added"}, status=201)
    content = b"%PDF-1.4\n" + bytes(range(256)) * 40
    stream = io.BytesIO(content)
    stream.read(10)  # wherever the checks left it, the file is sent from its start
    assert client.upload_document("relatório.pdf", stream, "application/pdf", "Ticket", 42, 3) == 9
    sent = calls_to(glpi, "/Document")
    assert len(sent) == 2
    for call in sent:  # responses reads the streamed body; GLPI gets the same parts as from bytes
        assert int(call.request.headers["Content-Length"]) == len(call.request.body)
        parts = multipart_parts(call.request)
        assert parts["filename[0]"] == ("relatório.pdf", content)
        assert json.loads(parts["uploadManifest"][1])["input"]["_filename"] == ["relatório.pdf"]
