"""idempotency.py: which keys are sane, what a fingerprint covers, which answers are stored."""

from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import create_app
from config import load_config
from glpi_gateway.delivery import encode_request
from glpi_gateway.idempotency import (
    HeldKey,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
    claim,
    fingerprint,
    idempotency_key,
    implicit_key,
    is_final,
    lock_seconds,
)
from glpi_gateway.store import ClaimOutcome, StoredAnswer, StoreUnavailable
from glpi_gateway.store.sqlite import SqliteStore
from glpi_gateway.web import services
from tests.harness import sandbox_settings
from tests.helpers import UNKNOWN, Clock, body, in_process_app, ticket_request


# A fixed UUID, not uuid4(): pytest-xdist workers must all collect the same test ids.
@pytest.mark.parametrize(
    "key", ["0b7e2f4c-9a51-4d3e-8c6f-1e2d3a4b5c6d", "a", "form-42.submit:7", "YWJj+/=~_", "x" * 255]
)
def test_sane_keys_are_accepted(key):
    assert idempotency_key(key) == key


@pytest.mark.parametrize("key", ["", " ", "x" * 256, "tem espaço", "ção", "a\nb", "a;b"])
def test_insane_keys_are_refused(key):
    with pytest.raises(InvalidIdempotencyKey):
        idempotency_key(key)


def test_no_header_means_no_key():
    assert idempotency_key(None) is None


def test_an_implicit_key_is_the_callers_and_the_bodys_and_never_a_clients_key():
    base = encode_request(ticket_request())
    assert implicit_key("site", base) == implicit_key("site", encode_request(ticket_request()))
    assert implicit_key("site", base) != implicit_key("zabbix", base)
    assert implicit_key(None, base) != implicit_key(None, encode_request(ticket_request(urgencia=5)))
    with pytest.raises(InvalidIdempotencyKey):
        idempotency_key(implicit_key(None, base))  # a client cannot send it, so cannot collide with it


@pytest.mark.parametrize("status", [201, 202, 400, 404, 409, 422, 401, 500, 503])
def test_without_a_key_only_answers_that_made_a_ticket_are_kept(status):
    held = HeldKey("k", 600.0, explicit=False)
    assert held.keeps(status) == (status in (201, 202))
    assert HeldKey("k", 600.0, explicit=True).keeps(status) == is_final(status)


def test_fingerprint_covers_the_validated_body():
    base = encode_request(ticket_request())
    assert fingerprint(base) == fingerprint(encode_request(ticket_request()))
    assert fingerprint(base) != fingerprint(encode_request(ticket_request(urgencia=5)))


@pytest.mark.parametrize(
    "status, stored",
    [
        (201, True),
        (202, True),
        (400, True),
        (404, True),
        (409, True),
        (401, False),
        (500, False),
        (502, False),
        (503, False),
    ],
)
def test_final_answers_are_stored_and_server_side_failures_are_not(status, stored):
    assert is_final(status) is stored


def test_key_lock_outlives_a_request_even_with_a_long_glpi_timeout():
    assert lock_seconds(2) == 60
    assert lock_seconds(30) == 240


def test_claim_raises_for_another_body_and_for_a_request_in_flight(tmp_path):
    store = SqliteStore(str(tmp_path))
    body = encode_request(ticket_request())
    assert claim(store, "k", body, "p1", 60, 3600).outcome is ClaimOutcome.NEW
    with pytest.raises(IdempotencyKeyInFlight):
        claim(store, "k", body, "p2", 60, 3600)
    with pytest.raises(IdempotencyKeyReused):
        claim(store, "k", encode_request(ticket_request(urgencia=1)), "p2", 60, 3600)
    store.finish_key("k", StoredAnswer(201, "{}", {}), 3600)
    assert claim(store, "k", body, "p3", 60, 3600).outcome is ClaimOutcome.REPLAY
    store.close()


# --- any header, any body: never a 5xx (the app in-process, GLPI = the sandbox over HTTP) ---------


@pytest.fixture(scope="module")
def app_client(sandbox, tmp_path_factory):
    settings_ = {**sandbox_settings(sandbox.url), "DATA_DIR": str(tmp_path_factory.mktemp("fuzz-data"))}
    app = create_app(load_config(settings_, env_file=None))
    yield app.test_client()
    services(app).glpi_client.close()
    services(app).store.close()


header_values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=300)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    key=st.one_of(header_values, st.sampled_from(["k-fixa-1", "k-fixa-2"])),
    payload=st.sampled_from([body(), body(urgencia=5), body(cnpj_cliente=UNKNOWN), {}, [], body(urgencia=9)]),
)
def test_any_idempotency_key_with_any_body_never_gets_a_5xx(app_client, key, payload):
    response = app_client.post("/criar-chamado", json=payload, headers={"Idempotency-Key": key})
    assert response.status_code < 500, response.get_data(as_text=True)
    assert response.is_json and "Traceback" not in response.get_data(as_text=True)
    if response.status_code == 409:
        assert response.get_json()["codigo"] in ("pedido_em_andamento", "entidade_ambigua")


def test_a_key_outlives_its_lock_even_with_a_tiny_ttl(tmp_path):
    clock = Clock()
    store = SqliteStore(str(tmp_path), clock=clock)
    body_ = encode_request(ticket_request())
    claim(store, "k", body_, "p1", lock=60, ttl=1)
    clock.now += 30
    with pytest.raises(IdempotencyKeyInFlight):
        claim(store, "k", body_, "p2", lock=60, ttl=1)
    store.close()


# --- a created ticket's key: its protocol is the answer ---------------------------------------


def created(protocol: str, ticket_id: int) -> StoredAnswer:
    return StoredAnswer(201, f'{{"ticket_id":{ticket_id}}}', {"Location": f"/chamados/{protocol}"})


def test_a_key_whose_ticket_is_remembered_is_answered_from_its_protocol(tmp_path):
    clock = Clock()
    store = SqliteStore(str(tmp_path), clock=clock)
    body_ = encode_request(ticket_request())
    claim(store, "k", body_, "p1", lock=60, ttl=3600, created_answer=created)
    store.remember_protocol("p1", 42, 86400)
    during = claim(store, "k", body_, "p2", lock=60, ttl=3600, created_answer=created)
    clock.now += 61
    after_the_lock = claim(store, "k", body_, "p3", lock=60, ttl=3600, created_answer=created)
    for answered in (during, after_the_lock):
        assert answered.outcome is ClaimOutcome.REPLAY
        assert (answered.record.protocol, answered.record.answer) == ("p1", created("p1", 42))
    store.close()


def test_without_a_way_to_rebuild_the_answer_a_known_protocol_is_still_in_flight(tmp_path):
    # Multipart requests and complements: their answers say more than the ticket's number.
    store = SqliteStore(str(tmp_path))
    body_ = encode_request(ticket_request())
    claim(store, "k", body_, "p1", lock=60, ttl=3600)
    store.remember_protocol("p1", 42, 86400)
    with pytest.raises(IdempotencyKeyInFlight):
        claim(store, "k", body_, "p2", lock=60, ttl=3600)
    store.close()


@pytest.fixture
def finished_keys(sandbox, tmp_path, monkeypatch):
    """The in-process app and the answers its keys stored (finish_key calls), in order."""
    settings_ = {**sandbox_settings(sandbox.url), "DATA_DIR": str(tmp_path), "DEDUPE_WINDOW_SECONDS": "600"}
    with in_process_app(settings_) as app:
        store = services(app).store
        stored: list[StoredAnswer] = []
        finish_key = store.finish_key

        def spy(key, answer, ttl):
            stored.append(answer)
            finish_key(key, answer, ttl)

        monkeypatch.setattr(store, "finish_key", spy)
        yield app, stored


def test_a_created_tickets_key_stores_no_answer_and_a_repeat_gets_the_same_201(finished_keys):
    app, stored = finished_keys
    client = app.test_client()
    first = client.post("/criar-chamado", json=body(), headers={"Idempotency-Key": "k-1"})
    again = client.post("/criar-chamado", json=body(), headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert again.get_data() == first.get_data()
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert stored == []


def test_a_keyless_repeat_within_the_dedupe_window_is_answered_from_the_protocol_too(finished_keys):
    app, stored = finished_keys
    client = app.test_client()
    first = client.post("/criar-chamado", json=body(descricao_problema="sem chave"))
    again = client.post("/criar-chamado", json=body(descricao_problema="sem chave"))
    assert again.get_json() == first.get_json() and again.headers["Idempotent-Replayed"] == "true"
    assert stored == []


def test_when_the_protocol_cannot_be_kept_the_key_stores_the_answer(finished_keys, monkeypatch):
    app, stored = finished_keys

    def unavailable(*args):
        raise StoreUnavailable("SQLite: disk I/O error")

    monkeypatch.setattr(services(app).store, "remember_protocol", unavailable)
    client = app.test_client()
    first = client.post("/criar-chamado", json=body(), headers={"Idempotency-Key": "k-2"})
    again = client.post("/criar-chamado", json=body(), headers={"Idempotency-Key": "k-2"})
    assert first.status_code == 201 and [answer.status for answer in stored] == [201]
    assert again.get_data() == first.get_data() and again.headers["Idempotent-Replayed"] == "true"


def test_a_multipart_tickets_key_stores_its_answer_with_the_files_report(finished_keys):
    app, stored = finished_keys
    client = app.test_client()
    form = {**body(), "anexos": (io.BytesIO(b"%PDF-1.4\n%%EOF\n"), "nota.pdf", "application/pdf")}
    first = client.post("/criar-chamado", data=form, headers={"Idempotency-Key": "k-3"})
    assert first.status_code == 201, first.get_json()
    assert [answer.status for answer in stored] == [201] and '"anexos"' in stored[0].body
