"""Property-based fuzzing over HTTP: whatever bodies and headers a client sends, the gateway under
gunicorn answers without a 5xx and without a traceback, in its answers or in its log."""

from __future__ import annotations

import http.client
import json
import socket
from urllib.parse import urlparse

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.harness import sandbox_settings, start_gateway
from tests.helpers import ALFA, BETA, DUPLICATED, GAMA, UNKNOWN

pytestmark = pytest.mark.slow  # every test runs the gateway under gunicorn

SITE_KEY = "fuzz-site-key-0123456789abcdefghijklmnop"
SITE = "https://www.exemplo.com.br"
EXAMPLES = 300
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=80)
header_bytes = st.binary(max_size=60).map(lambda raw: raw.replace(b"\r", b"").replace(b"\n", b""))
content_types = st.one_of(
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "APPLICATION/JSON",
            "application/json;charset=latin-1",
            "application/json; charset=utf-16",
            "application/problem+json",
            "text/plain",
            "text/html",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/",
            "",
            ";;",
        ]
    ),
    header_text,
)
authorizations = st.one_of(
    st.sampled_from(
        [
            f"Bearer {SITE_KEY}",
            f"bearer {SITE_KEY}",
            "Bearer",
            "Bearer ",
            f"Basic {SITE_KEY}",
            f"Bearer {SITE_KEY}{SITE_KEY}",
            f"Bearer {SITE_KEY[:-1]}",
            "Bearer \u00e9\u00e9",
        ]
    ),
    header_text.map(lambda text: f"Bearer {text}"),
    header_text,
)
ip_like = st.one_of(
    st.ip_addresses().map(str), st.sampled_from(["unknown", "::ffff:1.2.3.4", "1.2.3.4:80", "[::1]", ""]), header_text
)
forwarded_for = st.lists(ip_like, max_size=4).map(", ".join)
origins = st.one_of(st.sampled_from([SITE, "null", "https://evil.example", SITE + "/", "*"]), header_text)
request_ids = st.one_of(st.text("abcXYZ019._:-", min_size=1, max_size=130), header_text)
# Half the time a valid key and a JSON content type, so that most requests get past the
# gateway's door and reach validation and GLPI.
keys = st.one_of(
    st.just({"Authorization": f"Bearer {SITE_KEY}"}),
    st.just({"X-API-Key": SITE_KEY}),
    st.fixed_dictionaries({}, optional={"Authorization": authorizations, "X-API-Key": header_text}),
)
json_content = st.one_of(
    st.just({"Content-Type": "application/json"}), st.fixed_dictionaries({}, optional={"Content-Type": content_types})
)
other_headers = st.fixed_dictionaries(
    {},
    optional={
        "X-Request-ID": request_ids,
        "X-Forwarded-For": forwarded_for,
        "Origin": origins,
        "Access-Control-Request-Method": st.sampled_from(["POST", "GET", "DELETE", ""]),
        "Idempotency-Key": header_text,
    },
)
headers = st.tuples(keys, json_content, other_headers).map(lambda parts: {**parts[0], **parts[1], **parts[2]})
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=4),
    max_leaves=12,
)
field_values = st.one_of(
    json_values, st.sampled_from([ALFA, BETA, GAMA, DUPLICATED, UNKNOWN, "1", "3", 5, -1, ""]), st.text(max_size=300)
)
ticket_fields = st.sampled_from(
    [
        "nome_cliente",
        "telefone_cliente",
        "cnpj_cliente",
        "anydesk_cliente",
        "descricao_problema",
        "email_cliente",
        "categoria",
        "urgencia",
    ]
)
valid_ticket = {
    "nome_cliente": "Maria",
    "telefone_cliente": "11 9999-0000",
    "cnpj_cliente": ALFA,
    "anydesk_cliente": "123",
    "descricao_problema": "Impressora",
}
tickets = st.dictionaries(ticket_fields, field_values, max_size=8).map(lambda fields: {**valid_ticket, **fields})
bodies = st.one_of(
    tickets.map(lambda ticket: json.dumps(ticket).encode()),
    tickets.map(lambda ticket: json.dumps(ticket, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=300),
    st.text(max_size=200).map(lambda text: text.encode("utf-8", "surrogatepass")),
)


@pytest.fixture(scope="module")
def fuzzed(sandbox, tmp_path_factory):
    """A gateway with every access feature on, so every code path of the hooks is fuzzed."""
    tmp = tmp_path_factory.mktemp("fuzz")
    process = start_gateway(
        tmp,
        sandbox_settings(
            sandbox.url,
            API_KEYS=f"site-principal:{SITE_KEY}",
            CORS_ORIGINS=SITE,
            TRUSTED_PROXIES="127.0.0.1,::1",
            RATE_LIMIT_PER_IP="100000/hour",
            RATE_LIMIT_PER_KEY="100000/hour",
            DATA_DIR=str(tmp / "data"),
        ),
    )
    assert process.exit_code is None, process.logs()
    yield process
    logs = process.logs()
    process.stop()
    assert "Traceback" not in logs and "erro inesperado" not in logs, logs[-3000:]


def send(url: str, method: str, path: str, header_items: list[tuple[str, bytes]], payload: bytes):
    """One raw HTTP/1.1 request, headers sent byte for byte (no client-side validation)."""
    target = urlparse(url)
    head = [
        f"{method} {path} HTTP/1.1".encode(),
        f"Host: {target.netloc}".encode(),
        b"Connection: close",
        f"Content-Length: {len(payload)}".encode(),
    ]
    head += [name.encode() + b": " + value for name, value in header_items]
    with socket.create_connection((target.hostname, target.port), timeout=30) as sock:
        sock.sendall(b"\r\n".join(head) + b"\r\n\r\n" + payload)
        response = http.client.HTTPResponse(sock, method=method)
        response.begin()
        return response.status, response.getheaders(), response.read()


def assert_no_server_error(status, header_items, answer: bytes):
    event(f"status {status}")  # shown by --hypothesis-show-statistics
    assert status < 500, (status, answer[:500])
    assert b"Traceback" not in answer and b'File "' not in answer
    assert all("Traceback" not in value for _, value in header_items)
    if dict(header_items).get("Content-Type", "").startswith("application/json") and status >= 400 and answer:
        assert json.loads(answer)["codigo"]


def encoded(values: dict[str, str]) -> list[tuple[str, bytes]]:
    return [(name, value.encode("latin-1")) for name, value in values.items()]


@FUZZ
@given(header_values=headers, payload=bodies)
def test_posting_any_body_with_any_headers_never_gets_a_5xx(fuzzed, header_values, payload):
    assert_no_server_error(*send(fuzzed.url, "POST", "/criar-chamado", encoded(header_values), payload))


@FUZZ
@given(
    header_values=headers,
    raw_name=st.sampled_from(
        ["Authorization", "X-API-Key", "X-Request-ID", "X-Forwarded-For", "Origin", "Content-Type"]
    ),
    raw_value=header_bytes,
    payload=bodies,
)
def test_raw_header_bytes_never_get_a_5xx(fuzzed, header_values, raw_name, raw_value, payload):
    items = [item for item in encoded(header_values) if item[0] != raw_name] + [(raw_name, raw_value)]
    assert_no_server_error(*send(fuzzed.url, "POST", "/criar-chamado", items, payload))


@FUZZ
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]),
    path=st.one_of(
        st.sampled_from(["/criar-chamado", "/ping", "/chamados/1", "/", "/criar-chamado/", "//criar-chamado"]),
        st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="#?"), max_size=40).map(
            lambda text: "/" + text
        ),
    ).filter(lambda path: path.rstrip("/") != "/debug"),
    header_values=headers,
    payload=bodies,
)
def test_any_method_on_any_path_never_gets_a_5xx(fuzzed, method, path, header_values, payload):
    assert_no_server_error(*send(fuzzed.url, method, path, encoded(header_values), payload))
